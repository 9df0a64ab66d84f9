package email

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/emersion/go-message"

	"github.com/agentd/agentd/agent"
)

// Part is one DIDComm message found in a mail.
type Part struct {
	// MediaType is the DIDComm media type the part was sent as (or
	// application/didcomm-encrypted+json for a body that is a JWE).
	MediaType string `json:"mediaType"`
	// Filename is the part's file name, if it had one (for logs and errors).
	Filename string `json:"filename,omitempty"`
	// Data is the packed message, transfer encoding removed.
	Data []byte `json:"data"`
}

// Name describes the i-th DIDComm message of a mail in log lines and SMTP
// replies: by its file name when it has one.
func (p Part) Name(i int) string {
	if p.Filename != "" {
		return fmt.Sprintf("attachment %q", safeText(p.Filename, 60))
	}
	return fmt.Sprintf("DIDComm message %d", i+1)
}

// Limits on the MIME structure Extract walks.
const (
	// MaxParts is the largest number of DIDComm messages taken from one mail.
	MaxParts = 16
	// maxEntities bounds the MIME entities (parts of any kind) walked in one mail.
	maxEntities = 256
	// maxDepth bounds multipart nesting.
	maxDepth = 8
)

// didcommTypes are the media types a part is taken as a DIDComm message for.
var didcommTypes = map[string]bool{
	agent.MediaTypeEncrypted: true,
	agent.MediaTypeSigned:    true,
	agent.MediaTypePlain:     true,
}

// extensionTypes are the DIDComm file extensions (DIDComm v2 spec, "IANA media
// types"); a part sent as application/octet-stream with such a file name is
// taken as the matching DIDComm message.
var extensionTypes = map[string]string{
	".dcem": agent.MediaTypeEncrypted,
	".dcsm": agent.MediaTypeSigned,
	".dcpm": agent.MediaTypePlain,
}

// ErrNoDIDComm is returned by Extract for a mail that holds no DIDComm message.
var ErrNoDIDComm = errors.New("no DIDComm message in the mail: send it as a MIME part of type " +
	agent.MediaTypeEncrypted + ", " + agent.MediaTypeSigned + " or " + agent.MediaTypePlain +
	", or as a body that is a DIDComm JWE")

// ContentError is a mail Extract can't take, with a reason that is safe to
// send back to the client.
type ContentError struct{ Reason string }

// Error returns the reason.
func (e *ContentError) Error() string { return e.Reason }

// Extract reads a whole mail (header and body, as received in DATA) and
// returns the DIDComm messages in it: every MIME part whose media type is a
// DIDComm type (whatever its file name), every application/octet-stream part
// named *.dcem, *.dcsm or *.dcpm, and every text, JSON or untyped body that is
// itself a DIDComm JWE. Identical parts are returned once. It returns
// ErrNoDIDComm when there is none and a *ContentError for a mail it cannot
// parse.
func Extract(mail []byte) ([]Part, error) {
	e, err := message.Read(bytes.NewReader(mail))
	if err != nil && !message.IsUnknownCharset(err) {
		if e == nil || !message.IsUnknownEncoding(err) {
			return nil, &ContentError{Reason: "the mail header could not be parsed"}
		}
	}
	w := walker{seen: map[[32]byte]bool{}}
	if err := w.walk(e, 0); err != nil {
		return nil, err
	}
	if len(w.parts) == 0 {
		return nil, ErrNoDIDComm
	}
	return w.parts, nil
}

type walker struct {
	parts    []Part
	entities int
	seen     map[[32]byte]bool
}

func (w *walker) walk(e *message.Entity, depth int) error {
	w.entities++
	if w.entities > maxEntities {
		return &ContentError{Reason: fmt.Sprintf("the mail has more than %d MIME parts", maxEntities)}
	}
	if mr := e.MultipartReader(); mr != nil {
		if depth >= maxDepth {
			return &ContentError{Reason: fmt.Sprintf("MIME parts are nested more than %d deep", maxDepth)}
		}
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil && (p == nil || !(message.IsUnknownCharset(err) || message.IsUnknownEncoding(err))) {
				return &ContentError{Reason: "a MIME part could not be parsed: " + safeText(err.Error(), 80)}
			}
			if err := w.walk(p, depth+1); err != nil {
				return err
			}
		}
	}
	mt, _, _ := e.Header.ContentType()
	mt = strings.ToLower(mt)
	_, dparams, _ := e.Header.ContentDisposition()
	filename := dparams["filename"]
	if filename == "" {
		_, cparams, _ := e.Header.ContentType()
		filename = cparams["name"]
	}
	kind := ""
	switch {
	case didcommTypes[mt]:
		kind = mt
	case mt == "application/octet-stream" && extensionTypes[strings.ToLower(path.Ext(filename))] != "":
		kind = extensionTypes[strings.ToLower(path.Ext(filename))]
	case mt == "" || mt == "text/plain" || mt == "application/json" || mt == "application/octet-stream":
		kind = "sniff"
	default:
		return nil // another kind of part: not ours, skip it
	}
	if cte := strings.ToLower(strings.TrimSpace(e.Header.Get("Content-Transfer-Encoding"))); cte != "" {
		switch cte {
		case "7bit", "8bit", "binary", "base64", "quoted-printable":
		default:
			if kind == "sniff" {
				return nil
			}
			return &ContentError{Reason: fmt.Sprintf("%s uses the unknown transfer encoding %q", describe(filename), safeText(cte, 30))}
		}
	}
	data, err := io.ReadAll(e.Body)
	if err != nil {
		if kind == "sniff" {
			return nil
		}
		return &ContentError{Reason: fmt.Sprintf("%s could not be decoded: %s", describe(filename), safeText(err.Error(), 80))}
	}
	data = bytes.TrimSpace(data)
	if kind == "sniff" {
		if !isJWE(data) {
			return nil
		}
		kind = agent.MediaTypeEncrypted
	}
	sum := sha256.Sum256(data)
	if w.seen[sum] {
		return nil
	}
	w.seen[sum] = true
	if len(w.parts) == MaxParts {
		return &ContentError{Reason: fmt.Sprintf("the mail holds more than %d DIDComm messages", MaxParts)}
	}
	w.parts = append(w.parts, Part{MediaType: kind, Filename: filename, Data: data})
	return nil
}

func describe(filename string) string {
	if filename == "" {
		return "a DIDComm part"
	}
	return "the DIDComm part " + safeText(filename, 60)
}

// isJWE reports whether b is a JSON object shaped like a JWE in the JSON
// serialisation DIDComm uses: protected, recipients, iv, ciphertext and tag.
func isJWE(b []byte) bool {
	if len(b) < 2 || b[0] != '{' {
		return false
	}
	var v struct {
		Protected  *string          `json:"protected"`
		Recipients *json.RawMessage `json:"recipients"`
		IV         *string          `json:"iv"`
		Ciphertext *string          `json:"ciphertext"`
		Tag        *string          `json:"tag"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return false
	}
	return v.Protected != nil && v.Recipients != nil && v.IV != nil && v.Ciphertext != nil && v.Tag != nil
}

// safeText makes s fit on one SMTP reply or log line: printable ASCII only,
// at most n bytes.
func safeText(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= n {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r > 0x7e {
			b.WriteByte('?')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
