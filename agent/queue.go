package agent

import (
	"context"
	"errors"
	"time"
)

// ErrQuota is returned (wrapped) by QueueStore.Add when the messages would
// take a recipient over its quota of queued messages or bytes.
var ErrQuota = errors.New("queue quota exceeded")

// QueuedMessage is a message a mediator holds for one of its recipients until
// the recipient picks it up (Pickup 3.0) or it expires.
type QueuedMessage struct {
	// ID is the queue id, assigned by the store on Add: opaque, unique in the
	// store, and what the recipient names in messages-received.
	ID string
	// Recipient is the DID the message is queued for (a DID, not a DID URL).
	Recipient string
	// Payload is the forwarded message exactly as it was received: an
	// encrypted DIDComm message the mediator cannot read.
	Payload []byte
	// Received is when the mediator accepted the message.
	Received time.Time
	// Expires is when the message is dropped if nobody picked it up.
	Expires time.Time
}

// QueueLimits bound what one recipient may have queued. Zero means no limit.
type QueueLimits struct {
	MaxMessages int
	MaxBytes    int64
}

// QueueStats describes the messages queued for a set of recipients.
type QueueStats struct {
	Messages int
	Bytes    int64
	// Oldest and Newest are the receive times of the oldest and newest
	// message; zero when there are none.
	Oldest, Newest time.Time
}

// QueueTotals describes the whole queue, for operators and metrics.
type QueueTotals struct {
	Messages   int
	Bytes      int64
	Recipients int
}

// QueueStore keeps a mediator's messages per recipient, durably: Add returns
// only after the messages are committed to stable storage. Implementations
// are safe for concurrent use; concurrent Adds should share commits (group
// commit), since every forward a mediator accepts is one Add.
type QueueStore interface {
	// Add queues msgs in one transaction, assigning each its ID. The batch is
	// stored entirely or not at all: if it would take a recipient over
	// limits, Add stores nothing and returns an error wrapping ErrQuota.
	// (A handler queues messages with Work.Queue instead, so that they
	// commit with the rest of its unit of work.)
	Add(ctx context.Context, msgs []*QueuedMessage, limits QueueLimits) error
	// List returns up to limit unexpired messages queued for any of the
	// recipients, oldest first.
	List(ctx context.Context, recipients []string, now time.Time, limit int) ([]*QueuedMessage, error)
	// Remove deletes the messages with the given ids that are queued for one
	// of the recipients and returns how many it deleted; other ids are
	// ignored.
	Remove(ctx context.Context, recipients []string, ids []string) (int, error)
	// Stats describes the messages queued for the recipients.
	Stats(ctx context.Context, recipients []string) (QueueStats, error)
	// Totals describes the whole queue.
	Totals(ctx context.Context) (QueueTotals, error)
	// Purge deletes every message queued for recipient and returns how many.
	Purge(ctx context.Context, recipient string) (int, error)
	// Sweep deletes the messages that expired before now and returns how many.
	Sweep(ctx context.Context, now time.Time) (int, error)
}
