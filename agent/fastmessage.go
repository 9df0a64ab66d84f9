package agent

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/agentd/agentd/agent/envelope"
)

// A fast path for ParseMessage. Every inbound plaintext has just been scanned
// by envelope.Unpack; decoding it again with encoding/json (reflection, two
// scans) cost about a tenth of a forward's daemon CPU. fastParseMessage
// decodes a Message with the envelope package's scanner and gives exactly
// what the encoding/json path gives, or reports that it cannot, and
// ParseMessage then runs that path on a fresh value. It gives up on anything
// unusual: a member name that is not plain lower-case ASCII (encoding/json
// matches names case-insensitively, with Unicode folding), a repeated member
// (encoding/json decodes it into what the first one left), a value of a type
// the field does not take, or a number that is not an int64 for an integer
// field. Strings with escapes or invalid UTF-8 are decoded by json.Unmarshal
// one value at a time, which is equivalent. Raw members (body, data.json,
// data.jws) are copied, as json.RawMessage's UnmarshalJSON copies them, so
// the message does not alias its input. FuzzParseMessage compares the two.

// Bits of the members already seen, to give up on repeats.
const (
	mID = 1 << iota
	mTyp
	mType
	mFrom
	mTo
	mThID
	mPThID
	mCreated
	mExpires
	mBody
	mAttachments
	mFromPrior
	mReturnRoute
	mLang
	mAcceptLang
	mPleaseAck
	mAck
)

func fastParseMessage(b []byte, m *Message) (bool, error) {
	var seen uint32
	var created, expires []byte // the raw times
	ok := envelope.Members(b, func(name, v []byte) bool {
		var bit uint32
		var ok bool
		switch string(name) {
		case "id":
			bit, ok = mID, fastStr(v, &m.ID)
		case "typ":
			bit, ok = mTyp, fastStr(v, &m.Typ)
		case "type":
			bit, ok = mType, fastStr(v, &m.Type)
		case "from":
			bit, ok = mFrom, fastStr(v, &m.From)
		case "to":
			bit, ok = mTo, fastStrings(v, &m.To)
		case "thid":
			bit, ok = mThID, fastStr(v, &m.ThID)
		case "pthid":
			bit, ok = mPThID, fastStr(v, &m.PThID)
		case "created_time":
			bit, ok = mCreated, fastTime(v, &m.CreatedTime, &created)
		case "expires_time":
			bit, ok = mExpires, fastTime(v, &m.ExpiresTime, &expires)
		case "body":
			bit, ok = mBody, true
			m.Body = rawCopy(v)
		case "attachments":
			bit, ok = mAttachments, fastAttachments(v, &m.Attachments)
		case "from_prior":
			bit, ok = mFromPrior, fastStr(v, &m.FromPrior)
		case "return_route":
			bit, ok = mReturnRoute, fastStr(v, &m.ReturnRoute)
		case "lang":
			bit, ok = mLang, fastStr(v, &m.Lang)
		case "accept-lang":
			bit, ok = mAcceptLang, fastStrings(v, &m.AcceptLang)
		case "please_ack":
			bit, ok = mPleaseAck, fastStrings(v, &m.PleaseAck)
		case "ack":
			bit, ok = mAck, fastStrings(v, &m.Ack)
		default:
			return true // unknown members are ignored
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
	if !ok {
		return false, nil
	}
	// With a string time, the encoding/json path decodes both times from
	// their raw values after everything else, created_time first; on an
	// error it returns the message with that time and any later one zero.
	if isString(created) || isString(expires) {
		m.CreatedTime, m.ExpiresTime = 0, 0
		var err error
		if m.CreatedTime, err = parseUnixTime(created, "created_time"); err != nil {
			return true, err
		}
		m.ExpiresTime, err = parseUnixTime(expires, "expires_time")
		return true, err
	}
	return true, nil
}

func isString(v []byte) bool { return len(v) > 0 && v[0] == '"' }

// rawCopy decodes v into a json.RawMessage: a copy of the value, null
// included.
func rawCopy(v []byte) json.RawMessage {
	return append(json.RawMessage(nil), v...)
}

// fastStr decodes v into a string field: null leaves it alone, a string
// without escapes and with valid UTF-8 is its content, another string goes to
// json.Unmarshal, anything else gives up.
func fastStr(v []byte, dst *string) bool {
	switch v[0] {
	case 'n':
		return true
	case '"':
		inner := v[1 : len(v)-1]
		if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			*dst = string(inner)
			return true
		}
		return json.Unmarshal(v, dst) == nil
	}
	return false
}

// fastInt decodes v into an int64 field (null leaves it alone).
func fastInt(v []byte, dst *int64) bool {
	if v[0] == 'n' {
		return true
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return false
	}
	*dst = n
	return true
}

// fastTime decodes a created_time or expires_time member: a number like
// fastInt, a string later with parseUnixTime; it keeps the raw value in *raw.
func fastTime(v []byte, dst *int64, raw *[]byte) bool {
	*raw = v
	return v[0] == '"' || fastInt(v, dst)
}

// fastSlice decodes the JSON array v into a slice field that is still nil,
// each element with elem: null keeps the field nil, [] makes it empty and
// not nil, as encoding/json does.
func fastSlice[T any](v []byte, dst *[]T, elem func(e []byte, x *T) bool) bool {
	switch v[0] {
	case 'n':
		return true
	case '[':
	default:
		return false
	}
	out := []T{}
	ok := envelope.ValidElements(v, func(e []byte) bool { // v: a value Members handed on
		out = append(out, *new(T))
		return elem(e, &out[len(out)-1])
	})
	*dst = out
	return ok
}

// fastStrings decodes v into a []string field that is still nil; a null
// element is "".
func fastStrings(v []byte, dst *[]string) bool { return fastSlice(v, dst, fastStr) }

// Bits of an attachment's and its data's members, to give up on repeats.
const (
	aID = 1 << iota
	aDescription
	aFilename
	aMediaType
	aFormat
	aLastmod
	aByteCount
	aData
	dJWS
	dHash
	dLinks
	dBase64
	dJSON
)

// fastAttachments decodes v into the Attachments field, still nil; a null
// element leaves its attachment zero.
func fastAttachments(v []byte, dst *[]Attachment) bool {
	return fastSlice(v, dst, func(e []byte, a *Attachment) bool {
		switch e[0] {
		case 'n':
			return true
		case '{':
			return fastAttachment(e, a)
		}
		return false
	})
}

func fastAttachment(v []byte, a *Attachment) bool {
	var seen uint32
	return envelope.ValidMembers(v, func(name, v []byte) bool { // v: an element handed on
		var bit uint32
		var ok bool
		switch string(name) {
		case "id":
			bit, ok = aID, fastStr(v, &a.ID)
		case "description":
			bit, ok = aDescription, fastStr(v, &a.Description)
		case "filename":
			bit, ok = aFilename, fastStr(v, &a.Filename)
		case "media_type":
			bit, ok = aMediaType, fastStr(v, &a.MediaType)
		case "format":
			bit, ok = aFormat, fastStr(v, &a.Format)
		case "lastmod_time":
			bit, ok = aLastmod, fastInt(v, &a.LastmodTime)
		case "byte_count":
			bit, ok = aByteCount, fastInt(v, &a.ByteCount)
		case "data":
			bit = aData
			switch v[0] {
			case 'n': // null leaves the struct alone
				ok = true
			case '{':
				ok = fastAttachmentData(v, &a.Data)
			}
		default:
			return true
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
}

func fastAttachmentData(v []byte, d *AttachmentData) bool {
	var seen uint32
	return envelope.ValidMembers(v, func(name, v []byte) bool { // v: a member handed on
		var bit uint32
		ok := true
		switch string(name) {
		case "jws":
			bit = dJWS
			d.JWS = rawCopy(v)
		case "hash":
			bit, ok = dHash, fastStr(v, &d.Hash)
		case "links":
			bit, ok = dLinks, fastStrings(v, &d.Links)
		case "base64":
			bit, ok = dBase64, fastStr(v, &d.Base64)
		case "json":
			bit = dJSON
			d.JSON = rawCopy(v)
		default:
			return true
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
}
