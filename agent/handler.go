package agent

import (
	"context"
	"time"

	"github.com/agentd/agentd/agent/envelope"
)

// Inbound is a message the router has unpacked and checked, as a handler sees it.
type Inbound struct {
	Message Message
	// Envelope tells how the message was protected (encrypted, authenticated, signed).
	Envelope envelope.Metadata
	// Transport names the transport it came in on: "http", "ws", "smtp", ...
	// (for logs; whether replies can go back on the connection is the
	// router's business, see Router.ReceiveDuplex).
	Transport string
	// Received is when the transport received it.
	Received time.Time
	// Session is the persistent connection the message came on (a
	// WebSocket), or nil for a one-shot transport such as an HTTP POST.
	Session Session
	// Work is the message's unit of work. A handler stages in it what it
	// changes (record writes, messages for the outbox or a mediator's queue,
	// after-commit actions) instead of writing to the stores; the router
	// commits it with the message's replay record and the handler's
	// replies, all or nothing. Reads through Work.Get are checked at the
	// commit: if a concurrent message changed what this one read, the
	// handler runs again.
	Work *Work
	// Attempt counts the handler's runs for this message: 0 on the first,
	// more when a commit conflict made the router run it again (a handler
	// that read from a cache through Work.Expect reads the store then).
	Attempt int
	// User is the id of the user account the authenticated sender's DID
	// belongs to (RouterConfig.Attribute), or empty: handlers attribute the
	// message to that person.
	User string

	// raw is the packed message as received: the replay key of an
	// unauthenticated message includes its digest (Router.replayKey).
	raw []byte
}

// Handler handles the messages of one protocol. It returns the replies to send
// back to the sender (the router addresses and delivers them: on the same
// connection when return_route asks for it and the transport allows, otherwise
// through the outbox) and stages its writes in in.Work. It must have no
// other lasting effect (use Work.AfterCommit): it may run more than once for
// one message, and what it did counts only if the work commits.
// An error makes the router answer with a Report Problem 2.0 message whose
// code is ErrorCode(err) and whose comment is ErrorComment(err).
type Handler interface {
	HandleMessage(ctx context.Context, in *Inbound) ([]Message, error)
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, in *Inbound) ([]Message, error)

// HandleMessage calls f.
func (f HandlerFunc) HandleMessage(ctx context.Context, in *Inbound) ([]Message, error) {
	return f(ctx, in)
}

// Protocol describes a protocol the agent speaks, for dispatch and for
// Discover Features.
type Protocol struct {
	// PIURI is the protocol identifier URI, e.g. "https://didcomm.org/trust-ping/2.0".
	PIURI string
	// Roles are the roles the agent can play, as the protocol names them.
	Roles []string
	// GoalCodes are goal codes the protocol serves, disclosed by Discover Features.
	GoalCodes []string
	// Handler receives every message whose type starts with PIURI + "/".
	Handler Handler
	// Signed lists the message types (full type URIs) the agent signs
	// before it encrypts them, for non-repudiation: the recipient can keep
	// the signed message as the sender's statement. Router.Signs answers
	// from it for the Messenger.
	Signed []string
}

// Sender sends a plaintext message to the DIDs in its to field: it packs it
// (authcrypt from the agent's DID unless the message says otherwise) and hands
// it to the durable outbox. It is what protocols use to start a conversation
// or to send anything that is not a direct reply.
type Sender interface {
	Send(ctx context.Context, msg Message) error
}

// Features lists what the agent supports, for Discover Features.
type Features interface {
	Protocols() []Protocol
}
