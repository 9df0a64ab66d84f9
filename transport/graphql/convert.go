package graphql

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	gen "github.com/agentd/agentd/transport/graphql/internal/generated"
)

// This file maps the aip records onto the GraphQL models (out) and the
// GraphQL inputs onto the aip inputs (in).

// timestamp formats t as the API's ISO 8601 UTC with milliseconds.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// opt returns nil for "" and &s otherwise (nullable strings).
func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// str returns *p or "".
func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func nextToken(s string) *string { return opt(s) }

func page(p *gen.PageInput) aip.Page {
	if p == nil {
		return aip.Page{}
	}
	out := aip.Page{NextToken: str(p.NextToken)}
	if p.Limit != nil {
		out.Limit = *p.Limit
	}
	return out
}

// ---------------------------------------------------------------- connections

func connectionExchangeOut(x *aip.ConnectionExchange) *gen.AIPConnectionExchange {
	out := &gen.AIPConnectionExchange{
		ID: x.ID, MyRole: gen.AIPConnExRole(x.MyRole), State: gen.AIPConnExState(x.State),
		Alias: x.Alias, TheirLabel: opt(x.TheirLabel), TheirDid: opt(x.TheirDID), ErrorMessage: opt(x.ErrorMessage),
		CreatedTimestamp: timestamp(x.Created), ModifiedTimestamp: timestamp(x.Modified),
	}
	if inv := x.Invitation; inv != nil {
		out.Invitation = &gen.AIPConnectionInvitation{
			MessageID: inv.MessageID, Label: inv.Label,
			ServiceEndpoint: opt(inv.ServiceEndpoint), InvitationURL: opt(inv.URL),
		}
	}
	return out
}

func connectionOut(c *aip.Connection) *gen.Connection {
	return &gen.Connection{
		ID: c.ID, Alias: c.Alias, TheirLabel: opt(c.TheirLabel), TheirDid: c.TheirDID, MyDid: c.MyDID,
		CreatedTimestamp: timestamp(c.Created), ModifiedTimestamp: timestamp(c.Modified),
	}
}

func basicMessageOut(m *aip.BasicMessage) *gen.BasicMessage {
	return &gen.BasicMessage{
		ID: m.ID, ConnectionID: m.ConnectionID, Content: m.Content,
		Timestamp: timestamp(m.Timestamp), Direction: gen.BasicMessageDirection(m.Direction),
	}
}

// ---------------------------------------------------------------- credentials

func attributesOut(as []aip.Attribute) []*gen.AnoncredsCredentialAttribute {
	out := make([]*gen.AnoncredsCredentialAttribute, len(as))
	for i, a := range as {
		out[i] = &gen.AnoncredsCredentialAttribute{Name: a.Name, Value: a.Value}
	}
	return out
}

func attributeValuesOut(as []aip.Attribute) []*gen.AnoncredsAttributeValue {
	if as == nil {
		return nil
	}
	out := make([]*gen.AnoncredsAttributeValue, len(as))
	for i, a := range as {
		out[i] = &gen.AnoncredsAttributeValue{Name: a.Name, Value: a.Value}
	}
	return out
}

// credentialOut returns the union member for c, nil for an unknown format.
func credentialOut(c *aip.Credential) gen.Credential {
	switch c.Format {
	case aip.FormatAnoncreds:
		return &gen.AnoncredsCredential{
			ID: c.ID, Attributes: attributesOut(c.Attributes), CredDefID: c.CredDefID,
			ConnectionID: opt(c.ConnectionID), SchemaID: opt(c.SchemaID), CreatedTimestamp: timestamp(c.Created),
		}
	case aip.FormatW3C:
		return &gen.W3CCredential{
			ID: c.ID, CredentialJSON: c.CredentialJSON, ConnectionID: opt(c.ConnectionID),
			W3cFormat: opt(c.W3CFormat), CreatedTimestamp: timestamp(c.Created),
		}
	}
	return nil
}

func schemaOut(s *aip.AnoncredsSchema) *gen.AnoncredsSchema {
	return &gen.AnoncredsSchema{ID: s.ID, Name: s.Name, Version: s.Version, AttributeNames: nonNil(s.AttributeNames)}
}

func credDefOut(d *aip.AnoncredsCredDef) *gen.AnoncredsCredDef {
	return &gen.AnoncredsCredDef{ID: d.ID, SchemaID: d.SchemaID, Tag: d.Tag, IsRevocable: d.IsRevocable}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ---------------------------------------------------------------- credential exchanges

func credentialExchangeOut(x *aip.CredentialExchange) *gen.AIPCredentialExchange {
	out := &gen.AIPCredentialExchange{
		ID: x.ID, MyRole: gen.AIPCredExRole(x.MyRole), State: gen.AIPCredExState(x.State), ConnectionID: x.ConnectionID,
		Messages:         &gen.AIPCredentialExchangeMessages{},
		CreatedTimestamp: timestamp(x.Created), ModifiedTimestamp: timestamp(x.Modified), ErrorMessage: opt(x.ErrorMessage),
	}
	if p := x.Messages.Proposal; p != nil {
		out.Messages.Proposal = &gen.AIPCredentialProposal{Comment: opt(p.Comment), Format: previewOut(p)}
	}
	if p := x.Messages.Offer; p != nil {
		if f := previewOut(p); f != nil {
			out.Messages.Offer = &gen.AIPCredentialOffer{Comment: opt(p.Comment), Format: f}
		}
	}
	if is := x.Messages.Issued; is != nil {
		c := &aip.Credential{
			ID: is.CredentialID, Format: is.Format, ConnectionID: x.ConnectionID, CredentialJSON: is.CredentialJSON,
			Attributes: is.Attributes, CredDefID: is.CredDefID, Created: x.Modified,
		}
		if c.ID == "" {
			c.ID = x.ID // the issuer's copy has no held-credential id: name it by its exchange
		}
		if cred := credentialOut(c); cred != nil {
			out.Messages.Issued = &gen.AIPCredentialIssued{Credential: cred}
		}
	}
	return out
}

func previewOut(p *aip.CredentialPreview) gen.AIPCredentialPreviewFormat {
	switch {
	case p.Anoncreds != nil:
		return &gen.AnoncredsCredentialPreview{CredDefID: p.Anoncreds.CredDefID, Attributes: attributesOut(p.Anoncreds.Attributes)}
	case p.W3C != nil:
		out := &gen.W3CCredentialPreview{CredentialJSON: p.W3C.CredentialJSON}
		if m := gen.W3CSecuringMechanism(p.W3C.SecuringMechanism); m.IsValid() {
			out.SecuringMechanism = &m
		}
		return out
	}
	return nil
}

func credentialOfferIn(in gen.AIPCredentialOfferInput) (aip.CredentialOfferInput, error) {
	out := aip.CredentialOfferInput{Comment: str(in.Comment)}
	if in.AutoAcceptRequest != nil {
		out.AutoAcceptRequest = *in.AutoAcceptRequest
	}
	f := in.Format
	if f == nil || (f.Anoncreds == nil) == (f.W3C == nil) {
		return out, agent.Errorf(agent.CodeMsg, "exactly one of offer.format.anoncreds and offer.format.w3c must be set")
	}
	if a := f.Anoncreds; a != nil {
		if a.CredDefID == "" {
			return out, agent.Errorf(agent.CodeMsg, "offer.format.anoncreds.credDefId is required")
		}
		p := &aip.AnoncredsCredentialPreview{CredDefID: a.CredDefID, Attributes: []aip.Attribute{}}
		for _, at := range a.Attributes {
			p.Attributes = append(p.Attributes, aip.Attribute{Name: at.Name, Value: at.Value})
		}
		out.Anoncreds = p
	} else {
		if !json.Valid([]byte(f.W3C.CredentialJSON)) {
			return out, agent.Errorf(agent.CodeMsg, "offer.format.w3c.credentialJson is not JSON")
		}
		mech := "LINKED_DATA_PROOF"
		if f.W3C.SecuringMechanism != nil {
			mech = string(*f.W3C.SecuringMechanism)
		}
		out.W3C = &aip.W3CCredentialPreview{CredentialJSON: f.W3C.CredentialJSON, SecuringMechanism: mech}
	}
	return out, nil
}

// ---------------------------------------------------------------- proof exchanges

func proofExchangeOut(x *aip.ProofExchange) *gen.AIPProofExchange {
	out := &gen.AIPProofExchange{
		ID: x.ID, MyRole: gen.AIPProofExRole(x.MyRole), State: gen.AIPProofExState(x.State), ConnectionID: x.ConnectionID,
		Messages:         &gen.AIPProofExchangeMessages{},
		CreatedTimestamp: timestamp(x.Created), ModifiedTimestamp: timestamp(x.Modified), ErrorMessage: opt(x.ErrorMessage),
	}
	if p := x.Messages.Proposal; p != nil {
		out.Messages.Proposal = &gen.AIPProofProposal{Comment: opt(p.Comment), Format: proofRequestFormatOut(p)}
	}
	if r := x.Messages.Request; r != nil {
		if f := proofRequestFormatOut(r); f != nil {
			out.Messages.Request = &gen.AIPProofRequest{Comment: opt(r.Comment), Format: f}
		}
	}
	if p := x.Messages.Presentation; p != nil {
		if f := presentationFormatOut(p); f != nil {
			pr := &gen.AIPProofPresentation{Comment: opt(p.Comment), Format: f, VerificationErrors: p.VerificationErrors}
			if v := gen.AIPProofVerificationResult(p.VerificationResult); v.IsValid() {
				pr.VerificationResult = &v
			}
			out.Messages.Presentation = pr
		}
	}
	return out
}

func proofRequestFormatOut(r *aip.ProofRequest) gen.AIPProofRequestFormat {
	switch {
	case r.Anoncreds != nil:
		a := r.Anoncreds
		out := &gen.AnoncredsProofRequest{Name: opt(a.Name), Version: opt(a.Version), Nonce: opt(a.Nonce),
			AttributeGroups: []*gen.AnoncredsProofRequestAttributeGroup{}}
		for _, g := range a.AttributeGroups {
			og := &gen.AnoncredsProofRequestAttributeGroup{Referent: g.Referent, AttributeNames: nonNil(g.AttributeNames),
				Restrictions: []*gen.AnoncredsProofRequestRestriction{}}
			for _, rs := range g.Restrictions {
				or := &gen.AnoncredsProofRequestRestriction{
					SchemaID: opt(rs.SchemaID), SchemaIssuerID: opt(rs.SchemaIssuerID), SchemaName: opt(rs.SchemaName),
					SchemaVersion: opt(rs.SchemaVersion), CredDefID: opt(rs.CredDefID), IssuerID: opt(rs.IssuerID),
					AttributeNames: rs.AttributeNames, AttributeValues: attributeValuesOut(rs.AttributeValues),
				}
				if nr := rs.NonRevoked; nr != nil {
					or.NonRevoked = &gen.AnoncredsNonRevokedInterval{From: intOut(nr.From), To: intOut(nr.To)}
				}
				if p := rs.Predicate; p != nil {
					or.Predicate = &gen.AnoncredsPredicate{Operator: gen.AnoncredsPredicateOperator(p.Operator), Threshold: int(p.Threshold)}
				}
				og.Restrictions = append(og.Restrictions, or)
			}
			out.AttributeGroups = append(out.AttributeGroups, og)
		}
		return out
	case r.W3C != nil:
		w := r.W3C
		out := &gen.W3CProofNegotiation{
			AttributeGroups: []*gen.W3CProofAttributeGroup{}, SubmissionRequirementJsons: w.SubmissionRequirementJSONs,
			PresentationDefinitionJSON: opt(w.PresentationDefinitionJSON), Challenge: opt(w.Challenge), Domain: opt(w.Domain),
		}
		for _, g := range w.AttributeGroups {
			og := &gen.W3CProofAttributeGroup{Referent: g.Referent, Attributes: []*gen.W3CProofAttribute{}}
			for _, a := range g.Attributes {
				oa := &gen.W3CProofAttribute{
					AttributePaths: nonNil(a.AttributePaths), IsHolderSubject: a.IsHolderSubject,
					PresentationType: gen.W3CAttributePresentationTypeValue,
				}
				if a.PresentationType == aip.PresentPredicate {
					oa.PresentationType = gen.W3CAttributePresentationTypePredicate
				}
				if v := a.ValueRestrictions; v != nil {
					ov := &gen.W3CAttributeValueRestrictions{
						Pattern: v.Pattern, InSet: v.InSet, NotInSet: v.NotInSet, Equal: v.Equal, NotEqual: v.NotEqual,
						MinLength: v.MinLength, MaxLength: v.MaxLength, LessThan: v.LessThan, LessThanOrEqual: v.LessThanOrEqual,
						GreaterThan: v.GreaterThan, GreaterThanOrEqual: v.GreaterThanOrEqual,
					}
					if v.DataFormat != nil {
						if df := gen.W3CAttributeDataFormat(*v.DataFormat); df.IsValid() {
							ov.DataFormat = &df
						}
					}
					oa.ValueRestrictions = ov
				}
				og.Attributes = append(og.Attributes, oa)
			}
			out.AttributeGroups = append(out.AttributeGroups, og)
		}
		return out
	}
	return nil
}

func intOut(p *int64) *int {
	if p == nil {
		return nil
	}
	v := int(*p)
	return &v
}

func presentationFormatOut(p *aip.ProofPresentation) gen.AIPProofPresentationFormat {
	switch {
	case p.Anoncreds != nil:
		out := &gen.AnoncredsProofPresentation{Groups: []*gen.AnoncredsPresentedGroup{}, ProofJSON: opt(p.Anoncreds.ProofJSON)}
		for _, g := range p.Anoncreds.Groups {
			out.Groups = append(out.Groups, &gen.AnoncredsPresentedGroup{
				Referent: g.Referent, Kind: gen.AnoncredsPresentedGroupKind(g.Kind),
				Attributes: nonNil(attributeValuesOut(g.Attributes)), SchemaID: opt(g.SchemaID), CredDefID: opt(g.CredDefID),
			})
		}
		return out
	case p.W3C != nil:
		out := &gen.W3CProofPresentation{PresentationJSON: p.W3C.PresentationJSON, CredentialsForReferents: []*gen.W3CPresentedReferent{}}
		for _, r := range p.W3C.CredentialsForReferents {
			out.CredentialsForReferents = append(out.CredentialsForReferents, &gen.W3CPresentedReferent{Referent: r.Referent, Path: r.Path})
		}
		return out
	}
	return nil
}

// proofRequestIn maps a request (or proposal) input; what names the input
// in errors ("request", "proposal").
func proofRequestIn(what string, in *gen.AIPProofRequestInput) (aip.ProofRequest, error) {
	out := aip.ProofRequest{Comment: str(in.Comment)}
	f := in.Format
	if f == nil || (f.Anoncreds == nil) == (f.W3C == nil) {
		return out, agent.Errorf(agent.CodeMsg, "exactly one of %s.format.anoncreds and %s.format.w3c must be set", what, what)
	}
	if a := f.Anoncreds; a != nil {
		if len(a.AttributeGroups) == 0 {
			return out, agent.Errorf(agent.CodeMsg, "%s.format.anoncreds.attributeGroups is empty", what)
		}
		req := &aip.AnoncredsProofRequest{Name: str(a.Name), Version: str(a.Version)}
		for _, g := range a.AttributeGroups {
			if g.Referent == "" || len(g.AttributeNames) == 0 {
				return out, agent.Errorf(agent.CodeMsg, "%s.format.anoncreds: every attribute group needs a referent and attribute names", what)
			}
			og := aip.AnoncredsAttributeGroup{Referent: g.Referent, AttributeNames: g.AttributeNames}
			for _, r := range g.Restrictions {
				or := aip.AnoncredsRestriction{
					SchemaID: str(r.SchemaID), SchemaIssuerID: str(r.SchemaIssuerID), SchemaName: str(r.SchemaName),
					SchemaVersion: str(r.SchemaVersion), CredDefID: str(r.CredDefID), IssuerID: str(r.IssuerID),
					AttributeNames: r.AttributeNames,
				}
				for _, v := range r.AttributeValues {
					or.AttributeValues = append(or.AttributeValues, aip.Attribute{Name: v.Name, Value: v.Value})
				}
				if nr := r.NonRevoked; nr != nil {
					or.NonRevoked = &aip.NonRevokedInterval{From: intIn(nr.From), To: intIn(nr.To)}
				}
				if p := r.Predicate; p != nil {
					or.Predicate = &aip.Predicate{Operator: aip.PredicateOperator(p.Operator), Threshold: int64(p.Threshold)}
				}
				og.Restrictions = append(og.Restrictions, or)
			}
			req.AttributeGroups = append(req.AttributeGroups, og)
		}
		out.Anoncreds = req
		return out, nil
	}
	w := f.W3C
	if len(w.AttributeGroups) == 0 {
		return out, agent.Errorf(agent.CodeMsg, "%s.format.w3c.attributeGroups is empty", what)
	}
	neg := &aip.W3CProofNegotiation{Challenge: str(w.Challenge), Domain: str(w.Domain)}
	for i, s := range w.SubmissionRequirementJsons {
		var obj map[string]any
		if err := json.Unmarshal([]byte(s), &obj); err != nil || obj == nil {
			return out, agent.Errorf(agent.CodeMsg, "%s.format.w3c.submissionRequirementJsons[%d] is not a JSON object", what, i)
		}
		neg.SubmissionRequirementJSONs = append(neg.SubmissionRequirementJSONs, s)
	}
	for _, g := range w.AttributeGroups {
		if g.Referent == "" || len(g.Attributes) == 0 {
			return out, agent.Errorf(agent.CodeMsg, "%s.format.w3c: every attribute group needs a referent and attributes", what)
		}
		og := aip.W3CAttributeGroup{Referent: g.Referent}
		for _, a := range g.Attributes {
			if len(a.AttributePaths) == 0 {
				return out, agent.Errorf(agent.CodeMsg, "%s.format.w3c: attribute group %q has an attribute without attributePaths", what, g.Referent)
			}
			oa := aip.W3CAttribute{AttributePaths: a.AttributePaths, PresentationType: aip.PresentValue}
			if a.IsHolderSubject != nil {
				oa.IsHolderSubject = *a.IsHolderSubject
			}
			if a.PresentationType != nil && *a.PresentationType == gen.W3CAttributePresentationTypePredicate {
				oa.PresentationType = aip.PresentPredicate
			}
			if v := a.ValueRestrictions; v != nil {
				ov := &aip.W3CValueRestrictions{
					Pattern: v.Pattern, InSet: v.InSet, NotInSet: v.NotInSet, Equal: v.Equal, NotEqual: v.NotEqual,
					MinLength: v.MinLength, MaxLength: v.MaxLength, LessThan: v.LessThan, LessThanOrEqual: v.LessThanOrEqual,
					GreaterThan: v.GreaterThan, GreaterThanOrEqual: v.GreaterThanOrEqual,
				}
				if v.DataFormat != nil {
					df := string(*v.DataFormat)
					ov.DataFormat = &df
				}
				oa.ValueRestrictions = ov
			}
			og.Attributes = append(og.Attributes, oa)
		}
		neg.AttributeGroups = append(neg.AttributeGroups, og)
	}
	out.W3C = neg
	return out, nil
}

func intIn(p *int) *int64 {
	if p == nil {
		return nil
	}
	v := int64(*p)
	return &v
}

func presentationIn(in gen.AIPProofPresentationInput) (aip.PresentationInput, error) {
	out := aip.PresentationInput{Comment: str(in.Comment)}
	f := in.Format
	if f == nil || (f.Anoncreds == nil) == (f.W3C == nil) {
		return out, agent.Errorf(agent.CodeMsg, "exactly one of presentation.format.anoncreds and presentation.format.w3c must be set")
	}
	if a := f.Anoncreds; a != nil {
		p := &aip.AnoncredsPresentationInput{}
		for _, c := range a.CredentialsForReferents {
			revealed := c.Revealed == nil || *c.Revealed
			p.CredentialsForReferents = append(p.CredentialsForReferents,
				aip.AnoncredsCredentialForReferent{Referent: c.Referent, CredentialID: c.CredentialID, Revealed: revealed})
		}
		for _, s := range a.SelfAttestedAttributes {
			p.SelfAttested = append(p.SelfAttested, aip.Attribute{Name: s.Referent, Value: s.Value})
		}
		out.Anoncreds = p
		return out, nil
	}
	p := &aip.W3CPresentationInput{}
	for _, c := range f.W3C.CredentialsForReferents {
		p.CredentialsForReferents = append(p.CredentialsForReferents, aip.W3CCredentialForReferent{Referent: c.Referent, CredentialID: c.CredentialID})
	}
	out.W3C = p
	return out, nil
}

// ---------------------------------------------------------------- filters

func proofFilterIn(f *gen.AIPProofExchangesFilter) aip.ProofExchangeFilter {
	var out aip.ProofExchangeFilter
	if f == nil {
		return out
	}
	if f.MyProofExRole != nil {
		out.Role = aip.ProofExRole(*f.MyProofExRole)
	}
	for _, s := range f.ProofExStates {
		out.States = append(out.States, aip.ProofExState(s))
	}
	out.ConnectionIDs = f.ConnectionIds
	return out
}

func credExFilterIn(f *gen.AIPCredentialExchangesFilter) aip.CredentialExchangeFilter {
	var out aip.CredentialExchangeFilter
	if f == nil {
		return out
	}
	if f.MyCredExRole != nil {
		out.Role = aip.CredExRole(*f.MyCredExRole)
	}
	for _, s := range f.CredExStates {
		out.States = append(out.States, aip.CredExState(s))
	}
	out.ConnectionIDs = f.ConnectionIds
	return out
}

func connExFilterIn(f *gen.AIPConnectionExchangesFilter) aip.ConnectionExchangeFilter {
	var out aip.ConnectionExchangeFilter
	if f == nil {
		return out
	}
	if f.MyConnExRole != nil {
		out.Role = aip.ConnExRole(*f.MyConnExRole)
	}
	for _, s := range f.ConnExStates {
		out.States = append(out.States, aip.ConnExState(s))
	}
	return out
}

// matchProof reports whether x passes f (subscriptions filter in memory:
// they see one record at a time).
func matchProof(f aip.ProofExchangeFilter, x *aip.ProofExchange) bool {
	return (f.Role == "" || f.Role == x.MyRole) && anyOf(f.States, x.State) && anyOf(f.ConnectionIDs, x.ConnectionID)
}

func matchCredEx(f aip.CredentialExchangeFilter, x *aip.CredentialExchange) bool {
	return (f.Role == "" || f.Role == x.MyRole) && anyOf(f.States, x.State) && anyOf(f.ConnectionIDs, x.ConnectionID)
}

func matchConnEx(f aip.ConnectionExchangeFilter, x *aip.ConnectionExchange) bool {
	return (f.Role == "" || f.Role == x.MyRole) && anyOf(f.States, x.State)
}

func anyOf[T comparable](set []T, v T) bool {
	if len(set) == 0 {
		return true
	}
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// trimmed reports whether s is blank.
func blank(s string) bool { return strings.TrimSpace(s) == "" }
