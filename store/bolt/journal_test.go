package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/store/storetest"
)

// The conformance suite with the journal off, every write in bbolt.
func TestConformanceNoJournal(t *testing.T) {
	open := func(t *testing.T) *DB { return openTest(t, Options{NoJournal: true}) }
	t.Run("Queue", func(t *testing.T) {
		storetest.TestQueue(t, func(t *testing.T) agent.QueueStore { return open(t).Queue() })
	})
	t.Run("ReplayCache", func(t *testing.T) {
		storetest.TestReplayCache(t, func(t *testing.T) agent.ReplayCache { return open(t).ReplayCache() })
	})
	t.Run("Commit", func(t *testing.T) {
		storetest.TestCommit(t, func(t *testing.T) storetest.Backend { return backendOf(open(t)) })
	})
}

// crash closes db as a killed process leaves it: nothing pending is
// migrated, the files are just closed.
func crash(t *testing.T, db *DB) {
	t.Helper()
	db.stopCommitter()
	db.wmu.Lock()
	db.jnl.closed = true
	close(db.migrations)
	db.wmu.Unlock()
	db.migratorDone.Wait()
	if err := db.jnl.close(); err != nil {
		t.Fatal(err)
	}
	if err := db.bolt.Close(); err != nil {
		t.Fatal(err)
	}
}

// crashHoldingMigrations is crash for a db whose mmu the test holds (no
// migration runs): the files are closed with the migration still waiting,
// then mmu is released.
func crashHoldingMigrations(t *testing.T, db *DB) {
	t.Helper()
	db.stopCommitter()
	db.wmu.Lock()
	db.jnl.closed = true
	if err := db.jnl.close(); err != nil {
		t.Fatal(err)
	}
	if err := db.bolt.Close(); err != nil {
		t.Fatal(err)
	}
	close(db.migrations)
	db.wmu.Unlock()
	db.mmu.Unlock()
	db.migratorDone.Wait()
}

// checkFreshID queues one more message and fails if its queue id is one
// of taken's: recovery must not give out an id again.
func checkFreshID(t *testing.T, db *DB, taken map[string]string) {
	t.Helper()
	m, err := forward(context.Background(), db, "r0", "fresh", []byte("fresh"), agent.QueueLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, dup := taken[m.ID]; dup {
		t.Fatalf("queue id %s given out again after the recovery", m.ID)
	}
}

// forward commits a work as a mediator's forward does: one message for
// recipient, one replay key.
func forward(ctx context.Context, db *DB, recipient, key string, payload []byte, limits agent.QueueLimits) (*agent.QueuedMessage, error) {
	m := &agent.QueuedMessage{Recipient: recipient, Payload: payload, Expires: time.Now().Add(time.Hour)}
	w := agent.NewWork(nil)
	w.Queue(limits, m)
	w.Remember(key, time.Now().Add(time.Hour))
	return m, db.Commit(ctx, w)
}

func pendingLen(db *DB) int { return db.JournalStats().PendingMessages }

// journalFiles reads both journal files of the database at path.
func journalFiles(t *testing.T, path string) [2][]byte {
	t.Helper()
	var out [2][]byte
	for i := range out {
		b, err := os.ReadFile(fmt.Sprintf("%s.journal.%d", path, i))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func writeJournalFiles(t *testing.T, path string, files [2][]byte) {
	t.Helper()
	for i, b := range files {
		if err := os.WriteFile(fmt.Sprintf("%s.journal.%d", path, i), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func listAll(t *testing.T, db *DB, recipients ...string) map[string]string {
	t.Helper()
	msgs, err := db.Queue().List(context.Background(), recipients, time.Now(), 100000)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range msgs {
		if _, dup := got[m.ID]; dup {
			t.Fatalf("message %s listed twice", m.ID)
		}
		got[m.ID] = string(m.Payload)
	}
	return got
}

// A forward is journaled, read back before any migration, and survives a
// crash: the reopened database has every acknowledged message, its
// counters and replay keys, and gives out no queue id twice.
func TestJournalRecoversAfterCrash(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range 30 {
		m, err := forward(ctx, db, fmt.Sprintf("r%d", i%3), fmt.Sprintf("k%d", i), fmt.Appendf(nil, "payload %d", i), agent.QueueLimits{})
		if err != nil {
			t.Fatal(err)
		}
		want[m.ID] = fmt.Sprintf("payload %d", i)
	}
	if st := db.JournalStats(); st.PendingMessages != 30 || st.Frames == 0 || st.PendingBytes != 290 {
		t.Fatalf("journal %+v, want 30 messages of 290 bytes in all pending (the forwards did not take the journal)", st)
	}
	if got := listAll(t, db, "r0", "r1", "r2"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("before the crash, listed %v, want %v", got, want)
	}
	st, err := db.Queue().Stats(ctx, []string{"r0"})
	if err != nil || st.Messages != 10 {
		t.Fatalf("Stats before the crash: %+v, %v; want 10 messages", st, err)
	}
	if seen, err := db.ReplayCache().Seen(ctx, "k7"); err != nil || !seen {
		t.Fatalf("Seen(k7) before the crash = %v, %v", seen, err)
	}
	crash(t, db)

	db = openAt(t, path, Options{})
	if n := pendingLen(db); n != 0 {
		t.Fatalf("%d messages pending after the recovery, want 0 (migrated on open)", n)
	}
	if got := listAll(t, db, "r0", "r1", "r2"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the crash, listed %v, want %v", got, want)
	}
	tot, err := db.Queue().Totals(ctx)
	if err != nil || tot.Messages != 30 || tot.Recipients != 3 {
		t.Fatalf("Totals after the crash: %+v, %v; want 30 messages for 3 recipients", tot, err)
	}
	if _, err := forward(ctx, db, "r0", "k7", []byte("again"), agent.QueueLimits{}); !errors.Is(err, agent.ErrReplay) {
		t.Fatalf("a replay key journaled before the crash: %v, want ErrReplay", err)
	}
	checkFreshID(t, db, want)
}

// A torn last frame (the crash came during its write) is ignored; the
// frames before it are recovered.
func TestJournalTornTail(t *testing.T) {
	for _, damage := range []string{"truncated", "flipped"} {
		t.Run(damage, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "agentd.db")
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for i := range 3 {
				m, err := forward(ctx, db, "r", fmt.Sprintf("k%d", i), fmt.Appendf(nil, "p%d", i), agent.QueueLimits{})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, m.ID)
			}
			end, cur := db.jnl.off, db.jnl.cur
			crash(t, db)
			f, err := os.OpenFile(fmt.Sprintf("%s.journal.%d", path, cur), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if damage == "truncated" {
				err = f.Truncate(end - 3)
			} else {
				b := []byte{0}
				if _, err = f.ReadAt(b, end-2); err == nil {
					b[0] ^= 0x40
					_, err = f.WriteAt(b, end-2)
				}
			}
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			db = openAt(t, path, Options{})
			got := listAll(t, db, "r")
			if len(got) != 2 || got[ids[0]] != "p0" || got[ids[1]] != "p1" {
				t.Fatalf("recovered %v, want the first two messages %v", got, ids[:2])
			}
			// The torn frame's key was never acknowledged as kept.
			if seen, _ := db.ReplayCache().Seen(ctx, "k2"); seen {
				t.Fatal("the torn frame's replay key was recovered")
			}
		})
	}
}

// Frames written before a migration are never applied again: after a
// migration the journal is written from its start over older frames, and
// a crash at any point leaves each message once.
func TestJournalOldFramesIgnored(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := forward(ctx, db, "r", fmt.Sprintf("old%d", i), []byte("a longer payload than the next ones"), agent.QueueLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	// Keep a copy of the journal as it was before the migration: a crash
	// right after the migration committed leaves it so.
	before := journalFiles(t, path)
	// A removal is a bbolt transaction: it migrates the journal first.
	msgs, err := db.Queue().List(ctx, []string{"r"}, time.Now(), 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("List: %v, %v", msgs, err)
	}
	if n, err := db.Queue().Remove(ctx, []string{"r"}, []string{msgs[0].ID}); err != nil || n != 1 {
		t.Fatalf("Remove of a journaled message = %d, %v; want 1", n, err)
	}
	if n := pendingLen(db); n != 0 || db.jnl.off != 0 {
		t.Fatalf("after a bbolt write: %d pending, journal at %d; want both 0", n, db.jnl.off)
	}
	// Two new frames, shorter than the old ones they overwrite.
	for i := range 2 {
		if _, err := forward(ctx, db, "r", fmt.Sprintf("new%d", i), []byte("x"), agent.QueueLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, db)
	db = openAt(t, path, Options{})
	if got := listAll(t, db, "r"); len(got) != 21 {
		t.Fatalf("after a crash with new frames over old ones: %d messages, want 21", len(got))
	}
	if tot, _ := db.Queue().Totals(ctx); tot.Messages != 21 {
		t.Fatalf("Totals %+v, want 21 messages", tot)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// The crash between the migration's commit and the next frame: the
	// journal still holds the frames migrated.
	writeJournalFiles(t, path, before)
	db = openAt(t, path, Options{})
	if got := listAll(t, db, "r"); len(got) != 21 {
		t.Fatalf("with the migrated frames left in the journal: %d messages, want 21", len(got))
	}
}

// The checks of a journaled work count what is pending: a replay key,
// the queue quota, a record read; a refused work leaves nothing, and a
// record write grouped after forwards migrates them in its transaction.
func TestJournalChecks(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	lim := agent.QueueLimits{MaxMessages: 3}
	for i := range 3 {
		if _, err := forward(ctx, db, "r", fmt.Sprintf("k%d", i), []byte("p"), lim); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := forward(ctx, db, "r", "k9", []byte("p"), lim); !errors.Is(err, agent.ErrQuota) {
		t.Fatalf("a fourth message over a quota of 3, all pending: %v, want ErrQuota", err)
	}
	if _, err := forward(ctx, db, "other", "k1", []byte("p"), lim); !errors.Is(err, agent.ErrReplay) {
		t.Fatalf("a pending replay key: %v, want ErrReplay", err)
	}
	if seen, _ := db.ReplayCache().Seen(ctx, "k9"); seen {
		t.Fatal("a refused work's replay key was kept")
	}
	// A work that read a record, which changes before it commits.
	if err := db.Records().Put(ctx, "reg", "r", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	w := agent.NewWork(nil)
	w.Expect("reg", "r", []byte("v0"))
	w.Queue(agent.QueueLimits{}, &agent.QueuedMessage{Recipient: "x", Payload: []byte("p"), Expires: time.Now().Add(time.Hour)})
	if err := db.Commit(ctx, w); !errors.Is(err, agent.ErrConflict) {
		t.Fatalf("a stale read: %v, want ErrConflict", err)
	}
	w = agent.NewWork(nil)
	w.Expect("reg", "r", []byte("v1"))
	w.Queue(agent.QueueLimits{}, &agent.QueuedMessage{Recipient: "x", Payload: []byte("p"), Expires: time.Now().Add(time.Hour)})
	if err := db.Commit(ctx, w); err != nil {
		t.Fatalf("a read that holds: %v", err)
	}
	if pendingLen(db) != 1 {
		t.Fatalf("%d pending, want 1 (the Put migrated the three before)", pendingLen(db))
	}
	tot, err := db.Queue().Totals(ctx)
	if err != nil || tot.Messages != 4 || tot.Recipients != 2 {
		t.Fatalf("Totals %+v, %v; want 4 messages for 2 recipients", tot, err)
	}
	// Sweep and Purge reach pending messages.
	if _, err := forward(ctx, db, "y", "ky", []byte("p"), agent.QueueLimits{}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.Queue().Sweep(ctx, time.Now().Add(2*time.Hour)); err != nil || n != 5 {
		t.Fatalf("Sweep = %d, %v; want 5", n, err)
	}
	if _, err := forward(ctx, db, "z", "kz", []byte("p"), agent.QueueLimits{}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.Queue().Purge(ctx, "z"); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1", n, err)
	}
	if tot, _ := db.Queue().Totals(ctx); tot != (agent.QueueTotals{}) {
		t.Fatalf("Totals %+v after removing everything", tot)
	}
}

// The journal's checks remember the records they read in the file
// (fileRecords); every other write must make them read again.
func TestJournalRecordChecksSeeWrites(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	commit := func(expect func(*agent.Work)) error {
		w := agent.NewWork(nil)
		expect(w)
		w.Queue(agent.QueueLimits{}, &agent.QueuedMessage{Recipient: "x", Payload: []byte("p"), Expires: time.Now().Add(time.Hour)})
		return db.Commit(ctx, w)
	}
	is := func(v string) func(*agent.Work) {
		return func(w *agent.Work) { w.Expect("reg", "r", []byte(v)) }
	}
	missing := func(w *agent.Work) {
		w.Reads = append(w.Reads, agent.RecordRead{Kind: "reg", ID: "r", Missing: true})
	}
	steps := []struct {
		change func() error // nil: none
		expect func(*agent.Work)
		ok     bool
	}{
		{nil, missing, true},
		{func() error { return db.Records().Put(ctx, "reg", "r", []byte("v1")) }, missing, false},
		{nil, is("v1"), true},
		{nil, is("v1"), true}, // remembered
		{func() error { return db.Records().Put(ctx, "reg", "r", []byte("v2")) }, is("v1"), false},
		{nil, is("v2"), true},
		{func() error { return db.Records().Delete(ctx, "reg", "r") }, is("v2"), false},
		{nil, missing, true},
		{func() error { // a unit of work that writes the record
			w := agent.NewWork(nil)
			w.Put("reg", "r", []byte("v3"))
			return db.Commit(ctx, w)
		}, missing, false},
		{nil, is("v3"), true},
	}
	for i, st := range steps {
		if st.change != nil {
			if err := st.change(); err != nil {
				t.Fatal(err)
			}
		}
		err := commit(st.expect)
		if st.ok && err != nil || !st.ok && !errors.Is(err, agent.ErrConflict) {
			t.Fatalf("step %d: %v (want ok = %v)", i, err, st.ok)
		}
	}
	if pendingLen(db) == 0 {
		t.Fatal("nothing pending: the works did not take the journal")
	}
}

// Concurrent forwards with shared replay keys and a tight quota, with
// removals, listings and migrations running beside them: each key is
// accepted once, every accepted message is stored under its id until
// removed, and the counters agree with what is stored.
func TestJournalConcurrent(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	lim := agent.QueueLimits{MaxMessages: 40}
	recipients := []string{"a", "b", "c", "d"}
	var mu sync.Mutex
	accepted := map[string]string{} // key → queue id
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				key := fmt.Sprintf("k%d", (g*60+i)%200) // each key tried by about 2 senders
				m, err := forward(ctx, db, recipients[i%4], key, []byte(key), lim)
				switch {
				case err == nil:
					mu.Lock()
					if prev, dup := accepted[key]; dup {
						t.Errorf("key %s accepted twice (%s, %s)", key, prev, m.ID)
					}
					accepted[key] = m.ID
					mu.Unlock()
				case errors.Is(err, agent.ErrReplay), errors.Is(err, agent.ErrQuota):
				default:
					t.Error(err)
				}
			}
		}()
	}
	removed := map[string]bool{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, r := range recipients {
				msgs, err := db.Queue().List(ctx, []string{r}, time.Now(), 5)
				if err != nil {
					t.Error(err)
					return
				}
				var ids []string
				for _, m := range msgs {
					ids = append(ids, m.ID)
				}
				if _, err := db.Queue().Remove(ctx, []string{r}, ids); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, id := range ids {
					removed[id] = true
				}
				mu.Unlock()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	stored := listAll(t, db, recipients...)
	for key, id := range accepted {
		p, ok := stored[id]
		switch {
		case removed[id] && ok:
			t.Errorf("message %s removed but still listed", id)
		case !removed[id] && !ok:
			t.Errorf("message %s (key %s) accepted but not stored", id, key)
		case ok && p != key:
			t.Errorf("message %s holds %q, want %q", id, p, key)
		}
	}
	if len(stored) != len(accepted)-len(removed) {
		t.Errorf("%d stored, want %d accepted - %d removed", len(stored), len(accepted), len(removed))
	}
	tot, err := db.Queue().Totals(ctx)
	if err != nil || tot.Messages != len(stored) {
		t.Errorf("Totals %+v, %v; want %d messages", tot, err, len(stored))
	}
	for _, r := range recipients {
		st, _ := db.Queue().Stats(ctx, []string{r})
		if st.Messages > lim.MaxMessages {
			t.Errorf("%s has %d messages, over the quota of %d", r, st.Messages, lim.MaxMessages)
		}
	}
	// After a clean close nothing is left to recover.
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	bdb, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var n uint64
	_ = bdb.View(func(tx *bbolt.Tx) error {
		n = be64(tx.Bucket(bQueue).Get(kNMsgs))
		return nil
	})
	if int(n) != len(stored) {
		t.Fatalf("the file holds %d messages after Close, want %d: the journal was not migrated", n, len(stored))
	}
}

// Past the limits the active set is frozen and migrated in the
// background while forwards go on into the other journal file; a crash
// with a frozen set not migrated yet recovers both files in order.
func TestJournalMigratesInBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.jnl.maxMessages = 10
	want := map[string]string{}
	send := func(n int) {
		t.Helper()
		for range n {
			i := len(want)
			m, err := forward(ctx, db, fmt.Sprintf("r%d", i%4), fmt.Sprintf("k%d", i), fmt.Appendf(nil, "p%d", i), agent.QueueLimits{})
			if err != nil {
				t.Fatal(err)
			}
			want[m.ID] = fmt.Sprintf("p%d", i)
		}
	}
	send(25) // two sets frozen and migrated by the migrator
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("two migrations", func() bool { return db.JournalStats().Migrations >= 2 })
	if n := pendingLen(db); n != 5 {
		t.Fatalf("%d pending after two migrations of 10, want 5", n)
	}
	if got := listAll(t, db, "r0", "r1", "r2", "r3"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}

	// Hold migrations: the next set stays frozen while the active one fills.
	db.mmu.Lock()
	send(5 + 7) // the active set reaches 10 and is frozen; 7 more in the other file
	db.pend.mu.RLock()
	frozen, active := len(db.pend.frz.msgs), len(db.pend.act.msgs)
	db.pend.mu.RUnlock()
	if frozen != 10 || active != 7 {
		t.Fatalf("frozen %d, active %d; want 10 and 7", frozen, active)
	}
	if got := listAll(t, db, "r0", "r1", "r2", "r3"); len(got) != len(want) {
		t.Fatalf("listed %d messages with a set frozen, want %d", len(got), len(want))
	}
	if tot, _ := db.Queue().Totals(ctx); tot.Messages != len(want) || tot.Recipients != 4 {
		t.Fatalf("Totals %+v with a set frozen, want %d messages for 4 recipients", tot, len(want))
	}
	if _, err := forward(ctx, db, "r0", "k30", []byte("again"), agent.QueueLimits{}); !errors.Is(err, agent.ErrReplay) {
		t.Fatalf("a replay key of the frozen set: %v, want ErrReplay", err)
	}
	crashHoldingMigrations(t, db)

	db = openAt(t, path, Options{})
	if got := listAll(t, db, "r0", "r1", "r2", "r3"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the crash, listed %v, want %v", got, want)
	}
	if tot, _ := db.Queue().Totals(ctx); tot.Messages != len(want) {
		t.Fatalf("Totals %+v after the crash, want %d messages", tot, len(want))
	}
	for _, k := range []string{"k3", "k30", "k36"} {
		if seen, _ := db.ReplayCache().Seen(ctx, k); !seen {
			t.Errorf("replay key %s lost in the crash", k)
		}
	}
	checkFreshID(t, db, want)
}

// A reader may see a set both in its snapshot of the file (its migration
// committed) and in memory (not dropped yet); it counts it once.
func TestJournalMigratedSetCountedOnce(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	db.jnl.maxMessages = 4
	db.mmu.Lock() // no migration runs
	for i := range 4 {
		if _, err := forward(ctx, db, "r", fmt.Sprintf("k%d", i), []byte("p"), agent.QueueLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	db.pend.mu.RLock()
	frz := db.pend.frz
	db.pend.mu.RUnlock()
	if frz == nil || len(frz.msgs) != 4 {
		t.Fatalf("frozen set %v, want 4 messages", frz)
	}
	// The migration commits; the set is not dropped yet.
	if err := db.bolt.Update(func(tx *bbolt.Tx) error { return db.migrateSet(tx, frz) }); err != nil {
		t.Fatal(err)
	}
	tot, err := db.Queue().Totals(ctx)
	if err != nil || tot.Messages != 4 || tot.Recipients != 1 || tot.Bytes != 4 {
		t.Errorf("Totals %+v, %v; want 4 messages of 1 byte for 1 recipient", tot, err)
	}
	st, err := db.Queue().Stats(ctx, []string{"r"})
	if err != nil || st.Messages != 4 {
		t.Errorf("Stats %+v, %v; want 4 messages", st, err)
	}
	if got := listAll(t, db, "r"); len(got) != 4 {
		t.Errorf("listed %d, want 4", len(got))
	}
	// The quota check of a journaled work counts it once too.
	if _, err := forward(ctx, db, "r", "k9", []byte("p"), agent.QueueLimits{MaxMessages: 5}); err != nil {
		t.Errorf("a fifth message under a quota of 5: %v", err)
	}
	db.pend.mu.Lock()
	db.pend.frz = nil // as the migrator does after its commit
	db.pend.mu.Unlock()
	db.mmu.Unlock()
}

// A frame whose sync failed may still be on disk; the next frame takes
// its place and number, and the files do not turn before it is written,
// so that no acknowledged frame comes after an unacknowledged one with the
// same number.
func TestJournalFailedSyncTakesNoNumber(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.jnl.maxMessages = 2
	a, err := forward(ctx, db, "r", "a", []byte("a"), agent.QueueLimits{})
	if err != nil {
		t.Fatal(err)
	}
	db.wmu.Lock()
	db.jnl.syncFault = func() error { return errors.New("injected") }
	db.wmu.Unlock()
	if _, err := forward(ctx, db, "r", "b", []byte("b"), agent.QueueLimits{}); err == nil {
		t.Fatal("a forward whose frame did not sync was acknowledged")
	}
	db.wmu.Lock()
	db.jnl.syncFault = nil
	db.wmu.Unlock()
	db.migrateIdle() // would turn the files, but for the failed frame
	db.pend.mu.RLock()
	frozen := db.pend.frz != nil
	db.pend.mu.RUnlock()
	if frozen {
		t.Fatal("the active set was frozen (the files turned) after a failed frame")
	}
	c, err := forward(ctx, db, "r", "c", []byte("c"), agent.QueueLimits{})
	if err != nil {
		t.Fatal(err)
	}
	db.mmu.Lock()                                                          // keep the frozen set (a and c) from migrating
	d, err := forward(ctx, db, "r", "d", []byte("d"), agent.QueueLimits{}) // in the other file
	if err != nil {
		t.Fatal(err)
	}
	crashHoldingMigrations(t, db)

	db = openAt(t, path, Options{})
	got := listAll(t, db, "r")
	if len(got) != 3 || got[a.ID] != "a" || got[c.ID] != "c" || got[d.ID] != "d" {
		t.Fatalf("recovered %v, want a, c and d", got)
	}
}
