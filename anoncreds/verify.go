package anoncreds

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
)

// Errors of VerifyPresentation, besides ErrMalformed and ErrInvalidProof.
// Every error it returns wraps exactly one of them (test with errors.Is).
var (
	// ErrNonRevocationUnsupported: the request needs a non-revocation proof,
	// or the presentation carries one; revocation is not implemented yet.
	ErrNonRevocationUnsupported = errors.New("anoncreds: non-revocation proofs are not supported yet")
	// ErrReferent: a requested referent is not answered, answered twice,
	// answered by a sub-proof that does not exist, or an answer names no
	// requested referent; or a sub-proof is not used by any referent.
	ErrReferent = errors.New("anoncreds: presentation does not answer the request")
	// ErrEncodingMismatch: a revealed raw value does not encode to the proven value.
	ErrEncodingMismatch = errors.New("anoncreds: revealed raw value does not match its encoding")
	// ErrRestriction: a credential does not meet a referent's restrictions.
	ErrRestriction = errors.New("anoncreds: restriction not met")
	// ErrTimestamp: a sub-proof's timestamp is inconsistent with the request's non_revoked interval.
	ErrTimestamp = errors.New("anoncreds: timestamp does not match non_revoked")
	// ErrUnknownObject: a schema or credential definition named by the
	// presentation is not among those given, or does not fit it.
	ErrUnknownObject = errors.New("anoncreds: schema or credential definition missing or inconsistent")
)

// subProofState gathers what the request's referents say about one sub-proof.
type subProofState struct {
	ident      Identifier
	schema     *Schema
	credDef    *CredentialDefinition
	attrs      map[string]bool // canonical schema attribute names
	attrList   []string
	encoded    map[string]*big.Int // canonical name -> revealed encoded value
	raw        map[string]string   // canonical name -> revealed raw value
	predicates map[Predicate]bool
	used       bool
	intervals  []*NonRevokedInterval // non_revoked of every referent it answers (nil entries: none)
}

type pendingRestriction struct {
	ref   string
	query *Query
	idx   uint32
}

// VerifyPresentation verifies an AnonCreds v1 presentation against the
// request it answers. schemas and credDefs map identifiers (as written in
// the presentation's identifiers) to the objects, which the caller has
// resolved; objects not used are ignored. It returns nil when the
// presentation is valid, or an error wrapping one of ErrMalformed,
// ErrReferent, ErrEncodingMismatch, ErrRestriction, ErrTimestamp,
// ErrUnknownObject, ErrNonRevocationUnsupported or ErrInvalidProof.
//
// It checks, in order: the shape of both objects; that each sub-proof's
// schema and credential definition are given and consistent; that every
// requested referent is answered exactly once, by an existing sub-proof,
// with attributes of that credential's schema, and that every answer and
// every sub-proof is used; encode(raw) == encoded for every revealed value;
// the restrictions; the non_revoked intervals; that the proofs prove
// exactly the revealed values and predicates asked; and finally the CL
// proof with the request's nonce.
func VerifyPresentation(pres *Presentation, req *PresentationRequest, schemas map[string]*Schema, credDefs map[string]*CredentialDefinition) error {
	if pres == nil || req == nil {
		return fmt.Errorf("%w: nil presentation or request", ErrMalformed)
	}
	if err := req.Validate(); err != nil {
		return err
	}
	if err := pres.validateShape(); err != nil {
		return err
	}
	nonce, _ := new(big.Int).SetString(req.Nonce, 10)

	states := make([]*subProofState, len(pres.Identifiers))
	for i, id := range pres.Identifiers {
		st, err := newSubProofState(i, id, schemas, credDefs)
		if err != nil {
			return err
		}
		states[i] = st
	}
	sub := func(ref string, idx uint32) (*subProofState, error) {
		if int(idx) >= len(states) {
			return nil, fmt.Errorf("%w: referent %q points to sub-proof %d of %d", ErrReferent, shortName(ref), idx, len(states))
		}
		return states[idx], nil
	}
	interval := func(own *NonRevokedInterval) *NonRevokedInterval {
		if own != nil {
			return own
		}
		return req.NonRevoked
	}
	rp := &pres.RequestedProof
	var pending []pendingRestriction

	// Attribute referents.
	for _, ref := range sortedKeys(req.RequestedAttributes) {
		info := req.RequestedAttributes[ref]
		rev, isRev := rp.RevealedAttrs[ref]
		grp, isGrp := rp.RevealedAttrGroups[ref]
		unr, isUnr := rp.UnrevealedAttrs[ref]
		_, isSelf := rp.SelfAttestedAttrs[ref]
		n := 0
		for _, b := range []bool{isRev, isGrp, isUnr, isSelf} {
			if b {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%w: attribute referent %q answered %d times", ErrReferent, shortName(ref), n)
		}
		if info.Name == "" && !isGrp {
			return fmt.Errorf("%w: attribute group referent %q not answered by a revealed group", ErrReferent, shortName(ref))
		}
		if info.Name != "" && isGrp {
			return fmt.Errorf("%w: attribute referent %q answered by a group", ErrReferent, shortName(ref))
		}
		var idx uint32
		switch {
		case isSelf:
			if !info.Restrictions.IsEmpty() {
				return fmt.Errorf("%w: referent %q has restrictions but is self-attested", ErrRestriction, shortName(ref))
			}
			continue
		case isRev:
			idx = rev.SubProofIndex
			st, err := sub(ref, idx)
			if err != nil {
				return err
			}
			if err := st.reveal(ref, info.Name, rev.Raw, rev.Encoded); err != nil {
				return err
			}
		case isUnr:
			idx = unr.SubProofIndex
			st, err := sub(ref, idx)
			if err != nil {
				return err
			}
			if !st.attrs[CanonicalAttrName(info.Name)] {
				return fmt.Errorf("%w: referent %q: attribute not in the credential's schema", ErrReferent, shortName(ref))
			}
		case isGrp:
			idx = grp.SubProofIndex
			st, err := sub(ref, idx)
			if err != nil {
				return err
			}
			if len(grp.Values) != len(info.Names) {
				return fmt.Errorf("%w: referent %q: group has %d values for %d names", ErrReferent, shortName(ref), len(grp.Values), len(info.Names))
			}
			for _, name := range info.Names {
				v, ok := grp.Values[name]
				if !ok {
					return fmt.Errorf("%w: referent %q: group lacks %q", ErrReferent, shortName(ref), shortName(name))
				}
				if err := st.reveal(ref, name, v.Raw, v.Encoded); err != nil {
					return err
				}
			}
		}
		st := states[idx]
		st.used = true
		st.intervals = append(st.intervals, interval(info.NonRevoked))
		pending = append(pending, pendingRestriction{ref, info.Restrictions, idx})
	}
	// Predicate referents.
	for _, ref := range sortedKeys(req.RequestedPredicates) {
		info := req.RequestedPredicates[ref]
		ans, ok := rp.Predicates[ref]
		if !ok {
			return fmt.Errorf("%w: predicate referent %q not answered", ErrReferent, shortName(ref))
		}
		st, err := sub(ref, ans.SubProofIndex)
		if err != nil {
			return err
		}
		name := CanonicalAttrName(info.Name)
		if !st.attrs[name] {
			return fmt.Errorf("%w: referent %q: attribute not in the credential's schema", ErrReferent, shortName(ref))
		}
		st.predicates[Predicate{AttrName: name, PType: predicateTypes[info.PType], Value: info.PValue}] = true
		st.used = true
		st.intervals = append(st.intervals, interval(info.NonRevoked))
		pending = append(pending, pendingRestriction{ref, info.Restrictions, ans.SubProofIndex})
	}
	// No answer without a question.
	for _, m := range []map[string]bool{
		keySet(rp.RevealedAttrs), keySet(rp.RevealedAttrGroups), keySet(rp.UnrevealedAttrs), keySet(rp.SelfAttestedAttrs),
	} {
		for ref := range m {
			if _, ok := req.RequestedAttributes[ref]; !ok {
				return fmt.Errorf("%w: answer %q names no requested attribute", ErrReferent, shortName(ref))
			}
		}
	}
	for ref := range rp.Predicates {
		if _, ok := req.RequestedPredicates[ref]; !ok {
			return fmt.Errorf("%w: answer %q names no requested predicate", ErrReferent, shortName(ref))
		}
	}
	for i, st := range states {
		if !st.used {
			return fmt.Errorf("%w: sub-proof %d answers no referent", ErrReferent, i)
		}
	}
	// Restrictions, now that every revealed value is known.
	for _, p := range pending {
		if p.query.IsEmpty() {
			continue
		}
		if !p.query.satisfiedBy(states[p.idx].facts()) {
			return fmt.Errorf("%w: referent %q", ErrRestriction, shortName(p.ref))
		}
	}
	// Revocation.
	for i, st := range states {
		if err := st.checkRevocation(i, &pres.Proof.Proofs[i]); err != nil {
			return err
		}
	}
	// All credentials must be bound to one link secret: the responses for
	// master_secret are the same in every sub-proof (anoncreds-rs's common
	// attribute).
	var linkResp *big.Int
	for i := range states {
		m := pres.Proof.Proofs[i].PrimaryProof.EqProof.M[linkSecretName]
		if m == nil {
			return fmt.Errorf("%w: sub-proof %d has no link secret response", ErrInvalidProof, i)
		}
		if linkResp == nil {
			linkResp = &m.Int
		} else if linkResp.Cmp(&m.Int) != 0 {
			return fmt.Errorf("%w: sub-proofs use different link secrets", ErrInvalidProof)
		}
	}
	// The proofs must prove exactly what is asked.
	tasks := make([]*subProofTask, len(states))
	for i, st := range states {
		t, err := st.task(i, &pres.Proof.Proofs[i].PrimaryProof)
		if err != nil {
			return err
		}
		tasks[i] = t
	}
	return verifyChallenge(tasks, &pres.Proof.AggregatedProof, nonce)
}

func newSubProofState(i int, id Identifier, schemas map[string]*Schema, credDefs map[string]*CredentialDefinition) (*subProofState, error) {
	schema := schemas[id.SchemaID]
	if schema == nil {
		return nil, fmt.Errorf("%w: sub-proof %d: schema %q not given", ErrUnknownObject, i, shortName(id.SchemaID))
	}
	cd := credDefs[id.CredDefID]
	if cd == nil {
		return nil, fmt.Errorf("%w: sub-proof %d: credential definition %q not given", ErrUnknownObject, i, shortName(id.CredDefID))
	}
	if err := schema.Validate(); err != nil {
		return nil, err
	}
	if err := cd.Validate(); err != nil {
		return nil, err
	}
	if cd.SchemaID != id.SchemaID && !isDigits(cd.SchemaID) {
		return nil, fmt.Errorf("%w: sub-proof %d: credential definition is for another schema", ErrUnknownObject, i)
	}
	st := &subProofState{
		ident: id, schema: schema, credDef: cd,
		attrs:      make(map[string]bool, len(schema.AttrNames)),
		encoded:    map[string]*big.Int{},
		raw:        map[string]string{},
		predicates: map[Predicate]bool{},
	}
	for _, a := range schema.AttrNames {
		c := CanonicalAttrName(a)
		st.attrs[c] = true
		st.attrList = append(st.attrList, c)
		if cd.Value.Primary.R[c] == nil {
			return nil, fmt.Errorf("%w: sub-proof %d: credential definition has no key for a schema attribute", ErrUnknownObject, i)
		}
	}
	if len(cd.Value.Primary.R) != len(st.attrs)+1 {
		return nil, fmt.Errorf("%w: sub-proof %d: credential definition keys do not match the schema", ErrUnknownObject, i)
	}
	sort.Strings(st.attrList)
	return st, nil
}

// reveal records a revealed value after checking its encoding.
func (st *subProofState) reveal(ref, name, raw, encoded string) error {
	c := CanonicalAttrName(name)
	if !st.attrs[c] {
		return fmt.Errorf("%w: referent %q: attribute not in the credential's schema", ErrReferent, shortName(ref))
	}
	enc, err := parseDecimal(encoded)
	if err != nil {
		return fmt.Errorf("%w: referent %q: encoded value is not a decimal number", ErrMalformed, shortName(ref))
	}
	if !encodedMatches(raw, enc) {
		return fmt.Errorf("%w: referent %q, attribute %q", ErrEncodingMismatch, shortName(ref), shortName(name))
	}
	if prev, ok := st.encoded[c]; ok {
		if prev.Cmp(enc) != 0 || st.raw[c] != raw {
			return fmt.Errorf("%w: attribute %q revealed twice with different values", ErrReferent, shortName(name))
		}
	}
	st.encoded[c] = enc
	st.raw[c] = raw
	return nil
}

func (st *subProofState) facts() *credentialFacts {
	f := &credentialFacts{
		schemaID:       st.ident.SchemaID,
		schemaIssuerID: st.schema.IssuerID,
		schemaName:     st.schema.Name,
		schemaVersion:  st.schema.Version,
		issuerID:       st.credDef.IssuerID,
		credDefID:      st.ident.CredDefID,
		attrs:          st.attrs,
		revealed:       st.raw,
	}
	if st.ident.RevRegID != nil {
		f.revRegID = *st.ident.RevRegID
	}
	if l, ok := ParseLegacyIdentifier(st.ident.SchemaID); ok && l.Kind == "schema" {
		if f.schemaIssuerID == "" {
			f.schemaIssuerID = l.IssuerDID
		}
		if f.schemaName == "" {
			f.schemaName = l.Name
		}
		if f.schemaVersion == "" {
			f.schemaVersion = l.Version
		}
	}
	if l, ok := ParseLegacyIdentifier(st.ident.CredDefID); ok && l.Kind == "cred_def" && f.issuerID == "" {
		f.issuerID = l.IssuerDID
	}
	return f
}

// checkRevocation refuses what needs a non-revocation proof, after
// checking timestamps against the intervals asked.
func (st *subProofState) checkRevocation(i int, sp *SubProof) error {
	asked := false
	for _, iv := range st.intervals {
		if iv != nil {
			asked = true
		}
	}
	if ts := st.ident.Timestamp; ts != nil {
		if !asked {
			return fmt.Errorf("%w: sub-proof %d has a timestamp but no referent asks non_revoked", ErrTimestamp, i)
		}
		for _, iv := range st.intervals {
			if iv == nil {
				continue
			}
			if (iv.To != nil && *ts > *iv.To) || (iv.From != nil && *ts < *iv.From) {
				return fmt.Errorf("%w: sub-proof %d timestamp outside the interval", ErrTimestamp, i)
			}
		}
	}
	// A rev_reg_id alone is normal: anoncreds-rs names the registry of every
	// revocable credential, even when no non-revocation proof is asked.
	if st.ident.Timestamp != nil || sp.hasNonRevocProof() {
		return fmt.Errorf("%w: sub-proof %d carries a non-revocation proof or timestamp", ErrNonRevocationUnsupported, i)
	}
	if asked && st.credDef.Value.SupportsRevocation() {
		return fmt.Errorf("%w: the request asks non_revoked of a revocable credential (sub-proof %d)", ErrNonRevocationUnsupported, i)
	}
	return nil
}

// task checks that the primary proof proves exactly the revealed values and
// predicates asked, and prepares its verification.
func (st *subProofState) task(i int, pp *PrimaryProof) (*subProofTask, error) {
	eq := &pp.EqProof
	if len(eq.RevealedAttrs) != len(st.encoded) {
		return nil, fmt.Errorf("%w: sub-proof %d reveals other attributes than asked", ErrInvalidProof, i)
	}
	for a, v := range st.encoded {
		got := eq.RevealedAttrs[a]
		if got == nil || got.Cmp(v) != 0 {
			return nil, fmt.Errorf("%w: sub-proof %d: revealed value differs from the requested proof's", ErrInvalidProof, i)
		}
	}
	if len(pp.GeProofs) != len(st.predicates) {
		return nil, fmt.Errorf("%w: sub-proof %d proves %d predicates, %d asked", ErrInvalidProof, i, len(pp.GeProofs), len(st.predicates))
	}
	seen := map[Predicate]bool{}
	for _, ge := range pp.GeProofs {
		p := ge.Predicate
		if !st.predicates[p] || seen[p] {
			return nil, fmt.Errorf("%w: sub-proof %d proves a predicate not asked", ErrInvalidProof, i)
		}
		seen[p] = true
		m := eq.M[p.AttrName]
		if m == nil || m.Cmp(&ge.Mj.Int) != 0 {
			return nil, fmt.Errorf("%w: sub-proof %d: predicate response differs from the equality proof's", ErrInvalidProof, i)
		}
	}
	return &subProofTask{
		key:        &st.credDef.Value.Primary,
		proof:      pp,
		schemaAttr: st.attrList,
		revealed:   st.encoded,
	}, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func keySet[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}
