package bolt

import (
	"context"
	"encoding/binary"
	"time"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/agent"
)

// ReplayCache remembers message ids until they expire, implementing
// agent.ReplayCache. Get it from DB.ReplayCache.
//
// Remember checks and records an id in one transaction, so of any number of
// concurrent calls with the same id exactly one reports false; it is durable
// on return, and concurrent calls share fsyncs (group commit), so a burst of
// inbound messages does not queue on the disk. An id whose expiry has passed counts as forgotten even before Sweep
// removes it. Sweep walks an expiry index and costs in proportion to what it
// removes.
type ReplayCache struct{ db *DB }

var _ agent.ReplayCache = (*ReplayCache)(nil)

// sweepChunk bounds the number of ids one Sweep transaction removes, so a
// large backlog does not build one huge transaction.
const sweepChunk = 10000

// Remember records id until expires and reports whether it was already
// recorded with an expiry not before the current time (a replay). A replay
// leaves the stored expiry unchanged.
func (r *ReplayCache) Remember(ctx context.Context, id string, expires time.Time) (seen bool, err error) {
	if err := checkID("message id", id); err != nil {
		return false, err
	}
	key := []byte(id)
	exp := binary.BigEndian.AppendUint64(nil, timeBits(expires))
	nowBits := timeBits(time.Now())
	err = r.db.write(ctx, func(tx *bbolt.Tx) error {
		seen = r.db.replaySeen(tx, key, nowBits) // this function may run more than once
		if seen {
			return nil
		}
		return r.db.replayPut(tx, key, exp)
	})
	if err != nil {
		return false, err
	}
	return seen, nil
}

// Seen reports whether id is recorded with an expiry not before now; it
// writes nothing.
func (r *ReplayCache) Seen(ctx context.Context, id string) (bool, error) {
	var seen bool
	nowBits := timeBits(time.Now())
	r.db.pend.mu.RLock() // before the transaction (journal.go)
	defer r.db.pend.mu.RUnlock()
	err := r.db.view(ctx, func(tx *bbolt.Tx) error {
		seen = r.db.replaySeen(tx, []byte(id), nowBits) || r.db.pend.replaySeen([]byte(id), nowBits)
		return nil
	})
	return seen, err
}

// replaySeen reports whether key is recorded in the replay cache with an
// expiry not before nowBits.
func (db *DB) replaySeen(tx *bbolt.Tx, key []byte, nowBits uint64) bool {
	seen, _ := db.replayLookup(tx, key, nowBits)
	return seen
}

// replayLookup is replaySeen that also returns the stored expiry of key in
// the ids (nil when there is none, or when the filter tells the key is not
// recorded unexpired: an expired record may then be left), for
// replayPutOver. The ids and the runs (replayruns.go) are both searched.
func (db *DB) replayLookup(tx *bbolt.Tx, key []byte, nowBits uint64) (seen bool, old []byte) {
	d := digestOf(key)
	if !db.replayF.mayHold(d[:], nowBits) {
		return false, nil
	}
	old = tx.Bucket(bReplay).Bucket(bID).Get(key)
	if old != nil && be64(old) >= nowBits {
		return true, old
	}
	return runsHold(tx, &d, nowBits), old
}

// replayPut records key until exp (a be64 time) in the ids, replacing a
// record that expired but was not swept yet. A key the filter has never
// seen (nor dropped with a day long past) has no record: it is not
// searched for.
func (db *DB) replayPut(tx *bbolt.Tx, key, exp []byte) error {
	d := digestOf(key)
	var old []byte
	if db.replayF.mayHold(d[:], 0) { // 0: expired days too
		old = tx.Bucket(bReplay).Bucket(bID).Get(key)
	}
	return db.putID(tx, key, &d, exp, old)
}

// replayPutOver is replayPut when the caller has just read key's stored
// expiry, old (nil: none, or an expired record the filter spared the search
// of: its expiry index entry is then left to Sweep, which checks the ids
// before it removes one), in the same transaction and has not changed the
// record since: it spares a second search of the ids. The caller holds mmu
// (a bbolt write).
func (db *DB) replayPutOver(tx *bbolt.Tx, key, exp, old []byte) error {
	d := digestOf(key)
	return db.putID(tx, key, &d, exp, old)
}

// putID is replayPutOver with key's digest d.
func (db *DB) putID(tx *bbolt.Tx, key []byte, d *replayDigest, exp, old []byte) error {
	db.replayF.add(d[:], be64(exp), time.Now()) // before the record can be seen
	top := tx.Bucket(bReplay)
	ids, idx := top.Bucket(bID), top.Bucket(bExp)
	if old != nil {
		if err := idx.Delete(append(clone(old), key...)); err != nil {
			return err
		}
	}
	if err := ids.Put(key, exp); err != nil {
		return err
	}
	return idx.Put(append(clone(exp), key...), nil)
}

// Sweep forgets the ids whose expiry is before now and returns how many it
// removed. It commits in transactions of its own: the ids written directly
// at most 10,000 at a time, then the runs (replayruns.go) in one; if it
// fails part way the count covers the transactions committed.
func (r *ReplayCache) Sweep(ctx context.Context, now time.Time) (int, error) {
	bound := timeBits(now)
	total := 0
	for {
		n := 0
		err := r.db.update(ctx, func(tx *bbolt.Tx) error {
			n = 0
			top := tx.Bucket(bReplay)
			ids, idx := top.Bucket(bID), top.Bucket(bExp)
			c := idx.Cursor()
			for k, _ := c.First(); k != nil && n < sweepChunk; k, _ = c.First() {
				if be64(k) >= bound {
					break
				}
				k = clone(k)
				// The index and ids agree; check anyway rather than drop a live id.
				if v := ids.Get(k[8:]); v != nil && be64(v) == be64(k) {
					if err := ids.Delete(k[8:]); err != nil {
						return err
					}
				}
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < sweepChunk {
			break
		}
	}
	var n int
	err := r.db.update(ctx, func(tx *bbolt.Tx) (err error) {
		n, err = sweepRuns(tx, bound)
		return err
	})
	if err != nil {
		return total, err
	}
	return total + n, nil
}
