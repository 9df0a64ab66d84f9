// Package trustping implements Trust Ping 2.0
// (https://identity.foundation/didcomm-messaging/spec/#trust-ping-protocol-20),
// the DIDComm way to test that a peer is reachable and that the encrypted
// channel to it works.
//
// The Service plays both roles: as receiver it answers pings with a
// ping-response when the ping asks for one; as sender, Ping sends a ping and
// measures the round trip to the ping-response.
package trustping

import (
	"context"
	"log/slog"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/reportproblem"
)

// PIURI is the protocol identifier of Trust Ping 2.0.
const PIURI = "https://didcomm.org/trust-ping/2.0"

// Message types of Trust Ping 2.0.
const (
	PingType         = PIURI + "/ping"
	PingResponseType = PIURI + "/ping-response"
)

// Roles of Trust Ping 2.0.
const (
	RoleSender   = "sender"
	RoleReceiver = "receiver"
)

// PingBody is the body of a ping.
type PingBody struct {
	// ResponseRequested asks the receiver for a ping-response. The spec makes
	// true the default, so an absent value (nil) means true. It takes
	// "true"/"false" strings too (agent.FlexBool).
	ResponseRequested *agent.FlexBool `json:"response_requested,omitempty"`
}

// WantsResponse reports whether the ping asks for a ping-response: true unless
// response_requested is false.
func (b PingBody) WantsResponse() bool {
	return b.ResponseRequested == nil || bool(*b.ResponseRequested)
}

// NewPing builds a ping to the DID to. When responseRequested is false the
// receiver will not answer.
func NewPing(to string, responseRequested bool) (agent.Message, error) {
	rr := agent.FlexBool(responseRequested)
	m, err := agent.NewMessage(PingType, PingBody{ResponseRequested: &rr})
	if err != nil {
		return agent.Message{}, err
	}
	m.To = []string{to}
	return m, nil
}

// Service is the Trust Ping 2.0 protocol: the handler for inbound pings and
// ping-responses, and the client side, Ping.
type Service struct {
	sender  agent.Sender
	waiters *agent.Waiters
	log     *slog.Logger
	now     func() time.Time
}

// New returns a Service that sends pings through sender and waits for their
// answers on waiters. waiters should be shared with reportproblem.New so that
// a problem report about a ping ends its Ping at once; nil makes a private
// one. logger defaults to slog.Default().
func New(sender agent.Sender, waiters *agent.Waiters, logger *slog.Logger) *Service {
	if waiters == nil {
		waiters = new(agent.Waiters)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{sender: sender, waiters: waiters, log: logger.With("protocol", PIURI), now: time.Now}
}

// Protocol describes Trust Ping 2.0 for the router, with s as its handler.
func (s *Service) Protocol() agent.Protocol {
	return agent.Protocol{PIURI: PIURI, Roles: []string{RoleSender, RoleReceiver}, Handler: s}
}

// HandleMessage answers a ping with a ping-response in its thread unless the
// ping says response_requested: false, and hands a ping-response to the Ping
// waiting for it (a response nobody waits for, such as one arriving after its
// Ping gave up, is dropped).
//
// An anonymous ping (no from) that asks for a response can only be answered on
// the connection it came in on: the ping-response then has no to, and the
// router delivers it over return_route. Without return_route nobody could
// receive an answer, so none is made (and no problem report either, since it
// could not be delivered any better).
func (s *Service) HandleMessage(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	m := in.Message
	switch m.Type {
	case PingType:
		var body PingBody
		if err := m.DecodeBody(&body); err != nil {
			return nil, agent.Errorf(agent.CodeMsg, "malformed ping body: %v", err)
		}
		if !body.WantsResponse() {
			s.log.DebugContext(ctx, "ping without response", "id", m.ID, "from", m.From)
			return nil, nil
		}
		if m.From == "" && !returnRoute(m.ReturnRoute) {
			s.log.DebugContext(ctx, "anonymous ping without return_route cannot be answered", "id", m.ID)
			return nil, nil
		}
		r, err := m.Reply(PingResponseType, nil)
		if err != nil {
			return nil, agent.Wrap(agent.CodeMe, err, "internal error")
		}
		return []agent.Message{r}, nil
	case PingResponseType:
		if !s.waiters.Notify(in) {
			s.log.DebugContext(ctx, "unsolicited ping-response", "thid", m.ThID, "from", m.From)
		}
		return nil, nil
	}
	return nil, agent.Errorf(agent.CodeMsgUnsupported, "unsupported message type %s", m.Type)
}

// returnRoute reports whether a return_route header asks for replies on the
// inbound connection.
func returnRoute(v string) bool { return v == "all" || v == "thread" }

// Ping sends a ping asking for a response to the DID to and waits for the
// ping-response, returning the round-trip time from the hand-over to the
// sender (which includes any time the message spends in the outbox). Bound the
// wait with ctx. If the peer answers with a problem report, the error is a
// *reportproblem.Problem carrying its code; a response from a DID other than
// to is an *agent.Error with code e.p.trust.
//
// The ping has no from of its own: the agent.Sender sets the agent's DID, as
// it does for everything it authcrypts, so that the peer can answer.
func (s *Service) Ping(ctx context.Context, to string) (time.Duration, error) {
	if to == "" {
		return 0, agent.Errorf(agent.CodeMsg, "ping needs a recipient DID")
	}
	ping, err := NewPing(to, true)
	if err != nil {
		return 0, err
	}
	wait, cancel := s.waiters.Expect(ping.ID)
	defer cancel()
	start := s.now()
	if err := s.sender.Send(ctx, ping); err != nil {
		return 0, err
	}
	in, err := wait(ctx)
	if err != nil {
		return 0, err
	}
	rtt := s.now().Sub(start)
	if err := checkAnswer(in.Message, to, PingResponseType); err != nil {
		return 0, err
	}
	s.log.DebugContext(ctx, "ping answered", "to", to, "rtt", rtt)
	return rtt, nil
}

// checkAnswer turns what arrived on a request's thread into an error: a
// problem report, a message from someone other than the peer asked, or an
// unexpected type.
func checkAnswer(m agent.Message, peer, want string) error {
	if m.From != "" && agent.DIDOf(m.From) != agent.DIDOf(peer) {
		return agent.Errorf(agent.CodeTrust, "answer came from %s, not %s", m.From, peer)
	}
	if err := reportproblem.Check(m); err != nil {
		return err
	}
	if m.Type != want {
		return agent.Errorf(agent.CodeMsg, "unexpected answer of type %s", m.Type)
	}
	return nil
}
