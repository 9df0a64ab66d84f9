package anoncreds

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"sync"
)

// largeEStart is LARGE_E_START of the CL scheme: e = 2^596 + e'.
const largeEStart = 596

var (
	twoPowLargeEStart = new(big.Int).Lsh(big.NewInt(1), largeEStart)
	bigOne            = big.NewInt(1)
)

// ErrInvalidProof is returned when the CL proof does not verify (the
// recomputed challenge differs from c_hash, or a value is not invertible).
var ErrInvalidProof = errors.New("anoncreds: invalid proof")

// subProofTask is one sub-proof, with what the request says it proves.
type subProofTask struct {
	key        *PrimaryPublicKey
	proof      *PrimaryProof
	schemaAttr []string // canonical schema attribute names
	revealed   map[string]*big.Int
	predicates []Predicate
}

// modExp computes base^exp mod n; a negative exponent inverts the base
// first (as the CL code's mod_exp does).
func modExp(base, exp, n *big.Int) (*big.Int, error) {
	b := new(big.Int).Mod(base, n)
	if exp.Sign() < 0 {
		if b.ModInverse(b, n) == nil {
			return nil, ErrInvalidProof
		}
		exp = new(big.Int).Neg(exp)
	}
	return b.Exp(b, exp, n), nil
}

// modInv returns x^-1 mod n.
func modInv(x, n *big.Int) (*big.Int, error) {
	r := new(big.Int).Mod(x, n)
	if r.Sign() == 0 || r.ModInverse(r, n) == nil {
		return nil, ErrInvalidProof
	}
	return r, nil
}

// expProduct computes Π bases[i]^exps[i] mod n.
func expProduct(n *big.Int, pairs ...*big.Int) (*big.Int, error) {
	acc := big.NewInt(1)
	for i := 0; i+1 < len(pairs); i += 2 {
		v, err := modExp(pairs[i], pairs[i+1], n)
		if err != nil {
			return nil, err
		}
		acc.Mul(acc, v).Mod(acc, n)
	}
	return acc, nil
}

// invPow computes (x^c)^-1 mod n.
func invPow(x, c, n *big.Int) (*big.Int, error) {
	v, err := modExp(x, c, n)
	if err != nil {
		return nil, err
	}
	return modInv(v, n)
}

// eqTau is the equality proof's T̂:
// (Z / (A'^(2^596) Π_revealed R_k^m_k))^-c · A'^ê · Π_unrevealed R_k^m̂_k · S^v̂ · Rctxt^m̂2.
func eqTau(t *subProofTask, c *big.Int) (*big.Int, error) {
	k, eq := t.key, &t.proof.EqProof
	n := &k.N.Int
	// Unrevealed: schema attributes and the link secret, minus the revealed ones.
	pairs := []*big.Int{&eq.APrime.Int, &eq.E.Int, &k.S.Int, &eq.V.Int, &k.Rctxt.Int, &eq.M2.Int}
	unrevealed := 0
	for _, a := range append(append([]string{}, t.schemaAttr...), linkSecretName) {
		if _, rev := t.revealed[a]; rev {
			continue
		}
		unrevealed++
		m, ok := eq.M[a]
		if !ok || m == nil {
			return nil, fmt.Errorf("%w: equality proof has no response for an unrevealed attribute", ErrInvalidProof)
		}
		pairs = append(pairs, &k.R[a].Int, &m.Int)
	}
	if len(eq.M) != unrevealed {
		return nil, fmt.Errorf("%w: equality proof responses do not match the unrevealed attributes", ErrInvalidProof)
	}
	t1, err := expProduct(n, pairs...)
	if err != nil {
		return nil, err
	}
	rarPairs := []*big.Int{&eq.APrime.Int, twoPowLargeEStart}
	for a, v := range t.revealed {
		rarPairs = append(rarPairs, &k.R[a].Int, v)
	}
	rar, err := expProduct(n, rarPairs...)
	if err != nil {
		return nil, err
	}
	rarInv, err := modInv(rar, n)
	if err != nil {
		return nil, err
	}
	zr := new(big.Int).Mul(&k.Z.Int, rarInv)
	zr.Mod(zr, n)
	t2, err := invPow(zr, c, n)
	if err != nil {
		return nil, err
	}
	return t1.Mul(t1, t2).Mod(t1, n), nil
}

// geTaus are the six T̂ values of one predicate proof:
// T̂_i = Z^û_i S^r̂_i T_i^-c (i = 0..3),
// T̂_Δ = Z^m̂_j S^(±r̂_Δ) (Z^Δ' T_Δ^(±1))^-c,
// Q̂ = Π T_i^û_i · S^α̂ · T_Δ^-c.
func geTaus(k *PrimaryPublicKey, ge *GeProof, c *big.Int) ([]*big.Int, error) {
	n := &k.N.Int
	less := ge.Predicate.PType == "LE" || ge.Predicate.PType == "LT"
	taus := make([]*big.Int, 0, 6)
	for _, i := range geKeys[:4] {
		v, err := expProduct(n, &k.Z.Int, &ge.U[i].Int, &k.S.Int, &ge.R[i].Int)
		if err != nil {
			return nil, err
		}
		w, err := invPow(&ge.T[i].Int, c, n)
		if err != nil {
			return nil, err
		}
		taus = append(taus, v.Mul(v, w).Mod(v, n))
	}
	rDelta := &ge.R["DELTA"].Int
	tDelta := &ge.T["DELTA"].Int
	deltaPred := new(big.Int).Mod(tDelta, n)
	if less {
		rDelta = new(big.Int).Neg(rDelta)
		var err error
		if deltaPred, err = modInv(tDelta, n); err != nil {
			return nil, err
		}
	}
	v, err := expProduct(n, &k.Z.Int, &ge.Mj.Int, &k.S.Int, rDelta)
	if err != nil {
		return nil, err
	}
	zd, err := modExp(&k.Z.Int, deltaPrime(ge.Predicate), n)
	if err != nil {
		return nil, err
	}
	zd.Mul(zd, deltaPred).Mod(zd, n)
	w, err := invPow(zd, c, n)
	if err != nil {
		return nil, err
	}
	taus = append(taus, v.Mul(v, w).Mod(v, n))

	qPairs := make([]*big.Int, 0, 10)
	for _, i := range geKeys[:4] {
		qPairs = append(qPairs, &ge.T[i].Int, &ge.U[i].Int)
	}
	qPairs = append(qPairs, &k.S.Int, &ge.Alpha.Int)
	q, err := expProduct(n, qPairs...)
	if err != nil {
		return nil, err
	}
	w, err = invPow(tDelta, c, n)
	if err != nil {
		return nil, err
	}
	taus = append(taus, q.Mul(q, w).Mod(q, n))
	return taus, nil
}

// deltaPrime is the predicate's bound as the proof uses it: value for GE
// and LE, value+1 for GT, value-1 for LT.
func deltaPrime(p Predicate) *big.Int {
	v := int64(p.Value)
	switch p.PType {
	case "GT":
		v++
	case "LT":
		v--
	}
	return big.NewInt(v)
}

// verifyChallenge recomputes the aggregated challenge from every sub-proof's
// tau values, c_list and the nonce, and compares it with c_hash. The tau
// values are computed in parallel (one job per equality or predicate proof).
func verifyChallenge(tasks []*subProofTask, agg *AggregatedProof, nonce *big.Int) error {
	c := &agg.CHash.Int
	type job struct {
		taus []*big.Int
		err  error
	}
	var jobs []*job
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallelism())
	run := func(f func() ([]*big.Int, error)) {
		j := &job{}
		jobs = append(jobs, j)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			j.taus, j.err = f()
		}()
	}
	for _, t := range tasks {
		t := t
		run(func() ([]*big.Int, error) {
			v, err := eqTau(t, c)
			return []*big.Int{v}, err
		})
		for i := range t.proof.GeProofs {
			ge := &t.proof.GeProofs[i]
			run(func() ([]*big.Int, error) { return geTaus(t.key, ge, c) })
		}
	}
	wg.Wait()
	h := sha256.New()
	for _, j := range jobs {
		if j.err != nil {
			return j.err
		}
		for _, v := range j.taus {
			h.Write(v.Bytes())
		}
	}
	for _, b := range agg.CList {
		h.Write(b)
	}
	h.Write(nonce.Bytes())
	got := new(big.Int).SetBytes(h.Sum(nil))
	if got.Cmp(c) != 0 {
		return fmt.Errorf("%w: challenge mismatch", ErrInvalidProof)
	}
	return nil
}
