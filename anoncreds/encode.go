package anoncreds

import (
	"crypto/sha256"
	"math/big"
	"strconv"
	"strings"
	"unicode"
)

// EncodeValue is the AnonCreds (RFC 0037) encoding of a raw attribute value,
// as anoncreds-rs computes it: a value that parses as a 32-bit signed
// decimal integer (optional sign, ASCII digits, no spaces) is written as
// that integer in decimal; any other value is SHA-256 of its UTF-8 bytes,
// read as an unsigned big-endian integer, in decimal.
func EncodeValue(raw string) string {
	if v, ok := parseInt32(raw); ok {
		return strconv.FormatInt(int64(v), 10)
	}
	h := sha256.Sum256([]byte(raw))
	return new(big.Int).SetBytes(h[:]).String()
}

// parseInt32 mirrors Rust's str::parse::<i32>: optional '+' or '-', then
// one or more ASCII digits, in range.
func parseInt32(s string) (int32, bool) {
	if len(s) == 0 || len(s) > 12 {
		return 0, false
	}
	digits := s
	if s[0] == '+' || s[0] == '-' {
		digits = s[1:]
	}
	if len(digits) == 0 {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(v), true
}

// encodedMatches tells whether encoded is the encoding of raw, comparing
// as integers (so "0175" and "175" are the same number). Besides
// EncodeValue (anoncreds-rs, Credo), it accepts ACA-Py's reading of
// integers (Python int(): surrounding whitespace and '_' between digits
// allowed), so that credentials ACA-Py issued verify; a raw value that
// reads as no integer must hash to the encoded value in every case.
func encodedMatches(raw string, encoded *big.Int) bool {
	want, _ := new(big.Int).SetString(EncodeValue(raw), 10)
	if want.Cmp(encoded) == 0 {
		return true
	}
	if v, ok := parsePythonInt32(raw); ok {
		return encoded.IsInt64() && encoded.Int64() == int64(v)
	}
	return false
}

// parsePythonInt32 reads raw as Python's int() does for ASCII input
// (whitespace around, optional sign, digits with single underscores
// between them) and reports whether it is a 32-bit signed integer.
func parsePythonInt32(raw string) (int32, bool) {
	s := strings.TrimFunc(raw, unicode.IsSpace)
	if len(s) == 0 || len(s) > 64 || s[len(s)-1] == '_' {
		return 0, false
	}
	sign := ""
	if s[0] == '+' || s[0] == '-' {
		sign, s = s[:1], s[1:]
	}
	if s == "" || s[0] == '_' || strings.Contains(s, "__") {
		return 0, false
	}
	return parseInt32(sign + strings.ReplaceAll(s, "_", ""))
}
