package bolt

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/agent"
)

// runsOf returns the runs of the database by day, oldest first.
func runsOf(t *testing.T, db *DB) map[int64][][]byte {
	t.Helper()
	out := map[int64][][]byte{}
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		runs := tx.Bucket(bReplay).Bucket(bRuns)
		return runs.ForEach(func(k, _ []byte) error {
			out[runDay(k)] = append(out[runDay(k)], clone(runs.Bucket(k).Get(kRun)))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkRuns checks the layout of every run (sorted entries of the run's
// day, the least expiry in the header) and the merge invariant between
// the runs of a day, and returns the number of entries.
func checkRuns(t *testing.T, db *DB) int {
	t.Helper()
	total := 0
	for day, runs := range runsOf(t, db) {
		for i, v := range runs {
			if (len(v)-runHeader)%runEntrySize != 0 || len(v) == runHeader {
				t.Fatalf("day %d run %d: %d bytes", day, i, len(v))
			}
			least := uint64(1<<64 - 1)
			for j, e := 0, v[runHeader:]; len(e) > 0; j, e = j+1, e[runEntrySize:] {
				exp := be64(e[16:])
				least = min(least, exp)
				if expDay(exp) != day {
					t.Fatalf("day %d run %d: an entry of day %d", day, i, expDay(exp))
				}
				if j > 0 && bytes.Compare(v[runHeader+(j-1)*runEntrySize:runHeader+j*runEntrySize], e[:runEntrySize]) > 0 {
					t.Fatalf("day %d run %d: entry %d out of order", day, i, j)
				}
			}
			if be64(v) != least {
				t.Fatalf("day %d run %d: header %d, least expiry %d", day, i, be64(v), least)
			}
			total += runLen(v)
			if i > 0 {
				na, nb := runLen(runs[i-1]), runLen(v)
				if i == len(runs)-1 && na <= 2*nb && na+nb <= runMaxEntries {
					t.Fatalf("day %d: the newest runs (%d, %d entries) were not merged", day, na, nb)
				}
			}
		}
	}
	return total
}

// Migrations record the journal's keys as runs, merged as they
// accumulate: every key is found until it expires, keys never recorded
// are not, nothing is lost by a merge, and a day keeps few runs.
func TestReplayRuns(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{NoSync: true})
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	type rec struct {
		key string
		exp time.Time
	}
	var recs []rec
	for batch := range 120 {
		n := 1 + rng.IntN(200)
		for i := range n {
			exp := now.Add(time.Hour + time.Duration(rng.IntN(3))*24*time.Hour)
			key := fmt.Sprintf("\x00id-%d-%d\x00%x", batch, i, rng.Uint64())
			w := agent.NewWork(nil)
			w.Remember(key, exp)
			if err := db.Commit(ctx, w); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec{key, exp})
		}
		if err := db.migrateNow(); err != nil {
			t.Fatal(err)
		}
		if got := checkRuns(t, db); got != len(recs) {
			t.Fatalf("after batch %d: %d entries in the runs, %d keys recorded", batch, got, len(recs))
		}
	}
	for day, runs := range runsOf(t, db) {
		if len(runs) > 12 {
			t.Errorf("day %d keeps %d runs", day, len(runs))
		}
	}
	nowBits := timeBits(now)
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(bReplay).Bucket(bID).Stats().KeyN; n != 0 {
			t.Errorf("%d journaled keys in the ids", n)
		}
		for _, r := range recs {
			if seen, _ := db.replayLookup(tx, []byte(r.key), nowBits); !seen {
				return fmt.Errorf("%q not seen", r.key)
			}
			if seen, _ := db.replayLookup(tx, []byte(r.key), timeBits(r.exp.Add(time.Nanosecond))); seen {
				return fmt.Errorf("%q seen after it expired", r.key)
			}
			d := digestOf([]byte(r.key + "x"))
			if runsHold(tx, &d, nowBits) {
				return fmt.Errorf("%q found in the runs", r.key+"x")
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Recorded again in the journal: refused.
	w := agent.NewWork(nil)
	w.Remember(recs[7].key, recs[7].exp)
	if err := db.Commit(ctx, w); !errors.Is(err, agent.ErrReplay) {
		t.Fatalf("a key in the runs recorded again: %v", err)
	}
}

// A run merged from two keeps every entry of both, in order.
func TestMergeRunValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	mk := func(n int) ([]byte, []runEntry) {
		var es []runEntry
		for range n {
			var d replayDigest
			for i := range d {
				d[i] = byte(rng.IntN(4)) // many equal digests
			}
			es = append(es, runEntry{d, 1000 + rng.Uint64N(1000)})
		}
		slices.SortFunc(es, func(a, b runEntry) int {
			if c := bytes.Compare(a.d[:], b.d[:]); c != 0 {
				return c
			}
			return cmp.Compare(a.exp, b.exp)
		})
		v := binary.BigEndian.AppendUint64(nil, es[0].exp)
		for _, e := range es {
			v = append(v, e.d[:]...)
			v = binary.BigEndian.AppendUint64(v, e.exp)
			binary.BigEndian.PutUint64(v, min(be64(v), e.exp))
		}
		return v, es
	}
	a, ea := mk(300)
	b, eb := mk(17)
	m := mergeRunValues(a, b)
	if runLen(m) != len(ea)+len(eb) || be64(m) != min(be64(a), be64(b)) {
		t.Fatalf("merged %d entries, header %d", runLen(m), be64(m))
	}
	for i := 1; i < runLen(m); i++ {
		p, q := m[runHeader+(i-1)*runEntrySize:], m[runHeader+i*runEntrySize:]
		if bytes.Compare(p[:runEntrySize], q[:runEntrySize]) > 0 {
			t.Fatalf("entry %d out of order", i)
		}
	}
	for _, e := range append(ea, eb...) {
		if !runHolds(m, &e.d, e.exp) {
			t.Fatalf("%x until %d missing", e.d, e.exp)
		}
	}
}

// Sweep removes exactly the run entries that expired: the runs of days
// past whole, the expired entries of the current day's runs, and leaves
// the others found.
func TestSweepRuns(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{NoSync: true})
	day := time.Now().Truncate(24 * time.Hour).Add(48 * time.Hour) // a day ahead, so nothing has expired yet
	exps := map[string]time.Time{}
	for i := range 40 {
		exp := day.Add(time.Duration(i%4) * 6 * time.Hour) // 00:00, 06:00, 12:00, 18:00 of that day
		if i%5 == 0 {
			exp = exp.Add(-24 * time.Hour) // the day before
		}
		key := fmt.Sprintf("\x00sweep-%d", i)
		exps[key] = exp
		w := agent.NewWork(nil)
		w.Remember(key, exp)
		if err := db.Commit(ctx, w); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			if err := db.migrateNow(); err != nil {
				t.Fatal(err)
			}
		}
	}
	rc := db.ReplayCache()
	at := day.Add(7 * time.Hour) // the day before, 00:00 and 06:00 have expired
	want := 0
	for _, exp := range exps {
		if exp.Before(at) {
			want++
		}
	}
	if n, err := rc.Sweep(ctx, at); err != nil || n != want {
		t.Fatalf("Sweep = %d, %v; want %d", n, err, want)
	}
	if n, err := rc.Sweep(ctx, at); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want 0", n, err)
	}
	if got := checkRuns(t, db); got != len(exps)-want {
		t.Fatalf("%d entries left, want %d", got, len(exps)-want)
	}
	if runs := runsOf(t, db); len(runs) != 1 {
		t.Fatalf("runs of %d days left", len(runs))
	}
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		for key, exp := range exps {
			d := digestOf([]byte(key))
			if runsHold(tx, &d, timeBits(exp)) != !exp.Before(at) {
				return fmt.Errorf("%q (expires %s) found: %v", key, exp, !exp.Before(at))
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := rc.Sweep(ctx, day.Add(24*time.Hour)); err != nil || n != len(exps)-want {
		t.Fatalf("last Sweep = %d, %v; want %d", n, err, len(exps)-want)
	}
	if runs := runsOf(t, db); len(runs) != 0 {
		t.Fatalf("runs of %d days left", len(runs))
	}
}

// A database of schema 2 (no runs) is upgraded on open, and its
// migrations then write runs; the replay keys written in the ids before
// are still found.
func TestSchema2Upgrade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	if _, err := db.ReplayCache().Remember(ctx, "old-id", exp); err != nil {
		t.Fatal(err)
	}
	if err := db.bolt.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bReplay).DeleteBucket(bRuns); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(kSchema, putBE64(2))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openAt(t, path, Options{})
	w := agent.NewWork(nil)
	w.Remember("\x00new-id", exp)
	if err := db.Commit(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := db.migrateNow(); err != nil {
		t.Fatal(err)
	}
	if got := checkRuns(t, db); got != 1 {
		t.Fatalf("%d run entries, want 1", got)
	}
	for _, id := range []string{"old-id", "\x00new-id"} {
		if seen, err := db.ReplayCache().Seen(ctx, id); err != nil || !seen {
			t.Fatalf("%q: seen %v, %v", id, seen, err)
		}
	}
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		if v := be64(tx.Bucket(bMeta).Get(kSchema)); v != schemaVersion {
			return fmt.Errorf("schema %d", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkMigrateReplayKeys measures a migration of forwards' replay keys
// (journaled works that only remember a key, as a forward's replay record)
// into a database that already holds pre of them: the time per key and
// the bytes of pages bbolt writes per key (on top of a migration's branch
// pages and meta, shared by the batch).
func BenchmarkMigrateReplayKeys(b *testing.B) {
	for _, pre := range []int{0, 200000, 1000000} {
		b.Run(fmt.Sprintf("held=%d", pre), func(b *testing.B) {
			ctx := context.Background()
			db := openTest(b, Options{NoSync: true})
			exp := time.Now().Add(7 * 24 * time.Hour)
			n := 0
			batch := func(keys int) {
				for range keys {
					w := agent.NewWork(nil)
					w.Remember(fmt.Sprintf("\x00%x\x00%d", digestOf(fmt.Appendf(nil, "%d", n)), n), exp) // a random id, as a forward's
					n++
					if err := db.Commit(ctx, w); err != nil {
						b.Fatal(err)
					}
				}
			}
			for n < pre {
				batch(4096)
				if err := db.migrateNow(); err != nil {
					b.Fatal(err)
				}
			}
			const keys = 650 // a migration's worth at 768 KiB of 1 KiB forwards
			var migrate time.Duration
			st := db.bolt.Stats()
			before := st.TxStats.GetPageAlloc()
			for b.Loop() {
				batch(keys)
				start := time.Now()
				if err := db.migrateNow(); err != nil {
					b.Fatal(err)
				}
				migrate += time.Since(start)
			}
			st = db.bolt.Stats()
			written := st.TxStats.GetPageAlloc() - before
			b.ReportMetric(float64(migrate.Nanoseconds())/float64(b.N*keys), "migrate-ns/key")
			b.ReportMetric(float64(written)/float64(b.N*keys), "page-bytes/key")
		})
	}
}

// A damaged run (a plain value, or a run bucket with a torn value) makes
// the writes that would change it fail, not panic; lookups and the
// filter's load pass it over.
func TestDamagedRun(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentd.db")
	db := openAt(t, path, Options{NoSync: true})
	exp := time.Now().Add(time.Hour)
	day := expDay(timeBits(exp))
	if err := db.bolt.Update(func(tx *bbolt.Tx) error {
		runs := tx.Bucket(bReplay).Bucket(bRuns)
		if err := runs.Put(runKey(day, 1000), []byte("not a run")); err != nil {
			return err
		}
		b, err := runs.CreateBucket(runKey(day, 1001))
		if err != nil {
			return err
		}
		return b.Put(kRun, make([]byte, runHeader+runEntrySize-1))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openAt(t, path, Options{NoSync: true}) // the filter's load passes them over

	w := agent.NewWork(nil)
	w.Remember("\x00key", exp)
	if err := db.Commit(ctx, w); err != nil {
		t.Fatal(err)
	}
	probe := digestOf([]byte("\x00probe"))
	db.replayF.add(probe[:], timeBits(exp), time.Now()) // so that the runs are searched
	if seen, err := db.ReplayCache().Seen(ctx, "\x00probe"); err != nil || seen {
		t.Fatalf("Seen = %v, %v", seen, err)
	}
	if err := db.migrateNow(); !errors.Is(err, errBadRun) {
		t.Fatalf("migration over a damaged run: %v", err)
	}
	if _, err := db.ReplayCache().Sweep(ctx, exp.Add(24*time.Hour)); !errors.Is(err, errBadRun) {
		t.Fatalf("Sweep over a damaged run: %v", err)
	}
}
