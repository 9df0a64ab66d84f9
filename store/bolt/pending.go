package bolt

import (
	"slices"
	"sync"

	"go.etcd.io/bbolt"
)

// What the journal holds and the database file does not yet (journal.go).

// pendSet is the content of consecutive journal frames: queued messages by
// sequence, with per-recipient counts, and replay keys.
type pendSet struct {
	seqs   []uint64          // queue sequences, ascending
	msgs   map[uint64][]byte // sequence → queue record
	rcpt   map[string][2]int64
	replay map[string][]byte // key → be64 expiry
	bytes  int64             // payload bytes of msgs
	lsn    uint64            // the last frame whose content is here
}

func newPendSet(lsn uint64) *pendSet {
	return &pendSet{msgs: map[uint64][]byte{}, rcpt: map[string][2]int64{}, replay: map[string][]byte{}, lsn: lsn}
}

// next returns an empty set to follow s, its maps sized for what s holds:
// sets follow each other at a steady load, and a map grown from empty
// rehashes its entries several times on the way (about 1 % of a
// forward's CPU in a profile, in the committer).
func (s *pendSet) next() *pendSet {
	return &pendSet{msgs: make(map[uint64][]byte, len(s.msgs)), rcpt: make(map[string][2]int64, len(s.rcpt)),
		replay: make(map[string][]byte, len(s.replay)), lsn: s.lsn}
}

func (s *pendSet) empty() bool { return s == nil || len(s.msgs) == 0 && len(s.replay) == 0 }

// over reports whether the set holds factor times the journal's limits
// or more.
func (s *pendSet) over(j *journal, factor int) bool {
	return len(s.msgs) >= factor*j.maxMessages || s.bytes >= int64(factor)*j.maxBytes ||
		len(s.replay) >= 2*factor*j.maxMessages
}

// add puts a queued message in the set.
func (s *pendSet) add(seq uint64, v []byte, recipient string, size int64) {
	if _, ok := s.msgs[seq]; ok {
		return
	}
	s.msgs[seq] = v
	if n := len(s.seqs); n > 0 && s.seqs[n-1] > seq {
		i, _ := slices.BinarySearch(s.seqs, seq)
		s.seqs = slices.Insert(s.seqs, i, seq)
	} else {
		s.seqs = append(s.seqs, seq)
	}
	c := s.rcpt[recipient]
	s.rcpt[recipient] = [2]int64{c[0] + 1, c[1] + size}
	s.bytes += size
}

// pending is the active set, which new frames go to, and the frozen set
// being migrated (nil when none is).
//
// The sets change only under mu, by the writer holding DB.wmu (a frame
// added to the active set, a freeze, a migration by a bbolt write) or by
// the migrator holding DB.mmu (the frozen set dropped once its migration
// committed). Readers take mu.RLock before they open their read
// transaction and hold it while they look here, so a message being
// migrated is found either in their snapshot of the file or here. A set
// whose migration committed may still be here while a reader's snapshot
// already holds it: counts take a set only when it is outside the
// snapshot (outsideOf).
type pending struct {
	mu       sync.RWMutex
	act, frz *pendSet
}

// sets returns the non-empty sets, the frozen one first.
func (p *pending) sets() []*pendSet {
	var out []*pendSet
	for _, s := range []*pendSet{p.frz, p.act} {
		if !s.empty() {
			out = append(out, s)
		}
	}
	return out
}

// msg returns the record of message seq, or nil. The caller holds mu.
func (p *pending) msg(seq uint64) []byte {
	if v := p.act.msgs[seq]; v != nil {
		return v
	}
	if p.frz != nil {
		return p.frz.msgs[seq]
	}
	return nil
}

// outsideOf returns the non-empty sets whose content is not in tx's
// snapshot of the file. The caller holds mu.
func (p *pending) outsideOf(tx *bbolt.Tx) []*pendSet {
	migrated := be64(tx.Bucket(bMeta).Get(kJournalLSN))
	var out []*pendSet
	for _, s := range []*pendSet{p.frz, p.act} {
		if !s.empty() && s.lsn > migrated {
			out = append(out, s)
		}
	}
	return out
}

// rcptIn returns what the sets hold for recipient.
func rcptIn(sets []*pendSet, recipient string) (n, size int64) {
	for _, s := range sets {
		c := s.rcpt[recipient]
		n, size = n+c[0], size+c[1]
	}
	return n, size
}

// replaySeen reports whether key is pending with an expiry not before
// nowBits. The caller holds mu (or wmu).
func (p *pending) replaySeen(key []byte, nowBits uint64) bool {
	for _, s := range [...]*pendSet{p.frz, p.act} { // not sets(): no allocation per check
		if s == nil {
			continue
		}
		if v, ok := s.replay[string(key)]; ok && be64(v) >= nowBits {
			return true
		}
	}
	return false
}

// pendingEmpty reports whether nothing is pending.
func (db *DB) pendingEmpty() bool {
	db.pend.mu.RLock()
	defer db.pend.mu.RUnlock()
	return db.pend.act.empty() && db.pend.frz.empty()
}

// JournalStats are figures about the journal, for metrics.
type JournalStats struct {
	// Frames counts the groups appended since Open; Migrations the
	// sets moved into the file.
	Frames, Migrations int64
	// PendingMessages and PendingBytes (payloads) are what the journal
	// holds now that the file does not.
	PendingMessages int
	PendingBytes    int64
}

// JournalStats returns the journal's figures; all zero without a journal
// (Options.NoJournal).
func (db *DB) JournalStats() JournalStats {
	if db.jnl == nil {
		return JournalStats{}
	}
	db.pend.mu.RLock()
	defer db.pend.mu.RUnlock()
	st := JournalStats{Frames: db.jnl.frames.Load(), Migrations: db.jnl.migrations.Load()}
	for _, s := range db.pend.sets() {
		st.PendingMessages += len(s.msgs)
		st.PendingBytes += s.bytes
	}
	return st
}
