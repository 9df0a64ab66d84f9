package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/pgtest"
)

// signalLog collects the signals a DB receives.
type signalLog struct {
	mu     sync.Mutex
	got    []string
	resync int
	ch     chan struct{}
}

func listenTo(t *testing.T, s *Signals, topics ...string) *signalLog {
	t.Helper()
	l := &signalLog{ch: make(chan struct{}, 1000)}
	for _, topic := range topics {
		s.Subscribe(topic, func(p string) {
			l.mu.Lock()
			l.got = append(l.got, topic+":"+p)
			l.mu.Unlock()
			l.ch <- struct{}{}
		})
	}
	s.OnResync(func() {
		l.mu.Lock()
		l.resync++
		l.mu.Unlock()
		l.ch <- struct{}{}
	})
	return l
}

func (l *signalLog) waitFor(t *testing.T, what string, ok func(got []string, resync int) bool) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		l.mu.Lock()
		done := ok(l.got, l.resync)
		got, n := append([]string(nil), l.got...), l.resync
		l.mu.Unlock()
		if done {
			return
		}
		select {
		case <-l.ch:
		case <-deadline:
			t.Fatalf("waiting for %s: got %q, %d resyncs", what, got, n)
		}
	}
}

// A commit on one DB signals the other (never itself) the recipients it
// queued for and the watched records it changed, once each, and only when
// it commits: a refused work signals nothing.
func TestSignalsFollowCommits(t *testing.T) {
	ctx := context.Background()
	a, b := two(t, Options{})
	sa, sb := a.Signals(), b.Signals()
	sa.Watch("grant")
	la := listenTo(t, sa, TopicQueue, TopicRecord)
	lb := listenTo(t, sb, TopicQueue, TopicRecord)
	lb.waitFor(t, "B's first resync", func(_ []string, r int) bool { return r == 1 })
	la.waitFor(t, "A's first resync", func(_ []string, r int) bool { return r == 1 })

	w := agent.NewWork(a.Records())
	w.Put("grant", "did:example:alice", []byte("g"))
	w.Put("other", "x", []byte("o")) // not watched
	w.Queue(agent.QueueLimits{}, &agent.QueuedMessage{Recipient: "did:example:r1", Payload: []byte("1")},
		&agent.QueuedMessage{Recipient: "did:example:r1", Payload: []byte("2")})
	w.Remember("replayed", time.Now().Add(time.Hour))
	if err := a.Commit(ctx, w); err != nil {
		t.Fatal(err)
	}
	// Refused (a replay): its signals go with it.
	w = agent.NewWork(a.Records())
	w.Remember("replayed", time.Now().Add(time.Hour))
	w.Put("grant", "did:example:refused", []byte("g"))
	w.Queue(agent.QueueLimits{}, &agent.QueuedMessage{Recipient: "did:example:refused", Payload: []byte("x")})
	if err := a.Commit(ctx, w); !errors.Is(err, agent.ErrReplay) {
		t.Fatalf("replayed work: %v", err)
	}
	if err := a.Records().Delete(ctx, "grant", "did:example:alice"); err != nil {
		t.Fatal(err)
	}
	want := []string{"queue:did:example:r1", "record:grant\x1fdid:example:alice", "record:grant\x1fdid:example:alice"}
	lb.waitFor(t, "B's signals", func(got []string, _ int) bool { return len(got) >= 3 })
	time.Sleep(100 * time.Millisecond) // anything more would show now
	lb.mu.Lock()
	got := append([]string(nil), lb.got...)
	lb.mu.Unlock()
	if len(got) != 3 || !sameSet(got[:2], want[:2]) || got[2] != want[2] {
		t.Fatalf("B got %q, want %q", got, want)
	}
	la.mu.Lock()
	defer la.mu.Unlock()
	if len(la.got) != 0 {
		t.Fatalf("A got its own signals: %q", la.got)
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// The listener survives the server's restart: it reconnects by itself,
// counts the reconnection, runs the resync functions again, and then
// receives signals as before.
func TestSignalsReconnect(t *testing.T) {
	srv := pgtest.NewServer(t)
	ctx := context.Background()
	a, b := openURL(t, srv.URL(), Options{}), openURL(t, srv.URL(), Options{})
	a.Signals()
	lb := listenTo(t, b.Signals(), TopicQueue)
	lb.waitFor(t, "the first resync", func(_ []string, r int) bool { return r == 1 })
	srv.Stop()
	waitUntil(t, "the listener to notice", func() bool { return !b.Signals().Connected() })
	srv.Restart()
	lb.waitFor(t, "the resync after the restart", func(_ []string, r int) bool { return r == 2 })
	if _, re := b.Signals().Stats(); re != 1 {
		t.Fatalf("%d reconnections counted, want 1", re)
	}
	var err error
	for i := 0; i < 50; i++ { // the pool reconnects too
		if err = a.Queue().Add(ctx, []*agent.QueuedMessage{{Recipient: "did:example:after", Payload: []byte("x")}}, agent.QueueLimits{}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	lb.waitFor(t, "a signal after the restart", func(got []string, _ int) bool {
		return len(got) == 1 && got[0] == "queue:did:example:after"
	})
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A lease is held by one DB at a time; its holder renews it; it is taken
// over once it expires (a crashed holder), which is counted; Release frees
// it at once; bad names and durations are refused.
func TestLeases(t *testing.T) {
	ctx := context.Background()
	a, b := two(t, Options{})
	lead := func(db *DB, d time.Duration) bool {
		t.Helper()
		ok, err := db.Lead(ctx, "sweep", d)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lead(a, 300*time.Millisecond) || lead(b, time.Hour) || !lead(a, 300*time.Millisecond) {
		t.Fatal("A does not hold, or B takes, a held lease")
	}
	// Concurrent attempts: exactly one wins.
	var wg sync.WaitGroup
	wins := make(chan bool, 20)
	for i := range 20 {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := db.Lead(ctx, "race", time.Hour)
			if err != nil {
				t.Error(err)
			}
			if ok && db == b {
				wins <- true
			}
			if ok && db == a {
				wins <- false
			}
		}()
	}
	wg.Wait()
	close(wins)
	byA, byB := 0, 0
	for w := range wins {
		if w {
			byB++
		} else {
			byA++
		}
	}
	if (byA == 0) == (byB == 0) {
		t.Fatalf("the race lease went to A %d times and to B %d times", byA, byB)
	}

	time.Sleep(350 * time.Millisecond) // A "crashed": its lease expires
	if !lead(b, time.Hour) {
		t.Fatal("B cannot take over an expired lease")
	}
	if b.LeaseStats() != 1 {
		t.Fatalf("takeovers = %d, want 1", b.LeaseStats())
	}
	if lead(a, time.Hour) {
		t.Fatal("A takes the lease back from B")
	}
	if err := b.Release(ctx, "sweep"); err != nil {
		t.Fatal(err)
	}
	if !lead(a, time.Hour) || a.LeaseStats() != 0 {
		t.Fatal("a released lease is not free, or counted as a takeover")
	}
	for _, bad := range []struct {
		name string
		d    time.Duration
	}{{"", time.Second}, {"x", 0}, {"bad\x00", time.Second}} {
		if _, err := a.Lead(ctx, bad.name, bad.d); err == nil {
			t.Errorf("Lead(%q, %s) accepted", bad.name, bad.d)
		}
	}
}

// Sync returns only after every signal committed before it has reached the
// subscribers: each of B's Syncs right after one of A's commits finds that
// commit's signal delivered. With the listener down it fails at once.
func TestSignalsSync(t *testing.T) {
	ctx := context.Background()
	a, b := two(t, Options{})
	a.Signals().Watch("grant")
	sb := b.Signals()
	var mu sync.Mutex
	seen := map[string]bool{}
	sb.Subscribe(TopicRecord, func(p string) {
		time.Sleep(time.Millisecond) // a slow subscriber: Sync waits for it
		mu.Lock()
		seen[p] = true
		mu.Unlock()
	})
	lb := listenTo(t, sb, TopicQueue)
	lb.waitFor(t, "B's first resync", func(_ []string, r int) bool { return r == 1 })
	for i := range 20 {
		id := fmt.Sprintf("did:example:%d", i)
		if err := a.Records().Put(ctx, "grant", id, []byte("g")); err != nil {
			t.Fatal(err)
		}
		if err := sb.Sync(ctx); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		mu.Lock()
		ok := seen["grant\x1f"+id]
		mu.Unlock()
		if !ok {
			t.Fatalf("Sync returned before the signal of commit %d was handed over", i)
		}
	}
	b.Close()
	if err := sb.Sync(ctx); !errors.Is(err, agent.ErrUnavailable) {
		t.Fatalf("Sync with the listener closed: %v", err)
	}
}
