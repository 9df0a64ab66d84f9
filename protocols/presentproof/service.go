package presentproof

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
)

// Messenger packs messages for the outbox; *agent.Messenger is one. The
// service queues what it packs in its own units of work, so that a
// message and the state change it reflects commit together.
type Messenger interface {
	Outbound(ctx context.Context, msg agent.Message) ([]*agent.OutboundMessage, error)
}

// Connections is what the service needs of the connections service
// (protocols/connections.Service has both methods).
type Connections interface {
	// Connection returns a connection, or an error wrapping agent.ErrNotFound.
	Connection(ctx context.Context, id string) (*aip.Connection, error)
	// ConnectionOf returns the connection of an inbound message's
	// authenticated sender, read in w, or an error wrapping
	// agent.ErrNotFound.
	ConnectionOf(ctx context.Context, w *agent.Work, fromDID string) (*aip.Connection, error)
}

// Credentials is what the service needs of the credential store
// (protocols/credstore.Service): held credentials for the prover, the
// link secret, and AnonCreds schemas and credential definitions for both
// roles.
type Credentials interface {
	Credential(ctx context.Context, id string) (*aip.Credential, error)
	// Raw is a held AnonCreds credential's JSON.
	Raw(ctx context.Context, id string) ([]byte, error)
	// Each calls fn with the held credentials of a format until it returns false.
	Each(ctx context.Context, f aip.CredentialFormat, fn func(c *aip.Credential) bool) error
	LinkSecret(ctx context.Context) (anoncreds.LinkSecret, error)
	// ResolveSchema and ResolveCredDef return errors wrapping
	// agent.ErrNotFound for objects nobody knows.
	ResolveSchema(ctx context.Context, id string) (*anoncreds.Schema, error)
	ResolveCredDef(ctx context.Context, id string) (*anoncreds.CredentialDefinition, error)
}

// Publisher stages an event about a record in a unit of work (webhook
// through the outbox, subscriptions after the commit);
// protocols/aipevents.Publisher is one.
type Publisher interface {
	Publish(w *agent.Work, topic string, record any) error
}

// Config configures a Service.
type Config struct {
	Store       agent.Store
	Messenger   Messenger
	Connections Connections
	Credentials Credentials
	// W3C does the W3C format (DIF Presentation Exchange); nil: requests
	// and presentations in that format are refused as unsupported.
	W3C W3CFormat
	// Events, when set, hears of every change of an exchange.
	Events Publisher
	// WillConfirm is the will_confirm of the requests the agent sends:
	// the prover then waits for an ack (verified) or a problem report
	// (not verified) before it is done.
	WillConfirm bool
	// Leases claims each verification for one instance when several
	// share the store (store/postgres: a presentation is verified once,
	// by the instance that holds its lease); nil: agent.SoleLeases.
	Leases agent.Leases
	// MaxConcurrentVerifications bounds verifications running at once
	// (default 4).
	MaxConcurrentVerifications int
	// Now and NewID are the clock and the exchange id generator (defaults
	// time.Now and a random UUID).
	Now    func() time.Time
	NewID  func() string
	Logger *slog.Logger
}

// Service runs Present Proof 3.0 in both roles; it implements
// aip.ProofExchanges and is the protocol's handler.
type Service struct {
	cfg   Config
	log   *slog.Logger
	slots chan struct{}
	wg    sync.WaitGroup

	mu      sync.Mutex
	running map[string]bool // exchanges being verified
	closed  bool
}

var _ aip.ProofExchanges = (*Service)(nil)

// New checks cfg and returns the service. Call Resume once the agent runs,
// to verify presentations received before a restart.
func New(cfg Config) (*Service, error) {
	if cfg.Store.Records == nil || cfg.Store.Committer == nil {
		return nil, errors.New("presentproof: a store is required")
	}
	if cfg.Messenger == nil || cfg.Connections == nil || cfg.Credentials == nil {
		return nil, errors.New("presentproof: a messenger, connections and credentials are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = agent.NewID
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Leases == nil {
		cfg.Leases = agent.SoleLeases{}
	}
	if cfg.MaxConcurrentVerifications <= 0 {
		cfg.MaxConcurrentVerifications = 4
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("protocol", PIURI),
		slots: make(chan struct{}, cfg.MaxConcurrentVerifications), running: map[string]bool{}}, nil
}

// Protocol describes Present Proof 3.0 for the router, with s as its handler.
func (s *Service) Protocol() agent.Protocol {
	return agent.Protocol{PIURI: PIURI, Roles: []string{RoleVerifier, RoleProver}, Handler: s}
}

// Close waits for the verifications under way.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// publish stages the event of r's change.
func (s *Service) publish(w *agent.Work, r *record) error {
	if s.cfg.Events == nil {
		return nil
	}
	return s.cfg.Events.Publish(w, aip.TopicProofExchange, r.view())
}

// ProofExchange returns an exchange, or an error wrapping agent.ErrNotFound.
func (s *Service) ProofExchange(ctx context.Context, id string) (*aip.ProofExchange, error) {
	r, err := load(ctx, agent.NewWork(s.cfg.Store.Records), id)
	if err != nil {
		return nil, err
	}
	return r.view(), nil
}

// connection returns a connection the agent can talk on.
func (s *Service) connection(ctx context.Context, id string) (*aip.Connection, error) {
	c, err := s.cfg.Connections.Connection(ctx, id)
	if errors.Is(err, agent.ErrNotFound) {
		return nil, agent.Wrap(agent.CodeNotFound, err, "no connection "+clip(id))
	}
	if err != nil {
		return nil, err
	}
	if c.TheirDID == "" {
		return nil, agent.Errorf(agent.CodeConflict, "connection %s has no peer DID yet", clip(id))
	}
	return c, nil
}

// send packs msg from our DID on conn to theirs.
func (s *Service) pack(ctx context.Context, msg agent.Message, myDID, theirDID string) ([]*agent.OutboundMessage, error) {
	msg.From, msg.To = myDID, []string{theirDID}
	return s.cfg.Messenger.Outbound(ctx, msg)
}

// SendRequest starts a VERIFIER exchange: a request-presentation to the
// connection, stored with the exchange in one unit of work.
func (s *Service) SendRequest(ctx context.Context, connectionID string, req aip.ProofRequest) (*aip.ProofExchange, error) {
	conn, err := s.connection(ctx, connectionID)
	if err != nil {
		return nil, err
	}
	att, shown, err := s.requestAttachment(req)
	if err != nil {
		return nil, err
	}
	msg, err := agent.NewMessage(TypeRequest, RequestBody{Comment: req.Comment, WillConfirm: s.cfg.WillConfirm})
	if err != nil {
		return nil, err
	}
	msg.Attachments = []agent.Attachment{att}
	now := s.now()
	r := &record{ProofExchange: aip.ProofExchange{ID: s.cfg.NewID(), ThreadID: msg.ID, ConnectionID: conn.ID,
		MyRole: aip.ProofExVerifier, State: aip.ProofExRequest, Messages: aip.ProofMessages{Request: shown},
		Created: now, Modified: now}, TheirDID: conn.TheirDID, MyDID: conn.MyDID, Request: &att, WillConfirm: s.cfg.WillConfirm}
	outs, err := s.pack(ctx, msg, conn.MyDID, conn.TheirDID)
	if err != nil {
		return nil, err
	}
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		w.Enqueue(outs...)
		if err := saveNew(w, r); err != nil {
			return err
		}
		return s.publish(w, r)
	})
	if err != nil {
		return nil, storeError(err)
	}
	s.log.InfoContext(ctx, "proof request sent", "exchange", r.ID, "connection", conn.ID)
	return r.view(), nil
}

// SendProposal starts a PROVER exchange: a propose-presentation to the
// connection.
func (s *Service) SendProposal(ctx context.Context, connectionID string, proposal aip.ProofRequest) (*aip.ProofExchange, error) {
	conn, err := s.connection(ctx, connectionID)
	if err != nil {
		return nil, err
	}
	att, shown, err := s.requestAttachment(proposal)
	if err != nil {
		return nil, err
	}
	msg, err := agent.NewMessage(TypePropose, ProposeBody{Comment: proposal.Comment})
	if err != nil {
		return nil, err
	}
	msg.Attachments = []agent.Attachment{att}
	now := s.now()
	r := &record{ProofExchange: aip.ProofExchange{ID: s.cfg.NewID(), ThreadID: msg.ID, ConnectionID: conn.ID,
		MyRole: aip.ProofExProver, State: aip.ProofExProposal, Messages: aip.ProofMessages{Proposal: shown},
		Created: now, Modified: now}, TheirDID: conn.TheirDID, MyDID: conn.MyDID}
	outs, err := s.pack(ctx, msg, conn.MyDID, conn.TheirDID)
	if err != nil {
		return nil, err
	}
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		w.Enqueue(outs...)
		if err := saveNew(w, r); err != nil {
			return err
		}
		return s.publish(w, r)
	})
	if err != nil {
		return nil, storeError(err)
	}
	return r.view(), nil
}

// RequestFromProposal answers a VERIFIER exchange in PROPOSAL with a
// request: req, or (nil) the proposal as it is with a fresh nonce or
// challenge.
func (s *Service) RequestFromProposal(ctx context.Context, id string, req *aip.ProofRequest) (*aip.ProofExchange, error) {
	r, err := load(ctx, agent.NewWork(s.cfg.Store.Records), id)
	if err != nil {
		return nil, err
	}
	if err := expect(r, aip.ProofExVerifier, aip.ProofExProposal, aip.ProofExRequest); err != nil {
		return nil, err
	}
	if req == nil {
		p := *r.Messages.Proposal
		req = &p
		if p.Anoncreds != nil {
			a := *p.Anoncreds
			a.Nonce = ""
			req.Anoncreds = &a
		}
		if p.W3C != nil {
			n := *p.W3C
			n.Challenge = ""
			req.W3C = &n
		}
	}
	att, shown, err := s.requestAttachment(*req)
	if err != nil {
		return nil, err
	}
	msg, err := agent.NewMessage(TypeRequest, RequestBody{Comment: req.Comment, WillConfirm: s.cfg.WillConfirm})
	if err != nil {
		return nil, err
	}
	msg.ThID = r.ThreadID
	msg.Attachments = []agent.Attachment{att}
	outs, err := s.pack(ctx, msg, r.MyDID, r.TheirDID)
	if err != nil {
		return nil, err
	}
	var out *record
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		cur, err := load(ctx, w, id)
		if err != nil {
			return err
		}
		if err := expect(cur, aip.ProofExVerifier, aip.ProofExProposal, aip.ProofExRequest); err != nil {
			return err
		}
		cur.State, cur.Modified = aip.ProofExRequest, s.now()
		cur.Messages.Request, cur.Request, cur.WillConfirm = shown, &att, s.cfg.WillConfirm
		w.Enqueue(outs...)
		if err := move(w, cur, aip.ProofExProposal); err != nil {
			return err
		}
		out = cur
		return s.publish(w, cur)
	})
	if err != nil {
		return nil, storeError(err)
	}
	return out.view(), nil
}

// expect refuses, with CodeConflict, an exchange that is not in role and
// state or cannot move to next.
func expect(r *record, role aip.ProofExRole, state, next aip.ProofExState) error {
	if r.MyRole != role {
		return agent.Errorf(agent.CodeConflict, "proof exchange %s is a %s exchange; this needs a %s one", r.ID, r.MyRole, role)
	}
	if r.State != state || !aip.CanMove(r.State, next) {
		return agent.Errorf(agent.CodeConflict, "proof exchange %s is in state %s; this needs %s", r.ID, r.State, state)
	}
	return nil
}

// CredentialsFor lists, per referent of a PROVER exchange's request, the
// held credentials that can answer it (an empty list when none can).
func (s *Service) CredentialsFor(ctx context.Context, id string) ([]aip.CredentialsForReferent, error) {
	r, err := load(ctx, agent.NewWork(s.cfg.Store.Records), id)
	if err != nil {
		return nil, err
	}
	if r.MyRole != aip.ProofExProver || r.Request == nil {
		return nil, agent.Errorf(agent.CodeConflict, "proof exchange %s is not a PROVER exchange with a request", r.ID)
	}
	data, err := attachmentJSON(*r.Request)
	if err != nil {
		return nil, err
	}
	switch r.Request.Format {
	case FormatAnoncredsRequest, FormatIndyRequest:
		req, err := anoncreds.ParsePresentationRequest(data)
		if err != nil {
			return nil, agent.Wrap(agent.CodeMe, err, "stored request unreadable")
		}
		return s.anoncredsCandidates(ctx, req)
	case FormatDIFDefinition:
		if s.cfg.W3C == nil {
			return nil, unsupportedW3C()
		}
		return s.cfg.W3C.CredentialsFor(ctx, data, s.cfg.Credentials)
	}
	return nil, agent.Errorf(agent.CodeMsgUnsupported, "request format %q is not supported", clip(r.Request.Format))
}

// AcceptRequest presents: only a PROVER exchange in REQUEST. The
// presentation and the exchange's move to PRESENTED (DONE when the
// request did not ask for confirmation) commit together.
func (s *Service) AcceptRequest(ctx context.Context, id string, in aip.PresentationInput) (*aip.ProofExchange, error) {
	r, err := load(ctx, agent.NewWork(s.cfg.Store.Records), id)
	if err != nil {
		return nil, err
	}
	if err := expect(r, aip.ProofExProver, aip.ProofExRequest, aip.ProofExPresented); err != nil {
		return nil, err
	}
	if (in.Anoncreds == nil) == (in.W3C == nil) {
		return nil, agent.Errorf(agent.CodeMsg, "exactly one of the presentation formats (anoncreds, w3c) must be given")
	}
	data, err := attachmentJSON(*r.Request)
	if err != nil {
		return nil, err
	}
	var att agent.Attachment
	shown := &aip.ProofPresentation{Comment: in.Comment}
	switch r.Request.Format {
	case FormatAnoncredsRequest, FormatIndyRequest:
		if in.Anoncreds == nil {
			return nil, agent.Errorf(agent.CodeMsg, "the request is an AnonCreds request: present with the anoncreds format")
		}
		req, err := anoncreds.ParsePresentationRequest(data)
		if err != nil {
			return nil, agent.Wrap(agent.CodeMe, err, "stored request unreadable")
		}
		p, err := s.anoncredsPresent(ctx, req, in.Anoncreds)
		if err != nil {
			return nil, err
		}
		format := FormatAnoncredsProof
		if r.Request.Format == FormatIndyRequest {
			format = FormatIndyProof
		}
		if att, err = jsonAttachment(format, p); err != nil {
			return nil, err
		}
		shown.Anoncreds = anoncredsSummary(p, att.Data.JSON)
		nameRevealed(shown.Anoncreds, req)
	case FormatDIFDefinition:
		if in.W3C == nil {
			return nil, agent.Errorf(agent.CodeMsg, "the request is a W3C (DIF presentation exchange) request: present with the w3c format")
		}
		if s.cfg.W3C == nil {
			return nil, unsupportedW3C()
		}
		vp, sum, err := s.cfg.W3C.Present(ctx, data, r.MyDID, in.W3C, s.cfg.Credentials)
		if err != nil {
			return nil, err
		}
		att = agent.Attachment{ID: agent.NewID(), MediaType: "application/json", Format: FormatDIFSubmission, Data: agent.AttachmentData{JSON: vp}}
		if vp[0] == '"' {
			att.MediaType = "application/jwt"
		} else {
			att.MediaType = "application/ld+json"
		}
		shown.W3C = sum
	default:
		return nil, agent.Errorf(agent.CodeMsgUnsupported, "request format %q is not supported", clip(r.Request.Format))
	}
	msg, err := agent.NewMessage(TypePresentation, PresentationBody{Comment: in.Comment})
	if err != nil {
		return nil, err
	}
	msg.ThID = r.ThreadID
	msg.Attachments = []agent.Attachment{att}
	outs, err := s.pack(ctx, msg, r.MyDID, r.TheirDID)
	if err != nil {
		return nil, err
	}
	var out *record
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		cur, err := load(ctx, w, id)
		if err != nil {
			return err
		}
		if err := expect(cur, aip.ProofExProver, aip.ProofExRequest, aip.ProofExPresented); err != nil {
			return err
		}
		cur.State, cur.Modified, cur.Messages.Presentation = aip.ProofExPresented, s.now(), shown
		w.Enqueue(outs...)
		if err := s.publish(w, cur); err != nil {
			return err
		}
		if !cur.WillConfirm {
			// Nothing is left to do: no ack will come.
			cur.State = aip.ProofExDone
			if err := s.publish(w, cur); err != nil {
				return err
			}
		}
		out = cur
		return move(w, cur, aip.ProofExRequest)
	})
	if err != nil {
		return nil, storeError(err)
	}
	s.log.InfoContext(ctx, "presentation sent", "exchange", id, "state", out.State)
	return out.view(), nil
}

// ProblemCodeAbandoned is the code of the problem report Delete sends.
const ProblemCodeAbandoned = "e.p.req.abandoned"

// Delete deletes an exchange; when it is not terminal, a problem report
// tells the connection first (in the same unit of work).
func (s *Service) Delete(ctx context.Context, id string) error {
	r, err := load(ctx, agent.NewWork(s.cfg.Store.Records), id)
	if err != nil {
		return err
	}
	var outs []*agent.OutboundMessage
	if !aip.Terminal(r.State) {
		pr, err := agent.NewMessage(agent.ProblemReportType, agent.ProblemReportBody{Code: ProblemCodeAbandoned, Comment: "the proof exchange was abandoned"})
		if err != nil {
			return err
		}
		pr.PThID = r.ThreadID
		if outs, err = s.pack(ctx, pr, r.MyDID, r.TheirDID); err != nil {
			return err
		}
	}
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		cur, err := load(ctx, w, id)
		if err != nil {
			return err
		}
		if !aip.Terminal(cur.State) {
			w.Enqueue(outs...)
			ab := *cur
			ab.State, ab.Modified = aip.ProofExAbandoned, s.now()
			ab.ErrorMessage = "deleted by the operator"
			if err := s.publish(w, &ab); err != nil {
				return err
			}
		}
		remove(w, cur)
		return nil
	})
	return storeError(err)
}

// storeError maps a failed commit onto the agent's errors.
func storeError(err error) error {
	var ae *agent.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return err
	case errors.Is(err, agent.ErrOutboxFull):
		return agent.Wrap(agent.CodeOutboxFull, err, "the outbox is full; try again later")
	case errors.Is(err, agent.ErrConflict):
		return agent.Wrap(agent.CodeConflict, err, "the proof exchange changed meanwhile; try again")
	}
	return agent.Wrap(agent.CodeMe, err, "could not store the proof exchange")
}

func unsupportedW3C() error {
	return agent.Errorf(agent.CodeMsgUnsupported, "W3C presentations (DIF presentation exchange) are not available in this agent")
}
