package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/agentd/agentd/agent/keys"
)

// Fast paths for the three small structures Unpack decodes with
// encoding/json: the plaintext message, the JWE protected header and the JWE
// recipients. encoding/json scans its input two or three times with a
// byte-at-a-time state machine and allocates through reflection; for a
// message with a 1 KiB body that was most of Unpack's time outside the key
// agreements. Each fast decoder gives exactly the result json.Unmarshal would
// give, or reports that it cannot, and the caller then runs json.Unmarshal
// on a fresh value (so error values, and the handling of anything unusual,
// are encoding/json's). The fast path is taken only when encoding/json's
// rules reduce to the obvious ones:
//
//   - every member name is plain lower-case ASCII without escapes. encoding/json
//     matches names to fields case-insensitively (with Unicode folding, so
//     that "\u212Aty" is "kty"); for such names, all our tags being lower-case
//     ASCII, that is an exact match;
//   - members are decoded into their fields in order, each as json.Unmarshal
//     decodes a member (a later duplicate overwrites, or for a pointer to a
//     struct merges into, what an earlier one set; null sets pointers, slices
//     and raw messages to nil or "null" and leaves strings alone);
//   - any value of an unexpected JSON type, a string with escapes or invalid
//     UTF-8, makes the fast decoder give up (strings with escapes are decoded
//     by json.Unmarshal member by member, which is equivalent).
//
// TestFastJSON* and FuzzFastJSON compare them with json.Unmarshal.

// fastObject calls member for each member of the JSON object data, in order,
// with the name (without quotes) and the raw value. It returns false when
// data is not exactly one valid JSON object, when a member name is not plain
// lower-case ASCII, or when member returns false; the caller must then fall
// back to json.Unmarshal.
func fastObject(data []byte, member func(name, value []byte) bool) bool {
	return fastMembers(data, false, member)
}

// fastValidObject is fastObject for data known to be valid JSON, a value a
// scan handed on (see scanValidObject).
func fastValidObject(data []byte, member func(name, value []byte) bool) bool {
	return fastMembers(data, true, member)
}

// fastMembers is fastObject, with scanValidObject when valid.
func fastMembers(data []byte, valid bool, member func(name, value []byte) bool) bool {
	ok := true
	each := func(name []byte, escaped bool, value []byte) {
		if !ok {
			return
		}
		n := name[1 : len(name)-1]
		if escaped || !plainLowerASCII(n) {
			ok = false
			return
		}
		ok = member(n, value)
	}
	var err error
	if valid {
		err = scanValidObject(data, each)
	} else {
		err = scanTopObject(data, each)
	}
	return err == nil && ok
}

// plainLowerASCII reports whether b has only printable ASCII other than
// upper-case letters.
func plainLowerASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

// plainString returns the value of a JSON string without escapes and with
// valid UTF-8, which is its content as it stands.
func plainString(value []byte) (string, bool) {
	if len(value) < 2 || value[0] != '"' {
		return "", false
	}
	inner := value[1 : len(value)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

// strOf makes the strings of the fast decoders. With src empty it copies
// them; otherwise src is string(b), b holds every value decoded, and the
// strings are substrings of src, so decoding allocates none.
type strOf struct {
	b   []byte
	src string
}

// of returns the string with the bytes of inner, a subslice of t.b when
// t.src is set.
func (t *strOf) of(inner []byte) string {
	if t == nil || t.src == "" {
		return string(inner)
	}
	off := cap(t.b) - cap(inner) // inner = t.b[off : off+len(inner)]
	return t.src[off : off+len(inner)]
}

// plainStringOf is plainString with its string made by t.
func plainStringOf(value []byte, t *strOf) (string, bool) {
	if len(value) < 2 || value[0] != '"' {
		return "", false
	}
	inner := value[1 : len(value)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		return "", false
	}
	return t.of(inner), true
}

// fastStringOf is fastString with its string made by t.
func fastStringOf(value []byte, dst *string, t *strOf) bool {
	if value[0] == 'n' {
		return true
	}
	if s, ok := plainStringOf(value, t); ok {
		*dst = s
		return true
	}
	return value[0] == '"' && unquote(value, dst)
}

// fastStringPtrOf is fastStringPtr with its string made by t; a nil *dst
// is set to slot (which nothing else points to) instead of a new string.
func fastStringPtrOf(value []byte, dst **string, slot *string, t *strOf) bool {
	if value[0] == 'n' {
		*dst = nil
		return true
	}
	if s, ok := plainStringOf(value, t); ok {
		if *dst == nil {
			*dst = slot
		}
		**dst = s
		return true
	}
	if value[0] != '"' {
		return false
	}
	var u string
	if !unquote(value, &u) {
		return false
	}
	if *dst == nil {
		*dst = slot
	}
	**dst = u
	return true
}

// fastString decodes value into a string field.
func fastString(value []byte, dst *string) bool {
	if value[0] == 'n' { // null leaves a string alone
		return true
	}
	if s, ok := plainString(value); ok {
		*dst = s
		return true
	}
	return value[0] == '"' && unquote(value, dst)
}

// unquote decodes the JSON string value into *dst with encoding/json. It
// decodes into a string of its own, so that dst (a field of a decoder's
// value) does not escape to the heap through json.Unmarshal.
func unquote(value []byte, dst *string) bool {
	var s string
	if json.Unmarshal(value, &s) != nil {
		return false
	}
	*dst = s
	return true
}

// fastStringPtr decodes value into a *string field.
func fastStringPtr(value []byte, dst **string) bool {
	if value[0] == 'n' {
		*dst = nil
		return true
	}
	s, ok := plainString(value)
	if !ok && (value[0] != '"' || !unquote(value, &s)) {
		return false
	}
	if *dst == nil {
		*dst = new(string)
	}
	**dst = s
	return true
}

// fastUnmarshal decodes value into the field v points to with encoding/json,
// as the decoding of the whole object would.
func fastUnmarshal(value []byte, v any) bool {
	return json.Unmarshal(value, v) == nil
}

// decodePlain decodes a plaintext message like json.Unmarshal(msg, m).
func decodePlain(msg []byte, m *plainJSON) error {
	if fastPlain(msg, m) {
		return nil
	}
	// Into a value of its own, so that m does not escape (and is not
	// allocated) on the fast path.
	d := new(plainJSON)
	err := json.Unmarshal(msg, d)
	*m = *d
	return err
}

func fastPlain(msg []byte, m *plainJSON) bool {
	return fastObject(msg, func(name, v []byte) bool {
		switch string(name) {
		case "id":
			m.ID = jsonKind(v[0])
		case "type":
			m.Type = jsonKind(v[0])
		case "typ":
			return fastStringPtr(v, &m.Typ)
		case "body":
			m.Body = jsonKind(v[0])
		case "from":
			return fastStringPtr(v, &m.From)
		case "to":
			// A slice of its own, so that m does not escape through
			// json.Unmarshal; decoding into m.To gives the same value.
			var to []string
			if !fastUnmarshal(v, &to) {
				return false
			}
			m.To = to
			return true
		case "thid":
			m.Thid = jsonKind(v[0])
		case "pthid":
			m.Pthid = jsonKind(v[0])
		case "created_time":
			return checkTimeJSON(v, "created_time") == nil
		case "expires_time":
			return checkTimeJSON(v, "expires_time") == nil
		case "attachments":
			if m.attScanned {
				// encoding/json decodes a repeated member into the
				// elements the earlier one left: not worth following.
				return false
			}
			m.attScanned = true
			var ok bool
			ok, m.attErr = fastAttachments(v)
			return ok
		case "from_prior":
			return fastStringPtr(v, &m.FromPrior)
		}
		return true
	})
}

// decodeJWEHeader decodes a JWE protected header like json.Unmarshal(b, h).
func decodeJWEHeader(b []byte, h *jweHeader) error {
	return decodeJWEHeaderIn(b, "", h, nil)
}

// decodeJWEHeaderIn is decodeJWEHeader whose fast path takes its strings
// from src (string(b), or "" to copy them) and points h's pointer members
// into st (nil: new ones).
func decodeJWEHeaderIn(b []byte, src string, h *jweHeader, st *jweHeaderStore) error {
	if fastJWEHeaderIn(b, src, h, st) {
		return nil
	}
	*h = jweHeader{}
	return json.Unmarshal(b, h)
}

func fastJWEHeader(b []byte, h *jweHeader) bool {
	return fastJWEHeaderIn(b, "", h, nil)
}

func fastJWEHeaderIn(b []byte, src string, h *jweHeader, st *jweHeaderStore) bool {
	if st == nil {
		st = new(jweHeaderStore)
	}
	t := &strOf{b: b, src: src}
	return fastObject(b, func(name, v []byte) bool {
		switch string(name) {
		case "typ":
			return fastStringPtrOf(v, &h.Typ, &st.typ, t)
		case "alg":
			return fastStringOf(v, &h.Alg, t)
		case "enc":
			return fastStringOf(v, &h.Enc, t)
		case "skid":
			return fastStringPtrOf(v, &h.Skid, &st.skid, t)
		case "apu":
			return fastStringPtrOf(v, &h.Apu, &st.apu, t)
		case "apv":
			return fastStringPtrOf(v, &h.Apv, &st.apv, t)
		case "epk":
			switch v[0] {
			case 'n':
				h.Epk = nil
				return true
			case '{':
				if h.Epk == nil {
					st.epk = keys.JWK{}
					h.Epk = &st.epk
				}
				return fastJWKOf(v, h.Epk, t)
			}
			return false
		case "crit":
			// json.RawMessage keeps the raw value, "null" included.
			h.Crit = append(h.Crit[:0], v...)
		case "zip":
			h.Zip = append(h.Zip[:0], v...)
		}
		return true
	})
}

// fastJWK decodes the object v into k (merging, as encoding/json does).
func fastJWK(v []byte, k *keys.JWK) bool {
	return fastJWKOf(v, k, nil)
}

func fastJWKOf(v []byte, k *keys.JWK, t *strOf) bool {
	return fastValidObject(v, func(name, v []byte) bool {
		switch string(name) {
		case "kty":
			return fastStringOf(v, &k.Kty, t)
		case "crv":
			return fastStringOf(v, &k.Crv, t)
		case "x":
			return fastStringOf(v, &k.X, t)
		case "y":
			return fastStringOf(v, &k.Y, t)
		case "d":
			return fastStringOf(v, &k.D, t)
		case "kid":
			return fastStringOf(v, &k.Kid, t)
		}
		return true
	})
}

// decodeRecipients decodes the JWE recipients like json.Unmarshal(b, rs).
func decodeRecipients(b []byte, rs *[]jweRecipient) error {
	if fastRecipients(b, rs) {
		return nil
	}
	*rs = nil
	return json.Unmarshal(b, rs)
}

func fastRecipients(b []byte, rs *[]jweRecipient) bool {
	if string(b) == "null" { // a nil slice
		*rs = nil
		return true
	}
	out := (*rs)[:0]
	ok := true
	err := scanTopArray(b, func(v []byte) {
		if !ok {
			return
		}
		out = append(out, jweRecipient{})
		r := &out[len(out)-1]
		switch v[0] {
		case 'n': // null leaves the element zero
		case '{':
			ok = fastValidObject(v, func(name, v []byte) bool {
				switch string(name) {
				case "header":
					switch v[0] {
					case 'n':
						r.Header = nil
						return true
					case '{':
						if r.Header == nil {
							r.Header = new(jweRecipientHeader)
						}
						return fastValidObject(v, func(name, v []byte) bool {
							if string(name) == "kid" {
								return fastStringPtr(v, &r.Header.Kid)
							}
							return true
						})
					}
					return false
				case "encrypted_key":
					return fastStringPtr(v, &r.EncryptedKey)
				}
				return true
			})
		default:
			ok = false
		}
	})
	if err != nil || !ok {
		return false
	}
	if out == nil {
		out = []jweRecipient{} // [] decodes to an empty, non-nil slice
	}
	*rs = out
	return true
}

// recipientFast is one recipient as decoding it into a jweRecipient leaves
// it, without the pointers: header, header.kid and encrypted_key present
// (not null) and their values.
type recipientFast struct {
	header, hasKid, hasEK bool
	kid, ek               []byte
}

// fastRecipientKids is recipientKidsSlow without decoding into
// []jweRecipient: the same kids, encrypted keys and errors, all strings
// substrings of one copy of r. ok is false when the fast path cannot follow
// r (recipientKidsSlow must then decide).
func fastRecipientKids(r []byte) (kids, eks []string, err error, ok bool) {
	var (
		stack [2]recipientFast
		rs    = stack[:0]
	)
	ok = true
	serr := scanTopArray(r, func(v []byte) {
		if !ok {
			return
		}
		rs = append(rs, recipientFast{})
		rf := &rs[len(rs)-1]
		switch v[0] {
		case 'n': // null leaves the element zero
		case '{':
			ok = fastValidObject(v, func(name, v []byte) bool {
				switch string(name) {
				case "header":
					switch v[0] {
					case 'n':
						*rf = recipientFast{hasEK: rf.hasEK, ek: rf.ek}
						return true
					case '{':
						rf.header = true // merges into an earlier header
						return fastValidObject(v, func(name, v []byte) bool {
							if string(name) != "kid" {
								return true
							}
							return fastBytesPtr(v, &rf.hasKid, &rf.kid)
						})
					}
					return false
				case "encrypted_key":
					return fastBytesPtr(v, &rf.hasEK, &rf.ek)
				}
				return true
			})
		default:
			ok = false
		}
	})
	if serr != nil || !ok {
		return nil, nil, nil, false
	}
	if len(rs) == 0 || len(rs) > MaxRecipients {
		return nil, nil, fmt.Errorf("%w: %d recipients (1 to %d allowed)", ErrMalformed, len(rs), MaxRecipients), true
	}
	for i := range rs {
		rf := &rs[i]
		if !rf.header || !rf.hasKid || len(rf.kid) == 0 {
			return nil, nil, fmt.Errorf("%w: recipient %d has no header.kid", ErrMalformed, i), true
		}
		if !rf.hasEK {
			return nil, nil, fmt.Errorf("%w: recipient %d has no encrypted_key", ErrMalformed, i), true
		}
	}
	t := &strOf{b: r, src: string(r)}
	all := make([]string, 2*len(rs))
	kids, eks = all[:len(rs):len(rs)], all[len(rs):]
	for i := range rs {
		kids[i], eks[i] = t.of(rs[i].kid), t.of(rs[i].ek)
	}
	return kids, eks, nil, true
}

// fastBytesPtr follows decoding value into a *string field: null sets it
// absent, a plain string (no escapes, valid UTF-8) present with its content;
// anything else fails.
func fastBytesPtr(value []byte, has *bool, dst *[]byte) bool {
	if value[0] == 'n' {
		*has, *dst = false, nil
		return true
	}
	if len(value) < 2 || value[0] != '"' {
		return false
	}
	inner := value[1 : len(value)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		return false
	}
	*has, *dst = true, inner
	return true
}

// fastAttachments checks the attachments member v of a plaintext message (a
// valid JSON value without surrounding whitespace, as scanTopObject hands it
// on) as decoding it into *[]attachmentJSON and running checkAttachments
// would, but without decoding: it walks the array and each attachment's
// members, and only looks at the first byte of the values it does not need
// (an attachment's data.json is the forwarded message, kilobytes). It returns
// false when encoding/json would fail to decode v (a value of the wrong JSON
// type) or the walk cannot follow it (a name that is not plain lower-case
// ASCII), and otherwise true and checkAttachments' error.
func fastAttachments(v []byte) (bool, error) {
	switch v[0] {
	case 'n': // a nil pointer: nothing to check
		return true, nil
	case '[':
	default:
		return false, nil
	}
	var bad error
	ok := true
	i := 0
	err := scanValidArray(v, func(e []byte) {
		if !ok {
			return
		}
		var c attachmentCheck
		switch e[0] {
		case 'n': // null leaves the element zero: no data
		case '{':
			ok = fastAttachment(e, &c)
		default:
			ok = false
		}
		if ok && bad == nil {
			bad = c.check(i)
		}
		i++
	})
	if err != nil || !ok {
		return false, nil
	}
	return true, bad
}

// fastAttachment reads the object v, one attachment, into c, following
// encoding/json's decoding into attachmentJSON: members in order, a repeated
// data object merging into the earlier one, data null resetting it, and a
// value of the wrong JSON type failing.
func fastAttachment(v []byte, c *attachmentCheck) bool {
	return fastValidObject(v, func(name, v []byte) bool {
		switch string(name) {
		case "id", "description", "filename", "media_type", "format": // *string
			return v[0] == '"' || v[0] == 'n'
		case "lastmod_time", "byte_count": // *uint64
			if v[0] == 'n' {
				return true
			}
			_, err := strconv.ParseUint(string(v), 10, 64)
			return err == nil
		case "data":
			switch v[0] {
			case 'n':
				*c = attachmentCheck{}
				return true
			case '{':
				if !c.data {
					*c = attachmentCheck{data: true}
				}
				return fastValidObject(v, func(name, v []byte) bool {
					switch string(name) {
					case "base64":
						c.base64 = jsonKind(v[0])
					case "json":
						c.json = jsonKind(v[0])
					case "hash": // *string
						if v[0] != '"' && v[0] != 'n' {
							return false
						}
						c.hash = v[0] == '"'
					case "links": // *[]string
						switch v[0] {
						case 'n':
							c.links = false
							return true
						case '[':
							c.links = true
							return fastStringArray(v)
						}
						return false
					}
					// jws is a jsonKind: any value.
					return true
				})
			}
			return false
		}
		return true
	})
}

// fastStringArray reports whether every element of the JSON array v is a
// string or null, which is when encoding/json decodes it into a []string.
func fastStringArray(v []byte) bool {
	ok := true
	err := scanValidArray(v, func(e []byte) {
		ok = ok && (e[0] == '"' || e[0] == 'n')
	})
	return err == nil && ok
}
