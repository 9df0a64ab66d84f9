package presentproof

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
	"github.com/agentd/agentd/protocols/reportproblem"
)

// W3CFormat is the W3C side of the protocol: DIF Presentation Exchange
// definitions and submissions (see NewW3C).
type W3CFormat interface {
	// Request builds the JSON of a definitions attachment (DIFRequest)
	// from the API's negotiation, with a fresh challenge when it has none,
	// and returns the negotiation as the exchange shows it (with the wire
	// definition in PresentationDefinitionJSON). Bad input: CodeMsg.
	Request(n *aip.W3CProofNegotiation) ([]byte, *aip.W3CProofNegotiation, error)
	// ParseRequest reads a received definitions attachment.
	ParseRequest(data []byte) (*aip.W3CProofNegotiation, error)
	// CredentialsFor matches held W3C credentials against the request's
	// input descriptors.
	CredentialsFor(ctx context.Context, request []byte, creds Credentials) ([]aip.CredentialsForReferent, error)
	// Present builds and signs, as holder, the VP answering the request
	// with the chosen credentials: its JSON (a JSON string for a JWT) and
	// the exchange's view of it.
	Present(ctx context.Context, request []byte, holder string, in *aip.W3CPresentationInput, creds Credentials) ([]byte, *aip.W3CProofPresentation, error)
	// Verify verifies a VP against our request, the holder being the
	// connection's DID. An invalid presentation is a NOT_VERIFIED result,
	// not an error; an error means verification could not run.
	Verify(ctx context.Context, request, presentation []byte, holder string) (*aip.ProofPresentation, error)
}

// requestAttachment builds the attachment of a request (or proposal) and
// the request as the exchange shows it.
func (s *Service) requestAttachment(req aip.ProofRequest) (agent.Attachment, *aip.ProofRequest, error) {
	if (req.Anoncreds == nil) == (req.W3C == nil) {
		return agent.Attachment{}, nil, agent.Errorf(agent.CodeMsg, "exactly one of the request formats (anoncreds, w3c) must be given")
	}
	shown := &aip.ProofRequest{Comment: req.Comment}
	if req.Anoncreds != nil {
		pr, err := ToAnoncredsRequest(req.Anoncreds)
		if err != nil {
			return agent.Attachment{}, nil, err
		}
		data, err := AnoncredsRequestJSON(pr)
		if err != nil {
			return agent.Attachment{}, nil, err
		}
		att := agent.Attachment{ID: agent.NewID(), MediaType: "application/json", Format: FormatAnoncredsRequest, Data: agent.AttachmentData{JSON: data}}
		a := *req.Anoncreds
		a.Name, a.Version, a.Nonce = pr.Name, pr.Version, pr.Nonce
		shown.Anoncreds = &a
		return att, shown, nil
	}
	if s.cfg.W3C == nil {
		return agent.Attachment{}, nil, unsupportedW3C()
	}
	data, n, err := s.cfg.W3C.Request(req.W3C)
	if err != nil {
		return agent.Attachment{}, nil, err
	}
	shown.W3C = n
	return agent.Attachment{ID: agent.NewID(), MediaType: "application/json", Format: FormatDIFDefinition, Data: agent.AttachmentData{JSON: data}}, shown, nil
}

// parseRequest reads the request (or proposal) of an inbound message.
func (s *Service) parseRequest(msg agent.Message, comment string) (*agent.Attachment, *aip.ProofRequest, error) {
	att, data, err := formatAttachment(msg, FormatAnoncredsRequest, FormatIndyRequest, FormatDIFDefinition)
	if err != nil {
		return nil, nil, err
	}
	out := &aip.ProofRequest{Comment: comment}
	switch att.Format {
	case FormatDIFDefinition:
		if s.cfg.W3C == nil {
			return nil, nil, unsupportedW3C()
		}
		if out.W3C, err = s.cfg.W3C.ParseRequest(data); err != nil {
			return nil, nil, err
		}
	default:
		pr, err := anoncreds.ParsePresentationRequest(data)
		if err != nil {
			return nil, nil, agent.Wrap(agent.CodeMsg, err, "invalid AnonCreds proof request: "+trimLib(err))
		}
		out.Anoncreds = FromAnoncredsRequest(pr)
	}
	att.Data.JSON, att.Data.Base64 = data, ""
	return &att, out, nil
}

// HandleMessage handles an inbound Present Proof 3.0 message: only from an
// authenticated sender with a connection, only on that connection's
// exchanges; each state change is staged in the message's unit of work.
func (s *Service) HandleMessage(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	m := in.Message
	if m.Type == TypeProblemReport {
		return nil, s.problem(ctx, in)
	}
	if m.From == "" || !in.Envelope.Authenticated {
		return nil, agent.Errorf(agent.CodeTrust, "present-proof messages must come from an authenticated sender")
	}
	conn, err := s.cfg.Connections.ConnectionOf(ctx, in.Work, m.From)
	if errors.Is(err, agent.ErrNotFound) {
		return nil, agent.Errorf(agent.CodeForbidden, "no connection with the sender")
	}
	if err != nil {
		return nil, err
	}
	switch m.Type {
	case TypePropose:
		return nil, s.onProposal(ctx, in, conn)
	case TypeRequest:
		return nil, s.onRequest(ctx, in, conn)
	case TypePresentation:
		return nil, s.onPresentation(ctx, in, conn)
	case TypeAck:
		return nil, s.onAck(ctx, in, conn)
	}
	return nil, agent.Errorf(agent.CodeMsgUnsupported, "unsupported message type %s", clip(m.Type))
}

// onProposal: a VERIFIER exchange in PROPOSAL.
func (s *Service) onProposal(ctx context.Context, in *agent.Inbound, conn *aip.Connection) error {
	m := in.Message
	if r, err := byThread(ctx, in.Work, conn.ID, m.Thread()); err != nil || r != nil {
		if err != nil {
			return err
		}
		return agent.Errorf(agent.CodeConflict, "a proposal on the thread of proof exchange in state %s; counter-proposals are not supported", r.State)
	}
	var body ProposeBody
	if err := m.DecodeBody(&body); err != nil {
		return agent.Wrap(agent.CodeMsg, err, "malformed propose-presentation body")
	}
	_, shown, err := s.parseRequest(m, body.Comment)
	if err != nil {
		return err
	}
	now := s.now()
	r := &record{ProofExchange: aip.ProofExchange{ID: s.cfg.NewID(), ThreadID: m.Thread(), ConnectionID: conn.ID,
		MyRole: aip.ProofExVerifier, State: aip.ProofExProposal, Messages: aip.ProofMessages{Proposal: shown},
		Created: now, Modified: now}, TheirDID: conn.TheirDID, MyDID: conn.MyDID}
	if err := saveNew(in.Work, r); err != nil {
		return err
	}
	return s.publish(in.Work, r)
}

// onRequest: a new PROVER exchange in REQUEST, or our proposal's exchange
// moving to REQUEST.
func (s *Service) onRequest(ctx context.Context, in *agent.Inbound, conn *aip.Connection) error {
	m := in.Message
	var body RequestBody
	if err := m.DecodeBody(&body); err != nil {
		return agent.Wrap(agent.CodeMsg, err, "malformed request-presentation body")
	}
	att, shown, err := s.parseRequest(m, body.Comment)
	if err != nil {
		return err
	}
	r, err := byThread(ctx, in.Work, conn.ID, m.Thread())
	if err != nil {
		return err
	}
	now := s.now()
	if r == nil {
		r = &record{ProofExchange: aip.ProofExchange{ID: s.cfg.NewID(), ThreadID: m.Thread(), ConnectionID: conn.ID,
			MyRole: aip.ProofExProver, State: aip.ProofExRequest, Messages: aip.ProofMessages{Request: shown},
			Created: now, Modified: now}, TheirDID: conn.TheirDID, MyDID: conn.MyDID, Request: att, WillConfirm: body.WillConfirm}
		if err := saveNew(in.Work, r); err != nil {
			return err
		}
		return s.publish(in.Work, r)
	}
	if err := expect(r, aip.ProofExProver, aip.ProofExProposal, aip.ProofExRequest); err != nil {
		return err
	}
	r.State, r.Modified = aip.ProofExRequest, now
	r.Messages.Request, r.Request, r.WillConfirm = shown, att, body.WillConfirm
	if err := move(in.Work, r, aip.ProofExProposal); err != nil {
		return err
	}
	return s.publish(in.Work, r)
}

// onPresentation: our VERIFIER exchange in REQUEST moves to PRESENTED;
// verification runs once that is committed.
func (s *Service) onPresentation(ctx context.Context, in *agent.Inbound, conn *aip.Connection) error {
	m := in.Message
	r, err := byThread(ctx, in.Work, conn.ID, m.Thread())
	if err != nil {
		return err
	}
	if r == nil {
		return agent.Errorf(agent.CodeNotFound, "no proof exchange on this thread")
	}
	if err := expect(r, aip.ProofExVerifier, aip.ProofExRequest, aip.ProofExPresented); err != nil {
		return err
	}
	var body PresentationBody
	if err := m.DecodeBody(&body); err != nil {
		return agent.Wrap(agent.CodeMsg, err, "malformed presentation body")
	}
	want := []string{FormatAnoncredsProof, FormatIndyProof}
	if r.Request.Format == FormatDIFDefinition {
		want = []string{FormatDIFSubmission}
	}
	att, data, err := formatAttachment(m, want...)
	if err != nil {
		return err
	}
	att.Data.JSON, att.Data.Base64 = data, ""
	r.State, r.Modified = aip.ProofExPresented, s.now()
	r.Presentation = &att
	r.Messages.Presentation = &aip.ProofPresentation{Comment: body.Comment}
	if err := move(in.Work, r, aip.ProofExRequest); err != nil {
		return err
	}
	id := r.ID
	in.Work.AfterCommit(func() { s.verifyLater(id) })
	return s.publish(in.Work, r)
}

// onAck: our PROVER exchange in PRESENTED is done. An ack for anything
// else is dropped (never answered: no problem-report loops).
func (s *Service) onAck(ctx context.Context, in *agent.Inbound, conn *aip.Connection) error {
	r, err := byThread(ctx, in.Work, conn.ID, in.Message.Thread())
	if err != nil || r == nil {
		return err
	}
	if r.MyRole != aip.ProofExProver || r.State != aip.ProofExPresented {
		s.log.DebugContext(ctx, "ack ignored", "exchange", r.ID, "role", r.MyRole, "state", r.State)
		return nil
	}
	r.State, r.Modified = aip.ProofExDone, s.now()
	if err := move(in.Work, r, aip.ProofExPresented); err != nil {
		return err
	}
	return s.publish(in.Work, r)
}

// HandleProblem takes a Report Problem 2.0 message whose pthid (or thid)
// is the thread of one of the sender's connection's exchanges: a
// non-terminal exchange is abandoned, with the peer's problem as its
// errorMessage. It reports whether the problem was about an exchange. It
// never answers (no problem report answers a problem report).
func (s *Service) HandleProblem(ctx context.Context, in *agent.Inbound) (bool, error) {
	m := in.Message
	if m.From == "" || !in.Envelope.Authenticated {
		return false, nil
	}
	conn, err := s.cfg.Connections.ConnectionOf(ctx, in.Work, m.From)
	if errors.Is(err, agent.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var r *record
	for _, th := range []string{m.PThID, m.ThID} {
		if th == "" || r != nil {
			continue
		}
		if r, err = byThread(ctx, in.Work, conn.ID, th); err != nil {
			return false, err
		}
	}
	if r == nil {
		return false, nil
	}
	if aip.Terminal(r.State) {
		return true, nil
	}
	p, err := reportproblem.Decode(agent.Message{Type: agent.ProblemReportType, Body: m.Body})
	reason := "the peer reported a problem"
	if err == nil {
		reason = fmt.Sprintf("the peer reported a problem: %s", p.Code)
		if p.Comment != "" {
			reason += ": " + clip(p.Comment)
		}
	}
	from := r.State
	r.State, r.Modified, r.ErrorMessage = aip.ProofExAbandoned, s.now(), reason
	if err := move(in.Work, r, from); err != nil {
		return true, err
	}
	s.log.InfoContext(ctx, "proof exchange abandoned by the peer", "exchange", r.ID, "reason", reason)
	return true, s.publish(in.Work, r)
}

func (s *Service) problem(ctx context.Context, in *agent.Inbound) error {
	_, err := s.HandleProblem(ctx, in)
	if err != nil {
		s.log.WarnContext(ctx, "problem report not recorded", "err", err)
	}
	return nil
}

// ProblemReports wraps the Report Problem 2.0 handler: a problem report
// about one of our proof exchanges abandons it (in the message's unit of
// work), and every report goes on to next as well.
func (s *Service) ProblemReports(next agent.Handler) agent.Handler {
	return agent.HandlerFunc(func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
		if in.Message.Type == agent.ProblemReportType {
			if _, err := s.HandleProblem(ctx, in); err != nil {
				s.log.WarnContext(ctx, "problem report not recorded", "err", err)
			}
		}
		return next.HandleMessage(ctx, in)
	})
}
