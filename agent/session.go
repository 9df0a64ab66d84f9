package agent

import (
	"context"
	"errors"
)

// Session is a persistent, two-way connection with a peer, such as a
// WebSocket: the transport passes it with every message that arrives on it
// (Inbound.Session), so that the router can answer on it and protocols can
// push messages on it later (Pickup 3.0 live mode). A transport implements
// it; the agent never learns which one it is.
type Session interface {
	// ID identifies the session, for logs and bookkeeping.
	ID() string
	// Push writes a packed message of the given media type on the
	// connection. It returns once the transport has written it; a nil error
	// says nothing about whether the peer got it.
	Push(ctx context.Context, mediaType string, payload []byte) error
	// Done is closed when the connection has ended.
	Done() <-chan struct{}
}

// CloseNotifier is implemented by sessions that can run a function when
// they end, so that whoever tracks a session need not park a goroutine on
// its Done channel (a mediator holds thousands of idle live sessions).
type CloseNotifier interface {
	// AfterClose runs f once, after the session has ended; at once (in a
	// goroutine of its own) if it already has.
	AfterClose(f func())
}

// refusal marks a handler error that refuses the message itself.
type refusal struct{ err error }

// Error returns the refused error's text.
func (r *refusal) Error() string { return r.err.Error() }

// Unwrap returns the refused error.
func (r *refusal) Unwrap() error { return r.err }

// Refuse marks a handler's error as a refusal of the message: the handler did
// nothing with it, and the transport should refuse it (an HTTP error status
// with the problem code, an SMTP 5xx) instead of accepting it and answering
// with a problem report message. A mediator refuses a forward it cannot queue
// this way, so that an anonymous sender, who cannot be sent a problem report,
// does not believe the message was delivered. Give it an *Error for a
// specific problem code.
func Refuse(err error) error {
	if err == nil {
		return nil
	}
	return &refusal{err: err}
}

// IsRefusal reports whether err was made by Refuse.
func IsRefusal(err error) bool {
	var r *refusal
	return errors.As(err, &r)
}
