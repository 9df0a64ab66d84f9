// Package connections implements aip.Connections: connections with peer
// DIDs set up over Out-of-Band 2.0 and Trust Ping 2.0, and Basic Message
// 2.0 on them.
//
// A connection exchange, as the cloud-agent API shows it:
//
//   - INVITER: CreateInvitation makes a single-use Out-of-Band 2.0
//     invitation from the agent's DID (goal_code "aip.connect", the label
//     in the body's "label" field) and an exchange in INVITATION. The first
//     authenticated message whose pthid is the invitation (Middleware, in
//     that message's unit of work) creates the Connection with its sender
//     and moves the exchange to DONE. Another DID answering the same
//     invitation is refused with a problem report (e.p.req.gone) and
//     changes nothing.
//   - INVITEE: AcceptInvitation records the invitation (oob.Service.Accept)
//     and an exchange in REQUEST, and sends, in the same unit of work, a
//     Trust Ping 2.0 ping to the inviter with response_requested true,
//     pthid the invitation's id and our label in the body's "label" field
//     (agents that do not know it ignore it). The ping-response (thid: the
//     ping's id) from the inviter moves the exchange to DONE and creates
//     the Connection; a problem report on the ping moves it to ABANDONED.
//
// A Connection has the id of its exchange. Transitions are checked with
// aip.CanMove and each is committed with the message that caused it.
//
// Messages from a peer DID belong to its connection (ConnectionOf); when
// there are several with one DID (the same two agents connected twice),
// the newest.
//
// Records: exchanges, connections and basic messages by id, each with
// index records whose keys order them newest first (inverted creation
// time, then id); listings walk the indexes and page with an opaque
// nextToken, the base64url of the last key returned, which stays good
// when records are added meanwhile.
package connections

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/protocols/aipevents"
	"github.com/agentd/agentd/protocols/oob"
)

// GoalCode is the goal code of the invitations CreateInvitation makes.
const GoalCode = "aip.connect"

// Packer packs a plaintext message for the outbox without queueing it
// (*agent.Messenger), so that it commits with the change that sends it.
type Packer interface {
	Outbound(ctx context.Context, msg agent.Message) ([]*agent.OutboundMessage, error)
}

// Config is what a Service needs.
type Config struct {
	// Store keeps the records and commits the units of work.
	Store agent.Store
	// Packer packs what the service sends.
	Packer Packer
	// OOB makes and accepts the invitations.
	OOB *oob.Service
	// Resolver resolves an inviter's DID before the invitation is accepted.
	Resolver did.Resolver
	// MyDID is the agent's DID, which invitations come from.
	MyDID func() string
	// Events receives every change; nil: none.
	Events aipevents.Publisher
	// Label is the agent's default label.
	Label string
	// Endpoint is the agent's DIDComm endpoint, the invitations' base URL.
	Endpoint string
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Service implements aip.Connections.
type Service struct {
	cfg Config
	log *slog.Logger
}

var _ aip.Connections = (*Service)(nil)

// New returns a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store.Records == nil || cfg.Store.Committer == nil:
		return nil, errors.New("connections: no store")
	case cfg.Packer == nil:
		return nil, errors.New("connections: no packer")
	case cfg.OOB == nil:
		return nil, errors.New("connections: no out-of-band service")
	case cfg.Resolver == nil:
		return nil, errors.New("connections: no resolver")
	case cfg.MyDID == nil:
		return nil, errors.New("connections: no DID")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("component", "connections")}, nil
}

// Protocols returns the protocols the service handles: Basic Message 2.0.
// (Connection exchanges ride on Trust Ping 2.0, whose handler the agent
// already has: Middleware watches its messages.)
func (s *Service) Protocols() []agent.Protocol {
	return []agent.Protocol{{PIURI: BasicMessagePIURI, Roles: []string{"sender", "receiver"},
		Handler: agent.HandlerFunc(s.handleBasicMessage)}}
}

// publish hands a change to the events, if any.
func (s *Service) publish(w *agent.Work, topic string, record any) error {
	if s.cfg.Events == nil {
		return nil
	}
	return s.cfg.Events.Publish(w, topic, record)
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// notFound is an error wrapping agent.ErrNotFound with code e.p.req.not-found.
func notFound(what, id string) error {
	return agent.Wrap(agent.CodeNotFound, agent.ErrNotFound, what+" "+id+" not found")
}

// internal hides a store error's text from the caller.
func internal(err error) error {
	if err == nil {
		return nil
	}
	var e *agent.Error
	if errors.As(err, &e) {
		return err
	}
	return agent.Wrap(agent.CodeMe, err, "internal error")
}

// authenticated reports whether in's sender is proven: authcrypted or
// signed by a key of the DID in from (agent.Router's rule, which it does
// not export).
func authenticated(in *agent.Inbound) bool {
	m, md := &in.Message, &in.Envelope
	if m.From == "" || !md.Authenticated {
		return false
	}
	return (md.EncryptedFrom != "" && agent.DIDOf(md.EncryptedFrom) == agent.DIDOf(m.From)) ||
		(md.NonRepudiation && md.SignFrom != "" && agent.DIDOf(md.SignFrom) == agent.DIDOf(m.From))
}
