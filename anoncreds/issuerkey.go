package anoncreds

import (
	"errors"
	"math/big"

	"filippo.io/bigmod"
)

// issuerKey is the issuer's secret key prepared for constant-time
// arithmetic (filippo.io/bigmod): the moduli n = pq, p = 2p'+1, q = 2q'+1,
// p', q' and p'q' (the order of the group QR_n of quadratic residues, where
// every base of the public key lives), and the CRT coefficients.
//
// Exponentiations of elements of QR_n with secret exponents are done modulo
// p and q with the exponent reduced modulo p' and q' (the orders of QR_p and
// QR_q), then recombined: four times faster than modulo n, and constant time
// in the exponent, the modulus being fixed. Inverses modulo the primes p',
// q' and p use Fermat's little theorem (x^(r-2) mod r), also constant time.
type issuerKey struct {
	n, pp, qp                     *big.Int
	mn, mp, mq, mpp, mqp, mOrder  *bigmod.Modulus
	ppMinus1, qpMinus1            []byte      // p'-1, q'-1: x^-1 = x^(p'-1) in QR_p
	ppMinus2, qpMinus2, pMinus2   []byte      // Fermat inverse exponents
	qInvP                         *bigmod.Nat // q^-1 mod p
	qpInvPp                       *bigmod.Nat // q'^-1 mod p'
	qModN, qpModOrder, ppModOrder *bigmod.Nat
	ppBytes, qpBytes              []byte // Euler's criterion exponents
	bigs                          map[*bigmod.Modulus]*big.Int
}

func newIssuerKey(pPrime, qPrime *big.Int) (*issuerKey, error) {
	if pPrime == nil || qPrime == nil || pPrime.Sign() <= 0 || qPrime.Sign() <= 0 || pPrime.Bit(0) == 0 || qPrime.Bit(0) == 0 ||
		pPrime.BitLen() < 500 || qPrime.BitLen() < 500 || pPrime.BitLen() > 2100 || qPrime.BitLen() > 2100 || pPrime.Cmp(qPrime) == 0 {
		return nil, errors.New("anoncreds: malformed credential definition private key")
	}
	k := &issuerKey{pp: pPrime, qp: qPrime}
	p := new(big.Int).Lsh(pPrime, 1)
	p.Add(p, bigOne)
	q := new(big.Int).Lsh(qPrime, 1)
	q.Add(q, bigOne)
	k.n = new(big.Int).Mul(p, q)
	var err error
	k.bigs = map[*bigmod.Modulus]*big.Int{}
	mod := func(x *big.Int) *bigmod.Modulus {
		if err != nil {
			return nil
		}
		var m *bigmod.Modulus
		m, err = bigmod.NewModulus(x.Bytes())
		k.bigs[m] = x
		return m
	}
	k.mn, k.mp, k.mq, k.mpp, k.mqp = mod(k.n), mod(p), mod(q), mod(pPrime), mod(qPrime)
	k.mOrder = mod(new(big.Int).Mul(pPrime, qPrime))
	if err != nil {
		return nil, errors.New("anoncreds: malformed credential definition private key")
	}
	sub := func(x *big.Int, d int64, m *bigmod.Modulus) []byte {
		return new(big.Int).Sub(x, big.NewInt(d)).FillBytes(make([]byte, m.Size()))
	}
	k.ppMinus1, k.qpMinus1 = sub(pPrime, 1, k.mpp), sub(qPrime, 1, k.mqp)
	k.ppMinus2, k.qpMinus2, k.pMinus2 = sub(pPrime, 2, k.mpp), sub(qPrime, 2, k.mqp), sub(p, 2, k.mp)
	k.qInvP = bigmod.NewNat().Exp(k.natMod(q, k.mp), k.pMinus2, k.mp)
	k.qpInvPp = bigmod.NewNat().Exp(k.natMod(qPrime, k.mpp), k.ppMinus2, k.mpp)
	k.ppBytes, k.qpBytes = pPrime.FillBytes(make([]byte, k.mpp.Size())), qPrime.FillBytes(make([]byte, k.mqp.Size()))
	k.qModN = k.natMod(q, k.mn)
	k.qpModOrder = k.natMod(qPrime, k.mOrder)
	k.ppModOrder = k.natMod(pPrime, k.mOrder)
	return k, nil
}

// natMod is x mod m as a Nat sized for m. x in [0, n) is reduced in
// constant time; other values (public ones only) with math/big first.
func (k *issuerKey) natMod(x *big.Int, m *bigmod.Modulus) *bigmod.Nat {
	if x.Sign() < 0 || x.Cmp(k.n) >= 0 {
		x = new(big.Int).Mod(x, k.bigs[m])
	}
	wide, err := bigmod.NewNat().SetBytes(x.FillBytes(make([]byte, k.mn.Size())), k.mn)
	if err != nil {
		panic("anoncreds: natMod: value out of range")
	}
	return bigmod.NewNat().Mod(wide, m)
}

func natBig(x *bigmod.Nat, m *bigmod.Modulus) *big.Int {
	return new(big.Int).SetBytes(x.Bytes(m))
}

// crt returns the x mod n with x ≡ xp mod p and x ≡ xq mod q (Garner).
func (k *issuerKey) crt(xp, xq *bigmod.Nat) *bigmod.Nat {
	h := bigmod.NewNat().Mod(xp, k.mp)
	h.Sub(bigmod.NewNat().Mod(xq, k.mp), k.mp)
	h.Mul(k.qInvP, k.mp)
	out := bigmod.NewNat().Mod(h, k.mn)
	out.Mul(k.qModN, k.mn)
	return out.Add(bigmod.NewNat().Mod(xq, k.mn), k.mn)
}

// crtOrder returns x mod p'q' with x ≡ xp mod p' and x ≡ xq mod q'.
func (k *issuerKey) crtOrder(xp, xq *bigmod.Nat) *bigmod.Nat {
	h := bigmod.NewNat().Mod(xp, k.mpp)
	h.Sub(bigmod.NewNat().Mod(xq, k.mpp), k.mpp)
	h.Mul(k.qpInvPp, k.mpp)
	out := bigmod.NewNat().Mod(h, k.mOrder)
	out.Mul(k.qpModOrder, k.mOrder)
	return out.Add(bigmod.NewNat().Mod(xq, k.mOrder), k.mOrder)
}

// qrPow is a pair (mod p, mod q) representing an element of QR_n.
type qrPow struct{ p, q *bigmod.Nat }

func (k *issuerKey) split(x *big.Int) qrPow {
	xn := k.natMod(x, k.mn)
	return qrPow{bigmod.NewNat().Mod(xn, k.mp), bigmod.NewNat().Mod(xn, k.mq)}
}

// exp raises an element of QR_n to a secret exponent given modulo p'q'
// (constant time).
func (k *issuerKey) exp(x qrPow, e *bigmod.Nat) qrPow {
	ep := bigmod.NewNat().Mod(e, k.mpp).Bytes(k.mpp)
	eq := bigmod.NewNat().Mod(e, k.mqp).Bytes(k.mqp)
	return qrPow{bigmod.NewNat().Exp(x.p, ep, k.mp), bigmod.NewNat().Exp(x.q, eq, k.mq)}
}

func (k *issuerKey) join(x qrPow) *big.Int { return natBig(k.crt(x.p, x.q), k.mn) }

// inQR tells whether x (mod p, mod q) is a quadratic residue and a unit:
// x^p' ≡ 1 mod p and x^q' ≡ 1 mod q (Euler's criterion, constant time).
func (k *issuerKey) inQR(x qrPow) bool {
	a := bigmod.NewNat().Exp(x.p, k.ppBytes, k.mp)
	b := bigmod.NewNat().Exp(x.q, k.qpBytes, k.mq)
	return a.IsOne()&b.IsOne() == 1
}

// inverse of an element of QR_n: x^(p'-1) mod p, x^(q'-1) mod q.
func (k *issuerKey) inverse(x qrPow) qrPow {
	return qrPow{bigmod.NewNat().Exp(x.p, k.ppMinus1, k.mp), bigmod.NewNat().Exp(x.q, k.qpMinus1, k.mq)}
}

func (k *issuerKey) mul(x, y qrPow) qrPow {
	a := bigmod.NewNat().Mod(x.p, k.mp)
	b := bigmod.NewNat().Mod(x.q, k.mq)
	return qrPow{a.Mul(y.p, k.mp), b.Mul(y.q, k.mq)}
}

// invOrder is e^-1 mod p'q' for e prime to p'q' (constant time).
func (k *issuerKey) invOrder(e *big.Int) *bigmod.Nat {
	dp := bigmod.NewNat().Exp(k.natMod(e, k.mpp), k.ppMinus2, k.mpp)
	dq := bigmod.NewNat().Exp(k.natMod(e, k.mqp), k.qpMinus2, k.mqp)
	return k.crtOrder(dp, dq)
}

// randOrder is a uniform random number in [lo, p'q') as a Nat mod p'q'.
func (k *issuerKey) randOrder(lo int64) (*bigmod.Nat, *big.Int, error) {
	order := new(big.Int).Mul(k.pp, k.qp)
	x, err := randInt(new(big.Int).Sub(order, big.NewInt(lo)))
	if err != nil {
		return nil, nil, err
	}
	x.Add(x, big.NewInt(lo))
	return k.natMod(x, k.mOrder), x, nil
}
