package anoncreds

import (
	"fmt"
	"strings"
)

// SelectCredentials chooses, for every referent of req, the first of creds
// that can answer it: a credential whose schema has the attributes, whose
// values satisfy the predicate, that meets the referent's restrictions
// (attr::NAME::value against the values it would reveal), and that does not
// need a non-revocation proof. Attributes are revealed; an attribute
// referent no credential can answer and that has no restrictions is left
// for the caller to self-attest (the error lists it). Predicates avoid
// credentials that reveal the same attribute. The result feeds
// CreatePresentation.
func SelectCredentials(req *PresentationRequest, creds []*Credential, schemas map[string]*Schema, credDefs map[string]*CredentialDefinition) (PresentationInput, error) {
	if req == nil {
		return PresentationInput{}, fmt.Errorf("%w: nil request", ErrCannotPresent)
	}
	if err := req.Validate(); err != nil {
		return PresentationInput{}, err
	}
	type cand struct {
		st       *subProofState
		sp       *proverSub
		revealed map[string]bool
		attrs    map[string]bool
		preds    []string
	}
	cands := make([]*cand, len(creds))
	for i, c := range creds {
		if c == nil {
			continue
		}
		st, err := newSubProofState(i, Identifier{SchemaID: c.SchemaID, CredDefID: c.CredDefID, RevRegID: c.RevRegID}, schemas, credDefs)
		if err != nil {
			continue // a credential we cannot use
		}
		sp, err := newProverSub(i, c, LinkSecret{v: bigOne}, schemas, credDefs)
		if err != nil {
			continue
		}
		cands[i] = &cand{st: st, sp: sp, revealed: map[string]bool{}, attrs: map[string]bool{}}
	}
	revocable := func(c *cand) bool { return c.st.credDef.Value.SupportsRevocation() }
	interval := func(own *NonRevokedInterval) *NonRevokedInterval {
		if own != nil {
			return own
		}
		return req.NonRevoked
	}
	// facts as if the credential also revealed names.
	factsWith := func(c *cand, names []string) *credentialFacts {
		raw := map[string]string{}
		for a := range c.revealed {
			v, _ := c.sp.cred.value(a)
			raw[a] = v.Raw
		}
		for _, n := range names {
			v, _ := c.sp.cred.value(CanonicalAttrName(n))
			raw[CanonicalAttrName(n)] = v.Raw
		}
		st := *c.st
		st.raw = raw
		return st.facts()
	}
	var missing []string
	for _, ref := range sortedKeys(req.RequestedAttributes) {
		info := req.RequestedAttributes[ref]
		names := info.Names
		if info.Name != "" {
			names = []string{info.Name}
		}
		found := false
		for _, c := range cands {
			if c == nil || (interval(info.NonRevoked) != nil && revocable(c)) {
				continue
			}
			ok := true
			for _, n := range names {
				if !c.st.attrs[CanonicalAttrName(n)] {
					ok = false
				}
			}
			if !ok || (!info.Restrictions.IsEmpty() && !info.Restrictions.satisfiedBy(factsWith(c, names))) {
				continue
			}
			for _, n := range names {
				c.revealed[CanonicalAttrName(n)] = true
			}
			c.attrs[ref] = true
			found = true
			break
		}
		if !found {
			missing = append(missing, ref)
		}
	}
	for _, ref := range sortedKeys(req.RequestedPredicates) {
		info := req.RequestedPredicates[ref]
		name := CanonicalAttrName(info.Name)
		p := Predicate{AttrName: name, PType: predicateTypes[info.PType], Value: info.PValue}
		found := false
		for _, c := range cands {
			if c == nil || !c.st.attrs[name] || c.revealed[name] || (interval(info.NonRevoked) != nil && revocable(c)) {
				continue
			}
			if !predicateHolds(c.sp.values[name], p) {
				continue
			}
			if !info.Restrictions.IsEmpty() && !info.Restrictions.satisfiedBy(factsWith(c, nil)) {
				continue
			}
			c.preds = append(c.preds, ref)
			found = true
			break
		}
		if !found {
			missing = append(missing, ref)
		}
	}
	var in PresentationInput
	for _, c := range cands {
		if c == nil || (len(c.attrs) == 0 && len(c.preds) == 0) {
			continue
		}
		in.Credentials = append(in.Credentials, PresentCredential{Credential: c.sp.cred, Attributes: c.attrs, Predicates: c.preds})
	}
	if len(missing) > 0 {
		return in, fmt.Errorf("%w: no credential answers %s", ErrCannotPresent, shortName(strings.Join(missing, ", ")))
	}
	return in, nil
}
