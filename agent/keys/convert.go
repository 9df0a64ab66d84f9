package keys

import (
	"crypto/sha512"
	"fmt"

	"filippo.io/edwards25519"
)

// ToX25519 converts an Ed25519 public key to the X25519 key of the same key
// pair (the birational map u = (1+y)/(1-y) from RFC 7748), as did:key does
// to derive a key agreement key from an Ed25519 DID. The result keeps the
// key's ID; callers give it its own.
func (k PublicKey) ToX25519() (PublicKey, error) {
	if k.Curve != Ed25519 {
		return PublicKey{}, fmt.Errorf("%w: cannot convert a %s key to X25519", ErrUnsupportedCurve, k.Curve)
	}
	p, err := new(edwards25519.Point).SetBytes(k.Raw)
	if err != nil {
		return PublicKey{}, fmt.Errorf("ed25519 public key: %w", err)
	}
	return NewPublic(X25519, k.ID, p.BytesMontgomery())
}

// ToX25519 converts an Ed25519 key pair to the X25519 key pair whose public
// key is PublicKey.ToX25519 of this one: the secret scalar is the first half
// of SHA-512(seed), as RFC 8032 derives it (X25519 clamps it on use). It lets
// an agent decrypt messages sent to the key agreement key of its did:key.
func (k PrivateKey) ToX25519() (PrivateKey, error) {
	if k.Curve != Ed25519 {
		return PrivateKey{}, fmt.Errorf("%w: cannot convert a %s key to X25519", ErrUnsupportedCurve, k.Curve)
	}
	if len(k.D) != 32 {
		return PrivateKey{}, fmt.Errorf("ed25519 private key must be 32 bytes")
	}
	h := sha512.Sum512(k.D)
	d := h[:32]
	d[0] &= 248
	d[31] &= 127
	d[31] |= 64
	return FromPrivate(X25519, k.ID, d)
}
