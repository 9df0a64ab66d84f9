package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/agentd/agentd/agent/keys"
)

// b64 is the strict unpadded base64url of JOSE. Strict decoding rejects
// non-zero trailing bits, as the Rust and Python reference implementations do,
// so one value has exactly one encoding.
var b64 = base64.RawURLEncoding.Strict()

// isNull reports whether a raw JSON member is absent or null.
func isNull(r json.RawMessage) bool {
	return len(r) == 0 || string(r) == "null"
}

// jsonString returns the string value of a raw JSON member. ok is false when the
// member is absent or null; an error (wrapping ErrMalformed) is returned when it
// is not a string.
func jsonString(r json.RawMessage, name string) (s string, ok bool, err error) {
	if isNull(r) {
		return "", false, nil
	}
	if r[0] != '"' {
		return "", false, fmt.Errorf("%w: %s is not a string", ErrMalformed, name)
	}
	// Fast path: the raw value came out of a successful json.Unmarshal, so a
	// string without escapes is its own value.
	if inner := r[1 : len(r)-1]; bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true, nil
	}
	if err := json.Unmarshal(r, &s); err != nil {
		return "", false, fmt.Errorf("%w: %s is not a string", ErrMalformed, name)
	}
	return s, true, nil
}

// requiredString is jsonString for a member that must be present.
func requiredString(r json.RawMessage, name string) (string, error) {
	s, ok, err := jsonString(r, name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%w: %s is missing", ErrMalformed, name)
	}
	return s, nil
}

// decodeB64 decodes a required base64url member, straight from the raw JSON
// when the string has no escapes. The result has room for extra more bytes
// (cap - len >= extra).
func decodeB64(r json.RawMessage, name string, extra int) ([]byte, error) {
	if len(r) >= 2 && r[0] == '"' && bytes.IndexByte(r, '\\') < 0 {
		return decodeB64Room(r[1:len(r)-1], name, extra)
	}
	s, err := requiredString(r, name)
	if err != nil {
		return nil, err
	}
	return decodeB64Room([]byte(s), name, extra)
}

func decodeB64Room(src []byte, name string, extra int) ([]byte, error) {
	n := b64.DecodedLen(len(src))
	out := make([]byte, n, n+extra)
	n, err := b64Decode(out, src)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not base64url", ErrMalformed, name)
	}
	return out[:n], nil
}

// decodeB64To decodes src into buf when it fits and into a new slice
// otherwise.
func decodeB64To(buf, src []byte, name string) ([]byte, error) {
	if b64.DecodedLen(len(src)) > len(buf) {
		return decodeB64Room(src, name, 0)
	}
	n, err := b64Decode(buf, src)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not base64url", ErrMalformed, name)
	}
	return buf[:n:n], nil
}

// decodeB64In is decodeB64 (no extra room) into buf when the value fits.
func decodeB64In(buf []byte, r json.RawMessage, name string) ([]byte, error) {
	if len(r) >= 2 && r[0] == '"' && bytes.IndexByte(r, '\\') < 0 {
		return decodeB64To(buf, r[1:len(r)-1], name)
	}
	return decodeB64(r, name, 0)
}

// decodeB64Exact decodes s into buf, which must hold exactly its decoded
// length; it returns the length decoded.
func decodeB64Exact(buf []byte, s string) (int, error) {
	if b64.DecodedLen(len(s)) != len(buf) {
		return 0, errSyntax
	}
	return b64Decode(buf, []byte(s))
}

func decodeB64Bytes(src []byte, name string) ([]byte, error) {
	return decodeB64Room(src, name, 0)
}

func decodeB64String(s, name string) ([]byte, error) {
	return decodeB64Bytes([]byte(s), name)
}

// appendJSONString appends s as a JSON string. s must be valid UTF-8.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendB64 appends the base64url encoding of b.
func appendB64(dst, b []byte) []byte {
	return base64.RawURLEncoding.AppendEncode(dst, b)
}

// checkKid validates a key id we are about to write into a header.
func checkKid(kid, role string) error {
	if kid == "" {
		return fmt.Errorf("%s key has no id", role)
	}
	if !utf8.ValidString(kid) {
		return fmt.Errorf("%s key id is not valid UTF-8", role)
	}
	return nil
}

// didOf returns the DID of a DID URL: everything before the fragment.
func didOf(kid string) string {
	if i := strings.IndexByte(kid, '#'); i >= 0 {
		return kid[:i]
	}
	return kid
}

// appendEPK appends the public JWK of an ephemeral key: OKP with x for X25519,
// EC with x and y for the Weierstrass curves.
func appendEPK(dst []byte, pub keys.PublicKey) ([]byte, error) {
	if pub.Curve == keys.X25519 {
		dst = append(dst, `{"kty":"OKP","crv":"X25519","x":"`...)
		dst = appendB64(dst, pub.Raw)
		return append(dst, `"}`...), nil
	}
	x, y, err := pub.XY()
	if err != nil {
		return nil, err
	}
	dst = append(dst, `{"kty":"EC","crv":`...)
	dst = appendJSONString(dst, string(pub.Curve))
	dst = append(dst, `,"x":"`...)
	dst = appendB64(dst, x)
	dst = append(dst, `","y":"`...)
	dst = appendB64(dst, y)
	return append(dst, `"}`...), nil
}
