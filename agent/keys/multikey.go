package keys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
)

// Multicodec codes for public keys (https://github.com/multiformats/multicodec).
const (
	codecEd25519   = 0xed
	codecX25519    = 0xec
	codecSecp256k1 = 0xe7
	codecP256      = 0x1200
	codecP384      = 0x1201
	codecP521      = 0x1202
)

func (c Curve) multicodec() uint64 {
	switch c {
	case Ed25519:
		return codecEd25519
	case X25519:
		return codecX25519
	case Secp256k1:
		return codecSecp256k1
	case P256:
		return codecP256
	case P384:
		return codecP384
	case P521:
		return codecP521
	}
	return 0
}

func curveOfCodec(code uint64) Curve {
	for _, c := range []Curve{Ed25519, X25519, Secp256k1, P256, P384, P521} {
		if c.multicodec() == code {
			return c
		}
	}
	return ""
}

// Multikey returns the key in multibase base58btc form ("z..."), with its
// multicodec prefix and, for EC curves, the compressed point: the form used in
// did:key identifiers and publicKeyMultibase.
func (k PublicKey) Multikey() string {
	buf := binary.AppendUvarint(nil, k.Curve.multicodec())
	buf = append(buf, k.Compressed()...)
	return "z" + Base58Encode(buf)
}

// ParseMultikey decodes a multibase base58btc multicodec public key ("z6Mk...").
func ParseMultikey(s, kid string) (PublicKey, error) {
	if len(s) < 2 || s[0] != 'z' {
		return PublicKey{}, errors.New("multikey: only base58btc ('z') multibase is supported")
	}
	buf, err := Base58Decode(s[1:])
	if err != nil {
		return PublicKey{}, fmt.Errorf("multikey: %w", err)
	}
	code, n := binary.Uvarint(buf)
	if n <= 0 {
		return PublicKey{}, errors.New("multikey: bad multicodec prefix")
	}
	c := curveOfCodec(code)
	if c == "" {
		return PublicKey{}, fmt.Errorf("%w: multicodec 0x%x", ErrUnsupportedCurve, code)
	}
	return NewPublic(c, kid, buf[n:])
}

// ParseRawKey decodes publicKeyMultibase values of the 2020 suites
// (X25519KeyAgreementKey2020, Ed25519VerificationKey2020), which are multikeys
// of the named curve.
func ParseRawKey(c Curve, multibase, kid string) (PublicKey, error) {
	k, err := ParseMultikey(multibase, kid)
	if err != nil {
		return PublicKey{}, err
	}
	if k.Curve != c {
		return PublicKey{}, fmt.Errorf("multikey: expected a %s key, got %s", c, k.Curve)
	}
	return k, nil
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

var base58Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(base58Alphabet); i++ {
		t[base58Alphabet[i]] = int8(i)
	}
	return
}()

// Base58Encode encodes b in the Bitcoin base58 alphabet.
func Base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	n := new(big.Int).SetBytes(b)
	base, mod := big.NewInt(58), new(big.Int)
	var out []byte
	for n.Sign() > 0 {
		n.DivMod(n, base, mod)
		out = append(out, base58Alphabet[mod.Int64()])
	}
	for i := 0; i < zeros; i++ {
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

// Base58Decode decodes a Bitcoin-alphabet base58 string.
func Base58Decode(s string) ([]byte, error) {
	n, base := new(big.Int), big.NewInt(58)
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	for i := 0; i < len(s); i++ {
		v := base58Index[s[i]]
		if v < 0 {
			return nil, fmt.Errorf("invalid base58 character %q", s[i])
		}
		n.Mul(n, base)
		n.Add(n, big.NewInt(int64(v)))
	}
	return append(make([]byte, zeros), n.Bytes()...), nil
}
