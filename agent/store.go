package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrNotFound is returned by stores for a record that does not exist.
var ErrNotFound = errors.New("not found")

// OutboundMessage is one packed message waiting in the outbox for delivery to
// an endpoint.
type OutboundMessage struct {
	ID          string    `json:"id"`
	To          string    `json:"to"`        // recipient DID (for operators and metrics)
	Endpoint    string    `json:"endpoint"`  // URI the packed message is sent to (http(s):, ws(s):, mailto:)
	MediaType   string    `json:"mediaType"` // media type of Payload
	MessageType string    `json:"messageType,omitempty"`
	Payload     []byte    `json:"payload"` // the packed envelope
	Attempts    int       `json:"attempts"`
	CreatedAt   time.Time `json:"createdAt"`
	NextAttempt time.Time `json:"nextAttempt"`
	LastError   string    `json:"lastError,omitempty"`
	DeadAt      time.Time `json:"deadAt,omitzero"`
}

// OutboxStore keeps outbound messages durably until they are delivered or
// dead-lettered. Enqueue returns only after the message is committed to stable
// storage. Implementations are safe for concurrent use.
type OutboxStore interface {
	// Enqueue adds a message; it is due at m.NextAttempt.
	Enqueue(ctx context.Context, m *OutboundMessage) error
	// Due returns up to limit messages whose NextAttempt is at or before now,
	// oldest due first.
	Due(ctx context.Context, now time.Time, limit int) ([]*OutboundMessage, error)
	// NextDue returns the earliest NextAttempt in the outbox, and false when it is empty.
	NextDue(ctx context.Context) (time.Time, bool, error)
	// Reschedule saves a failed attempt: Attempts, NextAttempt and LastError.
	Reschedule(ctx context.Context, m *OutboundMessage) error
	// Delete removes a delivered message.
	Delete(ctx context.Context, id string) error
	// Kill moves a message to the dead-letter list, setting DeadAt.
	Kill(ctx context.Context, m *OutboundMessage) error
	// Dead lists dead letters in (DeadAt, id) order, starting after the
	// cursor after: "" for the start; a DeadLetterCursor, for the letters
	// after that position, whether or not the letter it was made from is
	// still there (revived or purged since); or the id of a current dead
	// letter, for the letters after it. Any other after (an id that is no
	// longer a dead letter, whose position is not known) is an error
	// wrapping ErrNotFound.
	Dead(ctx context.Context, after string, limit int) ([]*OutboundMessage, error)
	// Revive moves a dead letter back into the outbox, due now, with Attempts reset.
	Revive(ctx context.Context, id string, now time.Time) error
	// PurgeDead deletes a dead letter.
	PurgeDead(ctx context.Context, id string) error
	// PurgeDeadBefore deletes the dead letters whose DeadAt is before t and
	// returns how many it deleted.
	PurgeDeadBefore(ctx context.Context, t time.Time) (int, error)
	// Depth returns the number of messages waiting in the outbox and in the dead-letter list.
	Depth(ctx context.Context) (pending, dead int, err error)
}

// ReplayCache remembers message ids to drop replays.
type ReplayCache interface {
	// Remember records id until expires and reports whether it was already
	// recorded (a replay). It is atomic: of two concurrent calls with the same id,
	// exactly one reports false.
	Remember(ctx context.Context, id string, expires time.Time) (seen bool, err error)
	// Seen reports whether id is recorded and not expired, changing nothing.
	Seen(ctx context.Context, id string) (bool, error)
	// Sweep forgets ids whose expiry is before now and returns how many it removed.
	Sweep(ctx context.Context, now time.Time) (int, error)
}

// Records is a small document store for protocol state: JSON values by kind
// (a namespace such as "oob-invitation") and id. Put is durable on return.
// Handlers change records through their unit of work (Work) instead, so
// that the change commits with the messages it causes.
type Records interface {
	Put(ctx context.Context, kind, id string, value []byte) error
	// Get returns ErrNotFound for a missing record.
	Get(ctx context.Context, kind, id string) ([]byte, error)
	Delete(ctx context.Context, kind, id string) error
	// List returns up to limit records of a kind in id order, starting after the id after.
	List(ctx context.Context, kind, after string, limit int) ([]Record, error)
}

// Record is one entry of Records.
type Record struct {
	ID    string
	Value []byte
}

// DeadLetterCursor is the position of dead letter m in the dead-letter list,
// for OutboxStore.Dead: 16 hex digits of m.DeadAt, a dot and m.ID. Unlike
// m's id, it stays good when m is revived or purged, so that an operator
// paging through the list while retrying or deleting letters loses no page.
func DeadLetterCursor(m *OutboundMessage) string {
	return fmt.Sprintf("%016x.%s", uint64(m.DeadAt.UnixNano())^(1<<63), m.ID)
}

// ParseDeadLetterCursor reads a DeadLetterCursor; ok is false for anything
// else, such as a bare id.
func ParseDeadLetterCursor(s string) (deadAt time.Time, id string, ok bool) {
	if len(s) < 18 || s[16] != '.' {
		return time.Time{}, "", false
	}
	n, err := strconv.ParseUint(s[:16], 16, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	return time.Unix(0, int64(n^(1<<63))), s[17:], true
}
