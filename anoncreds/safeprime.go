package anoncreds

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"math/big"
	"sync"
)

// Safe-prime generation for the issuer's key: p = 2p'+1 with p and p'
// prime. Several goroutines (one per core) search from independent random
// starting points; the first safe prime found wins and stops the others.
//
// Each goroutine draws a random odd p' of bits-1 bits with its two top bits
// set (so that p has exactly bits bits and the product of two such primes
// has exactly 2·bits bits), and sieves a window of candidates p' + 6i
// (p' ≡ 5 mod 6, the only class where neither p' nor 2p'+1 is a multiple of
// 2 or 3) by the odd primes below sieveLimit: a candidate is dropped when
// p' ≡ 0 or p' ≡ (r-1)/2 mod r (then r divides p'). The survivors are
// tested with a base-2 Fermat test on p', then on p, and the rare pair that
// passes both is confirmed with math/big's ProbablyPrime(20) (20
// Miller–Rabin rounds and a Baillie–PSW test) on both.
//
// Not constant time: the tests use math/big, whose exponentiation time
// depends on the candidate. Candidates that fail reveal nothing about the
// key; the one that passes is tested a fixed number of times.

const (
	sieveLimit  = 1 << 16
	sieveWindow = 1 << 14
)

var (
	smallPrimesOnce sync.Once
	smallPrimes     []uint32 // odd primes 5..sieveLimit
)

func sievePrimes() []uint32 {
	smallPrimesOnce.Do(func() {
		composite := make([]bool, sieveLimit)
		for i := 2; i < sieveLimit; i++ {
			if composite[i] {
				continue
			}
			if i > 3 {
				smallPrimes = append(smallPrimes, uint32(i))
			}
			for j := i * i; j < sieveLimit; j += i {
				composite[j] = true
			}
		}
	})
	return smallPrimes
}

// errNoSafePrime is returned when the search is cancelled.
var errNoSafePrime = errors.New("anoncreds: safe prime search cancelled")

// generateSafePrime returns a safe prime p of exactly bits bits (its two top
// bits set), searching on workers goroutines (GOMAXPROCS when workers <= 0).
func generateSafePrime(ctx context.Context, random io.Reader, bits, workers int) (*big.Int, error) {
	if bits < 16 {
		return nil, errors.New("anoncreds: safe prime too small")
	}
	if workers <= 0 {
		workers = parallelism()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	found := make(chan *big.Int, workers)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	var randMu sync.Mutex // the reader need not be safe for concurrent use
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := searchSafePrime(ctx, random, &randMu, bits)
			if err != nil {
				errs <- err
				return
			}
			found <- p
		}()
	}
	go func() { wg.Wait(); close(found) }()
	p, ok := <-found
	cancel()
	if ok {
		return p, nil
	}
	select {
	case err := <-errs:
		if ctx.Err() != nil && errors.Is(err, errNoSafePrime) {
			return nil, errors.Join(errNoSafePrime, context.Cause(ctx))
		}
		return nil, err
	default:
		return nil, errNoSafePrime
	}
}

// searchSafePrime is one worker of generateSafePrime.
func searchSafePrime(ctx context.Context, random io.Reader, randMu *sync.Mutex, bits int) (*big.Int, error) {
	primes := sievePrimes()
	var inv6 = make([]uint32, len(primes))
	for i, r := range primes {
		inv6[i] = uint32(new(big.Int).ModInverse(big.NewInt(6), big.NewInt(int64(r))).Uint64())
	}
	pbits := bits - 1 // bits of p'
	buf := make([]byte, (pbits+7)/8)
	bad := make([]bool, sieveWindow)
	two := big.NewInt(2)
	rem := new(big.Int)
	for {
		if ctx.Err() != nil {
			return nil, errNoSafePrime
		}
		randMu.Lock()
		_, err := io.ReadFull(random, buf)
		randMu.Unlock()
		if err != nil {
			return nil, err
		}
		base := new(big.Int).SetBytes(buf)
		// Keep pbits bits, set the two top ones.
		base.SetBit(base, pbits-1, 1).SetBit(base, pbits-2, 1)
		for i := pbits; i < len(buf)*8; i++ {
			base.SetBit(base, i, 0)
		}
		// base ≡ 5 mod 6.
		m6 := new(big.Int).Mod(base, big.NewInt(6)).Int64()
		base.Add(base, big.NewInt((5-m6+6)%6))
		for i := range bad {
			bad[i] = false
		}
		for k, r := range primes {
			b := uint64(rem.Mod(base, big.NewInt(int64(r))).Uint64())
			rr := uint64(r)
			// candidate i: base + 6i ≡ t (mod r) <=> i ≡ (t - base)·6^-1.
			for _, t := range [2]uint64{0, (rr - 1) / 2} {
				i0 := ((t + rr - b) % rr) * uint64(inv6[k]) % rr
				for i := i0; i < sieveWindow; i += rr {
					bad[i] = true
				}
			}
		}
		pp := new(big.Int)
		p := new(big.Int)
		for i := 0; i < sieveWindow; i++ {
			if bad[i] {
				continue
			}
			if i%64 == 0 && ctx.Err() != nil {
				return nil, errNoSafePrime
			}
			pp.Add(base, big.NewInt(int64(6*i)))
			if pp.BitLen() != pbits {
				break
			}
			// Fermat base 2 on p', then on p = 2p'+1.
			e := new(big.Int).Sub(pp, bigOne)
			if new(big.Int).Exp(two, e, pp).Cmp(bigOne) != 0 {
				continue
			}
			p.Lsh(pp, 1).Add(p, bigOne)
			e.Lsh(pp, 1)
			if new(big.Int).Exp(two, e, p).Cmp(bigOne) != 0 {
				continue
			}
			if pp.ProbablyPrime(20) && p.ProbablyPrime(20) {
				return p, nil
			}
		}
	}
}

// defaultRandom is the source of key material.
var defaultRandom io.Reader = rand.Reader
