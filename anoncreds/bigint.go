package anoncreds

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// MaxBigIntBits bounds every big integer read from JSON. The largest values
// in AnonCreds v1 (the v̂ response, the predicate commitments) are about
// 3,200 bits with a 2,048-bit modulus; the bound leaves room for a 4,096-bit
// modulus and keeps the work of each modular exponentiation bounded.
const MaxBigIntBits = 8192

// maxBigIntDigits is the number of decimal digits of 2^MaxBigIntBits, plus one.
const maxBigIntDigits = 2468

// BigInt is a big integer written in JSON as a decimal string, the form the
// legacy AnonCreds JSON uses for every CL value. An optional leading '-' is
// accepted; anything else than ASCII digits is an error.
type BigInt struct {
	big.Int
}

// UnmarshalJSON reads a decimal string of at most MaxBigIntBits bits.
func (b *BigInt) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New("anoncreds: big integer must be a JSON string of decimal digits")
	}
	v, err := parseDecimal(s)
	if err != nil {
		return err
	}
	b.Int = *v
	return nil
}

// MarshalJSON writes the decimal string form.
func (b *BigInt) MarshalJSON() ([]byte, error) {
	return json.Marshal(b.Int.String())
}

// Big returns the value as a *big.Int (shared, do not modify); nil for a nil BigInt.
func (b *BigInt) Big() *big.Int {
	if b == nil {
		return nil
	}
	return &b.Int
}

// parseDecimal parses an optionally signed decimal integer with bounded size.
func parseDecimal(s string) (*big.Int, error) {
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return nil, errors.New("anoncreds: empty decimal number")
	}
	if len(digits) > maxBigIntDigits {
		return nil, fmt.Errorf("anoncreds: decimal number of %d digits exceeds the %d-bit bound", len(digits), MaxBigIntBits)
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return nil, errors.New("anoncreds: malformed decimal number")
		}
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, errors.New("anoncreds: malformed decimal number")
	}
	if v.BitLen() > MaxBigIntBits {
		return nil, fmt.Errorf("anoncreds: number exceeds the %d-bit bound", MaxBigIntBits)
	}
	return v, nil
}

// ByteString is a byte string written in JSON as an array of numbers 0..255
// (the serde form of Vec<u8> used by c_list).
type ByteString []byte

// maxByteStringLen bounds one c_list entry.
const maxByteStringLen = 4096

// UnmarshalJSON reads an array of at most 4,096 numbers in 0..255.
func (b *ByteString) UnmarshalJSON(data []byte) error {
	var raw []json.Number
	if err := json.Unmarshal(data, &raw); err != nil {
		return errors.New("anoncreds: byte string must be a JSON array of numbers 0..255")
	}
	if len(raw) > maxByteStringLen {
		return fmt.Errorf("anoncreds: byte string longer than %d bytes", maxByteStringLen)
	}
	out := make([]byte, len(raw))
	for i, n := range raw {
		v, err := n.Int64()
		if err != nil || v < 0 || v > 255 {
			return errors.New("anoncreds: byte string element out of 0..255")
		}
		out[i] = byte(v)
	}
	*b = out
	return nil
}

// MarshalJSON writes the array-of-numbers form.
func (b ByteString) MarshalJSON() ([]byte, error) {
	arr := make([]int, len(b))
	for i, v := range b {
		arr[i] = int(v)
	}
	return json.Marshal(arr)
}
