package agent_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/store/bolt"
)

type fakeTransport struct {
	mu       sync.Mutex
	fail     int // fail this many calls first
	perm     bool
	calls    atomic.Int32
	received [][]byte
	done     chan struct{}
}

func (f *fakeTransport) Deliver(ctx context.Context, endpoint, mediaType string, payload []byte) error {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		if f.perm {
			return &agent.PermanentError{Err: errors.New("refused")}
		}
		return errors.New("connection refused")
	}
	f.received = append(f.received, payload)
	if f.done != nil {
		close(f.done)
		f.done = nil
	}
	return nil
}

func openDB(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOutboxRetriesThenDelivers(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "a.db"))
	defer db.Close()
	done := make(chan struct{})
	tr := &fakeTransport{fail: 2, done: done}
	ob := &agent.Outbox{Store: db.Outbox(), Policy: agent.RetryPolicy{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond, MaxAttempts: 5}}
	ob.Handle("http", tr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ob.Run(ctx)
	if err := ob.Enqueue(ctx, &agent.OutboundMessage{To: "did:example:b", Endpoint: "http://peer/didcomm", MediaType: agent.MediaTypeEncrypted, Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("message not delivered")
	}
	if got := tr.calls.Load(); got != 3 {
		t.Fatalf("transport called %d times, want 3 (two failures, one success)", got)
	}
	waitFor(t, "the delivered message to leave the outbox", func() bool {
		p, d, _ := db.Outbox().Depth(ctx)
		return p == 0 && d == 0
	})
}

func TestOutboxDeadLettersAfterMaxAttemptsAndRevives(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "a.db"))
	defer db.Close()
	tr := &fakeTransport{fail: 3}
	ob := &agent.Outbox{Store: db.Outbox(), Policy: agent.RetryPolicy{Base: 5 * time.Millisecond, Max: 5 * time.Millisecond, MaxAttempts: 3}}
	ob.Handle("http", tr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ob.Run(ctx)
	m := &agent.OutboundMessage{To: "did:example:b", Endpoint: "http://peer/didcomm", Payload: []byte("x")}
	if err := ob.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "dead letter", func() bool { _, d, _ := db.Outbox().Depth(ctx); return d == 1 })
	dead, err := db.Outbox().Dead(ctx, "", 10)
	if err != nil || len(dead) != 1 || dead[0].Attempts != 3 || dead[0].LastError == "" {
		t.Fatalf("dead letters = %+v, %v", dead, err)
	}
	if err := ob.Revive(ctx, dead[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "revived message delivery", func() bool {
		p, d, _ := db.Outbox().Depth(ctx)
		return p == 0 && d == 0 && tr.calls.Load() == 4
	})
}

func TestOutboxPermanentFailureIsDeadAtOnce(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "a.db"))
	defer db.Close()
	tr := &fakeTransport{fail: 1, perm: true}
	ob := &agent.Outbox{Store: db.Outbox(), Policy: agent.RetryPolicy{Base: time.Millisecond, Max: time.Millisecond, MaxAttempts: 10}}
	ob.Handle("http", tr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ob.Run(ctx)
	ob.Enqueue(ctx, &agent.OutboundMessage{Endpoint: "http://peer/didcomm", Payload: []byte("x")})
	ob.Enqueue(ctx, &agent.OutboundMessage{Endpoint: "smtp://nowhere", Payload: []byte("y")})
	waitFor(t, "two dead letters", func() bool { _, d, _ := db.Outbox().Depth(ctx); return d == 2 })
	if tr.calls.Load() != 1 {
		t.Fatalf("permanent failure was retried: %d calls", tr.calls.Load())
	}
}

func TestOutboxSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	db := openDB(t, path)
	ob := &agent.Outbox{Store: db.Outbox()}
	ctx := context.Background()
	// No Run: the daemon "crashes" before delivering.
	if err := ob.Enqueue(ctx, &agent.OutboundMessage{Endpoint: "http://peer/didcomm", Payload: []byte("keep me")}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openDB(t, path)
	defer db.Close()
	done := make(chan struct{})
	tr := &fakeTransport{done: done}
	ob = &agent.Outbox{Store: db.Outbox()}
	ob.Handle("http", tr)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go ob.Run(rctx)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("message queued before the restart was not delivered after it")
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if string(tr.received[0]) != "keep me" {
		t.Fatalf("delivered %q", tr.received[0])
	}
}

func TestRetryPolicyDelay(t *testing.T) {
	p := agent.RetryPolicy{Base: time.Second, Max: 8 * time.Second}
	want := []time.Duration{time.Second, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for attempts, w := range want {
		if got := p.Delay(attempts); got != w {
			t.Fatalf("Delay(%d) = %v, want %v", attempts, got, w)
		}
	}
	p.Jitter = 0.5
	for i := 0; i < 100; i++ {
		if d := p.Delay(3); d < 2*time.Second || d > 6*time.Second {
			t.Fatalf("jittered delay %v outside 4s±50%%", d)
		}
	}
}
