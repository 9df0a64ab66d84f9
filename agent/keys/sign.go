package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// ErrBadSignature is returned when a signature does not verify.
var ErrBadSignature = errors.New("signature verification failed")

// JWSAlg is the JOSE signature algorithm for keys on the curve: EdDSA, ES256,
// ES384, ES512 or ES256K.
func (c Curve) JWSAlg() string {
	switch c {
	case Ed25519:
		return "EdDSA"
	case P256:
		return "ES256"
	case P384:
		return "ES384"
	case P521:
		return "ES512"
	case Secp256k1:
		return "ES256K"
	}
	return ""
}

func digest(c Curve, msg []byte) []byte {
	switch c {
	case P384:
		h := sha512.Sum384(msg)
		return h[:]
	case P521:
		h := sha512.Sum512(msg)
		return h[:]
	}
	h := sha256.Sum256(msg)
	return h[:]
}

// Sign signs msg with the key's JWS algorithm (see Curve.JWSAlg). ECDSA
// signatures are in the JOSE form R||S, each padded to the curve size; they are
// low-S normalised for secp256k1.
func (k PrivateKey) Sign(msg []byte) ([]byte, error) {
	switch k.Curve {
	case Ed25519:
		if len(k.D) != ed25519.SeedSize {
			return nil, errors.New("ed25519 private key must be 32 bytes")
		}
		return ed25519.Sign(ed25519.NewKeyFromSeed(k.D), msg), nil
	case P256, P384, P521:
		priv, err := k.ecdsaPrivate()
		if err != nil {
			return nil, fmt.Errorf("%s private key: %w", k.Curve, err)
		}
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest(k.Curve, msg))
		if err != nil {
			return nil, err
		}
		n := k.Curve.byteSize()
		sig := make([]byte, 2*n)
		r.FillBytes(sig[:n])
		s.FillBytes(sig[n:])
		return sig, nil
	case Secp256k1:
		priv := secp256k1.PrivKeyFromBytes(k.D)
		compact := secpecdsa.SignCompact(priv, digest(k.Curve, msg), false)
		return compact[1:], nil // drop the recovery byte: JOSE wants R||S
	}
	return nil, fmt.Errorf("%w for signing: %q", ErrUnsupportedCurve, k.Curve)
}

// Verify checks a JOSE-form signature made by Sign.
func (k PublicKey) Verify(msg, sig []byte) error {
	switch k.Curve {
	case Ed25519:
		if len(k.Raw) != ed25519.PublicKeySize || !ed25519.Verify(ed25519.PublicKey(k.Raw), msg, sig) {
			return ErrBadSignature
		}
		return nil
	case P256, P384, P521:
		n := k.Curve.byteSize()
		if len(sig) != 2*n {
			return ErrBadSignature
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(k.Curve.elliptic(), k.Raw)
		if err != nil {
			return fmt.Errorf("%s public key: %w", k.Curve, err)
		}
		r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		if !ecdsa.Verify(pub, digest(k.Curve, msg), r, s) {
			return ErrBadSignature
		}
		return nil
	case Secp256k1:
		if len(sig) != 64 {
			return ErrBadSignature
		}
		pub, err := secp256k1.ParsePubKey(k.Raw)
		if err != nil {
			return fmt.Errorf("secp256k1 public key: %w", err)
		}
		var r, s secp256k1.ModNScalar
		if r.SetByteSlice(sig[:32]) || s.SetByteSlice(sig[32:]) || r.IsZero() || s.IsZero() {
			return ErrBadSignature
		}
		if !secpecdsa.NewSignature(&r, &s).Verify(digest(k.Curve, msg), pub) {
			return ErrBadSignature
		}
		return nil
	}
	return fmt.Errorf("%w for signing: %q", ErrUnsupportedCurve, k.Curve)
}
