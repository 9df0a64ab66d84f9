package envelope

import (
	"crypto/subtle"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// X25519 for ephemeral keys. crypto/ecdh derives the public key of every
// private key it parses (a full variable-base scalar multiplication), and has
// no way to run ECDH on a bare scalar. An ephemeral key needs its public key
// once and one agreement per recipient, so it is handled here instead:
//
//   - the public key X25519(d, 9) with a fixed-base multiplication on the
//     birationally equivalent edwards25519 (precomputed tables, several
//     times cheaper than the ladder), mapped to the Montgomery u-coordinate;
//   - the agreements X25519(d, u) with the Montgomery ladder of RFC 7748 §5.
//
// Both are constant-time in the scalar (no secret-dependent branches or
// memory accesses): edwards25519.Point.ScalarBaseMult uses constant-time
// table lookups, and the ladder's conditional swaps are field.Element.Swap
// with a 0/1 mask. The agent's static keys still go through crypto/ecdh (see
// staticAgreeKey).

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
	var e [32]byte
	copy(e[:], scalar[:])
	e[0] &= 248
	e[31] &= 127
	e[31] |= 64

	// The ladder of RFC 7748 §5 with its formulas in the order of ref10 (and
	// of crypto/ecdh), which needs fewer temporaries and runs faster:
	//
	//	A = x2 + z2, B = x2 - z2, C = x3 + z3, D = x3 - z3, DA = D·A, CB = C·B
	//	AA = A², BB = B², E = AA - BB
	//	x3 = (DA + CB)², z3 = x1·(DA - CB)²
	//	x2 = AA·BB, z2 = E·(BB + 121666·E)
	//
	// where BB + 121666·E = AA + a24·E of the RFC (a24 = 121665).
	var x1, x2, z2, x3, z3, tmp0, tmp1 field.Element
	x1.SetBytes(point[:]) // masks the high bit
	x2.One()
	// z2 = 0: the zero value.
	x3.Set(&x1)
	z3.One()

	swap := 0
	for pos := 254; pos >= 0; pos-- {
		bit := int(e[pos>>3]>>(pos&7)) & 1
		swap ^= bit
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = bit

		tmp0.Subtract(&x3, &z3)     // D
		tmp1.Subtract(&x2, &z2)     // B
		x2.Add(&x2, &z2)            // A
		z2.Add(&x3, &z3)            // C
		z3.Multiply(&tmp0, &x2)     // DA
		z2.Multiply(&z2, &tmp1)     // CB
		tmp0.Square(&tmp1)          // BB
		tmp1.Square(&x2)            // AA
		x3.Add(&z3, &z2)            // DA + CB
		z2.Subtract(&z3, &z2)       // DA - CB
		x2.Multiply(&tmp1, &tmp0)   // x2 = AA·BB
		tmp1.Subtract(&tmp1, &tmp0) // E = AA - BB
		z2.Square(&z2)              // (DA - CB)²
		z3.Mult32(&tmp1, 121666)    // 121666·E
		x3.Square(&x3)              // x3 = (DA + CB)²
		tmp0.Add(&tmp0, &z3)        // BB + 121666·E
		z3.Multiply(&x1, &z2)       // z3 = x1·(DA - CB)²
		z2.Multiply(&tmp1, &tmp0)   // z2 = E·(BB + 121666·E)
	}
	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)

	// z2^(p-2) is 0 for z2 = 0, so a low-order point yields u = 0.
	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	copy(out[:], x2.Bytes())
	clear(e[:])

	var zero [32]byte
	return subtle.ConstantTimeCompare(out[:], zero[:]) == 0
}
