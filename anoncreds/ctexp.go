package anoncreds

import (
	"math/big"

	"filippo.io/bigmod"
)

// The holder's exponentiations have secret exponents: the link secret, the
// attribute values, the blinding factors and the proofs' randomness. They
// go through filippo.io/bigmod, whose Exp takes a time that depends only on
// the lengths of the exponent and the modulus, not on their bits (math/big
// is not constant-time). The lengths are the scheme's parameters: the
// exponents are random numbers of fixed bit sizes, or values below 2^256.
// The verifier works on public values only and keeps math/big.

// modExpSecret computes base^exp mod n for a secret exp. The base is
// public; a negative exponent inverts it first (as the CL code's mod_exp
// does).
func modExpSecret(base, exp, n *big.Int) (*big.Int, error) {
	return expProductSecret(n, base, exp)
}

// expProductSecret computes Π bases[i]^exps[i] mod n, the exponents secret.
func expProductSecret(n *big.Int, pairs ...*big.Int) (*big.Int, error) {
	m, err := bigmod.NewModulus(n.Bytes())
	if err != nil {
		return nil, ErrInvalidProof
	}
	var acc *bigmod.Nat
	for i := 0; i+1 < len(pairs); i += 2 {
		v, err := expNat(m, n, pairs[i], pairs[i+1])
		if err != nil {
			return nil, err
		}
		if acc == nil {
			acc = v
		} else {
			acc.Mul(v, m)
		}
	}
	if acc == nil {
		return big.NewInt(1), nil
	}
	return new(big.Int).SetBytes(acc.Bytes(m)), nil
}

// expNat is base^exp mod n (m is n as a bigmod.Modulus).
func expNat(m *bigmod.Modulus, n, base, exp *big.Int) (*bigmod.Nat, error) {
	b := new(big.Int).Mod(base, n)
	if exp.Sign() < 0 {
		if b.ModInverse(b, n) == nil {
			return nil, ErrInvalidProof
		}
		exp = new(big.Int).Neg(exp)
	}
	x, err := bigmod.NewNat().SetBytes(b.FillBytes(make([]byte, m.Size())), m)
	if err != nil {
		return nil, ErrInvalidProof
	}
	return bigmod.NewNat().Exp(x, exp.Bytes(), m), nil
}
