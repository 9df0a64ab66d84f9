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
	// Transport names the transport it came in on: "http", "ws", "smtp".
	Transport string
	// Received is when the transport received it.
	Received time.Time
	// Session is the persistent connection the message came on (a
	// WebSocket), or nil for a one-shot transport such as an HTTP POST.
	Session Session
	// ReplayKey and ReplayUntil are set for the message types a protocol
	// de-duplicates itself (Protocol.OwnReplay): the router did not record
	// the message, and the handler must record ReplayKey until ReplayUntil
	// atomically with what it does, treating a key already recorded as a
	// replay.
	ReplayKey   string
	ReplayUntil time.Time
}

// Handler handles the messages of one protocol. It returns the replies to send
// back to the sender (the router addresses and delivers them: on the same
// connection when return_route asks for it, otherwise through the outbox).
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
	// OwnReplay lists message names (the last segment of the type) whose
	// replays the handler detects itself, in the same transaction as its own
	// write, so that accepting such a message costs one durable write, not
	// two (see Inbound.ReplayKey). A mediator's forward is one.
	OwnReplay []string
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
