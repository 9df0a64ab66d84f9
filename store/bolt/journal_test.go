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
	db.wmu.Unlock()
	if err := db.jnl.f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.bolt.Close(); err != nil {
		t.Fatal(err)
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

func pendingLen(db *DB) int {
	db.pend.mu.RLock()
	defer db.pend.mu.RUnlock()
	return len(db.pend.msgs)
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
	m, err := forward(ctx, db, "r0", "new", []byte("new"), agent.QueueLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, taken := want[m.ID]; taken {
		t.Fatalf("queue id %s given out again after the recovery", m.ID)
	}
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
			end := db.jnl.off
			crash(t, db)
			f, err := os.OpenFile(path+".journal", os.O_RDWR, 0)
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
	before, err := os.ReadFile(path + ".journal")
	if err != nil {
		t.Fatal(err)
	}
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
	if err := os.WriteFile(path+".journal", before, 0o600); err != nil {
		t.Fatal(err)
	}
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
