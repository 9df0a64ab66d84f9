package users

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"filippo.io/edwards25519"
	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/crypto/sha3"
)

// PublicKeys are a user's public keys as the front end sends them, in the
// shape of Zenflows' keygen: the Ethereum address and the pubkeys
// dictionary. The strings are Zenroom's own encodings (see CheckKeys).
type PublicKeys struct {
	EthereumAddress string  `json:"ethereum_address"`
	Pubkeys         Pubkeys `json:"pubkeys"`
}

// Pubkeys is the "pubkeys" dictionary of a Zenroom keyring's public keys.
type Pubkeys struct {
	ECDH    string `json:"ecdh_public_key"`
	EdDSA   string `json:"eddsa_public_key"`
	Reflow  string `json:"reflow_public_key"`
	Schnorr string `json:"schnorr_public_key"`
}

// KeyCheck records what was checked of one key: its encoding, its decoded
// size and what the bytes were found to be.
type KeyCheck struct {
	Field    string `json:"field"`
	Encoding string `json:"encoding"`
	Bytes    int    `json:"bytes"`
	Checked  string `json:"checked"`
}

// CheckedKeys are the keys as received, what was checked of each, and the
// raw Ed25519 key (for the user's did:key).
type CheckedKeys struct {
	Received PublicKeys `json:"received"`
	Checks   []KeyCheck `json:"checks"`
	Ed25519  []byte     `json:"ed25519"`
}

// keyError is the error of a key that fails its check; it names the field.
func keyError(field, format string, args ...any) error {
	return invalid(field, fmt.Sprintf(format, args...))
}

// CheckKeys decodes and checks each key as Zenroom 5.38.1 writes it (the
// encodings are found by running Zenroom, see interop/zenroom):
//
//   - ethereum_address: "0x" and 40 hex digits (EIP-55 mixed case; a
//     mixed-case address must carry a valid checksum); the seed's older
//     form without "0x" is accepted too.
//   - ecdh_public_key: base64 of the 65-byte uncompressed secp256k1 point
//     (0x04||X||Y), checked to be on the curve.
//   - eddsa_public_key: base64 of the 32-byte Ed25519 point (Zenroom's
//     base64 dictionary); base58 as Zenroom prints it outside the
//     dictionary (no padding: told apart by the missing "="). Checked to be
//     a canonical encoding of a curve point.
//   - reflow_public_key: base64 of a 192-byte BLS12-381 G2 point, x.a0 ||
//     x.a1 || y.a0 || y.a1 (48-byte big-endian field elements, no flag
//     bits), checked canonical, on the curve and in the prime-order
//     subgroup.
//   - schnorr_public_key: base64 of the 32-byte BIP-340 x-only secp256k1
//     key, checked to be the x of a curve point; the seed's older 48-byte
//     form is accepted with its size checked only.
func CheckKeys(k PublicKeys) (CheckedKeys, error) {
	out := CheckedKeys{Received: k}
	add := func(c KeyCheck, err error) error {
		if err == nil {
			out.Checks = append(out.Checks, c)
		}
		return err
	}
	if err := add(checkEthereum(k.EthereumAddress)); err != nil {
		return CheckedKeys{}, err
	}
	if err := add(checkECDH(k.Pubkeys.ECDH)); err != nil {
		return CheckedKeys{}, err
	}
	c, pub, err := checkEdDSA(k.Pubkeys.EdDSA)
	if err := add(c, err); err != nil {
		return CheckedKeys{}, err
	}
	out.Ed25519 = pub
	if err := add(checkReflow(k.Pubkeys.Reflow)); err != nil {
		return CheckedKeys{}, err
	}
	if err := add(checkSchnorr(k.Pubkeys.Schnorr)); err != nil {
		return CheckedKeys{}, err
	}
	return out, nil
}

const (
	fEth     = "ethereum_address"
	fECDH    = "pubkeys.ecdh_public_key"
	fEdDSA   = "pubkeys.eddsa_public_key"
	fReflow  = "pubkeys.reflow_public_key"
	fSchnorr = "pubkeys.schnorr_public_key"
)

// b64 decodes standard padded base64, Zenroom's default.
func b64(field, s string) ([]byte, error) {
	if s == "" {
		return nil, keyError(field, "missing")
	}
	if len(s) > 1024 {
		return nil, keyError(field, "too long")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, keyError(field, "not base64")
	}
	return b, nil
}

func checkEthereum(s string) (KeyCheck, error) {
	if s == "" {
		return KeyCheck{}, keyError(fEth, "missing")
	}
	hexPart, enc := s, "hex (older form, no 0x)"
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		hexPart, enc = s[2:], "0x hex (EIP-55)"
	}
	if len(hexPart) != 40 {
		return KeyCheck{}, keyError(fEth, "must be 20 bytes: 40 hex digits after 0x")
	}
	b, err := hex.DecodeString(hexPart)
	if err != nil {
		return KeyCheck{}, keyError(fEth, "not hex")
	}
	checked := "20 bytes"
	if hexPart != strings.ToLower(hexPart) && hexPart != strings.ToUpper(hexPart) {
		if eip55(b) != hexPart {
			return KeyCheck{}, keyError(fEth, "EIP-55 checksum mismatch")
		}
		checked += ", EIP-55 checksum valid"
	}
	return KeyCheck{Field: fEth, Encoding: enc, Bytes: len(b), Checked: checked}, nil
}

// eip55 returns the checksummed hex (without 0x) of an address.
func eip55(addr []byte) string {
	lower := hex.EncodeToString(addr)
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(lower))
	sum := h.Sum(nil)
	out := []byte(lower)
	for i, c := range out {
		if c >= 'a' && c <= 'f' {
			nib := sum[i/2] >> 4
			if i%2 == 1 {
				nib = sum[i/2] & 0x0f
			}
			if nib >= 8 {
				out[i] = c - 32
			}
		}
	}
	return string(out)
}

func checkECDH(s string) (KeyCheck, error) {
	b, err := b64(fECDH, s)
	if err != nil {
		return KeyCheck{}, err
	}
	if len(b) != 65 || b[0] != 0x04 {
		return KeyCheck{}, keyError(fECDH, "must be an uncompressed secp256k1 point: 65 bytes starting with 0x04, got %d bytes", len(b))
	}
	if _, err := secp256k1.ParsePubKey(b); err != nil {
		return KeyCheck{}, keyError(fECDH, "not a point on secp256k1")
	}
	return KeyCheck{Field: fECDH, Encoding: "base64", Bytes: 65, Checked: "uncompressed secp256k1 point, on the curve"}, nil
}

func checkEdDSA(s string) (KeyCheck, []byte, error) {
	if s == "" {
		return KeyCheck{}, nil, keyError(fEdDSA, "missing")
	}
	var b []byte
	enc := "base64"
	if strings.ContainsAny(s, "=+/") {
		var err error
		if b, err = b64(fEdDSA, s); err != nil {
			return KeyCheck{}, nil, err
		}
	} else {
		var ok bool
		if b, ok = base58Decode(s); !ok {
			return KeyCheck{}, nil, keyError(fEdDSA, "neither base64 nor base58")
		}
		enc = "base58"
	}
	if len(b) != 32 {
		return KeyCheck{}, nil, keyError(fEdDSA, "must be a 32-byte Ed25519 point, got %d bytes", len(b))
	}
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil || !bytes.Equal(p.Bytes(), b) {
		return KeyCheck{}, nil, keyError(fEdDSA, "not a canonical Ed25519 point")
	}
	if p.Equal(edwards25519.NewIdentityPoint()) == 1 {
		return KeyCheck{}, nil, keyError(fEdDSA, "the identity point is not a key")
	}
	return KeyCheck{Field: fEdDSA, Encoding: enc, Bytes: 32, Checked: "canonical Ed25519 point"}, b, nil
}

func checkReflow(s string) (KeyCheck, error) {
	b, err := b64(fReflow, s)
	if err != nil {
		return KeyCheck{}, err
	}
	if len(b) != 192 {
		return KeyCheck{}, keyError(fReflow, "must be a 192-byte BLS12-381 G2 point, got %d bytes", len(b))
	}
	var p bls.G2Affine
	for i, e := range []interface{ SetBytesCanonical([]byte) error }{&p.X.A0, &p.X.A1, &p.Y.A0, &p.Y.A1} {
		if err := e.SetBytesCanonical(b[i*48 : (i+1)*48]); err != nil {
			return KeyCheck{}, keyError(fReflow, "coordinate not a BLS12-381 field element")
		}
	}
	if p.IsInfinity() || !p.IsOnCurve() {
		return KeyCheck{}, keyError(fReflow, "not a point on the BLS12-381 G2 curve")
	}
	if !p.IsInSubGroup() {
		return KeyCheck{}, keyError(fReflow, "not in the BLS12-381 G2 prime-order subgroup")
	}
	return KeyCheck{Field: fReflow, Encoding: "base64", Bytes: 192, Checked: "BLS12-381 G2 point (x.a0|x.a1|y.a0|y.a1), on the curve, in the subgroup"}, nil
}

func checkSchnorr(s string) (KeyCheck, error) {
	b, err := b64(fSchnorr, s)
	if err != nil {
		return KeyCheck{}, err
	}
	switch len(b) {
	case 32:
		if _, err := secp256k1.ParsePubKey(append([]byte{0x02}, b...)); err != nil {
			return KeyCheck{}, keyError(fSchnorr, "not the x coordinate of a secp256k1 point")
		}
		return KeyCheck{Field: fSchnorr, Encoding: "base64", Bytes: 32, Checked: "BIP-340 x-only secp256k1 key, on the curve"}, nil
	case 48:
		return KeyCheck{Field: fSchnorr, Encoding: "base64", Bytes: 48, Checked: "older Zenroom form: size only"}, nil
	}
	return KeyCheck{}, keyError(fSchnorr, "must be 32 bytes (48 in older Zenroom), got %d bytes", len(b))
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58Decode decodes Bitcoin-alphabet base58, as Zenroom prints it.
func base58Decode(s string) ([]byte, bool) {
	if s == "" || len(s) > 100 {
		return nil, false
	}
	n := new(big.Int)
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(base58Alphabet, s[i])
		if d < 0 {
			return nil, false
		}
		n.Mul(n, big.NewInt(58))
		n.Add(n, big.NewInt(int64(d)))
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	return append(make([]byte, zeros), n.Bytes()...), true
}
