package agent

import (
	"context"
	"strings"
	"time"
)

// Signals tells an instance what the other instances sharing its store
// committed, when the store is shared (store/postgres; a bbolt store has
// one instance and no Signals). A signal carries a topic and a short
// payload naming what changed (a record, a queue recipient, a thread),
// never the data: the receiver reads that from the store.
//
// Signals are sent by the commit that makes the change, so one is never
// seen before the change is readable. They may be lost while an instance
// is disconnected from the others; after every (re)connection the
// functions given to OnResync run, and must catch up by reading the store.
type Signals interface {
	// Subscribe calls fn with the payload of every signal on topic sent
	// by another instance. fn runs on the receiving goroutine: it must be
	// quick and must not block (hand slow work to a goroutine of its own).
	Subscribe(topic string, fn func(payload string))
	// OnResync calls fn after every (re)connection to the other
	// instances: what was signalled meanwhile may have been missed.
	OnResync(fn func())
	// Signal sends payload on topic to the other instances now, outside
	// any unit of work.
	Signal(ctx context.Context, topic, payload string) error
}

// Topics the commits of a shared store signal by themselves.
const (
	// SignalQueue is a commit that queued messages for a mediator's
	// recipient; the payload is the recipient (once per recipient and
	// commit).
	SignalQueue = "queue"
	// SignalRecord is a commit that wrote or deleted a record of a kind
	// the store was told to watch; the payload is the kind, a unit
	// separator (0x1f) and the id (see RecordSignal).
	SignalRecord = "record"
)

// RecordSignal splits the payload of a SignalRecord signal.
func RecordSignal(payload string) (kind, id string, ok bool) {
	return strings.Cut(payload, "\x1f")
}

// Leases elects one instance among those sharing a store for work that
// must run once at a time (a sweep, a spooled mail). A bbolt store has one
// instance, which always holds every lease (see SoleLeases).
type Leases interface {
	// Lead reports whether this instance holds the lease on name for the
	// next d: it takes it when it is free or expired, and renews it when
	// it already holds it. Another instance holding an unexpired lease
	// makes it false. A crashed holder's lease expires after d.
	Lead(ctx context.Context, name string, d time.Duration) (bool, error)
	// Release gives up the lease on name if this instance holds it.
	Release(ctx context.Context, name string) error
}

// SoleLeases is the Leases of a store with one instance: Lead is always
// true.
type SoleLeases struct{}

// Lead implements Leases: always true.
func (SoleLeases) Lead(context.Context, string, time.Duration) (bool, error) { return true, nil }

// Release implements Leases: nothing to do.
func (SoleLeases) Release(context.Context, string) error { return nil }

// PutIfUnchanged stores value under kind and id if the record still holds
// prev (is still missing when prev is nil), in one unit of work on c: two
// instances creating the same record at once (the agent's DID, on a first
// start of both) do not both win; the loser gets ErrConflict and reads the
// winner's record. A nil c puts through records unconditionally.
func PutIfUnchanged(ctx context.Context, c Committer, records Records, kind, id string, prev, value []byte) error {
	if c == nil {
		return records.Put(ctx, kind, id, value)
	}
	w := NewWork(records)
	w.Reads = append(w.Reads, RecordRead{Kind: kind, ID: id, Value: prev, Missing: prev == nil})
	w.Put(kind, id, value)
	return c.Commit(ctx, w)
}
