package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
)

// Backend is what TestCommit needs of a store: its committer, and the
// stores a unit of work changes, to look at the result.
type Backend struct {
	Committer agent.Committer
	Records   agent.Records
	Outbox    interface {
		Enqueue(ctx context.Context, m *agent.OutboundMessage) error
		Depth(ctx context.Context) (pending, dead int, err error)
	}
	Queue  agent.QueueStore
	Replay interface {
		Remember(ctx context.Context, id string, expires time.Time) (seen bool, err error)
	}
}

// TestCommit checks the unit-of-work contract of agent.Committer: a Work is
// applied entirely or not at all; a changed read, a recorded replay key, a
// recipient over quota, an outbox over its limits or a taken outbox id
// refuses it with nothing stored;
// refusals do not affect works committed concurrently; agent.Store.Update
// retries conflicting works so that concurrent read-modify-writes all land.
func TestCommit(t *testing.T, newBackend func(t *testing.T) Backend) {
	ctx := context.Background()
	far := time.Now().Add(24 * time.Hour)

	store := func(b Backend) agent.Store { return agent.Store{Records: b.Records, Committer: b.Committer} }
	outbound := func(id string) *agent.OutboundMessage {
		return &agent.OutboundMessage{ID: id, To: "did:example:bob", Endpoint: "https://bob.example/didcomm",
			MediaType: agent.MediaTypeEncrypted, Payload: []byte(`{"protected":"x"}`)}
	}
	queued := func(r, p string) *agent.QueuedMessage {
		return &agent.QueuedMessage{Recipient: r, Payload: []byte(p), Expires: far}
	}
	get := func(t *testing.T, b Backend, kind, id string) (string, bool) {
		t.Helper()
		v, err := b.Records.Get(ctx, kind, id)
		if errors.Is(err, agent.ErrNotFound) {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(v), true
	}
	pending := func(t *testing.T, b Backend) int {
		t.Helper()
		n, _, err := b.Outbox.Depth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	queuedFor := func(t *testing.T, b Backend, r string) int {
		t.Helper()
		st, err := b.Queue.Stats(ctx, []string{r})
		if err != nil {
			t.Fatal(err)
		}
		return st.Messages
	}

	t.Run("AllTogether", func(t *testing.T) {
		b := newBackend(t)
		if err := b.Records.Put(ctx, "k", "old", []byte("x")); err != nil {
			t.Fatal(err)
		}
		w := agent.NewWork(b.Records)
		w.Put("k", "a", []byte("1"))
		w.Delete("k", "old")
		w.Enqueue(outbound("out-1"))
		q := queued("did:example:alice", "hello")
		w.Queue(agent.QueueLimits{}, q)
		w.Remember("\x00msg-1", far)
		if err := b.Committer.Commit(ctx, w); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		if v, ok := get(t, b, "k", "a"); !ok || v != "1" {
			t.Errorf("put record = %q, %v", v, ok)
		}
		if _, ok := get(t, b, "k", "old"); ok {
			t.Error("deleted record still there")
		}
		if n := pending(t, b); n != 1 {
			t.Errorf("outbox holds %d messages, want 1", n)
		}
		if q.ID == "" {
			t.Error("the queued message got no id")
		}
		if n := queuedFor(t, b, "did:example:alice"); n != 1 {
			t.Errorf("queue holds %d messages, want 1", n)
		}
		if seen, err := b.Replay.Remember(ctx, "\x00msg-1", far); err != nil || !seen {
			t.Errorf("replay key not recorded: %v, %v", seen, err)
		}
	})

	// refusedLeavesNothing commits w, which must be refused with want, and
	// checks that nothing of it was stored.
	refusedLeavesNothing := func(t *testing.T, b Backend, w *agent.Work, want error, replayKey string) {
		t.Helper()
		outBefore := pending(t, b)
		qBefore := queuedFor(t, b, "did:example:alice")
		err := b.Committer.Commit(ctx, w)
		if !errors.Is(err, want) {
			t.Fatalf("Commit = %v, want %v", err, want)
		}
		if _, ok := get(t, b, "k", "refused"); ok {
			t.Error("a refused work's record was stored")
		}
		if n := pending(t, b); n != outBefore {
			t.Errorf("a refused work's outbound message was stored (%d → %d)", outBefore, n)
		}
		if n := queuedFor(t, b, "did:example:alice"); n != qBefore {
			t.Errorf("a refused work's queued message was stored (%d → %d)", qBefore, n)
		}
		if replayKey != "" {
			if seen, err := b.Replay.Remember(ctx, replayKey, far); err != nil || seen {
				t.Errorf("a refused work's replay key was recorded: %v, %v", seen, err)
			}
		}
	}
	refusable := func(b Backend, replayKey string) *agent.Work {
		w := agent.NewWork(b.Records)
		w.Put("k", "refused", []byte("no"))
		w.Enqueue(outbound(agent.NewID()))
		w.Queue(agent.QueueLimits{MaxMessages: 2}, queued("did:example:alice", "m"))
		if replayKey != "" {
			w.Remember(replayKey, far)
		}
		return w
	}

	t.Run("ReplayRefused", func(t *testing.T) {
		b := newBackend(t)
		if _, err := b.Replay.Remember(ctx, "\x00dup", far); err != nil {
			t.Fatal(err)
		}
		refusedLeavesNothing(t, b, refusable(b, "\x00dup"), agent.ErrReplay, "")
	})

	t.Run("QuotaRefused", func(t *testing.T) {
		b := newBackend(t)
		if err := b.Queue.Add(ctx, []*agent.QueuedMessage{queued("did:example:alice", "1"), queued("did:example:alice", "2")}, agent.QueueLimits{}); err != nil {
			t.Fatal(err)
		}
		refusedLeavesNothing(t, b, refusable(b, "\x00fwd"), agent.ErrQuota, "\x00fwd")
	})

	t.Run("ConflictRefused", func(t *testing.T) {
		b := newBackend(t)
		if err := b.Records.Put(ctx, "k", "counter", []byte("1")); err != nil {
			t.Fatal(err)
		}
		w := refusable(b, "\x00c")
		if v, err := w.Get(ctx, "k", "counter"); err != nil || string(v) != "1" {
			t.Fatalf("Work.Get = %q, %v", v, err)
		}
		if err := b.Records.Put(ctx, "k", "counter", []byte("2")); err != nil {
			t.Fatal(err)
		}
		refusedLeavesNothing(t, b, w, agent.ErrConflict, "\x00c")

		// A record read as missing conflicts once it exists.
		w = refusable(b, "")
		if _, err := w.Get(ctx, "k", "new"); !errors.Is(err, agent.ErrNotFound) {
			t.Fatalf("Work.Get of a missing record = %v", err)
		}
		if err := b.Records.Put(ctx, "k", "new", []byte("made")); err != nil {
			t.Fatal(err)
		}
		refusedLeavesNothing(t, b, w, agent.ErrConflict, "")

		// An unchanged read commits.
		w = agent.NewWork(b.Records)
		if _, err := w.Get(ctx, "k", "counter"); err != nil {
			t.Fatal(err)
		}
		w.Put("k", "counter", []byte("3"))
		if err := b.Committer.Commit(ctx, w); err != nil {
			t.Fatalf("Commit after an unchanged read: %v", err)
		}
	})

	t.Run("OutboxIDTaken", func(t *testing.T) {
		b := newBackend(t)
		if err := b.Outbox.Enqueue(ctx, outbound("taken")); err != nil {
			t.Fatal(err)
		}
		w := refusable(b, "\x00taken")
		w.Enqueue(outbound("taken"))
		outBefore := pending(t, b)
		if err := b.Committer.Commit(ctx, w); err == nil {
			t.Fatal("Commit with a taken outbox id succeeded")
		}
		if _, ok := get(t, b, "k", "refused"); ok || pending(t, b) != outBefore {
			t.Error("a failed work left changes behind")
		}
	})

	t.Run("OutboxFull", func(t *testing.T) {
		b := newBackend(t)
		to := func(id, endpoint string) *agent.OutboundMessage {
			m := outbound(id)
			m.Endpoint = endpoint
			return m
		}
		limits := agent.OutboxLimits{MaxPending: 4, MaxPendingPerDestination: 2}
		commit := func(outs ...*agent.OutboundMessage) error {
			w := agent.NewWork(b.Records)
			w.Enqueue(outs...)
			w.OutboxLimits = limits
			return b.Committer.Commit(ctx, w)
		}
		if err := commit(to("a1", "https://a.example/"), to("a2", "https://a.example/")); err != nil {
			t.Fatalf("Commit up to the per-destination limit: %v", err)
		}
		// A third message for the same endpoint is refused, with the rest
		// of its work.
		w := refusable(b, "\x00full-dest")
		w.Enqueue(to("a3", "https://a.example/"))
		w.OutboxLimits = limits
		refusedLeavesNothing(t, b, w, agent.ErrOutboxFull, "\x00full-dest")
		// Another endpoint still has room, up to the total.
		if err := commit(to("b1", "https://b.example/"), to("c1", "https://c.example/")); err != nil {
			t.Fatalf("Commit for other endpoints: %v", err)
		}
		w = refusable(b, "\x00full-total")
		w.Enqueue(to("d1", "https://d.example/"))
		w.OutboxLimits = limits
		refusedLeavesNothing(t, b, w, agent.ErrOutboxFull, "\x00full-total")
		if n := pending(t, b); n != 4 {
			t.Errorf("outbox holds %d messages, want 4", n)
		}
		// Without limits, nothing is refused.
		w = agent.NewWork(b.Records)
		w.Enqueue(to("a4", "https://a.example/"))
		if err := b.Committer.Commit(ctx, w); err != nil {
			t.Errorf("Commit without limits: %v", err)
		}
		// agent.Store.Commit applies its limits.
		st := agent.Store{Records: b.Records, Committer: b.Committer, OutboxLimits: agent.OutboxLimits{MaxPending: 5}}
		w = st.New()
		w.Enqueue(to("e1", "https://e.example/"))
		if err := st.Commit(ctx, w); !errors.Is(err, agent.ErrOutboxFull) {
			t.Errorf("Store.Commit over Store.OutboxLimits = %v, want ErrOutboxFull", err)
		}
	})

	t.Run("ReadsSeeOwnWrites", func(t *testing.T) {
		b := newBackend(t)
		if err := b.Records.Put(ctx, "k", "a", []byte("stored")); err != nil {
			t.Fatal(err)
		}
		w := agent.NewWork(b.Records)
		w.Put("k", "a", []byte("staged"))
		if v, err := w.Get(ctx, "k", "a"); err != nil || string(v) != "staged" {
			t.Errorf("Get after Put = %q, %v", v, err)
		}
		w.Delete("k", "a")
		if _, err := w.Get(ctx, "k", "a"); !errors.Is(err, agent.ErrNotFound) {
			t.Errorf("Get after Delete = %v, want ErrNotFound", err)
		}
		if v, _ := get(t, b, "k", "a"); v != "stored" {
			t.Errorf("an uncommitted work is visible: %q", v)
		}
	})

	t.Run("RefusalsDoNotFailTheGroup", func(t *testing.T) {
		b := newBackend(t)
		if _, err := b.Replay.Remember(ctx, "\x00seen", far); err != nil {
			t.Fatal(err)
		}
		const n = 40
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := agent.NewWork(b.Records)
				w.Put("group", strconv.Itoa(i), []byte("v"))
				if i%4 == 0 {
					w.Remember("\x00seen", far) // refused
				} else {
					w.Remember(fmt.Sprintf("\x00g-%d", i), far)
				}
				errs[i] = b.Committer.Commit(ctx, w)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			_, stored := get(t, b, "group", strconv.Itoa(i))
			if i%4 == 0 {
				if !errors.Is(err, agent.ErrReplay) || stored {
					t.Errorf("work %d: %v, stored %v; want ErrReplay and nothing stored", i, err, stored)
				}
			} else if err != nil || !stored {
				t.Errorf("work %d: %v, stored %v; want committed", i, err, stored)
			}
		}
	})

	t.Run("UpdateRetriesConflicts", func(t *testing.T) {
		b := newBackend(t)
		s := store(b)
		const workers, each = 6, 15
		var wg sync.WaitGroup
		var mu sync.Mutex
		succeeded, conflicts := 0, 0
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					err := s.Update(ctx, func(w *agent.Work) error {
						n := 0
						v, err := w.Get(ctx, "k", "counter")
						if err == nil {
							n, _ = strconv.Atoi(string(v))
						} else if !errors.Is(err, agent.ErrNotFound) {
							return err
						}
						w.Put("k", "counter", []byte(strconv.Itoa(n+1)))
						return nil
					})
					mu.Lock()
					switch {
					case err == nil:
						succeeded++
					case errors.Is(err, agent.ErrConflict):
						// Heavy contention may exhaust the retries; it
						// must then be reported, never lose an update.
						conflicts++
					default:
						t.Error(err)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		v, _ := get(t, b, "k", "counter")
		got, _ := strconv.Atoi(v)
		if got != succeeded {
			t.Errorf("counter = %d after %d successful increments (%d conflicts): an update was lost", got, succeeded, conflicts)
		}
		if conflicts > workers*each/10 {
			t.Errorf("%d of %d updates gave up on conflicts", conflicts, workers*each)
		}
	})

	t.Run("AfterCommitOnlyOnSuccess", func(t *testing.T) {
		b := newBackend(t)
		s := store(b)
		ran := 0
		err := s.Update(ctx, func(w *agent.Work) error {
			w.Put("k", "x", []byte("1"))
			w.AfterCommit(func() { ran++ })
			return nil
		})
		if err != nil || ran != 1 {
			t.Fatalf("Update = %v, after-commit ran %d times; want once", err, ran)
		}
		if _, err := b.Replay.Remember(ctx, "\x00r", far); err != nil {
			t.Fatal(err)
		}
		err = s.Update(ctx, func(w *agent.Work) error {
			w.Remember("\x00r", far)
			w.AfterCommit(func() { ran++ })
			return nil
		})
		if !errors.Is(err, agent.ErrReplay) || ran != 1 {
			t.Fatalf("refused Update = %v, after-commit ran %d times; want ErrReplay and not again", err, ran)
		}
		boom := errors.New("boom")
		err = s.Update(ctx, func(w *agent.Work) error {
			w.Put("k", "y", []byte("1"))
			w.AfterCommit(func() { ran++ })
			return boom
		})
		if !errors.Is(err, boom) || ran != 1 {
			t.Fatalf("failed fn: Update = %v, ran %d", err, ran)
		}
		if _, ok := get(t, b, "k", "y"); ok {
			t.Error("the work of a failed fn was committed")
		}
	})
}
