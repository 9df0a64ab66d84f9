package presentproof

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/w3cvc"
)

// The W3C path (sudo-graphql.md section 5): the API's negotiation is a
// flattened DIF presentation definition (w3cvc.DefinitionFromNegotiation);
// the definition that goes on the wire is kept on the exchange, and is what
// matching, presenting and verifying use.

// W3CConfig configures the W3C format.
type W3CConfig struct {
	// Verifier verifies presentations (signatures against DID documents,
	// validity, status lists, the submission against the definition).
	Verifier *w3cvc.Verifier
	// Signer returns the signer of the agent's DID on a connection (its
	// authentication key), the holder of the presentations it makes.
	Signer func(ctx context.Context, did string) (w3cvc.Signer, error)
	// Resolver, when set, adds the did:key form of a peer DID's
	// authentication keys to the holders a presentation may come from.
	Resolver did.Resolver
	// Format is the presentation format used when the definition does not
	// ask for one: w3cvc.FormatJWTVP (default) or w3cvc.FormatLDPVP.
	Format string
	// Now is the clock, to leave expired credentials out of the
	// candidates; nil means time.Now.
	Now func() time.Time
}

// W3C implements W3CFormat with w3cvc.
type W3C struct{ cfg W3CConfig }

var _ W3CFormat = (*W3C)(nil)

// NewW3C returns the W3C format.
func NewW3C(cfg W3CConfig) (*W3C, error) {
	if cfg.Verifier == nil || cfg.Signer == nil {
		return nil, errors.New("presentproof: the W3C format needs a verifier and a signer")
	}
	switch cfg.Format {
	case "":
		cfg.Format = w3cvc.FormatJWTVP
	case w3cvc.FormatJWTVP, w3cvc.FormatLDPVP:
	default:
		return nil, fmt.Errorf("presentproof: unknown presentation format %q", cfg.Format)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &W3C{cfg: cfg}, nil
}

// Request builds a definitions attachment from the negotiation, or from
// its PresentationDefinitionJSON when set.
func (x *W3C) Request(n *aip.W3CProofNegotiation) ([]byte, *aip.W3CProofNegotiation, error) {
	var def *w3cvc.Definition
	var err error
	if n.PresentationDefinitionJSON != "" {
		def, err = w3cvc.ParseDefinition([]byte(n.PresentationDefinitionJSON))
	} else {
		if len(n.AttributeGroups) == 0 {
			return nil, nil, agent.Errorf(agent.CodeMsg, "a W3C proof request needs at least one attribute group")
		}
		def, err = w3cvc.DefinitionFromNegotiation(ToNegotiation(n))
	}
	if err != nil {
		return nil, nil, agent.Wrap(agent.CodeMsg, err, "invalid W3C proof request: "+clip(err.Error()))
	}
	for _, d := range def.InputDescriptors {
		if d.Constraints != nil && d.Constraints.LimitDisclosure == "required" {
			return nil, nil, agent.Errorf(agent.CodeMsgUnsupported, "input descriptor %q needs selective disclosure (PREDICATE attributes, limit_disclosure required), which is not supported", clip(d.ID))
		}
	}
	defJSON, err := json.Marshal(def)
	if err != nil {
		return nil, nil, err
	}
	opts := DIFOptions{Challenge: n.Challenge, Domain: n.Domain}
	if opts.Challenge == "" {
		opts.Challenge = agent.NewID()
	}
	data, err := json.Marshal(DIFRequest{Options: opts, PresentationDefinition: defJSON})
	if err != nil {
		return nil, nil, err
	}
	shown := *n
	if len(shown.AttributeGroups) == 0 {
		shown = *FromNegotiation(w3cvc.NegotiationFromDefinition(def))
	}
	shown.Challenge, shown.Domain, shown.PresentationDefinitionJSON = opts.Challenge, opts.Domain, string(defJSON)
	return data, &shown, nil
}

// readRequest parses a definitions attachment.
func readRequest(data []byte) (*DIFRequest, *w3cvc.Definition, error) {
	var r DIFRequest
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, nil, agent.Wrap(agent.CodeMsg, err, "malformed presentation exchange request")
	}
	if len(r.PresentationDefinition) == 0 {
		return nil, nil, agent.Errorf(agent.CodeMsg, "the request has no presentation_definition")
	}
	def, err := w3cvc.ParseDefinition(r.PresentationDefinition)
	if err != nil {
		return nil, nil, agent.Wrap(agent.CodeMsg, err, "invalid presentation_definition: "+clip(err.Error()))
	}
	return &r, def, nil
}

// ParseRequest reads a received definitions attachment into the API's
// shape (best effort; the definition itself is kept).
func (x *W3C) ParseRequest(data []byte) (*aip.W3CProofNegotiation, error) {
	r, def, err := readRequest(data)
	if err != nil {
		return nil, err
	}
	n := FromNegotiation(w3cvc.NegotiationFromDefinition(def))
	n.Challenge, n.Domain, n.PresentationDefinitionJSON = r.Options.Challenge, r.Options.Domain, string(r.PresentationDefinition)
	return n, nil
}

// heldW3C is a held W3C credential, parsed.
type heldW3C struct {
	id   string
	cred *w3cvc.Credential
}

func credentialBytes(c *aip.Credential) []byte {
	b := bytes.TrimSpace([]byte(c.CredentialJSON))
	return b
}

func (x *W3C) held(ctx context.Context, creds Credentials) ([]heldW3C, error) {
	var out []heldW3C
	now := x.cfg.Now()
	err := creds.Each(ctx, aip.FormatW3C, func(c *aip.Credential) bool {
		vc, err := w3cvc.ParseCredential(credentialBytes(c))
		if err == nil && (vc.ExpiresAt.IsZero() || now.Before(vc.ExpiresAt)) {
			out = append(out, heldW3C{id: c.ID, cred: vc})
		}
		return true
	})
	return out, err
}

// CredentialsFor matches the held W3C credentials against each input
// descriptor (fields and filters), in descriptor order.
func (x *W3C) CredentialsFor(ctx context.Context, request []byte, creds Credentials) ([]aip.CredentialsForReferent, error) {
	_, def, err := readRequest(request)
	if err != nil {
		return nil, err
	}
	held, err := x.held(ctx, creds)
	if err != nil {
		return nil, err
	}
	list := make([]*w3cvc.Credential, len(held))
	for i, h := range held {
		list[i] = h.cred
	}
	m := w3cvc.Match(def, list)
	out := make([]aip.CredentialsForReferent, 0, len(def.InputDescriptors))
	for _, d := range def.InputDescriptors {
		c := aip.CredentialsForReferent{Referent: d.ID, CredentialIDs: []string{}}
		for _, i := range m[d.ID] {
			c.CredentialIDs = append(c.CredentialIDs, held[i].id)
		}
		out = append(out, c)
	}
	return out, nil
}

// presentationFormat picks the VP format: one the definition names (JWT
// first), else the configured one; an LDP VP only when every credential
// is JSON-LD.
func (x *W3C) presentationFormat(def *w3cvc.Definition, creds []*w3cvc.Credential) string {
	allLDP := true
	for _, c := range creds {
		allLDP = allLDP && c.Format == w3cvc.FormatLDPVC
	}
	if def.Format != nil {
		if _, ok := def.Format[w3cvc.FormatJWTVP]; ok {
			return w3cvc.FormatJWTVP
		}
		if _, ok := def.Format[w3cvc.FormatLDPVP]; ok && allLDP {
			return w3cvc.FormatLDPVP
		}
	}
	if x.cfg.Format == w3cvc.FormatLDPVP && allLDP {
		return w3cvc.FormatLDPVP
	}
	return w3cvc.FormatJWTVP
}

// Present builds the VP answering the request with the chosen credentials,
// signed by holder with the request's challenge and domain.
func (x *W3C) Present(ctx context.Context, request []byte, holder string, in *aip.W3CPresentationInput, creds Credentials) ([]byte, *aip.W3CProofPresentation, error) {
	r, def, err := readRequest(request)
	if err != nil {
		return nil, nil, err
	}
	chosen := map[string]*w3cvc.Credential{}
	for _, c := range in.CredentialsForReferents {
		if _, dup := chosen[c.Referent]; dup {
			return nil, nil, agent.Errorf(agent.CodeMsg, "referent %q is answered twice", clip(c.Referent))
		}
		held, err := creds.Credential(ctx, c.CredentialID)
		if err != nil || held.Format != aip.FormatW3C {
			return nil, nil, agent.Errorf(agent.CodeMsg, "credential %q is not a held W3C credential", clip(c.CredentialID))
		}
		vc, err := w3cvc.ParseCredential(credentialBytes(held))
		if err != nil {
			return nil, nil, agent.Wrap(agent.CodeMe, err, "held credential "+clip(c.CredentialID)+" is unreadable")
		}
		chosen[c.Referent] = vc
	}
	list, sub, err := w3cvc.BuildSubmission(def, chosen)
	switch {
	case errors.Is(err, w3cvc.ErrSelectiveDisclosureUnsupported):
		return nil, nil, agent.Wrap(agent.CodeMsgUnsupported, err, "the request needs selective disclosure (limit_disclosure required), which is not supported")
	case err != nil:
		return nil, nil, agent.Wrap(agent.CodeMsg, err, "the credentials do not answer the request: "+clip(err.Error()))
	}
	signer, err := x.cfg.Signer(ctx, holder)
	if err != nil {
		return nil, nil, agent.Wrap(agent.CodeMe, err, "no signing key for "+clip(holder))
	}
	vp, err := w3cvc.Present(list, signer, x.presentationFormat(def, list), r.Options.Challenge, r.Options.Domain, sub)
	if err != nil {
		return nil, nil, agent.Wrap(agent.CodeMe, err, "could not make the presentation")
	}
	shown := &aip.W3CProofPresentation{PresentationJSON: string(vp), CredentialsForReferents: referents(sub)}
	if vp[0] != '{' {
		vp, _ = json.Marshal(string(vp)) // a JWT travels as a JSON string
	}
	return vp, shown, nil
}

func referents(sub *w3cvc.Submission) []aip.W3CPresentedReferent {
	out := []aip.W3CPresentedReferent{}
	if sub != nil {
		for _, d := range sub.DescriptorMap {
			out = append(out, aip.W3CPresentedReferent{Referent: d.ID, Path: d.Path})
		}
	}
	return out
}

// holders are the DIDs a presentation on the connection may be held by:
// the peer's DID and the did:key of each of its authentication keys.
func (x *W3C) holders(ctx context.Context, peer string) []string {
	out := []string{peer}
	if x.cfg.Resolver == nil {
		return out
	}
	doc, err := x.cfg.Resolver.Resolve(ctx, peer)
	if err != nil {
		return out
	}
	ks, err := doc.Authentication()
	if err != nil {
		return out
	}
	for _, k := range ks {
		if d := did.KeyDID(k); d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// Verify verifies a VP against our request: holder binding to the
// connection, challenge and domain, every credential (signature, validity,
// status), and the submission against our definition. Failures are
// NOT_VERIFIED with the reason.
func (x *W3C) Verify(ctx context.Context, request, presentation []byte, holder string) (*aip.ProofPresentation, error) {
	r, def, err := readRequest(request)
	if err != nil {
		return nil, err
	}
	raw := bytes.TrimSpace(presentation)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			raw = []byte(s)
		}
	}
	out := &aip.ProofPresentation{W3C: &aip.W3CProofPresentation{PresentationJSON: string(raw), CredentialsForReferents: []aip.W3CPresentedReferent{}}}
	p, err := x.cfg.Verifier.VerifyPresentation(ctx, raw, w3cvc.PresentationCheck{
		Challenge: r.Options.Challenge, Domain: r.Options.Domain, Holders: x.holders(ctx, holder), Definition: def})
	if err != nil {
		var we *w3cvc.Error
		if errors.As(err, &we) {
			return notVerified(out, we.Reason+": "+clip(we.Msg)), nil
		}
		return notVerified(out, clip(err.Error())), nil
	}
	if r.Options.Challenge == "" {
		return notVerified(out, "our request had no challenge"), nil
	}
	out.W3C.CredentialsForReferents = referents(p.Submission)
	out.VerificationResult = aip.Verified
	return out, nil
}

// ToNegotiation maps the API's W3C negotiation onto w3cvc's.
func ToNegotiation(n *aip.W3CProofNegotiation) w3cvc.Negotiation {
	out := w3cvc.Negotiation{SubmissionRequirementJSONs: n.SubmissionRequirementJSONs, Challenge: n.Challenge, Domain: n.Domain}
	for _, g := range n.AttributeGroups {
		wg := w3cvc.AttributeGroup{Referent: g.Referent}
		for _, a := range g.Attributes {
			wa := w3cvc.Attribute{AttributePaths: a.AttributePaths, IsHolderSubject: a.IsHolderSubject, PresentationType: string(a.PresentationType)}
			if v := a.ValueRestrictions; v != nil {
				wa.ValueRestrictions = &w3cvc.ValueRestrictions{DataFormat: v.DataFormat, Pattern: v.Pattern, InSet: v.InSet, NotInSet: v.NotInSet,
					Equal: v.Equal, NotEqual: v.NotEqual, MinLength: v.MinLength, MaxLength: v.MaxLength,
					LessThan: v.LessThan, LessThanOrEqual: v.LessThanOrEqual, GreaterThan: v.GreaterThan, GreaterThanOrEqual: v.GreaterThanOrEqual}
			}
			wg.Attributes = append(wg.Attributes, wa)
		}
		out.AttributeGroups = append(out.AttributeGroups, wg)
	}
	return out
}

// FromNegotiation maps w3cvc's negotiation onto the API's.
func FromNegotiation(n w3cvc.Negotiation) *aip.W3CProofNegotiation {
	out := &aip.W3CProofNegotiation{AttributeGroups: []aip.W3CAttributeGroup{}, SubmissionRequirementJSONs: n.SubmissionRequirementJSONs,
		Challenge: n.Challenge, Domain: n.Domain}
	for _, g := range n.AttributeGroups {
		ag := aip.W3CAttributeGroup{Referent: g.Referent, Attributes: []aip.W3CAttribute{}}
		for _, a := range g.Attributes {
			pt := aip.W3CAttributePresentation(a.PresentationType)
			if pt == "" {
				pt = aip.PresentValue
			}
			aa := aip.W3CAttribute{AttributePaths: a.AttributePaths, IsHolderSubject: a.IsHolderSubject, PresentationType: pt}
			if v := a.ValueRestrictions; v != nil {
				aa.ValueRestrictions = &aip.W3CValueRestrictions{DataFormat: v.DataFormat, Pattern: v.Pattern, InSet: v.InSet, NotInSet: v.NotInSet,
					Equal: v.Equal, NotEqual: v.NotEqual, MinLength: v.MinLength, MaxLength: v.MaxLength,
					LessThan: v.LessThan, LessThanOrEqual: v.LessThanOrEqual, GreaterThan: v.GreaterThan, GreaterThanOrEqual: v.GreaterThanOrEqual}
			}
			ag.Attributes = append(ag.Attributes, aa)
		}
		out.AttributeGroups = append(out.AttributeGroups, ag)
	}
	return out
}

// PrivateKeys finds the agent's private keys by key id; *agent.Identity
// is one.
type PrivateKeys interface {
	PrivateKey(ctx context.Context, kid string) (keys.PrivateKey, error)
}

// IdentitySigner returns a W3CConfig.Signer over the agent's keys: the
// first authentication key of the DID's document that the agent holds.
func IdentitySigner(ks PrivateKeys, r did.Resolver) func(ctx context.Context, d string) (w3cvc.Signer, error) {
	return func(ctx context.Context, d string) (w3cvc.Signer, error) {
		doc, err := r.Resolve(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", clip(d), err)
		}
		auth, err := doc.Authentication()
		if err != nil {
			return nil, err
		}
		for _, k := range auth {
			if priv, err := ks.PrivateKey(ctx, k.ID); err == nil && priv.Curve.IsSigning() {
				return w3cvc.KeySigner(d, priv), nil
			}
		}
		return nil, fmt.Errorf("the agent holds no authentication key of %s", clip(d))
	}
}
