package anoncreds

import (
	"crypto/rand"
	"math/big"
	"testing"
)

// TestExpSecretMatchesMathBig: the constant-time exponentiations give what
// math/big gives, for positive, negative and zero exponents of the sizes
// the holder uses.
func TestExpSecretMatchesMathBig(t *testing.T) {
	p, _ := rand.Prime(rand.Reader, 512)
	q, _ := rand.Prime(rand.Reader, 512)
	n := new(big.Int).Mul(p, q)
	for _, bits := range []int{0, 1, 64, 593, 2128, 2724} {
		for _, neg := range []bool{false, true} {
			base, _ := rand.Int(rand.Reader, n)
			base2, _ := rand.Int(rand.Reader, n)
			exp := big.NewInt(0)
			if bits > 0 {
				exp, _ = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
			}
			if neg {
				exp.Neg(exp)
			}
			want, err := expProduct(n, base, exp, base2, big.NewInt(12345))
			if err != nil {
				t.Fatal(err)
			}
			got, err := expProductSecret(n, base, exp, base2, big.NewInt(12345))
			if err != nil || got.Cmp(want) != 0 {
				t.Fatalf("%d bits, negative %v: %v %v, want %v", bits, neg, got, err, want)
			}
			one, err := modExpSecret(base, exp, n)
			w1, _ := modExp(base, exp, n)
			if err != nil || one.Cmp(w1) != 0 {
				t.Fatalf("modExpSecret %d bits: %v", bits, err)
			}
		}
	}
	// A base with no inverse and a negative exponent is refused, as by modExp.
	if _, err := modExpSecret(big.NewInt(0), big.NewInt(-3), n); err == nil {
		t.Fatal("0^-3 computed")
	}
}
