package bolt

import (
	"bytes"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/agent"
)

// The committer's journal path (see journal.go).

// journalWork is a unit of work in the form the journal takes: it only
// reads records, queues messages and remembers replay keys (DB.Commit
// builds it beside the transaction function).
type journalWork struct {
	reads   []agent.RecordRead
	replay  [][2][]byte
	queued  *queueBatch // nil when it queues nothing
	nowBits uint64
	refused *error // where a refusal by the checks is reported
}

// journalable reports whether the group goes to the journal: every write
// fits it, and the active set is below twice the limits (past them, while
// a migration runs, the group takes a bbolt transaction, which waits for
// the migration). The caller is the committer.
func (db *DB) journalable(group []*writeCall) bool {
	if db.jnl == nil {
		return false
	}
	for _, c := range group {
		if c.jw == nil {
			return false
		}
	}
	db.pend.mu.RLock()
	defer db.pend.mu.RUnlock()
	return !db.pend.act.over(db.jnl, 2)
}

// commitJournal checks each work of the group against the file, the
// pending sets and the works before it in the group, writes the accepted
// ones as one frame and, once it is synced, adds them to the active set
// and the queue's index and replies. It freezes the active set for
// migration once it is past the limits.
func (db *DB) commitJournal(group []*writeCall) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	tx, err := db.bolt.Begin(false)
	if err != nil {
		for _, c := range group {
			c.err <- err
		}
		return
	}
	b := db.queueOf(tx)
	g := journalGroup{rcpt: make(map[string][2]int64, len(group)), replay: make(map[string]bool, len(group))}
	entries := make([]journalEntry, 0, len(group))
	accepted := make([]*writeCall, 0, len(group))
	seq := db.seq
	db.pend.mu.RLock() // the migrator may drop the frozen set meanwhile
	g.outside = db.pend.outsideOf(tx)
	for _, c := range group {
		jw := c.jw
		if r := db.journalCheck(tx, b, jw, &g); r != nil {
			*jw.refused = r
			c.err <- nil
			continue
		}
		*jw.refused = nil
		e := journalEntry{replay: jw.replay}
		if q := jw.queued; q != nil {
			for i := range q.msgs {
				seq++
				q.seqs[i] = seq
			}
			e.seqs, e.values = q.seqs, q.values
			for r, add := range q.perRecipient {
				have := g.rcpt[r]
				g.rcpt[r] = [2]int64{have[0] + add[0], have[1] + add[1]}
			}
		}
		for _, r := range jw.replay {
			g.replay[string(r[0])] = true
		}
		entries = append(entries, e)
		accepted = append(accepted, c)
	}
	db.pend.mu.RUnlock()
	_ = tx.Rollback() // a read transaction: done with the checks
	if len(g.rcpt) > 0 || len(g.replay) > 0 {
		if err := db.jnl.appendFrame(entries); err != nil {
			// Only a failure is recorded: the journal may write while the
			// file cannot (a full disk: the journal reuses its blocks),
			// and writes count as working again once a bbolt commit
			// (DB.Probe) succeeds.
			db.health.record(err)
			for _, c := range accepted {
				c.err <- err
			}
			return
		}
		db.pend.mu.Lock()
		act := db.pend.act
		for i, c := range accepted {
			for _, r := range entries[i].replay {
				act.replay[string(r[0])] = r[1]
			}
			if q := c.jw.queued; q != nil {
				for k, m := range q.msgs {
					act.add(q.seqs[k], q.values[k], m.Recipient, int64(len(m.Payload)))
				}
			}
		}
		act.lsn = db.jnl.lsn
		db.pend.mu.Unlock()
		db.qidx.mu.Lock()
		for _, c := range accepted {
			if q := c.jw.queued; q != nil {
				for k, m := range q.msgs {
					db.qidx.add(m.Recipient, qentry{timeBits(m.Received), q.seqs[k]})
				}
			}
		}
		db.qidx.mu.Unlock()
		db.seq = seq
		if act.over(db.jnl, 1) {
			db.freeze()
		}
	}
	db.commit.groups.Add(1)
	db.commit.writes.Add(int64(len(group)))
	for _, c := range accepted {
		c.err <- nil
	}
}

// journalGroup is what the works of a group accepted so far add.
type journalGroup struct {
	rcpt   map[string][2]int64
	replay map[string]bool
	// outside are the pending sets not in the group's snapshot of the
	// file, counted by the quota check.
	outside []*pendSet
}

// journalCheck runs a journaled work's checks, as DB.Commit's transaction
// does, counting the pending sets and the group's works before it. The
// caller holds wmu and pend.mu.RLock.
func (db *DB) journalCheck(tx *bbolt.Tx, b queueBuckets, jw *journalWork, g *journalGroup) error {
	for _, r := range jw.reads {
		if !db.fileRecs.stillHolds(tx, r) {
			return fmt.Errorf("bolt: record %s/%s: %w", r.Kind, r.ID, agent.ErrConflict)
		}
	}
	for _, r := range jw.replay {
		if g.replay[string(r[0])] || db.pend.replaySeen(r[0], jw.nowBits) {
			return fmt.Errorf("bolt: %w", agent.ErrReplay)
		}
		if seen, _ := db.replayLookup(tx, r[0], jw.nowBits); seen {
			return fmt.Errorf("bolt: %w", agent.ErrReplay)
		}
	}
	if q := jw.queued; q != nil {
		return q.checkQuotaOf(func(r string) (int64, int64) {
			st := b.state([]byte(r))
			pn, psize := rcptIn(g.outside, r)
			s := g.rcpt[r]
			return st.n + pn + s[0], st.size + psize + s[1]
		})
	}
	return nil
}

// fileRecords remembers records as the journal's checks found them in the
// file, so that the check of a record read again (a forward's registration,
// read for every forward to its recipient) needs no search of the file.
// The journal writes no records and every other write goes through
// boltUpdate, which forgets them all (forget): an entry is the file's
// current value. Used under wmu.
type fileRecords struct {
	m map[recordRef]fileRecord
}

type recordRef struct{ kind, id string }

type fileRecord struct {
	value []byte // a copy
	found bool
}

// fileRecordsMax bounds the entries; past it they are all forgotten.
const fileRecordsMax = 4096

// stillHolds is readStillHolds through the remembered records.
func (f *fileRecords) stillHolds(tx *bbolt.Tx, r agent.RecordRead) bool {
	ref := recordRef{r.Kind, r.ID}
	e, ok := f.m[ref]
	if !ok {
		cur, found := recordIn(tx, r.Kind, r.ID)
		e = fileRecord{value: bytes.Clone(cur), found: found}
		if f.m == nil || len(f.m) >= fileRecordsMax {
			f.m = make(map[recordRef]fileRecord)
		}
		f.m[ref] = e
	}
	return holds(r, e.value, e.found)
}

// forget drops every entry: a bbolt write transaction is about to run.
func (f *fileRecords) forget() {
	if len(f.m) > 0 {
		clear(f.m)
	}
}
