package bolt

import (
	"cmp"
	"slices"
	"sync"

	"go.etcd.io/bbolt"
)

// The queue's recipient index, in memory.
//
// A recipient's messages are listed oldest first (receive time, then queue
// sequence). Kept as a bbolt bucket keyed by recipient, time and sequence,
// the index cost a forward one more leaf page written and synced: a group's
// forwards go to different recipients, so each lands on a tail of its own
// (about 1 of the 2.8 pages a forward wrote; see the README's Benchmarks).
// It is derived data: every stored message record holds its recipient and
// receive time, so the index lives in memory and is rebuilt by a scan of
// the records when the database opens, and the data written per forward is
// the record, its expiry entry and the counters.
//
// A write transaction records its index changes as it makes them (qdelta)
// and they are applied once it has committed, before the write returns.
// Writes that can change the index take DB.wmu around the bbolt transaction
// and the apply (the committer and DB.update), so the index moves in commit
// order and a write transaction sees the index as of the last commit plus
// its own changes. A reader pairs the index with a read transaction that
// may be older or newer; it skips an entry whose record it cannot find.

// qentry is one message in the index.
type qentry struct{ received, seq uint64 }

func (a qentry) compare(b qentry) int {
	if c := cmp.Compare(a.received, b.received); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// qindex maps a recipient to its messages, sorted by receive time and
// sequence.
type qindex struct {
	mu sync.RWMutex
	by map[string][]qentry
}

func (x *qindex) add(recipient string, e qentry) {
	es := x.by[recipient]
	if n := len(es); n == 0 || es[n-1].compare(e) < 0 {
		x.by[recipient] = append(es, e) // the usual case: newest last
		return
	}
	i, found := slices.BinarySearchFunc(es, e, qentry.compare)
	if !found {
		x.by[recipient] = slices.Insert(es, i, e)
	}
}

func (x *qindex) remove(recipient string, e qentry) {
	es := x.by[recipient]
	i, found := slices.BinarySearchFunc(es, e, qentry.compare)
	switch {
	case !found:
		return
	case len(es) == 1:
		delete(x.by, recipient)
	case i == 0:
		x.by[recipient] = es[1:] // the usual case: oldest delivered first
	default:
		x.by[recipient] = slices.Delete(es, i, i+1)
	}
}

// walk calls fn with the recipient's entries in order until it returns
// false, holding the read lock.
func (x *qindex) walk(recipient string, fn func(qentry) bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, e := range x.by[recipient] {
		if !fn(e) {
			return
		}
	}
}

// bounds returns the recipient's oldest and newest entry.
func (x *qindex) bounds(recipient string) (oldest, newest qentry, ok bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	es := x.by[recipient]
	if len(es) == 0 {
		return qentry{}, qentry{}, false
	}
	return es[0], es[len(es)-1], true
}

// first returns up to n of the recipient's oldest entries.
func (x *qindex) first(recipient string, n int) []qentry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	es := x.by[recipient]
	return slices.Clone(es[:min(n, len(es))])
}

// qchange is one index change of a write transaction.
type qchange struct {
	recipient string
	e         qentry
	del       bool
}

// qdelta collects a write transaction's index changes.
type qdelta struct {
	tx      *bbolt.Tx
	changes []qchange
}

// indexChange records an index change of tx, to be applied once tx has
// committed. Only one write transaction is open at a time.
func (db *DB) indexChange(tx *bbolt.Tx, c qchange) {
	d := db.qdelta
	if d == nil || d.tx != tx {
		d = &qdelta{tx: tx}
		db.qdelta = d
		tx.OnCommit(func() { db.applyIndex(d) })
	}
	d.changes = append(d.changes, c)
}

func (db *DB) applyIndex(d *qdelta) {
	db.qidx.mu.Lock()
	defer db.qidx.mu.Unlock()
	for _, c := range d.changes {
		if c.del {
			db.qidx.remove(c.recipient, c.e)
		} else {
			db.qidx.add(c.recipient, c.e)
		}
	}
}

// loadIndex builds the index from the stored records.
func (db *DB) loadIndex() error {
	by := map[string][]qentry{}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bQueue).Bucket(bData).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			r, err := decodeRecordHead(v)
			if err != nil {
				return err
			}
			es, ok := by[string(r.recipient)]
			if !ok {
				// One copy of the recipient per recipient, not per message.
				by[string(r.recipient)] = nil
			}
			by[string(r.recipient)] = append(es, qentry{r.receivedBits, be64(k)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for r, es := range by {
		slices.SortFunc(es, qentry.compare) // sequence order, unless a receive time was given
		by[r] = es
	}
	db.qidx.by = by
	return nil
}
