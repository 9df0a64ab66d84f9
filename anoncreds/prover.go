package anoncreds

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"sort"
)

// ErrCannotPresent is returned by CreatePresentation when the credentials
// given cannot answer the request (a referent unanswered or answered twice,
// an attribute missing, a predicate not satisfied, a restriction not met).
// Its messages name referents and attributes, never values.
var ErrCannotPresent = errors.New("anoncreds: cannot create the presentation")

// PresentCredential is one credential used in a presentation and the
// referents it answers.
type PresentCredential struct {
	// Credential is the processed credential.
	Credential *Credential
	// Attributes maps attribute referents this credential answers to
	// whether the value is revealed (a names referent must be revealed).
	Attributes map[string]bool
	// Predicates are the predicate referents this credential answers.
	Predicates []string
}

// PresentationInput says which credential answers which referent.
type PresentationInput struct {
	// Credentials are the credentials used, one sub-proof each, in this order.
	Credentials []PresentCredential
	// SelfAttested answers attribute referents without restrictions.
	SelfAttested map[string]string
}

type proverSub struct {
	cred     *Credential
	key      *PrimaryPublicKey
	attrs    []string            // canonical schema attribute names, sorted
	values   map[string]*big.Int // canonical name -> encoded value (incl. master_secret)
	revealed map[string]bool
	preds    []Predicate

	// eq init
	aPrime, eTilde, ePrime, vTilde, vPrime, m2Tilde *big.Int
	mTilde                                          map[string]*big.Int
	// predicate inits
	ne []*neInit
}

type neInit struct {
	pred                 Predicate
	u, r, t, uTilde, rTi map[string]*big.Int
	alphaTilde           *big.Int
	taus                 []*big.Int
}

// CreatePresentation creates an AnonCreds v1 presentation (primary proofs
// only) answering req with the credentials and self-attested values of in,
// bound by the holder's link secret. schemas and credDefs map the
// credentials' identifiers to the objects.
//
// The holder refuses, with ErrCannotPresent, a credential that does not
// meet a referent's restrictions, a false predicate, and a predicate on an
// attribute it also reveals; and, with ErrNonRevocationUnsupported, a
// non_revoked request on a revocable credential.
//
// Exponentiations with secret exponents are constant-time (ctexp.go); the
// additions and multiplications of secrets use math/big, which is not.
func CreatePresentation(req *PresentationRequest, in PresentationInput, ls LinkSecret, schemas map[string]*Schema, credDefs map[string]*CredentialDefinition) (*Presentation, error) {
	if req == nil || ls.v == nil {
		return nil, fmt.Errorf("%w: nil request or link secret", ErrCannotPresent)
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if len(in.Credentials) > MaxSubProofs {
		return nil, fmt.Errorf("%w: too many credentials", ErrCannotPresent)
	}
	pres := &Presentation{RequestedProof: RequestedProof{
		RevealedAttrs:      map[string]RevealedAttrInfo{},
		RevealedAttrGroups: map[string]RevealedAttrGroupInfo{},
		SelfAttestedAttrs:  map[string]string{},
		UnrevealedAttrs:    map[string]SubProofReferent{},
		Predicates:         map[string]SubProofReferent{},
	}}
	answered := map[string]bool{}
	answer := func(ref string) error {
		if answered[ref] {
			return fmt.Errorf("%w: referent %q answered twice", ErrCannotPresent, shortName(ref))
		}
		answered[ref] = true
		return nil
	}
	interval := func(own *NonRevokedInterval) *NonRevokedInterval {
		if own != nil {
			return own
		}
		return req.NonRevoked
	}
	for ref, v := range in.SelfAttested {
		info, ok := req.RequestedAttributes[ref]
		if !ok || info.Name == "" {
			return nil, fmt.Errorf("%w: self-attested %q is no single-attribute referent", ErrCannotPresent, shortName(ref))
		}
		if !info.Restrictions.IsEmpty() {
			return nil, fmt.Errorf("%w: referent %q has restrictions and cannot be self-attested", ErrCannotPresent, shortName(ref))
		}
		if err := answer(ref); err != nil {
			return nil, err
		}
		pres.RequestedProof.SelfAttestedAttrs[ref] = v
	}

	subs := make([]*proverSub, len(in.Credentials))
	for i, pc := range in.Credentials {
		sp, err := newProverSub(i, pc.Credential, ls, schemas, credDefs)
		if err != nil {
			return nil, err
		}
		subs[i] = sp
		idx := uint32(i)
		var checks []pendingRestriction
		revocable := sp.key != nil && credDefs[pc.Credential.CredDefID].Value.SupportsRevocation()
		used := false
		for _, ref := range sortedKeys(pc.Attributes) {
			reveal := pc.Attributes[ref]
			info, ok := req.RequestedAttributes[ref]
			if !ok {
				return nil, fmt.Errorf("%w: %q is no requested attribute", ErrCannotPresent, shortName(ref))
			}
			if err := answer(ref); err != nil {
				return nil, err
			}
			if interval(info.NonRevoked) != nil && revocable {
				return nil, fmt.Errorf("%w: referent %q asks non_revoked of a revocable credential", ErrNonRevocationUnsupported, shortName(ref))
			}
			used = true
			checks = append(checks, pendingRestriction{ref, info.Restrictions, idx})
			if info.Name != "" {
				c := CanonicalAttrName(info.Name)
				val, ok := sp.cred.value(c)
				if !ok || !sp.has(c) {
					return nil, fmt.Errorf("%w: referent %q: credential %d has no attribute %q", ErrCannotPresent, shortName(ref), i, shortName(info.Name))
				}
				if reveal {
					sp.revealed[c] = true
					pres.RequestedProof.RevealedAttrs[ref] = RevealedAttrInfo{SubProofIndex: idx, Raw: val.Raw, Encoded: val.Encoded}
				} else {
					pres.RequestedProof.UnrevealedAttrs[ref] = SubProofReferent{SubProofIndex: idx}
				}
				continue
			}
			if !reveal {
				return nil, fmt.Errorf("%w: group referent %q must be revealed", ErrCannotPresent, shortName(ref))
			}
			grp := RevealedAttrGroupInfo{SubProofIndex: idx, Values: map[string]AttributeValue{}}
			for _, name := range info.Names {
				c := CanonicalAttrName(name)
				val, ok := sp.cred.value(c)
				if !ok || !sp.has(c) {
					return nil, fmt.Errorf("%w: referent %q: credential %d has no attribute %q", ErrCannotPresent, shortName(ref), i, shortName(name))
				}
				sp.revealed[c] = true
				grp.Values[name] = val
			}
			pres.RequestedProof.RevealedAttrGroups[ref] = grp
		}
		predSeen := map[Predicate]bool{}
		for _, ref := range pc.Predicates {
			info, ok := req.RequestedPredicates[ref]
			if !ok {
				return nil, fmt.Errorf("%w: %q is no requested predicate", ErrCannotPresent, shortName(ref))
			}
			if err := answer(ref); err != nil {
				return nil, err
			}
			if interval(info.NonRevoked) != nil && revocable {
				return nil, fmt.Errorf("%w: referent %q asks non_revoked of a revocable credential", ErrNonRevocationUnsupported, shortName(ref))
			}
			used = true
			checks = append(checks, pendingRestriction{ref, info.Restrictions, idx})
			c := CanonicalAttrName(info.Name)
			if !sp.has(c) {
				return nil, fmt.Errorf("%w: referent %q: credential %d has no attribute %q", ErrCannotPresent, shortName(ref), i, shortName(info.Name))
			}
			p := Predicate{AttrName: c, PType: predicateTypes[info.PType], Value: info.PValue}
			if !predSeen[p] {
				predSeen[p] = true
				sp.preds = append(sp.preds, p)
			}
			pres.RequestedProof.Predicates[ref] = SubProofReferent{SubProofIndex: idx}
		}
		if !used {
			return nil, fmt.Errorf("%w: credential %d answers no referent", ErrCannotPresent, i)
		}
		for _, p := range sp.preds {
			if sp.revealed[p.AttrName] {
				return nil, fmt.Errorf("%w: attribute %q is both revealed and in a predicate", ErrCannotPresent, shortName(p.AttrName))
			}
		}
		facts := sp.facts(schemas[pc.Credential.SchemaID], credDefs[pc.Credential.CredDefID])
		for _, ch := range checks {
			if !ch.query.IsEmpty() && !ch.query.satisfiedBy(facts) {
				return nil, fmt.Errorf("%w: credential %d does not meet the restrictions of referent %q", ErrCannotPresent, i, shortName(ch.ref))
			}
		}
		sort.Slice(sp.preds, func(a, b int) bool { return predLess(sp.preds[a], sp.preds[b]) })
		pres.Identifiers = append(pres.Identifiers, Identifier{SchemaID: pc.Credential.SchemaID, CredDefID: pc.Credential.CredDefID,
			RevRegID: pc.Credential.RevRegID})
	}
	for ref := range req.RequestedAttributes {
		if !answered[ref] {
			return nil, fmt.Errorf("%w: attribute referent %q not answered", ErrCannotPresent, shortName(ref))
		}
	}
	for ref := range req.RequestedPredicates {
		if !answered[ref] {
			return nil, fmt.Errorf("%w: predicate referent %q not answered", ErrCannotPresent, shortName(ref))
		}
	}

	// Commitments. The link secret's m̃ is common to every sub-proof, so
	// that its responses are equal (the verifier checks it).
	msTilde, err := randBits(largeMVect)
	if err != nil {
		return nil, err
	}
	var taus, cList []*big.Int
	for _, sp := range subs {
		t, err := sp.initEq(msTilde)
		if err != nil {
			return nil, err
		}
		taus = append(taus, t)
		cList = append(cList, sp.aPrime)
		for _, p := range sp.preds {
			ne, err := sp.initNe(p)
			if err != nil {
				return nil, err
			}
			sp.ne = append(sp.ne, ne)
			taus = append(taus, ne.taus...)
			for _, k := range geKeys {
				cList = append(cList, ne.t[k])
			}
		}
	}
	nonce, _ := new(big.Int).SetString(req.Nonce, 10)
	h := sha256.New()
	for _, v := range taus {
		h.Write(v.Bytes())
	}
	for _, v := range cList {
		h.Write(v.Bytes())
	}
	h.Write(nonce.Bytes())
	c := new(big.Int).SetBytes(h.Sum(nil))

	// Responses.
	for _, sp := range subs {
		pres.Proof.Proofs = append(pres.Proof.Proofs, SubProof{PrimaryProof: sp.finalize(c)})
	}
	pres.Proof.AggregatedProof.CHash = &BigInt{Int: *c}
	for _, v := range cList {
		pres.Proof.AggregatedProof.CList = append(pres.Proof.AggregatedProof.CList, v.Bytes())
	}
	return pres, nil
}

func predLess(a, b Predicate) bool {
	if a.AttrName != b.AttrName {
		return a.AttrName < b.AttrName
	}
	if a.PType != b.PType {
		return a.PType < b.PType
	}
	return a.Value < b.Value
}

func newProverSub(i int, cred *Credential, ls LinkSecret, schemas map[string]*Schema, credDefs map[string]*CredentialDefinition) (*proverSub, error) {
	if cred == nil {
		return nil, fmt.Errorf("%w: credential %d is nil", ErrCannotPresent, i)
	}
	st, err := newSubProofState(i, Identifier{SchemaID: cred.SchemaID, CredDefID: cred.CredDefID}, schemas, credDefs)
	if err != nil {
		return nil, err
	}
	sig := cred.Signature.PCredential
	if sig.M2 == nil || sig.A == nil || sig.E == nil || sig.V == nil {
		return nil, fmt.Errorf("%w: credential %d signature incomplete", ErrCannotPresent, i)
	}
	sp := &proverSub{
		cred:     cred,
		key:      &st.credDef.Value.Primary,
		attrs:    st.attrList,
		values:   map[string]*big.Int{linkSecretName: ls.v},
		revealed: map[string]bool{},
	}
	for _, a := range sp.attrs {
		v, ok := cred.value(a)
		if !ok {
			return nil, fmt.Errorf("%w: credential %d has no value for a schema attribute", ErrCannotPresent, i)
		}
		enc, err := parseDecimal(v.Encoded)
		if err != nil {
			return nil, fmt.Errorf("%w: credential %d: malformed encoded value", ErrCannotPresent, i)
		}
		sp.values[a] = enc
	}
	return sp, nil
}

// value finds a credential value by canonical attribute name.
func (c *Credential) value(canonical string) (AttributeValue, bool) {
	if v, ok := c.Values[canonical]; ok {
		return v, true
	}
	for k, v := range c.Values {
		if CanonicalAttrName(k) == canonical {
			return v, true
		}
	}
	return AttributeValue{}, false
}

func (sp *proverSub) has(canonical string) bool {
	_, ok := sp.values[canonical]
	return ok && canonical != linkSecretName
}

func (sp *proverSub) facts(schema *Schema, cd *CredentialDefinition) *credentialFacts {
	st := &subProofState{
		ident:  Identifier{SchemaID: sp.cred.SchemaID, CredDefID: sp.cred.CredDefID, RevRegID: sp.cred.RevRegID},
		schema: schema, credDef: cd, attrs: map[string]bool{}, raw: map[string]string{},
	}
	for _, a := range sp.attrs {
		st.attrs[a] = true
	}
	for a := range sp.revealed {
		v, _ := sp.cred.value(a)
		st.raw[a] = v.Raw
	}
	return st.facts()
}

// unrevealed lists the schema attributes and the link secret not revealed.
func (sp *proverSub) unrevealed() []string {
	var out []string
	for _, a := range append(append([]string{}, sp.attrs...), linkSecretName) {
		if !sp.revealed[a] {
			out = append(out, a)
		}
	}
	return out
}

// initEq randomises the signature and commits: A' = S^r A, and
// T = A'^ẽ Π_unrevealed R_k^m̃_k S^ṽ Rctxt^m̃2.
func (sp *proverSub) initEq(msTilde *big.Int) (*big.Int, error) {
	k := sp.key
	n := &k.N.Int
	sig := &sp.cred.Signature.PCredential
	r, err := randBits(largeVPrime)
	if err != nil {
		return nil, err
	}
	if sp.eTilde, err = randBits(largeETilde); err != nil {
		return nil, err
	}
	if sp.vTilde, err = randBits(largeVTilde); err != nil {
		return nil, err
	}
	if sp.m2Tilde, err = randBits(largeM2Tilde); err != nil {
		return nil, err
	}
	sp.mTilde = map[string]*big.Int{}
	for _, a := range sp.unrevealed() {
		if a == linkSecretName {
			sp.mTilde[a] = msTilde
			continue
		}
		if sp.mTilde[a], err = randBits(largeMVect); err != nil {
			return nil, err
		}
	}
	sr, err := modExpSecret(&k.S.Int, r, n)
	if err != nil {
		return nil, err
	}
	sp.aPrime = sr.Mul(sr, &sig.A.Int).Mod(sr, n)
	sp.ePrime = new(big.Int).Sub(&sig.E.Int, twoPowLargeEStart)
	sp.vPrime = new(big.Int).Sub(&sig.V.Int, new(big.Int).Mul(&sig.E.Int, r))
	pairs := []*big.Int{sp.aPrime, sp.eTilde, &k.S.Int, sp.vTilde, &k.Rctxt.Int, sp.m2Tilde}
	for _, a := range sp.unrevealed() {
		pairs = append(pairs, &k.R[a].Int, sp.mTilde[a])
	}
	return expProductSecret(n, pairs...)
}

// initNe commits to the four squares of the predicate's Δ and to Δ.
func (sp *proverSub) initNe(p Predicate) (*neInit, error) {
	k := sp.key
	n := &k.N.Int
	val := sp.values[p.AttrName]
	if !val.IsInt64() || val.Int64() > 1<<31-1 || val.Int64() < -(1<<31) {
		return nil, fmt.Errorf("%w: attribute %q is not a 32-bit integer", ErrCannotPresent, shortName(p.AttrName))
	}
	delta := predicateDelta(val.Int64(), p)
	if delta < 0 {
		return nil, fmt.Errorf("%w: predicate on %q not satisfied", ErrCannotPresent, shortName(p.AttrName))
	}
	sq := fourSquares(uint64(delta))
	ne := &neInit{pred: p, u: map[string]*big.Int{}, r: map[string]*big.Int{}, t: map[string]*big.Int{},
		uTilde: map[string]*big.Int{}, rTi: map[string]*big.Int{}}
	var err error
	for i, key := range geKeys {
		if i < 4 {
			ne.u[key] = new(big.Int).SetUint64(sq[i])
		}
		if ne.r[key], err = randBits(largeVPrime); err != nil {
			return nil, err
		}
		if ne.rTi[key], err = randBits(largeRTilde); err != nil {
			return nil, err
		}
		if i < 4 {
			if ne.uTilde[key], err = randBits(largeUTilde); err != nil {
				return nil, err
			}
		}
	}
	if ne.alphaTilde, err = randBits(largeAlphaTilde); err != nil {
		return nil, err
	}
	for i, key := range geKeys {
		exp := big.NewInt(delta)
		if i < 4 {
			exp = ne.u[key]
		}
		if ne.t[key], err = expProductSecret(n, &k.Z.Int, exp, &k.S.Int, ne.r[key]); err != nil {
			return nil, err
		}
	}
	for _, key := range geKeys[:4] {
		tau, err := expProductSecret(n, &k.Z.Int, ne.uTilde[key], &k.S.Int, ne.rTi[key])
		if err != nil {
			return nil, err
		}
		ne.taus = append(ne.taus, tau)
	}
	rd := ne.rTi["DELTA"]
	if p.PType == "LE" || p.PType == "LT" {
		rd = new(big.Int).Neg(rd)
	}
	tau, err := expProductSecret(n, &k.Z.Int, sp.mTilde[p.AttrName], &k.S.Int, rd)
	if err != nil {
		return nil, err
	}
	ne.taus = append(ne.taus, tau)
	qPairs := []*big.Int{&k.S.Int, ne.alphaTilde}
	for _, key := range geKeys[:4] {
		qPairs = append(qPairs, ne.t[key], ne.uTilde[key])
	}
	q, err := expProductSecret(n, qPairs...)
	if err != nil {
		return nil, err
	}
	ne.taus = append(ne.taus, q)
	return ne, nil
}

// finalize computes the responses for challenge c.
func (sp *proverSub) finalize(c *big.Int) PrimaryProof {
	resp := func(secret, tilde *big.Int) *BigInt {
		v := new(big.Int).Mul(c, secret)
		return &BigInt{Int: *v.Add(v, tilde)}
	}
	sig := &sp.cred.Signature.PCredential
	eq := EqProof{
		RevealedAttrs: map[string]*BigInt{},
		APrime:        &BigInt{Int: *new(big.Int).Set(sp.aPrime)},
		E:             resp(sp.ePrime, sp.eTilde),
		V:             resp(sp.vPrime, sp.vTilde),
		M:             map[string]*BigInt{},
		M2:            resp(&sig.M2.Int, sp.m2Tilde),
	}
	for a := range sp.revealed {
		eq.RevealedAttrs[a] = &BigInt{Int: *new(big.Int).Set(sp.values[a])}
	}
	for _, a := range sp.unrevealed() {
		eq.M[a] = resp(sp.values[a], sp.mTilde[a])
	}
	pp := PrimaryProof{EqProof: eq, GeProofs: []GeProof{}}
	for _, ne := range sp.ne {
		ge := GeProof{U: map[string]*BigInt{}, R: map[string]*BigInt{}, T: map[string]*BigInt{},
			Mj: &BigInt{Int: *new(big.Int).Set(&eq.M[ne.pred.AttrName].Int)}, Predicate: ne.pred}
		urSum := new(big.Int)
		for _, key := range geKeys[:4] {
			ge.U[key] = resp(ne.u[key], ne.uTilde[key])
			ge.R[key] = resp(ne.r[key], ne.rTi[key])
			urSum.Add(urSum, new(big.Int).Mul(ne.u[key], ne.r[key]))
		}
		ge.R["DELTA"] = resp(ne.r["DELTA"], ne.rTi["DELTA"])
		ge.Alpha = resp(new(big.Int).Sub(ne.r["DELTA"], urSum), ne.alphaTilde)
		for _, key := range geKeys {
			ge.T[key] = &BigInt{Int: *new(big.Int).Set(ne.t[key])}
		}
		pp.GeProofs = append(pp.GeProofs, ge)
	}
	return pp
}

// fourSquares writes n as a sum of four squares (Lagrange): greedy on the
// largest square, then a search for three and two squares. n < 2^33.
func fourSquares(n uint64) [4]uint64 {
	for a := isqrt(n); ; a-- {
		r := n - a*a
		for b := isqrt(r); ; b-- {
			r2 := r - b*b
			for c := isqrt(r2); c*c*2 >= r2; c-- {
				d2 := r2 - c*c
				if d := isqrt(d2); d*d == d2 {
					return [4]uint64{a, b, c, d}
				}
				if c == 0 {
					break
				}
			}
			if b == 0 {
				break
			}
		}
		if a == 0 {
			break
		}
	}
	return [4]uint64{} // unreachable for n >= 0 (every n is a sum of four squares)
}

func isqrt(n uint64) uint64 {
	return new(big.Int).Sqrt(new(big.Int).SetUint64(n)).Uint64()
}

// predicateDelta is Δ of the CL predicate proof (non-negative iff the
// predicate holds): value - bound for GE, minus one more for GT, and
// bound - value for LE, minus one more for LT.
func predicateDelta(v int64, p Predicate) int64 {
	bound := int64(p.Value)
	switch p.PType {
	case "GE":
		return v - bound
	case "GT":
		return v - bound - 1
	case "LE":
		return bound - v
	case "LT":
		return bound - v - 1
	}
	return -1
}

// predicateHolds tells whether an encoded value satisfies the predicate.
func predicateHolds(encoded *big.Int, p Predicate) bool {
	if encoded == nil || !encoded.IsInt64() || encoded.Int64() > 1<<31-1 || encoded.Int64() < -(1<<31) {
		return false
	}
	return predicateDelta(encoded.Int64(), p) >= 0
}
