package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/agent"
)

// CommitPoint names a point of DB.Commit at which Options.CommitHook is
// called.
type CommitPoint string

// The points of a commit.
const (
	// BeforeCommit: the work is about to be committed; nothing is stored yet.
	BeforeCommit CommitPoint = "before-commit"
	// AfterCommit: the work is committed and durable; Commit has not
	// returned yet.
	AfterCommit CommitPoint = "after-commit"
)

var _ agent.Committer = (*DB)(nil)

// Commit applies a unit of work in one group-committed transaction: the
// checks first (every record the work read is unchanged, no replay key is
// recorded, every recipient stays within its queue limits, the outbox
// stays within w.OutboxLimits, no outbox id is taken), then the record writes, the outbound messages, the queued
// messages and the replay keys. It returns once the transaction is durable;
// on any failed check or error nothing of the work is stored, and the
// failure does not affect the other works committed in the same group. The
// errors are agent.ErrConflict, agent.ErrReplay, agent.ErrQuota and
// agent.ErrOutboxFull (wrapped) for the failed checks. After the commit, the queued messages have their
// IDs.
func (db *DB) Commit(ctx context.Context, w *agent.Work) error {
	now := time.Now()
	for _, wr := range w.Writes {
		if err := checkID("record kind", wr.Kind); err != nil {
			return err
		}
		if err := checkID("record id", wr.ID); err != nil {
			return err
		}
	}
	outs := make([]preparedOutbound, len(w.Outbound))
	for i, m := range w.Outbound {
		p, err := prepareOutbound(m)
		if err != nil {
			return err
		}
		outs[i] = p
	}
	var queued *queueBatch
	if len(w.Queued) > 0 {
		var err error
		if queued, err = prepareQueue(w.Queued, w.QueueLimits, now); err != nil {
			return err
		}
	}
	replay := make([][2][]byte, len(w.Replay))
	for i, r := range w.Replay {
		if err := checkID("replay key", r.Key); err != nil {
			return err
		}
		replay[i] = [2][]byte{[]byte(r.Key), putBE64(timeBits(r.Until))}
	}
	nowBits := timeBits(now)

	db.hook(BeforeCommit, w)
	var refused error
	call := &writeCall{}
	if len(w.Writes) == 0 && len(outs) == 0 && db.jnl != nil {
		// Only reads, queued messages and replay keys: the journal may
		// take it (journal.go).
		call.jw = &journalWork{reads: w.Reads, replay: replay, queued: queued, nowBits: nowBits, refused: &refused}
	}
	call.fn = func(tx *bbolt.Tx) error {
		refused = nil // this function may run more than once
		// Checks: a refusal returns nil having written nothing, so that
		// it does not fail the group.
		for _, r := range w.Reads {
			if !readStillHolds(tx, r) {
				refused = fmt.Errorf("bolt: record %s/%s: %w", r.Kind, r.ID, agent.ErrConflict)
				return nil
			}
		}
		// A work's one replay key (the usual case) is looked up once: its
		// stored expiry, if any, is passed on to the write below.
		var oldExp []byte
		for _, r := range replay {
			seen, old := db.replayLookup(tx, r[0], nowBits)
			if seen {
				refused = fmt.Errorf("bolt: %w", agent.ErrReplay)
				return nil
			}
			oldExp = old
		}
		if queued != nil {
			if refused = queued.checkQuota(db.queueOf(tx)); refused != nil {
				return nil
			}
		}
		if refused = checkLimits(tx, outs, w.OutboxLimits); refused != nil {
			return nil
		}
		// Writes.
		recs := tx.Bucket(bRecords)
		for _, wr := range w.Writes {
			if wr.Delete {
				if b := recs.Bucket([]byte(wr.Kind)); b != nil {
					if err := b.Delete([]byte(wr.ID)); err != nil {
						return err
					}
				}
				continue
			}
			b, err := recs.CreateBucketIfNotExists([]byte(wr.Kind))
			if err != nil {
				return err
			}
			if err := b.Put([]byte(wr.ID), wr.Value); err != nil {
				return err
			}
		}
		for _, p := range outs {
			if err := p.put(tx); err != nil {
				return err
			}
		}
		if queued != nil {
			if err := queued.put(db.queueOf(tx)); err != nil {
				return err
			}
		}
		if len(replay) == 1 {
			if err := db.replayPutOver(tx, replay[0][0], replay[0][1], oldExp); err != nil {
				return err
			}
		} else {
			for _, r := range replay {
				if err := db.replayPut(tx, r[0], r[1]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := db.writeCall(ctx, call); err != nil {
		return err
	}
	if refused != nil {
		return refused
	}
	if queued != nil {
		queued.assignIDs()
	}
	db.hook(AfterCommit, w)
	return nil
}

// readStillHolds reports whether the record r read is still as it saw it.
func readStillHolds(tx *bbolt.Tx, r agent.RecordRead) bool {
	cur, found := recordIn(tx, r.Kind, r.ID)
	return holds(r, cur, found)
}

// recordIn returns the stored value of record kind/id and whether there is
// one; the value is the transaction's memory.
func recordIn(tx *bbolt.Tx, kind, id string) ([]byte, bool) {
	if b := tx.Bucket(bRecords).Bucket([]byte(kind)); b != nil && id != "" {
		// Seek, not Get: it tells an empty value from a missing one.
		if k, v := b.Cursor().Seek([]byte(id)); k != nil && string(k) == id {
			return v, true
		}
	}
	return nil, false
}

// holds reports whether read r saw the record as cur (found: it exists).
func holds(r agent.RecordRead, cur []byte, found bool) bool {
	if r.Missing {
		return !found
	}
	return found && bytes.Equal(cur, r.Value)
}

func (db *DB) hook(p CommitPoint, w *agent.Work) {
	if db.commitHook != nil {
		db.commitHook(p, w)
	}
}
