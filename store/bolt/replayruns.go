package bolt

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"go.etcd.io/bbolt"
)

// Replay runs: how a migration (migrate.go) records the replay keys the
// journal took.
//
// The replay ids (replay/id) are a B+tree in the order of the keys, which
// are digests for forwards: a migration's few hundred keys landed on as
// many random leaves, each written again whole (4 KiB for a key of 81
// bytes), and the more the tree held the fewer keys shared a leaf. That
// was 12 % of a mediator's CPU per forward on an empty database, and it
// grows with the database. A migration writes its keys instead as a run:
// one value holding the keys' digests, sorted, each with its expiry, in
// one contiguous write. Runs of a day of expiry are merged as they
// accumulate, two by two like the digits of a binary counter, so a day
// holds about log2(keys / keys per migration) of them and each key is
// written that many times, 24 bytes at a time. A lookup (only when the
// replay filter says the key may be held: replayfilter.go) searches every
// run of the days not past.
//
// Layout: replay/runs/ be64 day || be64 seq → a bucket whose one key "r"
// holds the run: be64 least expiry || entries, where day is the unix day
// of the entries' expiry (sign bit flipped, as times are), seq is the run
// bucket's sequence when the run was written, and an entry is the first
// 16 bytes of SHA-256(key) then be64 expiry, sorted by digest. The same digest may be in several runs (a key that
// expired and was recorded again): a key is recorded while one of its
// entries has not expired. Sweep drops the runs of days past and writes
// again those of the current day that hold expired entries.
//
// A run is a bucket of its own, not a value of replay/runs, because bbolt
// writes a changed leaf again whole, large values included, and leaves of
// up to four keys are never split: new runs beside large ones wrote the
// large ones again at each migration (BenchmarkMigrateReplayKeys: 8.5 µs
// a key with a million held, against 3.5 µs with none).
//
// The ids written directly by a bbolt transaction (Remember, and the works
// the journal does not take) stay in replay/id: they come one at a time,
// and each would be a run of its own.

var (
	bRuns = []byte("runs")
	kRun  = []byte("r")
)

// replayDigest is what a run keeps of a replay key, and what the replay
// filter holds: 128 bits of SHA-256, so that distinct keys do not collide
// in practice.
type replayDigest [16]byte

func digestOf(key []byte) (d replayDigest) {
	s := sha256.Sum256(key)
	copy(d[:], s[:])
	return d
}

const (
	runEntrySize = 16 + 8
	runHeader    = 8
	// runMaxEntries bounds the runs a merge makes (12 MiB), so that a
	// merge's transaction stays small; a day with more keys keeps runs
	// of that size side by side.
	runMaxEntries = 1 << 19
)

// runEntry is a key to write in a run.
type runEntry struct {
	d   replayDigest
	exp uint64 // timeBits
}

// runKey is the key of run seq of day.
func runKey(day int64, seq uint64) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(day)^(1<<63))
	return binary.BigEndian.AppendUint64(k, seq)
}

func runDay(k []byte) int64 { return int64(be64(k) ^ (1 << 63)) }

// runValue returns the run under key k of runs, nil when k is not a
// well-formed run (a damaged file: lookups then pass it over, and writes
// that would change it fail with errBadRun).
func runValue(runs *bbolt.Bucket, k []byte) []byte {
	b := runs.Bucket(k)
	if b == nil {
		return nil
	}
	v := b.Get(kRun)
	if len(v) < runHeader+runEntrySize || (len(v)-runHeader)%runEntrySize != 0 {
		return nil
	}
	return v
}

var errBadRun = errors.New("bolt: a replay run is damaged")

// runLen is the number of entries of run value v.
func runLen(v []byte) int { return (len(v) - runHeader) / runEntrySize }

// writeRuns records entries as one new run per day of expiry and merges
// each of those days' newest runs. It adds the digests to the replay
// filter first, so that whoever can see a run finds its keys. The caller
// holds mmu (a bbolt write).
func (db *DB) writeRuns(tx *bbolt.Tx, entries []runEntry) error {
	if len(entries) == 0 {
		return nil
	}
	now := time.Now()
	for _, e := range entries {
		db.replayF.add(e.d[:], e.exp, now)
	}
	slices.SortFunc(entries, func(a, b runEntry) int {
		if c := cmp.Compare(expDay(a.exp), expDay(b.exp)); c != 0 {
			return c
		}
		if c := bytes.Compare(a.d[:], b.d[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.exp, b.exp)
	})
	runs := tx.Bucket(bReplay).Bucket(bRuns)
	for len(entries) > 0 {
		day := expDay(entries[0].exp)
		n := 1
		for n < len(entries) && expDay(entries[n].exp) == day {
			n++
		}
		v := make([]byte, runHeader, runHeader+n*runEntrySize)
		least := entries[0].exp
		for _, e := range entries[:n] {
			v = append(v, e.d[:]...)
			v = binary.BigEndian.AppendUint64(v, e.exp)
			least = min(least, e.exp)
		}
		binary.BigEndian.PutUint64(v, least)
		seq, err := runs.NextSequence()
		if err != nil {
			return err
		}
		rb, err := runs.CreateBucket(runKey(day, seq))
		if err != nil {
			return err
		}
		if err := rb.Put(kRun, v); err != nil {
			return err
		}
		if err := mergeRuns(runs, day); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}

// mergeRuns merges the newest two runs of day while the older holds no
// more than twice the newer's entries (and the merge stays within
// runMaxEntries): the sizes of a day's runs then at least double from the
// newest to the oldest.
func mergeRuns(runs *bbolt.Bucket, day int64) error {
	type run struct {
		k []byte
		v []byte
	}
	var list []run
	prefix := runKey(day, 0)[:8]
	c := runs.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		v := runValue(runs, k)
		if v == nil {
			return fmt.Errorf("%w: %x", errBadRun, k)
		}
		list = append(list, run{clone(k), v})
	}
	for len(list) >= 2 {
		a, b := list[len(list)-2], list[len(list)-1]
		na, nb := runLen(a.v), runLen(b.v)
		if na > 2*nb || na+nb > runMaxEntries {
			return nil
		}
		merged := mergeRunValues(a.v, b.v)
		// The merged run takes the newer one's key: it is the newest.
		if err := runs.DeleteBucket(a.k); err != nil {
			return err
		}
		if err := runs.Bucket(b.k).Put(kRun, merged); err != nil {
			return err
		}
		list = append(list[:len(list)-2], run{b.k, merged})
	}
	return nil
}

// mergeRunValues returns the run holding the entries of runs a and b.
func mergeRunValues(a, b []byte) []byte {
	out := make([]byte, runHeader, len(a)+len(b)-runHeader)
	binary.BigEndian.PutUint64(out, min(be64(a), be64(b)))
	a, b = a[runHeader:], b[runHeader:]
	for len(a) > 0 && len(b) > 0 {
		if bytes.Compare(a[:runEntrySize], b[:runEntrySize]) <= 0 {
			out, a = append(out, a[:runEntrySize]...), a[runEntrySize:]
		} else {
			out, b = append(out, b[:runEntrySize]...), b[runEntrySize:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}

// runsHold reports whether a run of a day not past holds d with an
// expiry not before nowBits.
func runsHold(tx *bbolt.Tx, d *replayDigest, nowBits uint64) bool {
	runs := tx.Bucket(bReplay).Bucket(bRuns)
	c := runs.Cursor()
	for k, _ := c.Seek(runKey(expDay(nowBits), 0)); k != nil; k, _ = c.Next() {
		if v := runValue(runs, k); v != nil && runHolds(v, d, nowBits) {
			return true
		}
	}
	return false
}

// runHolds reports whether run v holds d with an expiry not before
// nowBits.
func runHolds(v []byte, d *replayDigest, nowBits uint64) bool {
	e := v[runHeader:]
	n := len(e) / runEntrySize
	i := sort.Search(n, func(i int) bool {
		return bytes.Compare(e[i*runEntrySize:i*runEntrySize+16], d[:]) >= 0
	})
	for ; i < n && bytes.Equal(e[i*runEntrySize:i*runEntrySize+16], d[:]); i++ {
		if be64(e[i*runEntrySize+16:]) >= nowBits {
			return true
		}
	}
	return false
}

// sweepRuns removes the run entries that expired before bound (timeBits),
// in one transaction: it deletes the runs of days past and writes again
// those of bound's day that hold expired entries. It returns the entries
// removed.
func sweepRuns(tx *bbolt.Tx, bound uint64) (int, error) {
	runs := tx.Bucket(bReplay).Bucket(bRuns)
	today := expDay(bound)
	type change struct {
		k, v []byte // v nil: delete
	}
	var changes []change
	removed := 0
	c := runs.Cursor()
	for k, _ := c.First(); k != nil && runDay(k) <= today; k, _ = c.Next() {
		v := runValue(runs, k)
		if v == nil {
			return 0, fmt.Errorf("%w: %x", errBadRun, k)
		}
		if runDay(k) < today {
			changes = append(changes, change{k: clone(k)})
			removed += runLen(v)
			continue
		}
		if be64(v) >= bound {
			continue
		}
		kept := make([]byte, runHeader, len(v))
		least := uint64(1<<64 - 1)
		for e := v[runHeader:]; len(e) > 0; e = e[runEntrySize:] {
			if exp := be64(e[16:]); exp >= bound {
				kept = append(kept, e[:runEntrySize]...)
				least = min(least, exp)
			} else {
				removed++
			}
		}
		if len(kept) == runHeader {
			changes = append(changes, change{k: clone(k)})
			continue
		}
		binary.BigEndian.PutUint64(kept, least)
		changes = append(changes, change{k: clone(k), v: kept})
	}
	for _, ch := range changes {
		var err error
		if ch.v == nil {
			err = runs.DeleteBucket(ch.k)
		} else {
			err = runs.Bucket(ch.k).Put(kRun, ch.v)
		}
		if err != nil {
			return 0, err
		}
	}
	return removed, nil
}

// loadRuns adds to f every run entry not expired at now.
func loadRuns(tx *bbolt.Tx, f *replayFilter, now time.Time) {
	nowBits := timeBits(now)
	runs := tx.Bucket(bReplay).Bucket(bRuns)
	c := runs.Cursor()
	for k, _ := c.Seek(runKey(expDay(nowBits), 0)); k != nil; k, _ = c.Next() {
		v := runValue(runs, k)
		if v == nil {
			continue
		}
		for e := v[runHeader:]; len(e) > 0; e = e[runEntrySize:] {
			if exp := be64(e[16:]); exp >= nowBits {
				f.add(e[:16], exp, now)
			}
		}
	}
}
