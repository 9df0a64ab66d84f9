package issuecredential

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
	"github.com/agentd/agentd/protocols/reportproblem"
	"github.com/agentd/agentd/w3cvc"
)

// HandleMessage handles the Issue Credential 3.0 messages. Every state
// change is staged in the message's unit of work with the exchange's
// event and the replies; an error changes nothing and is answered with a
// problem report.
func (s *Service) HandleMessage(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	m := in.Message
	switch m.Type {
	case ProblemReportType:
		_, err := s.HandleProblem(ctx, in)
		return nil, err
	}
	if m.From == "" || !in.Envelope.Authenticated {
		return nil, agent.Errorf(agent.CodeTrust, "credential exchange messages must come from an authenticated DID")
	}
	conn, err := s.cfg.Connections.ConnectionOf(ctx, in.Work, m.From)
	if errors.Is(err, agent.ErrNotFound) {
		return nil, agent.Errorf(agent.CodeForbidden, "the sender has no connection with this agent")
	}
	if err != nil {
		return nil, err
	}
	switch m.Type {
	case ProposeType:
		return nil, s.onProposal(ctx, in, conn)
	case OfferType:
		return nil, s.onOffer(ctx, in, conn)
	case RequestType:
		return s.onRequest(ctx, in, conn)
	case IssueType:
		return s.onIssue(ctx, in, conn)
	case AckType:
		return nil, s.onAck(ctx, in, conn)
	}
	return nil, agent.Errorf(agent.CodeMsgUnsupported, "message type %q is not supported", m.Type)
}

// ofThread returns the exchange of role on the message's thread, checking
// that the message comes from its connection.
func (s *Service) ofThread(ctx context.Context, in *agent.Inbound, conn *aip.Connection, role aip.CredExRole) (*exchange, error) {
	e, err := byThread(ctx, in.Work, role, in.Message.Thread())
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, agent.Errorf(agent.CodeNotFound, "no credential exchange on thread %s", clip(in.Message.Thread(), 80))
	}
	if e.ConnectionID != conn.ID {
		return nil, agent.Errorf(agent.CodeForbidden, "the message does not come from the exchange's connection")
	}
	return e, nil
}

// start creates an exchange from the first message of a thread.
func (s *Service) start(ctx context.Context, in *agent.Inbound, conn *aip.Connection, role aip.CredExRole, state aip.CredExState) (*exchange, error) {
	m := in.Message
	if prev, err := byThread(ctx, in.Work, role, m.Thread()); err != nil {
		return nil, err
	} else if prev != nil {
		return nil, agent.Errorf(agent.CodeConflict, "thread %s has a credential exchange already", clip(m.Thread(), 80))
	}
	now := s.now()
	return &exchange{CredentialExchange: aip.CredentialExchange{ID: agent.NewID(), ThreadID: m.Thread(), ConnectionID: conn.ID,
		MyRole: role, State: state, Created: now, Modified: now}, TheirDID: conn.TheirDID, MyDID: conn.MyDID,
		History: []Transition{{To: state, At: now, Cause: m.Type, MsgID: m.ID}}}, nil
}

func (s *Service) commit(w *agent.Work, e, old *exchange) error {
	if err := save(w, e, old); err != nil {
		return err
	}
	return s.cfg.Events.Publish(w, aip.TopicCredentialExchange, e.view())
}

// onProposal records a holder's proposal as an ISSUER exchange in
// PROPOSAL; the operator answers it with an offer (SendOffer) or deletes it.
func (s *Service) onProposal(ctx context.Context, in *agent.Inbound, conn *aip.Connection) error {
	var body ProposeBody
	if err := in.Message.DecodeBody(&body); err != nil {
		return agent.Errorf(agent.CodeMsg, "propose-credential: malformed body")
	}
	e, err := s.start(ctx, in, conn, aip.CredExIssuer, aip.CredExProposal)
	if err != nil {
		return err
	}
	p := &aip.CredentialPreview{Comment: body.Comment}
	if body.CredentialPreview != nil {
		p.Anoncreds = &aip.AnoncredsCredentialPreview{Attributes: attributesOf(body.CredentialPreview)}
	}
	e.Messages.Proposal = p
	return s.commit(in.Work, e, nil)
}

// onOffer starts a HOLDER exchange in OFFER.
func (s *Service) onOffer(ctx context.Context, in *agent.Inbound, conn *aip.Connection) error {
	var body OfferBody
	if err := in.Message.DecodeBody(&body); err != nil {
		return agent.Errorf(agent.CodeMsg, "offer-credential: malformed body")
	}
	att, fam, data, err := pick(in.Message, "offer")
	if err != nil {
		return err
	}
	p := &aip.CredentialPreview{Comment: body.Comment}
	switch fam {
	case famAnoncreds:
		o, err := anoncreds.ParseCredentialOffer(data)
		if err != nil || o.CredDefID == "" || o.SchemaID == "" {
			return agent.Errorf(agent.CodeMsg, "offer-credential: the AnonCreds offer is malformed")
		}
		p.Anoncreds = &aip.AnoncredsCredentialPreview{CredDefID: o.CredDefID, SchemaID: o.SchemaID, Attributes: attributesOf(body.CredentialPreview)}
	default:
		var d LDProofDetail
		if err := json.Unmarshal(data, &d); err != nil || d.Credential == nil {
			return agent.Errorf(agent.CodeMsg, "offer-credential: the credential detail is malformed")
		}
		cj, _ := json.Marshal(d.Credential)
		mech := MechanismLDP
		if fam == famJWT {
			mech = MechanismJWT
		}
		p.W3C = &aip.W3CCredentialPreview{CredentialJSON: string(cj), SecuringMechanism: mech}
	}
	e, err := s.start(ctx, in, conn, aip.CredExHolder, aip.CredExOffer)
	if err != nil {
		return err
	}
	e.Family, e.Offer, e.OfferFormat = fam, bytes.Clone(data), att.Format
	e.Messages.Offer = p
	return s.commit(in.Work, e, nil)
}

// attributesOf is a preview's attributes.
func attributesOf(p *Preview) []aip.Attribute {
	if p == nil {
		return nil
	}
	out := make([]aip.Attribute, 0, len(p.Body.Attributes))
	for _, a := range p.Body.Attributes {
		out = append(out, aip.Attribute{Name: a.Name, Value: a.Value})
	}
	return out
}

// onRequest moves an ISSUER exchange to REQUEST, and issues at once when
// it auto-accepts requests.
func (s *Service) onRequest(ctx context.Context, in *agent.Inbound, conn *aip.Connection) ([]agent.Message, error) {
	e, err := s.ofThread(ctx, in, conn, aip.CredExIssuer)
	if err != nil {
		return nil, err
	}
	old := e.clone()
	if err := e.move(aip.CredExRequest, s.now(), in.Message.Type, in.Message.ID); err != nil {
		return nil, err
	}
	att, fam, data, err := pick(in.Message, "request")
	if err != nil {
		return nil, err
	}
	if fam != e.Family {
		return nil, agent.Errorf(agent.CodeMsg, "request-credential: a %s request answers a %s offer", fam, e.Family)
	}
	if fam == famAnoncreds {
		req, err := anoncreds.ParseCredentialRequest(data)
		if err != nil {
			return nil, agent.Wrap(agent.CodeMsg, err, "request-credential: the AnonCreds request is malformed")
		}
		if e.Messages.Offer == nil || e.Messages.Offer.Anoncreds == nil || req.CredDefID != e.Messages.Offer.Anoncreds.CredDefID {
			return nil, agent.Errorf(agent.CodeMsg, "request-credential: the request names another credential definition than the offer")
		}
	}
	e.Request, e.RequestFormat = bytes.Clone(data), att.Format
	var replies []agent.Message
	if e.AutoAcceptRequest {
		msg, issued, err := s.issue(ctx, e)
		if err != nil {
			return nil, err
		}
		if err := e.move(aip.CredExIssued, s.now(), "autoAcceptRequest", msg.ID); err != nil {
			return nil, err
		}
		e.Messages.Issued = issued
		replies = append(replies, msg)
	}
	return replies, s.commit(in.Work, e, old)
}

// onIssue receives the credential: verified, stored in the credential
// store with the exchange's change, acknowledged. A credential that does
// not verify abandons the exchange (nothing is stored) and is answered
// with a problem report.
func (s *Service) onIssue(ctx context.Context, in *agent.Inbound, conn *aip.Connection) ([]agent.Message, error) {
	e, err := s.ofThread(ctx, in, conn, aip.CredExHolder)
	if err != nil {
		return nil, err
	}
	if e.State != aip.CredExRequest {
		return nil, agent.Errorf(agent.CodeConflict, "issue-credential: the exchange is %s, not REQUEST", e.State)
	}
	old := e.clone()
	m := in.Message
	cred, raw, verr := s.receive(ctx, e, m)
	if verr != nil {
		if !agent.HasCode(verr, agent.CodeMsg) && !agent.HasCode(verr, agent.CodeTrust) {
			return nil, verr // our own trouble (storage, resolution): the issuer may send again
		}
		e.ErrorMessage = agent.ErrorComment(verr)
		if err := e.move(aip.CredExAbandoned, s.now(), m.Type, m.ID); err != nil {
			return nil, err
		}
		if err := s.commit(in.Work, e, old); err != nil {
			return nil, err
		}
		pr := agent.ProblemReport(m, verr)
		pr.PThID = e.ThreadID
		s.log.InfoContext(ctx, "credential refused", "exchange", e.ID, "reason", e.ErrorMessage)
		return []agent.Message{pr}, nil
	}
	cred.ConnectionID = e.ConnectionID
	if err := s.cfg.Credentials.Put(in.Work, cred, raw); err != nil {
		return nil, err
	}
	if err := e.move(aip.CredExIssued, s.now(), m.Type, m.ID); err != nil {
		return nil, err
	}
	e.Messages.Issued = &aip.IssuedCredential{CredentialID: cred.ID, Format: cred.Format, CredentialJSON: cred.CredentialJSON,
		Attributes: cred.Attributes, CredDefID: cred.CredDefID}
	ack, err := in.Message.Reply(AckType, AckBody{Status: "OK"})
	if err != nil {
		return nil, err
	}
	ack.ThID = e.ThreadID
	if err := e.move(aip.CredExDone, s.now(), AckType, ack.ID); err != nil {
		return nil, err
	}
	e.SealedMeta = nil // used up
	return []agent.Message{ack}, s.commit(in.Work, e, old)
}

// receive checks an issued credential and returns what to store.
func (s *Service) receive(ctx context.Context, e *exchange, m agent.Message) (*aip.Credential, []byte, error) {
	_, fam, data, err := pick(m, "credential")
	if err != nil {
		return nil, nil, err
	}
	if fam != e.Family {
		return nil, nil, agent.Errorf(agent.CodeMsg, "issue-credential: a %s credential answers a %s offer", fam, e.Family)
	}
	if fam == famAnoncreds {
		return s.receiveAnoncreds(ctx, e, data)
	}
	raw := data
	if fam == famJWT {
		var jwt string
		if err := json.Unmarshal(data, &jwt); err != nil {
			return nil, nil, agent.Errorf(agent.CodeMsg, "issue-credential: a jwt_vc_json credential is a JSON string")
		}
		raw = []byte(jwt)
	}
	vc, err := s.cfg.Verifier.VerifyCredential(ctx, raw)
	if err != nil {
		return nil, nil, agent.Wrap(agent.CodeMsg, err, "the credential does not verify: "+w3cvc.ReasonOf(err))
	}
	if (fam == famJWT) != (vc.Format == w3cvc.FormatJWTVC) {
		return nil, nil, agent.Errorf(agent.CodeMsg, "issue-credential: the credential is %s, the format says otherwise", vc.Format)
	}
	if vc.Subject != e.MyDID {
		return nil, nil, agent.Errorf(agent.CodeMsg, "the credential's subject is not this agent's DID on the connection")
	}
	return &aip.Credential{Format: aip.FormatW3C, CredentialJSON: string(raw)}, nil, nil
}

func (s *Service) receiveAnoncreds(ctx context.Context, e *exchange, data []byte) (*aip.Credential, []byte, error) {
	issued, err := anoncreds.ParseCredential(data)
	if err != nil {
		return nil, nil, agent.Wrap(agent.CodeMsg, err, "the AnonCreds credential is malformed")
	}
	offer, err := anoncreds.ParseCredentialOffer(e.Offer)
	if err != nil {
		return nil, nil, err
	}
	if issued.CredDefID != offer.CredDefID || issued.SchemaID != offer.SchemaID {
		return nil, nil, agent.Errorf(agent.CodeMsg, "the credential names another credential definition or schema than the offer")
	}
	cd, err := s.cfg.Credentials.ResolveCredDef(ctx, offer.CredDefID)
	if err != nil {
		return nil, nil, err
	}
	if len(e.SealedMeta) == 0 {
		return nil, nil, fmt.Errorf("issuecredential: exchange %s has no request metadata", e.ID)
	}
	mb, err := s.cfg.Sealer.Open(e.SealedMeta, metaAAD(e.ID))
	if err != nil {
		return nil, nil, fmt.Errorf("issuecredential: the request metadata cannot be unsealed")
	}
	defer clear(mb)
	meta, err := anoncreds.ParseCredentialRequestMetadata(mb)
	if err != nil {
		return nil, nil, err
	}
	ls, err := s.cfg.Credentials.LinkSecret(ctx)
	if err != nil {
		return nil, nil, err
	}
	processed, err := anoncreds.ProcessCredential(issued, meta, ls, cd)
	if err != nil {
		return nil, nil, agent.Wrap(agent.CodeMsg, err, "the credential does not verify: "+err.Error())
	}
	raw, err := json.Marshal(processed)
	if err != nil {
		return nil, nil, err
	}
	return &aip.Credential{Format: aip.FormatAnoncreds}, raw, nil
}

// onAck: the holder acknowledged; the ISSUER exchange is DONE.
func (s *Service) onAck(ctx context.Context, in *agent.Inbound, conn *aip.Connection) error {
	e, err := s.ofThread(ctx, in, conn, aip.CredExIssuer)
	if err != nil {
		return err
	}
	old := e.clone()
	if e.State != aip.CredExIssued {
		return agent.Errorf(agent.CodeConflict, "ack: the exchange is %s, not ISSUED", e.State)
	}
	if err := e.move(aip.CredExDone, s.now(), in.Message.Type, in.Message.ID); err != nil {
		return err
	}
	return s.commit(in.Work, e, old)
}

// HandleProblem abandons the exchange a problem report (Report Problem
// 2.0, or this protocol's problem-report) is about: the one whose thread
// is the report's pthid (or thid), on the sender's connection. It reports
// whether the report was about a credential exchange. A report about an
// exchange that is over already changes nothing.
func (s *Service) HandleProblem(ctx context.Context, in *agent.Inbound) (bool, error) {
	m := in.Message
	if m.From == "" || !in.Envelope.Authenticated {
		return false, nil
	}
	var e *exchange
	for _, thid := range []string{m.PThID, m.ThID} {
		if thid == "" {
			continue
		}
		for _, role := range []aip.CredExRole{aip.CredExIssuer, aip.CredExHolder} {
			x, err := byThread(ctx, in.Work, role, thid)
			if err != nil {
				return false, err
			}
			if x != nil && x.TheirDID == m.From {
				e = x
			}
		}
	}
	if e == nil {
		return false, nil
	}
	conn, err := s.cfg.Connections.ConnectionOf(ctx, in.Work, m.From)
	if err != nil || conn.ID != e.ConnectionID {
		return false, nil
	}
	if aip.Terminal(e.State) {
		return true, nil
	}
	old := e.clone()
	code, comment := agent.CodeMsg, "malformed problem report"
	if p, err := reportproblem.Decode(agent.Message{Type: agent.ProblemReportType, Body: m.Body}); err == nil {
		code, comment = p.Code, p.Comment
	}
	e.ErrorMessage = clip(code+": "+comment, 500)
	if err := e.move(aip.CredExAbandoned, s.now(), m.Type, m.ID); err != nil {
		return true, err
	}
	s.log.InfoContext(ctx, "credential exchange abandoned by the peer", "exchange", e.ID, "code", code)
	return true, s.commit(in.Work, e, old)
}

// WrapProblemReports returns a handler for Report Problem 2.0 that first
// abandons the credential exchange a report is about (HandleProblem), then
// hands every report to next (reportproblem.Service: logs, waiters).
func (s *Service) WrapProblemReports(next agent.Handler) agent.Handler {
	return agent.HandlerFunc(func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
		if _, err := s.HandleProblem(ctx, in); err != nil {
			return nil, err
		}
		return next.HandleMessage(ctx, in)
	})
}
