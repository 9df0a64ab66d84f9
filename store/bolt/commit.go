package bolt

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
)

// Group commit.
//
// Writes go to one committer goroutine over an unbuffered channel. The
// committer takes the first write that arrives, then every write whose sender
// is already waiting (up to MaxBatchSize), applies them all in one bbolt
// transaction and commits it with a single fsync. While it commits, new
// writers block on the channel; they form the next group. A lone writer thus
// commits at once, without the timer delay of bbolt's own DB.Batch, and under
// load the groups grow with the time a commit takes.
//
// When the router has told the committer of messages it is handling
// (Inflight) and more of them are in hand than writes in the group, the
// committer waits for them a moment (up to lingerMax, rechecking every
// lingerPoll): their units of work are usually a few hundred microseconds of
// CPU away, and a larger group shares one fsync and one write of the pages
// the group's writes have in common (at 32 concurrent forwards the groups
// grew from about 11 to about 16 writes and the CPU per forward fell by
// about 13%, README: Benchmarks). A lone writer, or one whose peers are not
// messages in hand, never waits, nor does a group of lingerGroup writes.
//
// If one write in a group fails, the transaction is rolled back, that write
// gets its error, and the others are applied again in a new transaction. A
// write function may therefore run more than once and must not have effects
// outside the transaction except result variables it sets afresh on each run.

// writeMode selects how writes are committed; tests and benchmarks compare
// them. The zero value is the production mode.
type writeMode int

const (
	writeGroup     writeMode = iota // group commit through the committer
	writeSolo                       // one bbolt Update per write
	writeBoltBatch                  // bbolt's DB.Batch (timer-based grouping)
)

// Linger bounds; see above.
const (
	lingerMax  = time.Millisecond
	lingerPoll = 50 * time.Microsecond
	// lingerGroup is the group size past which the committer does not
	// wait: each write's share of a group's cost falls as 1/size, so the
	// wait pays for a small group, not for one that is large already.
	lingerGroup = 24
)

type writeCall struct {
	fn  func(*bbolt.Tx) error
	err chan error // buffered: the committer never blocks on a reply
	// jw, when set, is the same write in the form the journal takes
	// (journal.go); the committer chooses.
	jw *journalWork
}

type committer struct {
	calls chan *writeCall // unbuffered, see above
	// groups and writes count the transactions committed and the writes
	// they carried (the mean group size is their ratio), for metrics.
	groups, writes atomic.Int64
	closed         chan struct{}
	closeOnce      sync.Once
	done           sync.WaitGroup
	maxBatch       int
	// inflight counts the messages the router is handling (Inflight);
	// lingerMax is the longest wait for them (tests change it).
	inflight  atomic.Int64
	lingerMax time.Duration
}

func (db *DB) startCommitter(maxBatch int) {
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatchSize
	}
	db.commit = committer{calls: make(chan *writeCall), closed: make(chan struct{}), maxBatch: maxBatch, lingerMax: lingerMax}
	db.commit.done.Add(1)
	go db.commitLoop()
}

// stopCommitter makes new writes fail and waits for the group being
// committed, if any.
func (db *DB) stopCommitter() {
	db.commit.closeOnce.Do(func() { close(db.commit.closed) })
	db.commit.done.Wait()
}

func (db *DB) commitLoop() {
	defer db.commit.done.Done()
	group := make([]*writeCall, 0, 64)
	poll := time.NewTimer(time.Hour)
	poll.Stop()
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	for {
		if db.jnl != nil && !db.pendingEmpty() {
			idle.Reset(journalIdle)
		}
		select {
		case c := <-db.commit.calls:
			group = append(group, c)
		case <-idle.C:
			db.migrateIdle()
			continue
		case <-db.commit.closed:
			return
		}
		idle.Stop()
	gather:
		for len(group) < db.commit.maxBatch {
			select {
			case c := <-db.commit.calls:
				group = append(group, c)
			default:
				break gather
			}
		}
		group = db.linger(group, poll)
		db.commitGroup(group)
		clear(group)
		group = group[:0]
	}
}

// linger adds to group the writes that arrive while more messages are in
// the router's hands than writes in the group, for at most lingerMax and
// while the group has fewer than lingerGroup writes.
func (db *DB) linger(group []*writeCall, poll *time.Timer) []*writeCall {
	c := &db.commit
	want := func() bool {
		return len(group) < min(c.maxBatch, lingerGroup) && c.inflight.Load() > int64(len(group))
	}
	if !want() {
		return group
	}
	defer poll.Stop() // (Go 1.23 timers: Reset and Stop leave no stale tick)
	deadline := time.Now().Add(c.lingerMax)
	for want() && time.Now().Before(deadline) {
		poll.Reset(min(lingerPoll, time.Until(deadline)))
		select {
		case w := <-c.calls:
			group = append(group, w)
		case <-poll.C:
		case <-c.closed:
			return group
		}
	}
	return group
}

// Inflight adds delta to the number of messages the router is handling
// (agent.InflightCounter); see the group commit above.
func (db *DB) Inflight(delta int) { db.commit.inflight.Add(int64(delta)) }

// commitGroup applies the writes in one transaction, taking out any that
// fail, and replies to each. A group whose writes all fit the journal goes
// there while the journal's pending set is not full (journal.go).
func (db *DB) commitGroup(group []*writeCall) {
	if db.journalable(group) {
		db.commitJournal(group)
		return
	}
	for len(group) > 0 {
		failed, failErr := -1, error(nil)
		db.wmu.Lock()
		err := db.boltUpdate(func(tx *bbolt.Tx) error {
			for i, c := range group {
				if err := safeCall(c.fn, tx); err != nil {
					failed, failErr = i, err
					return err
				}
			}
			return nil
		})
		db.wmu.Unlock()
		if failed >= 0 {
			group[failed].err <- failErr
			group = append(group[:failed:failed], group[failed+1:]...)
			continue
		}
		db.health.record(err) // the commit itself: the file's fault, not a write's
		if err == nil {
			db.commit.groups.Add(1)
			db.commit.writes.Add(int64(len(group)))
		}
		for _, c := range group {
			c.err <- err
		}
		return
	}
}

// CommitStats returns how many group transactions have committed since Open
// and how many writes they carried (a unit of work refused by its checks
// counts too: it shared the transaction, writing nothing): writes/groups is
// the mean group size, how many writers shared each fsync.
func (db *DB) CommitStats() (groups, writes int64) {
	return db.commit.groups.Load(), db.commit.writes.Load()
}

// safeCall runs fn, turning a panic into an error for that write alone.
func safeCall(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("bolt: panic in write: %v", p)
		}
	}()
	return fn(tx)
}

// write commits fn durably, in a group with concurrent writes (see above).
// The context is honoured until the committer accepts the write; once
// accepted, the write completes and its result is returned.
func (db *DB) write(ctx context.Context, fn func(*bbolt.Tx) error) error {
	return db.writeCall(ctx, &writeCall{fn: fn})
}

// writeCall is write with the call given, for a write that the journal may
// take (c.jw set).
func (db *DB) writeCall(ctx context.Context, c *writeCall) error {
	fn := c.fn
	if err := ctx.Err(); err != nil {
		return err
	}
	switch db.mode {
	case writeSolo:
		return db.update(ctx, fn)
	case writeBoltBatch:
		return db.bolt.Batch(fn)
	}
	c.err = make(chan error, 1)
	select {
	case db.commit.calls <- c:
		return <-c.err
	case <-db.commit.closed:
		return bberrors.ErrDatabaseNotOpen
	case <-ctx.Done():
		return ctx.Err()
	}
}
