package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/agent"
)

// The journal: a group of forwards in one write and one fsync.
//
// A bbolt commit writes every page its transaction dirtied, each with a
// write of its own, and syncs the file twice (the pages, then the meta
// page). For a group of mediator forwards that is a few dozen pages (the
// queued records, the expiry index, the per-recipient counters, the replay
// records, whose keys are digests and land on random leaves, and the
// branch pages above them all) for a few KiB of new data, and it was the
// largest cost of a durable forward after the X25519 agreement (README:
// Benchmarks). A unit of work that only queues messages and remembers
// replay keys (a forward; a message that only needs its replay key kept)
// is instead appended to the journal, a file beside the database: the
// group's works become one frame, written with one write and made durable
// with one fdatasync, and the work is acknowledged then. What the journal
// holds and the file does not yet is kept in memory (pending) and read
// with the file: List, Stats, Totals and ReplayCache.Seen see it, and the
// quota and replay checks of later works count it.
//
// Every bbolt write transaction first moves the pending writes into the
// file (migrate), in the same transaction as the write it was opened for,
// and records the journal's last frame number (its LSN) in the meta bucket.
// Once that transaction is durable the pending set is emptied and the
// journal is written from its start again. So a removal, a sweep or any
// other write sees every acknowledged message in the file, and the
// journal's content never outlives the next bbolt commit. The committer
// also migrates when the pending set passes journalMaxMessages or
// journalMaxBytes, and when it has been idle for journalIdle, so memory and
// the journal stay small.
//
// A frame is be64 LSN, be32 length of the body, be32 CRC-32C of the
// preceding twelve bytes and the body, then the body: uvarint count of
// messages, each as uvarint sequence, uvarint length and the queue record
// (encodeRecord); uvarint count of replay keys, each as uvarint length, the
// key and its be64 expiry. LSNs follow each other without gaps. Opening the
// database reads the journal from its start while each frame checks and
// carries the next LSN after the one the meta bucket holds (a frame written
// before the last migration, or the torn tail of a crash, ends the read),
// and migrates what it read before anything else runs. The file is never
// shrunk: after the first migration the frames overwrite blocks the file
// already has, which spares the file system a metadata update at each
// sync.
//
// Ordering: the journal is written by the committer holding wmu, as bbolt
// write transactions are, so a journaled work is checked against the file
// plus everything acknowledged before it, in commit order.

// Journal limits; see above.
const (
	journalMaxMessages = 4096
	journalMaxBytes    = 8 << 20
)

// kJournalLSN in the meta bucket is the LSN of the last frame migrated.
var kJournalLSN = []byte("journal-lsn")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const frameHeader = 16

// maxFrameBody bounds a frame read back, so a corrupt length is not
// allocated.
const maxFrameBody = 1 << 30

// journal is the append side of the journal file.
type journal struct {
	f      *os.File
	noSync bool
	off    int64  // where the next frame goes
	lsn    uint64 // the last frame written and synced
	buf    []byte // the frame being built, reused
	// frames and migrations count the frames written and the
	// migrations that emptied a non-empty pending set, for metrics.
	frames, migrations atomic.Int64
	closed             bool // by DB.Close; under wmu
}

// pending is what the journal holds that the file does not yet. It is
// changed only by the writer holding DB.wmu (the committer appending a
// frame, a bbolt write transaction migrating it); readers take mu.RLock
// before they open their read transaction and hold it while they look
// here, so a message being migrated is found either in their snapshot of
// the file or here.
type pending struct {
	mu     sync.RWMutex
	seqs   []uint64          // queue sequences, ascending
	msgs   map[uint64][]byte // sequence → queue record
	rcpt   map[string][2]int64
	replay map[string][]byte // key → be64 expiry
	bytes  int64             // payload bytes of msgs
	lsn    uint64            // the last frame whose content is here
}

func newPending() pending {
	return pending{msgs: map[uint64][]byte{}, rcpt: map[string][2]int64{}, replay: map[string][]byte{}}
}

func (p *pending) empty() bool { return len(p.msgs) == 0 && len(p.replay) == 0 }

// full reports whether the pending set should be migrated before more is
// journaled.
func (p *pending) full() bool {
	return len(p.msgs) >= journalMaxMessages || p.bytes >= journalMaxBytes || len(p.replay) >= 2*journalMaxMessages
}

// clearLocked empties the set; the caller holds mu.
func (p *pending) clearLocked() {
	clear(p.msgs)
	clear(p.rcpt)
	clear(p.replay)
	p.seqs, p.bytes = p.seqs[:0], 0
}

// replaySeen reports whether key is pending with an expiry not before
// nowBits.
func (p *pending) replaySeen(key []byte, nowBits uint64) bool {
	v, ok := p.replay[string(key)]
	return ok && be64(v) >= nowBits
}

// pendingOutside reports whether the pending set's content is not in
// tx's snapshot of the file. A reader holding pend.mu.RLock may see the
// set and a snapshot taken after its migration committed but before the
// set was emptied; counting both would count twice.
func (db *DB) pendingOutside(tx *bbolt.Tx) bool {
	return db.pend.lsn > be64(tx.Bucket(bMeta).Get(kJournalLSN))
}

// JournalStats are figures about the journal, for metrics.
type JournalStats struct {
	// Frames counts the groups appended since Open; Migrations the
	// times the pending set was moved into the file.
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
	return JournalStats{Frames: db.jnl.frames.Load(), Migrations: db.jnl.migrations.Load(),
		PendingMessages: len(db.pend.msgs), PendingBytes: db.pend.bytes}
}

// journalEntry is what one work adds to a frame.
type journalEntry struct {
	seqs   []uint64
	values [][]byte // queue records, by seqs
	replay [][2][]byte
}

// openJournal opens the journal file at path, creating it (mode 0600).
func openJournal(path string, noSync bool) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &journal{f: f, noSync: noSync}, nil
}

// appendFrame writes the entries as the next frame and syncs it. On error
// nothing is taken as written: the next frame goes to the same place with
// the same LSN.
func (j *journal) appendFrame(entries []journalEntry) error {
	b := j.buf[:0]
	b = append(b, make([]byte, frameHeader)...)
	n := 0
	for _, e := range entries {
		n += len(e.seqs)
	}
	b = binary.AppendUvarint(b, uint64(n))
	for _, e := range entries {
		for i, seq := range e.seqs {
			b = binary.AppendUvarint(b, seq)
			b = binary.AppendUvarint(b, uint64(len(e.values[i])))
			b = append(b, e.values[i]...)
		}
	}
	n = 0
	for _, e := range entries {
		n += len(e.replay)
	}
	b = binary.AppendUvarint(b, uint64(n))
	for _, e := range entries {
		for _, r := range e.replay {
			b = binary.AppendUvarint(b, uint64(len(r[0])))
			b = append(b, r[0]...)
			b = append(b, r[1][:8]...)
		}
	}
	lsn := j.lsn + 1
	binary.BigEndian.PutUint64(b, lsn)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-frameHeader))
	crc := crc32.Update(crc32.Checksum(b[:12], castagnoli), castagnoli, b[frameHeader:])
	binary.BigEndian.PutUint32(b[12:], crc)
	j.buf = b
	if _, err := j.f.WriteAt(b, j.off); err != nil {
		return fmt.Errorf("bolt: journal write: %w", err)
	}
	if !j.noSync {
		if err := fdatasync(j.f); err != nil {
			return fmt.Errorf("bolt: journal sync: %w", err)
		}
	}
	j.off += int64(len(b))
	j.lsn = lsn
	j.frames.Add(1)
	if cap(j.buf) > 4*journalMaxBytes {
		j.buf = nil // a huge group's buffer is not kept
	}
	return nil
}

// readJournal reads the frames after LSN from, in order, into p, stopping
// at the first frame that does not check or does not carry the next LSN.
// It returns the LSN of the last frame read. A frame that checks but does
// not decode is an error: the file is damaged, not torn.
func readJournal(r io.ReaderAt, from uint64, p *pending) (uint64, error) {
	var off int64
	lsn := from
	hdr := make([]byte, frameHeader)
	for {
		if _, err := r.ReadAt(hdr, off); err != nil {
			return lsn, nil // end of file, or a torn header
		}
		n := binary.BigEndian.Uint32(hdr[8:])
		if binary.BigEndian.Uint64(hdr) != lsn+1 || n > maxFrameBody {
			return lsn, nil
		}
		body := make([]byte, n)
		if _, err := r.ReadAt(body, off+frameHeader); err != nil {
			return lsn, nil
		}
		if crc32.Update(crc32.Checksum(hdr[:12], castagnoli), castagnoli, body) != binary.BigEndian.Uint32(hdr[12:]) {
			return lsn, nil
		}
		if err := decodeFrame(body, p); err != nil {
			return lsn, fmt.Errorf("journal frame %d: %w", lsn+1, err)
		}
		lsn++
		p.lsn = lsn
		off += frameHeader + int64(n)
	}
}

var errFrame = errors.New("damaged frame")

// decodeFrame adds a frame's content to p.
func decodeFrame(b []byte, p *pending) error {
	next := func() (uint64, bool) {
		v, w := binary.Uvarint(b)
		if w <= 0 {
			return 0, false
		}
		b = b[w:]
		return v, true
	}
	take := func(n uint64) ([]byte, bool) {
		if n > uint64(len(b)) {
			return nil, false
		}
		v := b[:n:n]
		b = b[n:]
		return v, true
	}
	nm, ok := next()
	if !ok {
		return errFrame
	}
	for range nm {
		seq, ok1 := next()
		n, ok2 := next()
		if !ok1 || !ok2 {
			return errFrame
		}
		v, ok := take(n)
		if !ok {
			return errFrame
		}
		h, err := decodeRecordHead(v)
		if err != nil {
			return err
		}
		p.add(seq, v, string(h.recipient), int64(len(h.payload)))
	}
	nr, ok := next()
	if !ok {
		return errFrame
	}
	for range nr {
		n, ok := next()
		if !ok {
			return errFrame
		}
		k, ok1 := take(n)
		exp, ok2 := take(8)
		if !ok1 || !ok2 {
			return errFrame
		}
		p.replay[string(k)] = exp
	}
	if len(b) != 0 {
		return errFrame
	}
	return nil
}

// add puts a queued message in the set; the caller holds mu or is alone.
func (p *pending) add(seq uint64, v []byte, recipient string, size int64) {
	if _, ok := p.msgs[seq]; ok {
		return
	}
	p.msgs[seq] = v
	if n := len(p.seqs); n > 0 && p.seqs[n-1] > seq {
		i, _ := slices.BinarySearch(p.seqs, seq)
		p.seqs = slices.Insert(p.seqs, i, seq)
	} else {
		p.seqs = append(p.seqs, seq)
	}
	c := p.rcpt[recipient]
	p.rcpt[recipient] = [2]int64{c[0] + 1, c[1] + size}
	p.bytes += size
}

// migrate writes the pending set into the file in tx: the queued records
// with their expiry entries and counters, the replay records, the queue's
// sequence and the LSN of the last frame. The caller holds wmu; the set is
// emptied by the caller once tx has committed.
func (db *DB) migrate(tx *bbolt.Tx) error {
	p := &db.pend
	b := db.queueOf(tx)
	if cur := b.data.Sequence(); db.seq > cur {
		if err := b.data.SetSequence(db.seq); err != nil {
			return err
		}
	}
	if p.empty() {
		return nil
	}
	b.data.FillPercent = 1
	for _, seq := range p.seqs {
		v := p.msgs[seq]
		if err := b.data.Put(putBE64(seq), v); err != nil {
			return err
		}
		if err := b.exp.Put(binary.BigEndian.AppendUint64(clone(v[8:16]), seq), nil); err != nil {
			return err
		}
	}
	for _, r := range slices.Sorted(mapKeys(p.rcpt)) {
		c := p.rcpt[r]
		if err := b.account([]byte(r), c[0], c[1]); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(mapKeys(p.replay)) {
		if err := replayPut(tx, []byte(k), p.replay[k]); err != nil {
			return err
		}
	}
	return tx.Bucket(bMeta).Put(kJournalLSN, putBE64(p.lsn))
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// boltUpdate runs fn in a bbolt write transaction that first migrates the
// pending set (see above), and empties the set once the transaction has
// committed. The caller holds wmu.
func (db *DB) boltUpdate(fn func(*bbolt.Tx) error) error {
	var seq uint64
	migrating := !db.pend.empty()
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		if err := db.migrate(tx); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		seq = tx.Bucket(bQueue).Bucket(bData).Sequence()
		return nil
	})
	if err != nil {
		return err
	}
	db.seq = seq
	if migrating {
		db.pend.mu.Lock()
		db.pend.clearLocked()
		db.pend.mu.Unlock()
		if db.jnl != nil {
			db.jnl.off = 0
			db.jnl.migrations.Add(1)
		}
	}
	return nil
}

// recoverJournal opens the journal beside the database at path and
// migrates what it holds after the last migration, before the database is
// used.
func (db *DB) recoverJournal(path string, noSync bool) error {
	j, err := openJournal(path, noSync)
	if err != nil {
		return err
	}
	var from uint64
	err = db.bolt.View(func(tx *bbolt.Tx) error {
		from = be64(tx.Bucket(bMeta).Get(kJournalLSN))
		db.seq = tx.Bucket(bQueue).Bucket(bData).Sequence()
		return nil
	})
	if err != nil {
		j.f.Close()
		return err
	}
	last, err := readJournal(j.f, from, &db.pend)
	if err != nil {
		j.f.Close()
		return err
	}
	if n := len(db.pend.seqs); n > 0 {
		db.seq = max(db.seq, db.pend.seqs[n-1])
	}
	j.lsn = last
	db.jnl = j
	if db.pend.empty() {
		return nil
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	return db.boltUpdate(func(*bbolt.Tx) error { return nil })
}

// closeJournal migrates what is pending, so that a database closed cleanly
// leaves nothing to recover, and closes the journal.
func (db *DB) closeJournal() error {
	if db.jnl == nil {
		return nil
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if db.jnl.closed {
		return nil
	}
	var err error
	if !db.pend.empty() {
		err = db.boltUpdate(func(*bbolt.Tx) error { return nil })
	}
	db.jnl.closed = true
	if cerr := db.jnl.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// journalIdle is how long the committer waits without writes before it
// migrates a non-empty pending set.
const journalIdle = 500 * time.Millisecond

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
// fits it and the pending set is not full.
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
	return !db.pend.full()
}

// pendingEmpty reports whether nothing is pending.
func (db *DB) pendingEmpty() bool {
	db.pend.mu.RLock()
	defer db.pend.mu.RUnlock()
	return db.pend.empty()
}

// migrateIdle migrates the pending set in a transaction of its own. Like
// a journal frame, it records only a failure in the write health: a
// housekeeping commit that happens to fit in the file's free pages is no
// sign that the writes of clients work again (DB.Probe is).
func (db *DB) migrateIdle() {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if db.pend.empty() {
		return
	}
	if err := db.boltUpdate(func(*bbolt.Tx) error { return nil }); err != nil {
		db.health.record(err)
	}
}

// commitJournal checks each work of the group against the file, the
// pending set and the works before it in the group, writes the accepted
// ones as one frame and, once it is synced, adds them to the pending set
// and the queue's index and replies.
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
	g := journalGroup{rcpt: map[string][2]int64{}, replay: map[string]bool{}}
	entries := make([]journalEntry, 0, len(group))
	accepted := make([]*writeCall, 0, len(group))
	seq := db.seq
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
	_ = tx.Rollback() // a read transaction: done with the checks
	if len(g.rcpt) > 0 || len(g.replay) > 0 {
		err = db.jnl.appendFrame(entries)
		if err != nil {
			// Only a failure is recorded: the journal may write while the
			// file cannot (a full disk: the journal reuses its blocks),
			// and writes count as working again once a bbolt commit
			// (a migration, DB.Probe) succeeds.
			db.health.record(err)
			for _, c := range accepted {
				c.err <- err
			}
			return
		}
		db.pend.mu.Lock()
		for _, e := range entries {
			for _, r := range e.replay {
				db.pend.replay[string(r[0])] = r[1]
			}
		}
		for i, c := range accepted {
			if q := c.jw.queued; q != nil {
				for k, m := range q.msgs {
					db.pend.add(entries[i].seqs[k], entries[i].values[k], m.Recipient, int64(len(m.Payload)))
				}
			}
		}
		db.pend.lsn = db.jnl.lsn
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
}

// journalCheck runs a journaled work's checks, as DB.Commit's transaction
// does, counting the pending set and the group's works before it. The
// caller holds wmu, so the pending set does not change under it.
func (db *DB) journalCheck(tx *bbolt.Tx, b queueBuckets, jw *journalWork, g *journalGroup) error {
	for _, r := range jw.reads {
		if !readStillHolds(tx, r) {
			return fmt.Errorf("bolt: record %s/%s: %w", r.Kind, r.ID, agent.ErrConflict)
		}
	}
	for _, r := range jw.replay {
		if g.replay[string(r[0])] || db.pend.replaySeen(r[0], jw.nowBits) {
			return fmt.Errorf("bolt: %w", agent.ErrReplay)
		}
		if seen, _ := replayLookup(tx, r[0], jw.nowBits); seen {
			return fmt.Errorf("bolt: %w", agent.ErrReplay)
		}
	}
	if q := jw.queued; q != nil {
		return q.checkQuotaOf(func(r string) (int64, int64) {
			st := b.state([]byte(r))
			p, s := db.pend.rcpt[r], g.rcpt[r]
			return st.n + p[0] + s[0], st.size + p[1] + s[1]
		})
	}
	return nil
}
