package anoncreds

import (
	"context"
	"crypto/rand"
	"math/big"
	"testing"
)

// TestSafePrimeSmall: generated numbers are safe primes of the asked size,
// with their two top bits set.
func TestSafePrimeSmall(t *testing.T) {
	for _, bits := range []int{64, 256, 512} {
		p, err := generateSafePrime(context.Background(), rand.Reader, bits, 0)
		if err != nil {
			t.Fatal(err)
		}
		pp := new(big.Int).Rsh(p, 1)
		if p.BitLen() != bits || p.Bit(bits-2) != 1 || !p.ProbablyPrime(20) || !pp.ProbablyPrime(20) {
			t.Fatalf("%d bits: %v is not a safe prime of that size", bits, p)
		}
	}
}

func TestSafePrimeCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := generateSafePrime(ctx, rand.Reader, 1024, 0); err == nil {
		t.Fatal("cancelled search returned a prime")
	}
}

// BenchmarkSafePrime1024: one 1024-bit safe prime, on one goroutine and on
// every core. Variable (the search length is random): use -benchtime=20x.
func BenchmarkSafePrime1024(b *testing.B) {
	for _, w := range []int{1, 0} {
		name := "workers=all"
		if w == 1 {
			name = "workers=1"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := generateSafePrime(context.Background(), rand.Reader, 1024, w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
