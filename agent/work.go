package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Errors a Committer returns, alone or wrapped, when it refuses a unit of
// work. In each case nothing of the work was stored.
var (
	// ErrConflict: a record the work read (Work.Get) changed before the
	// work committed. Update runs the work's function again.
	ErrConflict = errors.New("a record the work read has changed")
	// ErrReplay: a replay key of the work (Work.Remember) was already
	// recorded: the work belongs to a message that was handled before.
	ErrReplay = errors.New("replay key already recorded")
	// ErrOutboxFull: the work's outbound messages would take the outbox
	// over its limits (Work.OutboxLimits): too many pending messages in
	// total, or for one endpoint.
	ErrOutboxFull = errors.New("outbox full")
	// ErrUnavailable: the store could not be reached (a database server
	// down or its connection lost). The work may or may not have been
	// stored (a commit whose answer was lost); the caller acknowledges
	// nothing and the sender tries again later, which the replay cache
	// makes harmless.
	ErrUnavailable = errors.New("the store is unavailable")
)

// OutboxLimits bound the outbox's pending messages (dead letters are not
// counted): MaxPending in total, MaxPendingPerDestination for one endpoint
// URI (OutboundMessage.Endpoint, compared as a string). Zero means no limit.
// A commit that would take the outbox over a limit fails with ErrOutboxFull
// and stores nothing; messages already pending are never dropped.
type OutboxLimits struct {
	MaxPending               int
	MaxPendingPerDestination int
}

// Work is one unit of work: the record writes, outbound messages, queued
// messages and replay keys that a message handler or an operator's action
// decides on, committed together by a Committer, or not at all.
//
// A Work is built in memory and touches the store only to read: Get reads
// through to the committed records and remembers what it saw, so that the
// commit fails with ErrConflict if any of it changed meanwhile (optimistic
// concurrency, the same on every backend). Reads see the work's own staged
// writes. Nothing is visible to others until the commit, and a work that is
// never committed changes nothing.
//
// A Work is not safe for concurrent use. The exported fields are what a
// Committer applies; code that builds a work uses the methods.
type Work struct {
	// Reads are the records the work read, with what it saw; the commit
	// checks that each is still so.
	Reads []RecordRead
	// Writes are the record puts and deletes, in order.
	Writes []RecordWrite
	// Outbound are the packed messages queued in the outbox, within
	// OutboxLimits (Store.Commit sets them from Store.OutboxLimits).
	Outbound     []*OutboundMessage
	OutboxLimits OutboxLimits
	// Queued are the messages queued for a mediator's recipients, each
	// recipient within QueueLimits. The commit assigns their IDs.
	Queued      []*QueuedMessage
	QueueLimits QueueLimits
	// Replay are the replay keys recorded until their expiry; a key already
	// recorded fails the commit with ErrReplay.
	Replay []ReplayKey

	records   Records
	after     []func()
	committed bool // set once Store.Commit has committed it
}

// RecordRead is a record a Work read: its value, or Missing.
type RecordRead struct {
	Kind, ID string
	Value    []byte
	Missing  bool
}

// RecordWrite is a staged record write: a put of Value, or a delete.
type RecordWrite struct {
	Kind, ID string
	Value    []byte
	Delete   bool
}

// ReplayKey is a replay-cache entry a Work records.
type ReplayKey struct {
	Key   string
	Until time.Time
}

// NewWork returns an empty unit of work whose reads go to records (nil for
// a work that reads nothing).
func NewWork(records Records) *Work { return &Work{records: records} }

// Expect records that this work read value as the record of kind and id
// without reading the store: the caller knows it from a cache of committed
// values. The commit checks it as any read (Get), so a stale cache fails
// the commit with ErrConflict and the work's function runs again; it
// should then read through Get. Later Gets of the record return value.
func (w *Work) Expect(kind, id string, value []byte) {
	for _, r := range w.Reads {
		if r.Kind == kind && r.ID == id {
			return
		}
	}
	w.Reads = append(w.Reads, RecordRead{Kind: kind, ID: id, Value: bytes.Clone(value)})
}

// Get returns the record of kind and id as this work sees it: its own staged
// write if any, otherwise the committed value, which the commit then checks
// is unchanged. A missing record is an error wrapping ErrNotFound (and the
// commit checks that it is still missing).
func (w *Work) Get(ctx context.Context, kind, id string) ([]byte, error) {
	for i := len(w.Writes) - 1; i >= 0; i-- {
		if wr := w.Writes[i]; wr.Kind == kind && wr.ID == id {
			if wr.Delete {
				return nil, fmt.Errorf("record %s/%s: %w", kind, id, ErrNotFound)
			}
			return bytes.Clone(wr.Value), nil
		}
	}
	for _, r := range w.Reads {
		if r.Kind == kind && r.ID == id {
			if r.Missing {
				return nil, fmt.Errorf("record %s/%s: %w", kind, id, ErrNotFound)
			}
			return bytes.Clone(r.Value), nil
		}
	}
	if w.records == nil {
		return nil, fmt.Errorf("record %s/%s: this unit of work cannot read", kind, id)
	}
	v, err := w.records.Get(ctx, kind, id)
	switch {
	case errors.Is(err, ErrNotFound):
		w.Reads = append(w.Reads, RecordRead{Kind: kind, ID: id, Missing: true})
		return nil, err
	case err != nil:
		return nil, err
	}
	w.Reads = append(w.Reads, RecordRead{Kind: kind, ID: id, Value: bytes.Clone(v)})
	return v, nil
}

// Put stages a write of value under kind and id.
func (w *Work) Put(kind, id string, value []byte) {
	w.Writes = append(w.Writes, RecordWrite{Kind: kind, ID: id, Value: bytes.Clone(value)})
}

// PutJSON stages a write of v, encoded as JSON, under kind and id.
func (w *Work) PutJSON(kind, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("record %s/%s: %w", kind, id, err)
	}
	w.Writes = append(w.Writes, RecordWrite{Kind: kind, ID: id, Value: b})
	return nil
}

// Delete stages the deletion of the record under kind and id (deleting a
// missing record is not an error).
func (w *Work) Delete(kind, id string) {
	w.Writes = append(w.Writes, RecordWrite{Kind: kind, ID: id, Delete: true})
}

// Enqueue stages packed messages for the outbox. IDs, creation and due
// times are filled in when empty.
func (w *Work) Enqueue(msgs ...*OutboundMessage) {
	now := time.Now()
	for _, m := range msgs {
		if m.ID == "" {
			m.ID = NewID()
		}
		if m.CreatedAt.IsZero() {
			m.CreatedAt = now
		}
		if m.NextAttempt.IsZero() {
			m.NextAttempt = now
		}
		w.Outbound = append(w.Outbound, m)
	}
}

// Queue stages messages for a mediator's recipients, each recipient held to
// limits: over them, the commit fails with an error wrapping ErrQuota.
func (w *Work) Queue(limits QueueLimits, msgs ...*QueuedMessage) {
	w.QueueLimits = limits
	w.Queued = append(w.Queued, msgs...)
}

// Remember stages a replay-cache entry: key is recorded until until, and if
// it is already recorded the commit fails with ErrReplay.
func (w *Work) Remember(key string, until time.Time) {
	w.Replay = append(w.Replay, ReplayKey{Key: key, Until: until})
}

// AfterCommit registers fn to run once the work has committed (never if it
// did not): waking a waiter, pushing to a live connection, anything that must
// not happen for a change that is not durable.
func (w *Work) AfterCommit(fn func()) { w.after = append(w.after, fn) }

// Empty reports whether committing the work would change nothing.
func (w *Work) Empty() bool {
	return len(w.Writes) == 0 && len(w.Outbound) == 0 && len(w.Queued) == 0 && len(w.Replay) == 0
}

// reset drops everything staged, for a new run of the work's function.
func (w *Work) reset() {
	*w = Work{records: w.records}
}

// Committer commits units of work: everything in a Work is applied in one
// transaction that is durable when Commit returns nil, or nothing is. A
// failed read check gives ErrConflict, a recorded replay key ErrReplay, a
// recipient over its limits ErrQuota, outbound messages that would take the
// outbox over w.OutboxLimits ErrOutboxFull, all possibly wrapped. Implementations
// are safe for concurrent use and should share commits among concurrent
// callers (group commit). The conformance suite (store/storetest.TestCommit)
// states the contract.
type Committer interface {
	Commit(ctx context.Context, w *Work) error
}

// InflightCounter is implemented by a Committer that commits concurrent
// works in groups (one fsync each). The router calls Inflight(1) when it
// starts on a message, whose unit of work will usually be committed soon,
// and Inflight(-1) when it is done with it, so that the committer can wait a
// moment for those works to join the group it is about to commit.
type InflightCounter interface {
	Inflight(delta int)
}

// Store is the agent's durable state as protocols use it: records to read,
// and units of work to change them with.
type Store struct {
	Records   Records
	Committer Committer
	// Wake, when set, is called after a commit that queued outbound
	// messages: the outbox's Wake, so that they leave at once.
	Wake func()
	// OutboxLimits bound the outbox; Commit hands them to the committer
	// with every work that queues outbound messages.
	OutboxLimits OutboxLimits
}

// maxConflictRetries bounds how often Update runs a function whose reads
// keep changing under it.
const maxConflictRetries = 10

// Update runs fn on a new unit of work and commits it; on ErrConflict it
// runs fn again on a fresh one, a few times, after a short random pause
// that grows with each attempt (so that works contending for one record do
// not keep colliding in the same group commit). fn must have no effects outside
// the work (use AfterCommit for those). When fn returns an error nothing is
// committed and Update returns it. After a successful commit the work's
// after-commit functions run before Update returns.
func (s Store) Update(ctx context.Context, fn func(w *Work) error) error {
	w := NewWork(s.Records)
	for attempt := 0; ; attempt++ {
		w.reset()
		if err := fn(w); err != nil {
			return err
		}
		err := s.Commit(ctx, w)
		if errors.Is(err, ErrConflict) && attempt < maxConflictRetries {
			pause := time.Duration(rand.Int64N(int64(100*time.Microsecond) << min(attempt, 6)))
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		return err
	}
}

// New returns an empty unit of work that reads from s.
func (s Store) New() *Work { return NewWork(s.Records) }

// Commit commits w and then runs its after-commit functions. An empty work
// commits nothing, but its after-commit functions run.
func (s Store) Commit(ctx context.Context, w *Work) error {
	if !w.Empty() {
		if s.Committer == nil {
			return errors.New("agent: no committer configured")
		}
		if len(w.Outbound) > 0 && w.OutboxLimits == (OutboxLimits{}) {
			w.OutboxLimits = s.OutboxLimits
		}
		if err := s.Committer.Commit(ctx, w); err != nil {
			return err
		}
		if len(w.Outbound) > 0 && s.Wake != nil {
			s.Wake()
		}
	}
	w.committed = true
	for _, fn := range w.after {
		fn()
	}
	return nil
}
