package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
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
// is instead appended to the journal: the group's works become one frame,
// written with one write and made durable with one fdatasync, and the
// works are acknowledged then. What the journal holds and the database
// file does not yet is kept in memory (pending.go) and read with the
// file: List, Stats, Totals and ReplayCache.Seen see it, and the quota and
// replay checks of later works count it.
//
// Migration (migrate.go) moves it into the file. The pending content is
// two sets: the active one, which new frames go to, and the frozen one,
// being migrated. When the active set passes journalMaxMessages or
// journalMaxBytes, or the committer has been idle for journalIdle, it is
// frozen and a migrator goroutine writes it into the file in one bbolt
// transaction, with the number (LSN) of its last frame in the meta bucket,
// while the committer goes on journaling into a new active set: a
// migration takes milliseconds (tens of them on a large database), and
// forwards do not wait for it. Every other bbolt write transaction waits
// for a migration in progress and then migrates whatever is pending first,
// in its own transaction, so a removal, a sweep or any other write sees
// every acknowledged message in the file. If the active set grows to twice
// the limits while a migration runs, forwards take that path too (the
// back-pressure).
//
// Two journal files take turns (the database's path with ".journal.0" and
// ".journal.1"): the active set's frames go to one, from its start; the
// frozen set's frames are in the other, which is written again only after
// their migration committed. A frame is be64 LSN, be32 length of the body,
// be32 CRC-32C of the preceding twelve bytes and the body, then the body:
// uvarint count of messages, each as uvarint sequence, uvarint length and
// the queue record (encodeRecord); uvarint count of replay keys, each as
// uvarint length, the key and its be64 expiry. LSNs follow each other
// without gaps across the files. Opening the database reads, from the LSN
// after the one the meta bucket holds, the file whose first frame carries
// that LSN, then the other from the LSN after its last: a frame that does
// not check or does not carry the next LSN (older frames left behind a
// newer one, or the torn tail of a crash) ends a file. What was read is
// migrated before anything else runs. The files are never shrunk: after
// their first turn the frames overwrite blocks the files already have,
// which spares the file system a metadata update at each sync.
//
// Ordering: frames are written by the committer holding wmu, as the other
// bbolt write transactions are, so a journaled work is checked against
// the file plus everything acknowledged before it, in commit order.

// Journal limits; see above. A migration's transaction holds in memory
// every page it changes, so its memory grows with the messages it moves,
// while its fixed costs (the branch pages, two syncs) are shared by fewer
// of them when it moves fewer. A mediator holding 100,000 queued 1 KiB
// messages used 95-117 MiB of anonymous memory when 4,096 of them (4 MiB)
// moved at a time, and 79-93 MiB with 768 KiB at a time; 4,096 small
// forwards at a time cost less CPU per forward than 512 (README:
// Benchmarks). (Measured when the replay keys still went to the ids, one
// random leaf each, not to runs: replayruns.go.)
const (
	journalMaxMessages = 4096
	journalMaxBytes    = 768 << 10
	// journalIdle is how long the committer waits without writes before
	// it has a non-empty active set migrated.
	journalIdle = 500 * time.Millisecond
)

// kJournalLSN in the meta bucket is the LSN of the last frame migrated.
var kJournalLSN = []byte("journal-lsn")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const frameHeader = 16

// maxFrameBody bounds a frame read back, so a corrupt length is not
// allocated.
const maxFrameBody = 1 << 30

// journal is the append side of the journal files. Only the writer holding
// DB.wmu uses it, except for the counters.
type journal struct {
	files  [2]*os.File
	noSync bool
	cur    int    // the file the active set's frames go to
	off    int64  // where the next frame goes in it
	lsn    uint64 // the last frame written and synced
	buf    []byte // the frame being built, reused
	// frames and migrations count the frames written and the sets
	// migrated, for metrics.
	frames, migrations atomic.Int64
	closed             bool // by DB.Close
	// failed is set while the last append failed: its frame may be on
	// disk or not, so the next one takes its place (same file, offset
	// and LSN) and the files do not turn until one has been written.
	failed bool
	// syncFault, when set (tests), fails a sync after the frame was
	// written.
	syncFault func() error
	// maxMessages and maxBytes are journalMaxMessages and
	// journalMaxBytes (tests lower them).
	maxMessages int
	maxBytes    int64
}

// journalEntry is what one work adds to a frame.
type journalEntry struct {
	seqs   []uint64
	values [][]byte // queue records, by seqs
	replay [][2][]byte
}

// openJournal opens (creating them, mode 0600) the journal files of the
// database at path. A file it creates is made durable in its directory
// before anything is written to it.
func openJournal(path string, noSync bool) (*journal, error) {
	j := &journal{noSync: noSync, maxMessages: journalMaxMessages, maxBytes: journalMaxBytes}
	created := false
	for i := range j.files {
		name := fmt.Sprintf("%s.journal.%d", path, i)
		if _, err := os.Stat(name); errors.Is(err, os.ErrNotExist) {
			created = true
		}
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			j.close()
			return nil, err
		}
		j.files[i] = f
	}
	if created && !noSync {
		if err := syncDir(filepath.Dir(path)); err != nil {
			j.close()
			return nil, err
		}
	}
	return j, nil
}

// syncDir makes the directory's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (j *journal) close() error {
	var err error
	for _, f := range j.files {
		if f != nil {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	return err
}

// turn makes the other file the one frames go to, from its start.
func (j *journal) turn() {
	j.cur, j.off = 1-j.cur, 0
}

// canTurn reports whether the files may turn: not while the last append
// failed, whose frame may be on disk with the LSN the next frame takes.
func (j *journal) canTurn() bool { return !j.failed }

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
	if cap(j.buf) > 4*int(j.maxBytes) {
		j.buf = nil // a huge group's buffer is not kept
	}
	f := j.files[j.cur]
	j.failed = true
	if _, err := f.WriteAt(b, j.off); err != nil {
		return fmt.Errorf("bolt: journal write: %w", err)
	}
	if j.syncFault != nil {
		if err := j.syncFault(); err != nil {
			return fmt.Errorf("bolt: journal sync: %w", err)
		}
	}
	if !j.noSync {
		if err := fdatasync(f); err != nil {
			return fmt.Errorf("bolt: journal sync: %w", err)
		}
	}
	j.failed = false
	j.off += int64(len(b))
	j.lsn = lsn
	j.frames.Add(1)
	return nil
}

// readJournal reads the frames of r from its start while they check and
// carry LSNs from+1, from+2, ..., adding their content to s. It returns the
// LSN of the last frame read (from if none). A frame that checks but does
// not decode is an error: the file is damaged, not torn.
func readJournal(r io.ReaderAt, from uint64, s *pendSet) (uint64, error) {
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
		if err := decodeFrame(body, s); err != nil {
			return lsn, fmt.Errorf("journal frame %d: %w", lsn+1, err)
		}
		lsn++
		s.lsn = lsn
		off += frameHeader + int64(n)
	}
}

var errFrame = errors.New("damaged frame")

// decodeFrame adds a frame's content to s.
func decodeFrame(b []byte, s *pendSet) error {
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
		s.add(seq, v, string(h.recipient), int64(len(h.payload)))
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
		s.replay[string(k)] = exp
	}
	if len(b) != 0 {
		return errFrame
	}
	return nil
}
