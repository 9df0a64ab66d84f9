package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/agent"
)

// listIDs lists up to limit ids queued for the recipients.
func listIDs(t *testing.T, db *DB, limit int, recipients ...string) []string {
	t.Helper()
	ms, err := db.Queue().List(context.Background(), recipients, time.Now(), limit)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID + "@" + m.Recipient + "=" + string(m.Payload)
	}
	return ids
}

// TestQueueIndexRebuiltOnOpen: the in-memory index built from the records
// on open lists the same messages in the same order (receive time, then id,
// with receive times given out of order) and gives the same Stats as the
// index kept by the writes.
func TestQueueIndexRebuiltOnOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	exp := time.Now().Add(time.Hour)
	var msgs []*agent.QueuedMessage
	for i, off := range []int{5, 3, 9, 1, 3, 7, 2, 8} {
		msgs = append(msgs, &agent.QueuedMessage{Recipient: fmt.Sprintf("did:example:r%d", i%3),
			Payload: []byte(fmt.Sprint(i)), Received: base.Add(time.Duration(off) * time.Second), Expires: exp})
	}
	for _, m := range msgs { // one commit each, so the writes' index sees them out of order
		if err := db.Queue().Add(ctx, []*agent.QueuedMessage{m}, agent.QueueLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	// Remove one from the middle of r0's list and the oldest of r1.
	if n, err := db.Queue().Remove(ctx, []string{"did:example:r0", "did:example:r1"}, []string{msgs[3].ID, msgs[4].ID}); err != nil || n != 2 {
		t.Fatalf("Remove = %d, %v", n, err)
	}
	all := []string{"did:example:r0", "did:example:r1", "did:example:r2"}
	before := listIDs(t, db, 100, all...)
	per := map[string][]string{}
	stats := map[string]agent.QueueStats{}
	for _, r := range all {
		per[r] = listIDs(t, db, 100, r)
		if stats[r], err = db.Queue().Stats(ctx, []string{r}); err != nil {
			t.Fatal(err)
		}
	}
	if len(before) != 6 {
		t.Fatalf("listed %d messages, want 6: %v", len(before), before)
	}
	// The order the writes' index gives is receive time, then id.
	var want []string
	rest := slices.DeleteFunc(slices.Clone(msgs), func(m *agent.QueuedMessage) bool { return m == msgs[3] || m == msgs[4] })
	slices.SortStableFunc(rest, func(a, b *agent.QueuedMessage) int { return a.Received.Compare(b.Received) })
	for _, m := range rest {
		want = append(want, m.ID+"@"+m.Recipient+"="+string(m.Payload))
	}
	if !slices.Equal(before, want) {
		t.Fatalf("before reopen:\n got %v\nwant %v", before, want)
	}
	if st := stats["did:example:r0"]; st.Messages != 2 || !st.Oldest.Equal(base.Add(2*time.Second)) || !st.Newest.Equal(base.Add(5*time.Second)) {
		t.Fatalf("Stats(r0) = %+v", st)
	}
	db.Close()

	db = openAt(t, path, Options{})
	if got := listIDs(t, db, 100, all...); !slices.Equal(got, before) {
		t.Fatalf("after reopen:\n got %v\nwant %v", got, before)
	}
	for _, r := range all {
		if got := listIDs(t, db, 100, r); !slices.Equal(got, per[r]) {
			t.Errorf("List(%s) after reopen = %v, want %v", r, got, per[r])
		}
		if st, err := db.Queue().Stats(ctx, []string{r}); err != nil || st != stats[r] {
			t.Errorf("Stats(%s) after reopen = %+v, %v; want %+v", r, st, err, stats[r])
		}
	}
	if got := listIDs(t, db, 2, "did:example:r2"); !slices.Equal(got, per["did:example:r2"][:2]) {
		t.Errorf("List(r2, 2) = %v", got)
	}
}

// TestQueueIndexRolledBack: index changes of a transaction that does not
// commit are dropped, those of one that does are kept.
func TestQueueIndexRolledBack(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	exp := time.Now().Add(time.Hour)
	qb, err := prepareQueue([]*agent.QueuedMessage{{Recipient: "did:example:a", Payload: []byte("lost"), Expires: exp}}, agent.QueueLimits{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := db.update(ctx, func(tx *bbolt.Tx) error {
		if err := qb.put(db.queueOf(tx)); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("update = %v", err)
	}
	if got := listIDs(t, db, 10, "did:example:a"); len(got) != 0 {
		t.Fatalf("a rolled-back message is listed: %v", got)
	}
	if _, _, ok := db.qidx.bounds("did:example:a"); ok {
		t.Fatal("a rolled-back message is in the index")
	}
	// In a group, a failing write is taken out and the others commit.
	m := &agent.QueuedMessage{Recipient: "did:example:a", Payload: []byte("kept"), Expires: exp}
	done := make(chan error, 2)
	go func() {
		done <- db.write(ctx, func(tx *bbolt.Tx) error {
			qb, err := prepareQueue([]*agent.QueuedMessage{{Recipient: "did:example:a", Payload: []byte("lost2"), Expires: exp}}, agent.QueueLimits{}, time.Now())
			if err != nil {
				return err
			}
			if err := qb.put(db.queueOf(tx)); err != nil {
				return err
			}
			return boom
		})
	}()
	go func() { done <- db.Queue().Add(ctx, []*agent.QueuedMessage{m}, agent.QueueLimits{}) }()
	e1, e2 := <-done, <-done
	if (e1 == nil) == (e2 == nil) || (!errors.Is(e1, boom) && !errors.Is(e2, boom)) {
		t.Fatalf("results %v, %v", e1, e2)
	}
	if got := listIDs(t, db, 10, "did:example:a"); !slices.Equal(got, []string{m.ID + "@did:example:a=kept"}) {
		t.Fatalf("listed %v", got)
	}
	if tt, _ := db.Queue().Totals(ctx); tt.Messages != 1 {
		t.Fatalf("Totals %+v", tt)
	}
}

// TestQueuePurgeChunks: Purge takes more than one transaction's chunk and
// leaves the other recipients' messages.
func TestQueuePurgeChunks(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{NoSync: true})
	exp := time.Now().Add(time.Hour)
	var msgs []*agent.QueuedMessage
	for i := range 2*queueChunk + 7 {
		msgs = append(msgs, &agent.QueuedMessage{Recipient: "did:example:a", Payload: []byte("x"), Expires: exp})
		if i%1000 == 0 {
			msgs = append(msgs, &agent.QueuedMessage{Recipient: "did:example:b", Payload: []byte("y"), Expires: exp})
		}
	}
	if err := db.Queue().Add(ctx, msgs, agent.QueueLimits{}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.Queue().Purge(ctx, "did:example:a"); err != nil || n != 2*queueChunk+7 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	if got := listIDs(t, db, 100, "did:example:a"); len(got) != 0 {
		t.Fatalf("left %d", len(got))
	}
	if got := listIDs(t, db, 100, "did:example:b"); len(got) != 21 {
		t.Fatalf("b has %d, want 21", len(got))
	}
	if tt, _ := db.Queue().Totals(ctx); tt.Messages != 21 || tt.Recipients != 1 {
		t.Fatalf("Totals %+v", tt)
	}
}

// TestQueueSchema1Upgraded: a schema 1 database (recipient index in
// queue/msg) opens, loses the bucket, and lists its messages.
func TestQueueSchema1Upgraded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := &agent.QueuedMessage{Recipient: "did:example:a", Payload: []byte("old"), Expires: time.Now().Add(time.Hour)}
	if err := db.Queue().Add(ctx, []*agent.QueuedMessage{m}, agent.QueueLimits{}); err != nil {
		t.Fatal(err)
	}
	// Make it look like schema 1.
	if err := db.bolt.Update(func(tx *bbolt.Tx) error {
		idx, err := tx.Bucket(bQueue).CreateBucket(bMsg)
		if err != nil {
			return err
		}
		if err := idx.Put(make([]byte, 24), nil); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(kSchema, putBE64(1))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openAt(t, path, Options{})
	if got := listIDs(t, db, 10, "did:example:a"); !slices.Equal(got, []string{m.ID + "@did:example:a=old"}) {
		t.Fatalf("listed %v", got)
	}
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bQueue).Bucket(bMsg) != nil {
			return errors.New("queue/msg is still there")
		}
		if v := be64(tx.Bucket(bMeta).Get(kSchema)); v != schemaVersion {
			return fmt.Errorf("schema %d", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A newer schema is refused.
	if err := db.bolt.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bMeta).Put(kSchema, putBE64(schemaVersion+1)) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db2, err := Open(path, Options{}); err == nil {
		db2.Close()
		t.Fatal("opened a database of a newer schema")
	}
}

// TestQueueIndexConsistentUnderLoad: after concurrent forwards (some
// refused as replays or over quota), pickups, sweeps of expired messages
// and purges, the index kept by the writes is the one a scan of the stored
// messages builds, and the counters agree with it.
func TestQueueIndexConsistentUnderLoad(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{NoSync: true})
	q := db.Queue()
	rcpts := make([]string, 8)
	for i := range rcpts {
		rcpts[i] = fmt.Sprintf("did:example:r%d", i)
	}
	now := time.Now()
	lim := agent.QueueLimits{MaxMessages: 150}
	var wg sync.WaitGroup
	for g := range 6 { // senders
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				exp := now.Add(time.Hour)
				if i%5 == 0 {
					exp = now.Add(-time.Second) // swept below
				}
				m := &agent.QueuedMessage{Recipient: rcpts[(g+i)%len(rcpts)], Payload: []byte(fmt.Sprint(g, i)),
					Received: now.Add(time.Duration((i*7)%50) * time.Millisecond), Expires: exp}
				w := agent.NewWork(nil)
				w.Queue(lim, m)
				w.Remember(fmt.Sprintf("\x00%d-%d", g, i/2), now.Add(time.Hour)) // every other one a replay
				if err := db.Commit(ctx, w); err != nil && !errors.Is(err, agent.ErrReplay) && !errors.Is(err, agent.ErrQuota) {
					t.Error(err)
					return
				}
			}
		}()
	}
	for c := range 3 { // pickups
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				ms, err := q.List(ctx, rcpts[c*2:c*2+3], now, 20)
				if err != nil {
					t.Error(err)
					return
				}
				ids := make([]string, 0, len(ms))
				for i, m := range ms {
					if i%2 == 0 {
						ids = append(ids, m.ID)
					}
				}
				if _, err := q.Remove(ctx, rcpts[c*2:c*2+3], ids); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			if _, err := q.Sweep(ctx, time.Now()); err != nil {
				t.Error(err)
				return
			}
			if i%7 == 3 {
				if _, err := q.Purge(ctx, rcpts[7]); err != nil {
					t.Error(err)
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()

	// What the journal holds is in the index, not yet in the file.
	if err := db.migrateNow(); err != nil {
		t.Fatal(err)
	}
	kept := db.qidx.by
	if err := db.loadIndex(); err != nil {
		t.Fatal(err)
	}
	if len(kept) != len(db.qidx.by) {
		t.Fatalf("index kept by the writes has %d recipients, a scan %d", len(kept), len(db.qidx.by))
	}
	total := 0
	for r, es := range db.qidx.by {
		if !slices.Equal(kept[r], es) {
			t.Fatalf("%s: kept %v, scanned %v", r, kept[r], es)
		}
		total += len(es)
		st, err := q.Stats(ctx, []string{r})
		if err != nil || st.Messages != len(es) {
			t.Fatalf("Stats(%s) = %+v, %v; the index has %d", r, st, err, len(es))
		}
	}
	if tt, err := q.Totals(ctx); err != nil || tt.Messages != total || tt.Recipients != len(db.qidx.by) {
		t.Fatalf("Totals %+v, %v; the index has %d messages for %d recipients", tt, err, total, len(db.qidx.by))
	}
	if total == 0 {
		t.Fatal("nothing left queued: the test checks nothing")
	}
}
