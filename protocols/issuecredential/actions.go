package issuecredential

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
)

// Securing mechanisms of a W3C offer (aip.W3CCredentialPreview).
const (
	MechanismJWT = "JWT"
	MechanismLDP = "LINKED_DATA_PROOF"
)

// SendOffer starts an ISSUER exchange: it offers a credential on a
// connection. AnonCreds: a credential definition the agent created, and a
// value for each attribute of its schema. W3C: the credential as JSON
// (issuer and credentialSubject.id are set when issuing: the agent's DID
// and the connection's) and how it is secured (JWT or LINKED_DATA_PROOF).
func (s *Service) SendOffer(ctx context.Context, connectionID string, in aip.CredentialOfferInput) (*aip.CredentialExchange, error) {
	if (in.Anoncreds == nil) == (in.W3C == nil) {
		return nil, agent.Errorf(agent.CodeMsg, "offer: exactly one of anoncreds and w3c is required")
	}
	conn, err := s.cfg.Connections.Connection(ctx, connectionID)
	if err != nil {
		return nil, err
	}
	e := &exchange{CredentialExchange: aip.CredentialExchange{ID: agent.NewID(), ConnectionID: conn.ID, MyRole: aip.CredExIssuer,
		AutoAcceptRequest: in.AutoAcceptRequest}, TheirDID: conn.TheirDID, MyDID: conn.MyDID}
	body := OfferBody{Comment: in.Comment}
	var att agent.Attachment
	preview := &aip.CredentialPreview{Comment: in.Comment}
	if in.Anoncreds != nil {
		att, err = s.anoncredsOffer(ctx, in.Anoncreds)
		if err != nil {
			return nil, err
		}
		e.Family = famAnoncreds
		p := *in.Anoncreds
		var o anoncreds.CredentialOffer
		_ = json.Unmarshal(att.Data.JSON, &o)
		p.SchemaID = o.SchemaID
		preview.Anoncreds = &p
		body.CredentialPreview = previewOf(p.Attributes)
	} else {
		if att, e.Family, err = s.w3cOffer(ctx, in.W3C); err != nil {
			return nil, err
		}
		p := *in.W3C
		preview.W3C = &p
	}
	e.Offer, e.OfferFormat = att.Data.JSON, att.Format
	e.Messages.Offer = preview
	msg, err := agent.NewMessage(OfferType, body)
	if err != nil {
		return nil, err
	}
	msg.From, msg.To, msg.Attachments = conn.MyDID, []string{conn.TheirDID}, []agent.Attachment{att}
	e.ThreadID = msg.ID
	now := s.now()
	e.Created, e.Modified = now, now
	e.State = aip.CredExOffer
	e.History = []Transition{{To: aip.CredExOffer, At: now, Cause: OfferType, MsgID: msg.ID}}
	outs, err := s.cfg.Messenger.Outbound(ctx, msg)
	if err != nil {
		return nil, err
	}
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		w.Enqueue(outs...)
		if err := save(w, e, nil); err != nil {
			return err
		}
		return s.cfg.Events.Publish(w, aip.TopicCredentialExchange, e.view())
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "credential offered", "exchange", e.ID, "connection", conn.ID, "family", e.Family)
	return e.view(), nil
}

// anoncredsOffer builds the offer attachment for a credential definition
// the agent created, checking the attributes against its schema.
func (s *Service) anoncredsOffer(ctx context.Context, p *aip.AnoncredsCredentialPreview) (agent.Attachment, error) {
	keys, err := s.cfg.Credentials.IssuerKeys(ctx, p.CredDefID)
	if err != nil {
		return agent.Attachment{}, err
	}
	sc, err := s.cfg.Credentials.ResolveSchema(ctx, keys.SchemaID)
	if err != nil {
		return agent.Attachment{}, err
	}
	if _, err := valuesFor(sc, p.Attributes); err != nil {
		return agent.Attachment{}, err
	}
	offer, err := anoncreds.NewCredentialOffer(keys.SchemaID, p.CredDefID, keys.KeyCorrectnessProof)
	if err != nil {
		return agent.Attachment{}, agent.Wrap(agent.CodeMe, err, "could not make the credential offer")
	}
	return jsonAttachment(FormatAnoncredsOffer, offer)
}

// valuesFor maps the attributes onto the schema's: each attribute of the
// schema exactly once, no other.
func valuesFor(sc *anoncreds.Schema, attrs []aip.Attribute) (map[string]string, error) {
	vals := make(map[string]string, len(attrs))
	for _, a := range attrs {
		if !slices.Contains(sc.AttrNames, a.Name) {
			return nil, agent.Errorf(agent.CodeMsg, "attribute %q is not in the schema (%v)", clip(a.Name, 60), sc.AttrNames)
		}
		if _, dup := vals[a.Name]; dup {
			return nil, agent.Errorf(agent.CodeMsg, "attribute %q given twice", clip(a.Name, 60))
		}
		vals[a.Name] = a.Value
	}
	for _, n := range sc.AttrNames {
		if _, ok := vals[n]; !ok {
			return nil, agent.Errorf(agent.CodeMsg, "attribute %q of the schema has no value", n)
		}
	}
	return vals, nil
}

// w3cOffer builds the offer attachment of a W3C credential.
func (s *Service) w3cOffer(ctx context.Context, p *aip.W3CCredentialPreview) (agent.Attachment, family, error) {
	if s.cfg.Signer == nil {
		return agent.Attachment{}, "", agent.Errorf(agent.CodeMsg, "this agent does not issue W3C credentials (no signing key)")
	}
	var vc map[string]any
	if err := json.Unmarshal([]byte(p.CredentialJSON), &vc); err != nil || vc == nil {
		return agent.Attachment{}, "", agent.Errorf(agent.CodeMsg, "credentialJson: not a JSON object")
	}
	if _, ok := vc["credentialSubject"].(map[string]any); !ok {
		return agent.Attachment{}, "", agent.Errorf(agent.CodeMsg, "credentialJson: credentialSubject must be an object")
	}
	if _, ok := vc["proof"]; ok {
		return agent.Attachment{}, "", agent.Errorf(agent.CodeMsg, "credentialJson: the credential to issue has no proof yet")
	}
	switch p.SecuringMechanism {
	case MechanismJWT:
		a, err := jsonAttachment(FormatJWTDetail, LDProofDetail{Credential: vc})
		return a, famJWT, err
	case MechanismLDP:
		a, err := jsonAttachment(FormatLDProofDetail, LDProofDetail{Credential: vc, Options: &LDProofOpts{ProofType: "Ed25519Signature2020"}})
		return a, famLDP, err
	}
	return agent.Attachment{}, "", agent.Errorf(agent.CodeMsg, "securingMechanism: %q is neither JWT nor LINKED_DATA_PROOF", p.SecuringMechanism)
}

// previewOf is the credential_preview of attributes.
func previewOf(attrs []aip.Attribute) *Preview {
	p := &Preview{Type: PreviewType, Body: PreviewBody{Attributes: []PreviewAttribute{}}}
	for _, a := range attrs {
		p.Body.Attributes = append(p.Body.Attributes, PreviewAttribute{Name: a.Name, Value: a.Value})
	}
	return p
}

// AcceptOffer makes a HOLDER in state OFFER request the credential.
func (s *Service) AcceptOffer(ctx context.Context, id string) (*aip.CredentialExchange, error) {
	e, err := load(ctx, s.cfg.Store.New(), id)
	if err != nil {
		return nil, err
	}
	if e.MyRole != aip.CredExHolder || e.State != aip.CredExOffer {
		return nil, agent.Errorf(agent.CodeConflict, "acceptOffer: exchange %s is a %s in %s; only a HOLDER in OFFER can accept", e.ID, e.MyRole, e.State)
	}
	format := FormatAnoncredsRequest
	var data any = json.RawMessage(e.Offer)
	var sealed []byte
	switch e.Family {
	case famAnoncreds:
		if e.OfferFormat == FormatHLIndyOffer {
			format = FormatHLIndyRequest
		}
		offer, err := anoncreds.ParseCredentialOffer(e.Offer)
		if err != nil {
			return nil, agent.Wrap(agent.CodeMsg, err, "the offer is malformed")
		}
		cd, err := s.cfg.Credentials.ResolveCredDef(ctx, offer.CredDefID)
		if err != nil {
			return nil, err
		}
		ls, err := s.cfg.Credentials.LinkSecret(ctx)
		if err != nil {
			return nil, err
		}
		req, meta, err := anoncreds.CreateCredentialRequest(offer, cd, ls, e.MyDID, "master_secret")
		if err != nil {
			return nil, agent.Wrap(agent.CodeMsg, err, "the offer cannot be accepted: "+err.Error())
		}
		mb, err := json.Marshal(meta)
		if err != nil {
			return nil, err
		}
		sealed, err = s.cfg.Sealer.Seal(mb, metaAAD(e.ID))
		clear(mb)
		if err != nil {
			return nil, fmt.Errorf("issuecredential: sealing the request metadata: %w", err)
		}
		data = req
	case famLDP:
		format = FormatLDProofDetail
	case famJWT:
		format = FormatJWTDetail
	}
	att, err := jsonAttachment(format, data)
	if err != nil {
		return nil, err
	}
	msg, err := agent.NewMessage(RequestType, RequestBody{})
	if err != nil {
		return nil, err
	}
	msg.From, msg.To, msg.ThID, msg.Attachments = e.MyDID, []string{e.TheirDID}, e.ThreadID, []agent.Attachment{att}
	outs, err := s.cfg.Messenger.Outbound(ctx, msg)
	if err != nil {
		return nil, err
	}
	var out *aip.CredentialExchange
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		e, err := load(ctx, w, id)
		if err != nil {
			return err
		}
		old := e.clone()
		if e.MyRole != aip.CredExHolder {
			return agent.Errorf(agent.CodeConflict, "acceptOffer: exchange %s is an ISSUER", e.ID)
		}
		if err := e.move(aip.CredExRequest, s.now(), "acceptOffer", msg.ID); err != nil {
			return err
		}
		e.Request, e.RequestFormat, e.SealedMeta = att.Data.JSON, att.Format, sealed
		w.Enqueue(outs...)
		if err := save(w, e, old); err != nil {
			return err
		}
		out = e.view()
		return s.cfg.Events.Publish(w, aip.TopicCredentialExchange, out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AcceptRequest makes an ISSUER in state REQUEST issue the credential.
func (s *Service) AcceptRequest(ctx context.Context, id string) (*aip.CredentialExchange, error) {
	e, err := load(ctx, s.cfg.Store.New(), id)
	if err != nil {
		return nil, err
	}
	if e.MyRole != aip.CredExIssuer || e.State != aip.CredExRequest {
		return nil, agent.Errorf(agent.CodeConflict, "acceptRequest: exchange %s is a %s in %s; only an ISSUER in REQUEST can issue", e.ID, e.MyRole, e.State)
	}
	msg, issued, err := s.issue(ctx, e)
	if err != nil {
		return nil, err
	}
	outs, err := s.cfg.Messenger.Outbound(ctx, msg)
	if err != nil {
		return nil, err
	}
	var out *aip.CredentialExchange
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		e, err := load(ctx, w, id)
		if err != nil {
			return err
		}
		old := e.clone()
		if e.MyRole != aip.CredExIssuer {
			return agent.Errorf(agent.CodeConflict, "acceptRequest: exchange %s is a HOLDER", e.ID)
		}
		if err := e.move(aip.CredExIssued, s.now(), "acceptRequest", msg.ID); err != nil {
			return err
		}
		e.Messages.Issued = issued
		w.Enqueue(outs...)
		if err := save(w, e, old); err != nil {
			return err
		}
		out = e.view()
		return s.cfg.Events.Publish(w, aip.TopicCredentialExchange, out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteCredentialExchange abandons a live exchange with a problem report
// to its connection (pthid = its thread), then deletes it; a terminal one
// is deleted at once.
func (s *Service) DeleteCredentialExchange(ctx context.Context, id string) error {
	e, err := load(ctx, s.cfg.Store.New(), id)
	if err != nil {
		return err
	}
	var outs []*agent.OutboundMessage
	if !aip.Terminal(e.State) {
		pr, err := agent.NewMessage(agent.ProblemReportType, agent.ProblemReportBody{Code: CodeAbandoned, Comment: "the credential exchange was deleted"})
		if err != nil {
			return err
		}
		pr.From, pr.To, pr.PThID = e.MyDID, []string{e.TheirDID}, e.ThreadID
		if outs, err = s.cfg.Messenger.Outbound(ctx, pr); err != nil {
			return err
		}
	}
	return s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		e, err := load(ctx, w, id)
		if err != nil {
			return err
		}
		if !aip.Terminal(e.State) {
			w.Enqueue(outs...)
		}
		remove(w, e)
		return nil
	})
}

// CodeAbandoned is the problem code the agent sends when it abandons an exchange.
const CodeAbandoned = "e.p.req.abandoned"
