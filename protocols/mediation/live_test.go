package mediation

import (
	"context"
	"encoding/json"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
)

// closingSession is a live connection that says when it ends
// (agent.CloseNotifier) and can hold its pushes until released.
type closingSession struct {
	id      string
	done    chan struct{}
	release chan struct{} // nil: pushes go through at once
	pushed  chan []byte

	mu      sync.Mutex
	onClose []func()
}

func newClosingSession(id string) *closingSession {
	return &closingSession{id: id, done: make(chan struct{}), pushed: make(chan []byte, 1000)}
}

func (s *closingSession) ID() string            { return s.id }
func (s *closingSession) Done() <-chan struct{} { return s.done }
func (s *closingSession) Push(ctx context.Context, _ string, p []byte) error {
	if s.release != nil {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.pushed <- p
	return nil
}
func (s *closingSession) AfterClose(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onClose = append(s.onClose, f)
}
func (s *closingSession) close() {
	close(s.done)
	s.mu.Lock()
	fs := s.onClose
	s.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

func queued(n int, prefix string) []*agent.QueuedMessage {
	out := make([]*agent.QueuedMessage, n)
	for i := range out {
		out[i] = &agent.QueuedMessage{ID: prefix + strconv.Itoa(i), Recipient: "did:example:inbox", Payload: []byte(`{"ciphertext":"x"}`)}
	}
	return out
}

// pushedIDs reads one pushed delivery and returns its attachment ids.
func pushedIDs(t *testing.T, s *closingSession) []string {
	t.Helper()
	select {
	case p := <-s.pushed:
		var m agent.Message
		if err := json.Unmarshal(p, &m); err != nil {
			t.Fatal(err)
		}
		d, err := ParseDelivery(m)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(d))
		for i, a := range d {
			ids[i] = a.ID
		}
		return ids
	case <-time.After(5 * time.Second):
		t.Fatal("nothing pushed")
		return nil
	}
}

// TestHubIdleConnectionsParkNoGoroutine: a mediator holds thousands of idle
// live connections; the hub keeps no goroutine for one that has nothing to
// push, and forgets a connection as soon as it says it ended.
func TestHubIdleConnectionsParkNoGoroutine(t *testing.T) {
	h := newHub(plainPacker{}, 0, 0, slog.New(slog.DiscardHandler))
	before := runtime.NumGoroutine()
	var ss []*closingSession
	for i := range 500 {
		s := newClosingSession("ws-" + strconv.Itoa(i))
		h.set(s, "did:example:client"+strconv.Itoa(i), mediatorDIDx, true)
		ss = append(ss, s)
	}
	if got := h.Stats().Sessions; got != 500 {
		t.Fatalf("%d live sessions, want 500", got)
	}
	if extra := runtime.NumGoroutine() - before; extra > 10 {
		t.Fatalf("500 idle live connections hold %d goroutines", extra)
	}
	// A message wakes a pusher, which ends once the buffer is empty.
	h.notify("did:example:client7", queued(1, "m"))
	if ids := pushedIDs(t, ss[7]); len(ids) != 1 || ids[0] != "m0" {
		t.Fatalf("pushed %v", ids)
	}
	waitFor(t, func() bool { return runtime.NumGoroutine()-before <= 10 })
	for _, s := range ss {
		s.close()
	}
	if got := h.Stats().Sessions; got != 0 {
		t.Fatalf("%d live sessions after every connection closed", got)
	}
	// A closed connection gets nothing more.
	h.notify("did:example:client7", queued(1, "late"))
	select {
	case p := <-ss[7].pushed:
		t.Fatalf("pushed on a closed connection: %s", p)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestHubOrderBatchesAndBuffer: what a slow connection has not taken yet
// waits in its buffer, up to the buffer's size (the rest is skipped, and
// stays queued), and is pushed in order, a delivery of at most the batch
// size at a time.
func TestHubOrderBatchesAndBuffer(t *testing.T) {
	h := newHub(plainPacker{}, 250, 100, slog.New(slog.DiscardHandler))
	s := newClosingSession("ws-slow")
	s.release = make(chan struct{})
	h.set(s, "did:example:client", mediatorDIDx, true)

	h.notify("did:example:client", queued(1, "a")) // taken by the pusher, which blocks
	time.Sleep(20 * time.Millisecond)
	for i := range 3 {
		h.notify("did:example:client", queued(100, "b"+strconv.Itoa(i)+"-"))
	}
	if got := h.Stats().Skipped; got != 50 {
		t.Fatalf("skipped %d, want the 50 over the buffer of 250", got)
	}
	close(s.release)
	var got []string
	for len(got) < 251 {
		ids := pushedIDs(t, s)
		if len(ids) > 100 {
			t.Fatalf("a delivery of %d messages, over the batch of 100", len(ids))
		}
		got = append(got, ids...)
	}
	want := []string{"a0"}
	for i := range 2 {
		for j := range 100 {
			want = append(want, "b"+strconv.Itoa(i)+"-"+strconv.Itoa(j))
		}
	}
	for j := range 50 {
		want = append(want, "b2-"+strconv.Itoa(j))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("push %d is %s, want %s (out of order)", i, got[i], want[i])
		}
	}
	waitFor(t, func() bool { return h.Stats().Pushed == 251 })
}
