package envelope

import (
	"crypto/subtle"

	circl "github.com/cloudflare/circl/dh/x25519"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// X25519 without crypto/ecdh. crypto/ecdh derives the public key of every
// private key it parses (a full variable-base scalar multiplication) and has
// no way to run ECDH on a bare scalar; its ladder is portable Go. Here:
//
//   - the public key X25519(d, 9) of an ephemeral key with a fixed-base
//     multiplication on the birationally equivalent edwards25519
//     (precomputed tables, several times cheaper than the ladder), mapped to
//     the Montgomery u-coordinate;
//   - the agreements X25519(d, u), static and ephemeral keys alike, with the
//     Montgomery ladder of RFC 7748 §5 in github.com/cloudflare/circl, whose
//     amd64 assembly (MULX/ADX where the CPU has them) takes 33 µs where
//     crypto/ecdh takes 45–55 µs on the project's machine: X25519 is a third
//     of the CPU of a forward at the mediator.
//
// Both are constant-time in the scalar (no secret-dependent branches or
// memory accesses): edwards25519.Point.ScalarBaseMult uses constant-time
// table lookups, and circl's ladder swaps with a mask.

// x25519PublicKey sets pub to X25519(d, 9), the public key of private key d.
func x25519PublicKey(pub, d *[32]byte) {
	// SetBytesWithClamping clamps d as RFC 7748 decodeScalar25519 does and
	// reduces it modulo the group order ℓ. The base point has order ℓ, so
	// clamp(d)·B = (clamp(d) mod ℓ)·B. clamp(d) is a multiple of 8 in
	// [2^254, 2^255) and no multiple of ℓ there is (4ℓ..7ℓ are not multiples
	// of 8, ℓ being odd), so the point is never the identity.
	s, err := edwards25519.NewScalar().SetBytesWithClamping(d[:])
	if err != nil {
		panic("envelope: X25519 scalar: " + err.Error()) // cannot happen: d is 32 bytes
	}
	var p edwards25519.Point
	p.ScalarBaseMult(s)
	// RFC 7748 §4.1: u = (1 + y) / (1 - y) with y = Y/Z, that is
	// u = (Z + Y) / (Z - Y), one inversion. Z - Y = 0 only for y = 1, the
	// identity, which was excluded above.
	_, y, z, _ := p.ExtendedCoordinates()
	var num, den field.Element
	num.Add(z, y)
	den.Subtract(z, y)
	den.Invert(&den)
	num.Multiply(&num, &den)
	copy(pub[:], num.Bytes())
}

// x25519 sets out to X25519(scalar, point) (RFC 7748 §5: the scalar is
// clamped, the high bit of the point ignored, non-canonical points accepted)
// and reports whether the result is not all zeros. An all-zero result means
// point was of low order (contributory behaviour, RFC 7748 §6.1) and must be
// refused by the caller; crypto/ecdh refuses it the same way.
func x25519(out, scalar, point *[32]byte) bool {
	// circl clamps the scalar, masks the point's high bit and reports a
	// low-order point; the result is checked for zeros as well, as
	// crypto/ecdh does, so that the refusal does not rest on circl's list.
	ok := circl.Shared((*circl.Key)(out), (*circl.Key)(scalar), (*circl.Key)(point))
	var zero [32]byte
	return ok && subtle.ConstantTimeCompare(out[:], zero[:]) == 0
}
