package presentproof

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strings"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
)

// The AnonCreds path (sudo-graphql.md section 6): the API's attribute
// groups map one to one onto an AnonCreds presentation request's
// referents; a group whose restrictions carry a predicate is a requested
// predicate on its one attribute, any other group a requested attribute
// (name, or names from one credential).

// Defaults of the request's free-form members.
const (
	defaultRequestName    = "Proof request"
	defaultRequestVersion = "1.0"
)

var operatorPType = map[aip.PredicateOperator]string{
	aip.GreaterThanOrEqual: ">=", aip.GreaterThan: ">", aip.LessThanOrEqual: "<=", aip.LessThan: "<",
}

// newNonce is an 80-bit random decimal.
func newNonce() string {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 80))
	if err != nil {
		panic(err)
	}
	return n.String()
}

// ToAnoncredsRequest maps the API's AnonCreds proof request onto an
// AnonCreds presentation request, filling in a name, a version and an
// 80-bit nonce when they are empty. Errors are *agent.Error with CodeMsg
// and name the group at fault.
func ToAnoncredsRequest(in *aip.AnoncredsProofRequest) (*anoncreds.PresentationRequest, error) {
	if in == nil || len(in.AttributeGroups) == 0 {
		return nil, agent.Errorf(agent.CodeMsg, "an AnonCreds proof request needs at least one attribute group")
	}
	out := &anoncreds.PresentationRequest{
		Name: in.Name, Version: in.Version, Nonce: in.Nonce,
		RequestedAttributes: map[string]anoncreds.AttributeInfo{},
		RequestedPredicates: map[string]anoncreds.PredicateInfo{},
	}
	if out.Name == "" {
		out.Name = defaultRequestName
	}
	if out.Version == "" {
		out.Version = defaultRequestVersion
	}
	if out.Nonce == "" {
		out.Nonce = newNonce()
	}
	seen := map[string]bool{}
	for i, g := range in.AttributeGroups {
		where := fmt.Sprintf("attribute group %d (%q)", i, clip(g.Referent))
		if g.Referent == "" {
			return nil, agent.Errorf(agent.CodeMsg, "attribute group %d has no referent", i)
		}
		if seen[g.Referent] {
			return nil, agent.Errorf(agent.CodeMsg, "referent %q is used by two attribute groups", clip(g.Referent))
		}
		seen[g.Referent] = true
		if len(g.AttributeNames) == 0 {
			return nil, agent.Errorf(agent.CodeMsg, "%s has no attribute names", where)
		}
		for _, n := range g.AttributeNames {
			if strings.TrimSpace(n) == "" {
				return nil, agent.Errorf(agent.CodeMsg, "%s has an empty attribute name", where)
			}
		}
		var pred *aip.Predicate
		var nonRevoked *aip.NonRevokedInterval
		for j, r := range g.Restrictions {
			if j == 0 {
				pred, nonRevoked = r.Predicate, r.NonRevoked
				continue
			}
			if !reflect.DeepEqual(r.Predicate, pred) {
				return nil, agent.Errorf(agent.CodeMsg, "%s: all its restrictions must carry the same predicate (it is one per group in AnonCreds)", where)
			}
			if !reflect.DeepEqual(r.NonRevoked, nonRevoked) {
				return nil, agent.Errorf(agent.CodeMsg, "%s: all its restrictions must carry the same nonRevoked interval (it is one per group in AnonCreds)", where)
			}
		}
		nr, err := toInterval(nonRevoked, where)
		if err != nil {
			return nil, err
		}
		query, err := toQuery(g.Restrictions, where)
		if err != nil {
			return nil, err
		}
		if pred != nil {
			if len(g.AttributeNames) != 1 {
				return nil, agent.Errorf(agent.CodeMsg, "%s: a predicate group needs exactly one attribute name, it has %d", where, len(g.AttributeNames))
			}
			pt, ok := operatorPType[pred.Operator]
			if !ok {
				return nil, agent.Errorf(agent.CodeMsg, "%s: unknown predicate operator %q", where, clip(string(pred.Operator)))
			}
			if pred.Threshold < math.MinInt32 || pred.Threshold > math.MaxInt32 {
				return nil, agent.Errorf(agent.CodeMsg, "%s: predicate threshold must fit in 32 bits", where)
			}
			out.RequestedPredicates[g.Referent] = anoncreds.PredicateInfo{Name: g.AttributeNames[0], PType: pt,
				PValue: int32(pred.Threshold), Restrictions: query, NonRevoked: nr}
			continue
		}
		a := anoncreds.AttributeInfo{Restrictions: query, NonRevoked: nr}
		if len(g.AttributeNames) == 1 {
			a.Name = g.AttributeNames[0]
		} else {
			a.Names = g.AttributeNames
		}
		out.RequestedAttributes[g.Referent] = a
	}
	if err := out.Validate(); err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, "invalid AnonCreds proof request: "+trimLib(err))
	}
	return out, nil
}

func toInterval(n *aip.NonRevokedInterval, where string) (*anoncreds.NonRevokedInterval, error) {
	if n == nil {
		return nil, nil
	}
	out := &anoncreds.NonRevokedInterval{}
	for _, p := range []struct {
		in  *int64
		out **uint64
	}{{n.From, &out.From}, {n.To, &out.To}} {
		if p.in == nil {
			continue
		}
		if *p.in < 0 {
			return nil, agent.Errorf(agent.CodeMsg, "%s: nonRevoked times are Unix seconds, not negative", where)
		}
		v := uint64(*p.in)
		*p.out = &v
	}
	return out, nil
}

// isLegacyIndy tells an unqualified Indy identifier (a base58 DID or an
// object id made of one) from a DID-qualified one.
func isLegacyIndy(id string) bool { return !strings.HasPrefix(id, "did:") }

// toQuery maps a group's restrictions (alternatives) onto WQL: an array of
// one object per restriction. A restriction without any filter lets any
// credential through, so the group then has no restriction at all.
func toQuery(rs []aip.AnoncredsRestriction, where string) (*anoncreds.Query, error) {
	var alts []map[string]string
	for _, r := range rs {
		m := map[string]string{}
		set := func(tag, v string) {
			if v != "" {
				m[tag] = v
			}
		}
		set("schema_id", r.SchemaID)
		if isLegacyIndy(r.SchemaIssuerID) {
			set("schema_issuer_did", r.SchemaIssuerID)
		} else {
			set("schema_issuer_id", r.SchemaIssuerID)
		}
		set("schema_name", r.SchemaName)
		set("schema_version", r.SchemaVersion)
		set("cred_def_id", r.CredDefID)
		if isLegacyIndy(r.IssuerID) {
			set("issuer_did", r.IssuerID)
		} else {
			set("issuer_id", r.IssuerID)
		}
		for _, a := range r.AttributeNames {
			if strings.TrimSpace(a) == "" {
				return nil, agent.Errorf(agent.CodeMsg, "%s: a restriction names an empty attribute", where)
			}
			m["attr::"+a+"::marker"] = "1"
		}
		for _, a := range r.AttributeValues {
			if strings.TrimSpace(a.Name) == "" {
				return nil, agent.Errorf(agent.CodeMsg, "%s: a restriction's attribute value has no name", where)
			}
			m["attr::"+a.Name+"::value"] = a.Value
		}
		if len(m) == 0 {
			return nil, nil
		}
		alts = append(alts, m)
	}
	if len(alts) == 0 {
		return nil, nil
	}
	b, _ := json.Marshal(alts)
	var q anoncreds.Query
	if err := json.Unmarshal(b, &q); err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, where+": invalid restriction")
	}
	return &q, nil
}

// AnoncredsRequestJSON writes a presentation request as it goes on the
// wire: restrictions in the plain WQL form agents expect (an array of
// objects of tag equalities) wherever the query has that shape, rather
// than the $or/$and form the query model writes.
func AnoncredsRequestJSON(r *anoncreds.PresentationRequest) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	for _, k := range []string{"requested_attributes", "requested_predicates"} {
		refs, _ := doc[k].(map[string]any)
		for _, v := range refs {
			if info, ok := v.(map[string]any); ok && info["restrictions"] != nil {
				info["restrictions"] = flattenWQL(info["restrictions"])
			}
		}
	}
	return json.Marshal(doc)
}

// flattenWQL rewrites {"$or": [...]} as an array and {"$and": [{a}, {b}]}
// of distinct plain tags as one object.
func flattenWQL(v any) any {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return v
	}
	if or, ok := m["$or"].([]any); ok {
		out := make([]any, len(or))
		for i, e := range or {
			out[i] = flattenWQL(e)
		}
		return out
	}
	and, ok := m["$and"].([]any)
	if !ok {
		return v
	}
	flat := map[string]any{}
	for _, e := range and {
		em, ok := e.(map[string]any)
		if !ok || len(em) != 1 {
			return v
		}
		for k, x := range em {
			if _, dup := flat[k]; dup || strings.HasPrefix(k, "$") {
				return v
			}
			if _, isString := x.(string); !isString {
				return v
			}
			flat[k] = x
		}
	}
	return flat
}

// FromAnoncredsRequest maps an AnonCreds presentation request (received)
// onto the API's shape, as far as that shape goes: restrictions other than
// alternatives of tag equalities are left out (the request itself is kept
// on the exchange and is what the presentation answers).
func FromAnoncredsRequest(r *anoncreds.PresentationRequest) *aip.AnoncredsProofRequest {
	out := &aip.AnoncredsProofRequest{Name: r.Name, Version: r.Version, Nonce: r.Nonce}
	interval := func(own *anoncreds.NonRevokedInterval) *aip.NonRevokedInterval {
		if own == nil {
			own = r.NonRevoked
		}
		if own == nil {
			return nil
		}
		n := &aip.NonRevokedInterval{}
		if own.From != nil && *own.From <= math.MaxInt64 {
			v := int64(*own.From)
			n.From = &v
		}
		if own.To != nil && *own.To <= math.MaxInt64 {
			v := int64(*own.To)
			n.To = &v
		}
		return n
	}
	group := func(ref string, names []string, q *anoncreds.Query, nr *aip.NonRevokedInterval, p *aip.Predicate) aip.AnoncredsAttributeGroup {
		g := aip.AnoncredsAttributeGroup{Referent: ref, AttributeNames: names, Restrictions: fromQuery(q)}
		if (nr != nil || p != nil) && len(g.Restrictions) == 0 {
			g.Restrictions = []aip.AnoncredsRestriction{{}}
		}
		for i := range g.Restrictions {
			g.Restrictions[i].NonRevoked, g.Restrictions[i].Predicate = nr, p
		}
		return g
	}
	for _, ref := range slices.Sorted(maps.Keys(r.RequestedAttributes)) {
		a := r.RequestedAttributes[ref]
		names := a.Names
		if a.Name != "" {
			names = []string{a.Name}
		}
		out.AttributeGroups = append(out.AttributeGroups, group(ref, names, a.Restrictions, interval(a.NonRevoked), nil))
	}
	for _, ref := range slices.Sorted(maps.Keys(r.RequestedPredicates)) {
		p := r.RequestedPredicates[ref]
		var op aip.PredicateOperator
		for k, v := range operatorPType {
			if v == p.PType {
				op = k
			}
		}
		out.AttributeGroups = append(out.AttributeGroups, group(ref, []string{p.Name}, p.Restrictions, interval(p.NonRevoked),
			&aip.Predicate{Operator: op, Threshold: int64(p.PValue)}))
	}
	return out
}

// fromQuery reads alternatives of tag equalities out of a WQL query.
func fromQuery(q *anoncreds.Query) []aip.AnoncredsRestriction {
	if q.IsEmpty() {
		return nil
	}
	b, err := q.MarshalJSON()
	if err != nil {
		return nil
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	var alts []any
	if m, ok := v.(map[string]any); ok {
		if or, ok := m["$or"].([]any); ok && len(m) == 1 {
			alts = or
		} else {
			alts = []any{m}
		}
	} else if a, ok := v.([]any); ok {
		alts = a
	}
	var out []aip.AnoncredsRestriction
	for _, alt := range alts {
		m, ok := alt.(map[string]any)
		if !ok {
			continue
		}
		if and, ok := m["$and"].([]any); ok && len(m) == 1 {
			m = map[string]any{}
			for _, e := range and {
				if em, ok := e.(map[string]any); ok {
					for k, v := range em {
						m[k] = v
					}
				}
			}
		}
		var r aip.AnoncredsRestriction
		for _, tag := range slices.Sorted(maps.Keys(m)) {
			s, ok := m[tag].(string)
			if !ok {
				continue // $neq, $in, $not: not in the API's shape
			}
			switch tag {
			case "schema_id":
				r.SchemaID = s
			case "schema_issuer_did", "schema_issuer_id":
				r.SchemaIssuerID = s
			case "schema_name":
				r.SchemaName = s
			case "schema_version":
				r.SchemaVersion = s
			case "cred_def_id":
				r.CredDefID = s
			case "issuer_did", "issuer_id":
				r.IssuerID = s
			default:
				if name, ok := strings.CutPrefix(tag, "attr::"); ok {
					if n, ok := strings.CutSuffix(name, "::marker"); ok {
						r.AttributeNames = append(r.AttributeNames, n)
					} else if n, ok := strings.CutSuffix(name, "::value"); ok {
						r.AttributeValues = append(r.AttributeValues, aip.Attribute{Name: n, Value: s})
					}
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// trimLib drops the library's "anoncreds: malformed input: " prefixes.
func trimLib(err error) string {
	s := err.Error()
	for _, p := range []string{"anoncreds: malformed input: ", "anoncreds: "} {
		s = strings.TrimPrefix(s, p)
	}
	return clip(s)
}

// anoncredsObjects resolves schemas and credential definitions by id,
// once each.
type anoncredsObjects struct {
	creds    Credentials
	schemas  map[string]*anoncreds.Schema
	credDefs map[string]*anoncreds.CredentialDefinition
}

func newObjects(c Credentials) *anoncredsObjects {
	return &anoncredsObjects{creds: c, schemas: map[string]*anoncreds.Schema{}, credDefs: map[string]*anoncreds.CredentialDefinition{}}
}

func (o *anoncredsObjects) add(ctx context.Context, schemaID, credDefID string) error {
	if _, ok := o.schemas[schemaID]; !ok {
		s, err := o.creds.ResolveSchema(ctx, schemaID)
		if err != nil {
			return fmt.Errorf("schema %s: %w", clip(schemaID), err)
		}
		o.schemas[schemaID] = s
	}
	if _, ok := o.credDefs[credDefID]; !ok {
		d, err := o.creds.ResolveCredDef(ctx, credDefID)
		if err != nil {
			return fmt.Errorf("credential definition %s: %w", clip(credDefID), err)
		}
		o.credDefs[credDefID] = d
	}
	return nil
}

// heldAnoncreds is a held AnonCreds credential, parsed.
type heldAnoncreds struct {
	id   string
	cred *anoncreds.Credential
}

// anoncredsHeld reads the held AnonCreds credentials whose objects resolve.
func (s *Service) anoncredsHeld(ctx context.Context, objs *anoncredsObjects) ([]heldAnoncreds, error) {
	var ids []string
	if err := s.cfg.Credentials.Each(ctx, aip.FormatAnoncreds, func(c *aip.Credential) bool {
		ids = append(ids, c.ID)
		return true
	}); err != nil {
		return nil, err
	}
	var out []heldAnoncreds
	for _, id := range ids {
		raw, err := s.cfg.Credentials.Raw(ctx, id)
		if err != nil {
			continue
		}
		c, err := anoncreds.ParseCredential(raw)
		if err != nil {
			continue
		}
		if err := objs.add(ctx, c.SchemaID, c.CredDefID); err != nil {
			s.log.Debug("held credential's objects do not resolve", "credential", id, "err", err)
			continue
		}
		out = append(out, heldAnoncreds{id: id, cred: c})
	}
	return out, nil
}

// anoncredsCandidates lists, per referent of req, the held credentials
// that can answer it: the library's own selection, run for each referent
// alone with each credential alone (restrictions, attribute presence,
// predicate truth, no non-revocation proof needed).
func (s *Service) anoncredsCandidates(ctx context.Context, req *anoncreds.PresentationRequest) ([]aip.CredentialsForReferent, error) {
	objs := newObjects(s.cfg.Credentials)
	held, err := s.anoncredsHeld(ctx, objs)
	if err != nil {
		return nil, err
	}
	one := func(ref string) *anoncreds.PresentationRequest {
		sub := &anoncreds.PresentationRequest{Nonce: req.Nonce, Name: req.Name, Version: req.Version, NonRevoked: req.NonRevoked,
			RequestedAttributes: map[string]anoncreds.AttributeInfo{}, RequestedPredicates: map[string]anoncreds.PredicateInfo{}}
		if a, ok := req.RequestedAttributes[ref]; ok {
			sub.RequestedAttributes[ref] = a
		} else {
			sub.RequestedPredicates[ref] = req.RequestedPredicates[ref]
		}
		return sub
	}
	refs := append(slices.Sorted(maps.Keys(req.RequestedAttributes)), slices.Sorted(maps.Keys(req.RequestedPredicates))...)
	out := make([]aip.CredentialsForReferent, 0, len(refs))
	for _, ref := range refs {
		c := aip.CredentialsForReferent{Referent: ref, CredentialIDs: []string{}}
		sub := one(ref)
		for _, h := range held {
			if _, err := anoncreds.SelectCredentials(sub, []*anoncreds.Credential{h.cred}, objs.schemas, objs.credDefs); err == nil {
				c.CredentialIDs = append(c.CredentialIDs, h.id)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// anoncredsPresent builds the presentation answering req with the
// operator's choice of credentials and self-attested values.
func (s *Service) anoncredsPresent(ctx context.Context, req *anoncreds.PresentationRequest, in *aip.AnoncredsPresentationInput) (*anoncreds.Presentation, error) {
	answered := map[string]bool{}
	objs := newObjects(s.cfg.Credentials)
	byCred := map[string]*anoncreds.PresentCredential{}
	var order []string
	for _, c := range in.CredentialsForReferents {
		_, isAttr := req.RequestedAttributes[c.Referent]
		_, isPred := req.RequestedPredicates[c.Referent]
		switch {
		case !isAttr && !isPred:
			return nil, agent.Errorf(agent.CodeMsg, "referent %q is not in the request", clip(c.Referent))
		case answered[c.Referent]:
			return nil, agent.Errorf(agent.CodeMsg, "referent %q is answered twice", clip(c.Referent))
		}
		answered[c.Referent] = true
		pc := byCred[c.CredentialID]
		if pc == nil {
			held, err := s.cfg.Credentials.Credential(ctx, c.CredentialID)
			if err != nil || held.Format != aip.FormatAnoncreds {
				return nil, agent.Errorf(agent.CodeMsg, "credential %q is not a held AnonCreds credential", clip(c.CredentialID))
			}
			raw, err := s.cfg.Credentials.Raw(ctx, c.CredentialID)
			if err != nil {
				return nil, agent.Wrap(agent.CodeMe, err, "could not read credential "+clip(c.CredentialID))
			}
			cred, err := anoncreds.ParseCredential(raw)
			if err != nil {
				return nil, agent.Wrap(agent.CodeMe, err, "held credential "+clip(c.CredentialID)+" is unreadable")
			}
			if err := objs.add(ctx, cred.SchemaID, cred.CredDefID); err != nil {
				return nil, agent.Wrap(agent.CodeNotFound, err, "could not resolve the schema or credential definition of credential "+clip(c.CredentialID))
			}
			pc = &anoncreds.PresentCredential{Credential: cred, Attributes: map[string]bool{}}
			byCred[c.CredentialID] = pc
			order = append(order, c.CredentialID)
		}
		if isAttr {
			pc.Attributes[c.Referent] = c.Revealed
		} else {
			pc.Predicates = append(pc.Predicates, c.Referent)
		}
	}
	input := anoncreds.PresentationInput{SelfAttested: map[string]string{}}
	for _, a := range in.SelfAttested {
		if _, ok := req.RequestedAttributes[a.Name]; !ok || answered[a.Name] {
			return nil, agent.Errorf(agent.CodeMsg, "self-attested referent %q is not an unanswered attribute referent of the request", clip(a.Name))
		}
		answered[a.Name] = true
		input.SelfAttested[a.Name] = a.Value
	}
	for _, ref := range append(slices.Sorted(maps.Keys(req.RequestedAttributes)), slices.Sorted(maps.Keys(req.RequestedPredicates))...) {
		if !answered[ref] {
			return nil, agent.Errorf(agent.CodeMsg, "referent %q is not answered", clip(ref))
		}
	}
	for _, id := range order {
		input.Credentials = append(input.Credentials, *byCred[id])
	}
	ls, err := s.cfg.Credentials.LinkSecret(ctx)
	if err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "no link secret")
	}
	p, err := anoncreds.CreatePresentation(req, input, ls, objs.schemas, objs.credDefs)
	switch {
	case errors.Is(err, anoncreds.ErrNonRevocationUnsupported):
		return nil, agent.Wrap(agent.CodeMsgUnsupported, err, "the request needs a non-revocation proof for a revocable credential; revocation is not supported yet")
	case err != nil:
		return nil, agent.Wrap(agent.CodeMsg, err, "cannot present: "+trimLib(err))
	}
	return p, nil
}

// anoncredsSummary is the API's view of a presentation, per referent.
func anoncredsSummary(p *anoncreds.Presentation, raw []byte) *aip.AnoncredsProofPresentation {
	out := &aip.AnoncredsProofPresentation{ProofJSON: string(raw), Groups: []aip.AnoncredsPresentedGroup{}}
	ids := func(i uint32) (string, string) {
		if int(i) < len(p.Identifiers) {
			return p.Identifiers[i].SchemaID, p.Identifiers[i].CredDefID
		}
		return "", ""
	}
	rp := p.RequestedProof
	for _, ref := range slices.Sorted(maps.Keys(rp.RevealedAttrs)) {
		a := rp.RevealedAttrs[ref]
		s, d := ids(a.SubProofIndex)
		out.Groups = append(out.Groups, aip.AnoncredsPresentedGroup{Referent: ref, Kind: aip.GroupRevealed,
			Attributes: []aip.Attribute{{Value: a.Raw}}, SchemaID: s, CredDefID: d})
	}
	for _, ref := range slices.Sorted(maps.Keys(rp.RevealedAttrGroups)) {
		g := rp.RevealedAttrGroups[ref]
		s, d := ids(g.SubProofIndex)
		grp := aip.AnoncredsPresentedGroup{Referent: ref, Kind: aip.GroupRevealed, SchemaID: s, CredDefID: d, Attributes: []aip.Attribute{}}
		for _, n := range slices.Sorted(maps.Keys(g.Values)) {
			grp.Attributes = append(grp.Attributes, aip.Attribute{Name: n, Value: g.Values[n].Raw})
		}
		out.Groups = append(out.Groups, grp)
	}
	for _, ref := range slices.Sorted(maps.Keys(rp.UnrevealedAttrs)) {
		s, d := ids(rp.UnrevealedAttrs[ref].SubProofIndex)
		out.Groups = append(out.Groups, aip.AnoncredsPresentedGroup{Referent: ref, Kind: aip.GroupUnrevealed, Attributes: []aip.Attribute{}, SchemaID: s, CredDefID: d})
	}
	for _, ref := range slices.Sorted(maps.Keys(rp.SelfAttestedAttrs)) {
		out.Groups = append(out.Groups, aip.AnoncredsPresentedGroup{Referent: ref, Kind: aip.GroupSelfAttested,
			Attributes: []aip.Attribute{{Value: rp.SelfAttestedAttrs[ref]}}})
	}
	for _, ref := range slices.Sorted(maps.Keys(rp.Predicates)) {
		s, d := ids(rp.Predicates[ref].SubProofIndex)
		out.Groups = append(out.Groups, aip.AnoncredsPresentedGroup{Referent: ref, Kind: aip.GroupPredicate, Attributes: []aip.Attribute{}, SchemaID: s, CredDefID: d})
	}
	return out
}

// nameRevealed fills in the attribute name of single-attribute referents
// from the request.
func nameRevealed(sum *aip.AnoncredsProofPresentation, req *anoncreds.PresentationRequest) {
	for i, g := range sum.Groups {
		if a, ok := req.RequestedAttributes[g.Referent]; ok && a.Name != "" && len(g.Attributes) == 1 && g.Attributes[0].Name == "" {
			sum.Groups[i].Attributes[0].Name = a.Name
		}
	}
}

// anoncredsVerify verifies a presentation against our request.
func (s *Service) anoncredsVerify(ctx context.Context, req *anoncreds.PresentationRequest, raw []byte) (*aip.ProofPresentation, error) {
	out := &aip.ProofPresentation{}
	p, err := anoncreds.ParsePresentation(raw)
	if err != nil {
		out.Anoncreds = &aip.AnoncredsProofPresentation{ProofJSON: string(raw), Groups: []aip.AnoncredsPresentedGroup{}}
		return notVerified(out, "malformed presentation: "+trimLib(err)), nil
	}
	out.Anoncreds = anoncredsSummary(p, raw)
	nameRevealed(out.Anoncreds, req)
	objs := newObjects(s.cfg.Credentials)
	for _, id := range p.Identifiers {
		if err := objs.add(ctx, id.SchemaID, id.CredDefID); err != nil {
			if errors.Is(err, agent.ErrNotFound) {
				return notVerified(out, "unknown "+trimLib(err)), nil
			}
			return nil, err // not the prover's fault: verification is tried again
		}
	}
	if err := anoncreds.VerifyPresentation(p, req, objs.schemas, objs.credDefs); err != nil {
		return notVerified(out, trimLib(err)), nil
	}
	out.VerificationResult = aip.Verified
	return out, nil
}

func notVerified(p *aip.ProofPresentation, reasons ...string) *aip.ProofPresentation {
	p.VerificationResult = aip.NotVerified
	p.VerificationErrors = append(p.VerificationErrors, reasons...)
	return p
}
