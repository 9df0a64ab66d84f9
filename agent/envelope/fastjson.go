package envelope

import (
	"bytes"
	"encoding/json"
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
	ok := true
	err := scanTopObject(data, func(name []byte, escaped bool, value []byte) {
		if !ok {
			return
		}
		n := name[1 : len(name)-1]
		if escaped || !plainLowerASCII(n) {
			ok = false
			return
		}
		ok = member(n, value)
	})
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

// fastString decodes value into a string field.
func fastString(value []byte, dst *string) bool {
	if value[0] == 'n' { // null leaves a string alone
		return true
	}
	if s, ok := plainString(value); ok {
		*dst = s
		return true
	}
	return value[0] == '"' && json.Unmarshal(value, dst) == nil
}

// fastStringPtr decodes value into a *string field.
func fastStringPtr(value []byte, dst **string) bool {
	if value[0] == 'n' {
		*dst = nil
		return true
	}
	if s, ok := plainString(value); ok {
		if *dst == nil {
			*dst = new(string)
		}
		**dst = s
		return true
	}
	return value[0] == '"' && json.Unmarshal(value, dst) == nil
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
	*m = plainJSON{}
	return json.Unmarshal(msg, m)
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
			return fastUnmarshal(v, &m.To)
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
	if fastJWEHeader(b, h) {
		return nil
	}
	*h = jweHeader{}
	return json.Unmarshal(b, h)
}

func fastJWEHeader(b []byte, h *jweHeader) bool {
	return fastObject(b, func(name, v []byte) bool {
		switch string(name) {
		case "typ":
			return fastStringPtr(v, &h.Typ)
		case "alg":
			return fastString(v, &h.Alg)
		case "enc":
			return fastString(v, &h.Enc)
		case "skid":
			return fastStringPtr(v, &h.Skid)
		case "apu":
			return fastStringPtr(v, &h.Apu)
		case "apv":
			return fastStringPtr(v, &h.Apv)
		case "epk":
			switch v[0] {
			case 'n':
				h.Epk = nil
				return true
			case '{':
				if h.Epk == nil {
					h.Epk = new(keys.JWK)
				}
				return fastJWK(v, h.Epk)
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
	return fastObject(v, func(name, v []byte) bool {
		switch string(name) {
		case "kty":
			return fastString(v, &k.Kty)
		case "crv":
			return fastString(v, &k.Crv)
		case "x":
			return fastString(v, &k.X)
		case "y":
			return fastString(v, &k.Y)
		case "d":
			return fastString(v, &k.D)
		case "kid":
			return fastString(v, &k.Kid)
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
			ok = fastObject(v, func(name, v []byte) bool {
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
						return fastObject(v, func(name, v []byte) bool {
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
	err := scanTopArray(v, func(e []byte) {
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
	return fastObject(v, func(name, v []byte) bool {
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
				return fastObject(v, func(name, v []byte) bool {
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
	err := scanTopArray(v, func(e []byte) {
		ok = ok && (e[0] == '"' || e[0] == 'n')
	})
	return err == nil && ok
}
