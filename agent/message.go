// Package agent is the core of agentd: the plaintext DIDComm message model, the
// router that unpacks and dispatches inbound messages to protocol handlers, the
// messenger and durable outbox that deliver outbound ones, and the one error
// type (Error) whose codes map onto DIDComm problem reports and transport
// status codes.
//
// The package defines the interfaces its dependencies implement (stores,
// senders, resolvers) and imports no implementation of them.
package agent

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Media types of the three DIDComm v2 message envelopes.
const (
	MediaTypeEncrypted = "application/didcomm-encrypted+json"
	MediaTypeSigned    = "application/didcomm-signed+json"
	MediaTypePlain     = "application/didcomm-plain+json"
)

// Message is a DIDComm v2 plaintext message.
type Message struct {
	ID          string          `json:"id"`
	Typ         string          `json:"typ,omitempty"`
	Type        string          `json:"type"`
	From        string          `json:"from,omitempty"`
	To          []string        `json:"to,omitempty"`
	ThID        string          `json:"thid,omitempty"`
	PThID       string          `json:"pthid,omitempty"`
	CreatedTime int64           `json:"created_time,omitempty"`
	ExpiresTime int64           `json:"expires_time,omitempty"`
	Body        json.RawMessage `json:"body"`
	Attachments []Attachment    `json:"attachments,omitempty"`
	FromPrior   string          `json:"from_prior,omitempty"`
	ReturnRoute string          `json:"return_route,omitempty"`
	// Lang and AcceptLang are the localisation headers of the spec.
	Lang       string   `json:"lang,omitempty"`
	AcceptLang []string `json:"accept-lang,omitempty"`
	// PleaseAck and Ack are the acks decorators used by some protocols.
	PleaseAck []string `json:"please_ack,omitempty"`
	Ack       []string `json:"ack,omitempty"`
}

// Attachment is a DIDComm v2 attachment.
type Attachment struct {
	ID          string         `json:"id,omitempty"`
	Description string         `json:"description,omitempty"`
	Filename    string         `json:"filename,omitempty"`
	MediaType   string         `json:"media_type,omitempty"`
	Format      string         `json:"format,omitempty"`
	LastmodTime int64          `json:"lastmod_time,omitempty"`
	ByteCount   int64          `json:"byte_count,omitempty"`
	Data        AttachmentData `json:"data"`
}

// AttachmentData holds an attachment's content: inline JSON or base64, or links
// with a hash; jws signs it.
type AttachmentData struct {
	JWS    json.RawMessage `json:"jws,omitempty"`
	Hash   string          `json:"hash,omitempty"`
	Links  []string        `json:"links,omitempty"`
	Base64 string          `json:"base64,omitempty"`
	JSON   json.RawMessage `json:"json,omitempty"`
}

// NewID returns a random UUID (version 4) for message and record ids.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// NewMessage builds a message of the given type with a fresh id, the current
// created_time and body marshalled from body (an empty object when nil).
func NewMessage(typ string, body any) (Message, error) {
	m := Message{ID: NewID(), Typ: MediaTypePlain, Type: typ, CreatedTime: time.Now().Unix()}
	if body == nil {
		m.Body = json.RawMessage("{}")
		return m, nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return Message{}, err
	}
	m.Body = b
	return m, nil
}

// Reply builds a message of type typ answering m: addressed to m's sender, in
// m's thread, with its own fresh id.
func (m Message) Reply(typ string, body any) (Message, error) {
	r, err := NewMessage(typ, body)
	if err != nil {
		return Message{}, err
	}
	if m.From != "" {
		r.To = []string{m.From}
	}
	r.ThID = m.Thread()
	r.PThID = m.PThID
	return r, nil
}

// Thread returns the thread id: thid, or the message id for a thread's first message.
func (m Message) Thread() string {
	if m.ThID != "" {
		return m.ThID
	}
	return m.ID
}

// DecodeBody unmarshals the message body into v.
func (m Message) DecodeBody(v any) error {
	if len(m.Body) == 0 {
		return json.Unmarshal([]byte("{}"), v)
	}
	return json.Unmarshal(m.Body, v)
}

// Expired reports whether the message has an expires_time that lies before now.
func (m Message) Expired(now time.Time) bool {
	return m.ExpiresTime != 0 && now.Unix() >= m.ExpiresTime
}

// MarshalJSON writes an empty body object when Body is unset, since the spec
// makes body required.
func (m Message) MarshalJSON() ([]byte, error) {
	type plain Message
	if len(m.Body) == 0 {
		m.Body = json.RawMessage("{}")
	}
	return json.Marshal(plain(m))
}

// ParseMessage decodes a plaintext message as encoding/json would, except
// that created_time and expires_time may also be RFC 3339 (ISO 8601)
// date-time strings, as some DIDComm stacks (Veramo) send them; they are
// converted to Unix seconds (fractions dropped) and marshalled as numbers
// again. A string that is not such a date-time, or one before 1970, is an
// error naming the member. Messages with numeric times, the usual case, are
// decoded in one pass; only a string time costs a second one.
//
// Plaintexts are decoded with the envelope package's scanner when that gives
// exactly encoding/json's result (see fastParseMessage), and with
// encoding/json otherwise.
func ParseMessage(b []byte) (Message, error) {
	var m Message
	if ok, err := fastParseMessage(b, &m); ok {
		return m, err
	}
	return parseMessageJSON(b)
}

// parseMessageJSON is ParseMessage with encoding/json alone.
func parseMessageJSON(b []byte) (Message, error) {
	var m Message
	err := json.Unmarshal(b, &m)
	var te *json.UnmarshalTypeError
	if err == nil || !errors.As(err, &te) || te.Value != "string" || te.Field != "created_time" && te.Field != "expires_time" {
		return m, err
	}
	m = Message{}
	aux := struct {
		*Message
		CreatedTime json.RawMessage `json:"created_time"`
		ExpiresTime json.RawMessage `json:"expires_time"`
	}{Message: &m}
	if err := json.Unmarshal(b, &aux); err != nil {
		return m, err
	}
	if m.CreatedTime, err = parseUnixTime(aux.CreatedTime, "created_time"); err != nil {
		return m, err
	}
	m.ExpiresTime, err = parseUnixTime(aux.ExpiresTime, "expires_time")
	return m, err
}

// parseUnixTime reads a time member: absent or null (0), a JSON number of
// seconds, or an RFC 3339 date-time string.
func parseUnixTime(raw json.RawMessage, name string) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	if raw[0] != '"' {
		var n int64
		if err := json.Unmarshal(raw, &n); err != nil {
			return 0, fmt.Errorf("%s %s is not a whole number of seconds: %w", name, raw, err)
		}
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, err
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, fmt.Errorf("%s %q is neither Unix seconds nor an RFC 3339 date-time", name, s)
	}
	if t.Unix() < 0 {
		return 0, fmt.Errorf("%s %q lies before 1970", name, s)
	}
	return t.Unix(), nil
}

// PIURI returns the protocol identifier of a message type URI: the type without
// its last path segment (the message name), for example
// "https://didcomm.org/trust-ping/2.0" for "https://didcomm.org/trust-ping/2.0/ping".
func PIURI(msgType string) string {
	i := strings.LastIndexByte(msgType, '/')
	if i < 0 {
		return msgType
	}
	return msgType[:i]
}

// DIDOf returns the DID part of a DID URL (everything before '#', '?', or '/'
// after the method-specific id).
func DIDOf(didURL string) string {
	if i := strings.IndexAny(didURL, "#?"); i >= 0 {
		didURL = didURL[:i]
	}
	return didURL
}
