package bolt

import (
	"context"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
)

// addOne queues one message and returns how long Add took.
func addOne(t *testing.T, db *DB) time.Duration {
	t.Helper()
	start := time.Now()
	m := &agent.QueuedMessage{Recipient: "did:example:a", Payload: []byte("x"), Expires: time.Now().Add(time.Hour)}
	if err := db.Queue().Add(context.Background(), []*agent.QueuedMessage{m}, agent.QueueLimits{}); err != nil {
		t.Error(err)
	}
	return time.Since(start)
}

// TestLingerJoinsInflightWrites: with two messages in the router's hands,
// the first one's write waits for the second's and both commit in one
// group.
func TestLingerJoinsInflightWrites(t *testing.T) {
	db := openTest(t, Options{})
	db.commit.lingerMax = 10 * time.Second
	db.Inflight(2)
	g0, w0 := db.CommitStats()
	first := make(chan time.Duration, 1)
	go func() { first <- addOne(t, db) }()
	time.Sleep(50 * time.Millisecond)
	addOne(t, db)
	if d := <-first; d < 50*time.Millisecond {
		t.Errorf("the first write returned after %v, before the second was sent", d)
	}
	if g1, w1 := db.CommitStats(); g1-g0 != 1 || w1-w0 != 2 {
		t.Fatalf("%d groups for %d writes, want 1 for 2", g1-g0, w1-w0)
	}
}

// TestLingerOnlyForMessagesInHand: a lone writer does not wait, with or
// without messages in hand, nor does one whose peers are done, and the wait
// is bounded.
func TestLingerOnlyForMessagesInHand(t *testing.T) {
	db := openTest(t, Options{})
	db.commit.lingerMax = 10 * time.Second
	if d := addOne(t, db); d > 2*time.Second {
		t.Fatalf("a write with no message in hand took %v", d)
	}
	db.Inflight(1)
	if d := addOne(t, db); d > 2*time.Second {
		t.Fatalf("a lone message's write took %v", d)
	}
	db.Inflight(1) // two in hand; the second is dropped without writing
	done := make(chan time.Duration, 1)
	go func() { done <- addOne(t, db) }()
	time.Sleep(50 * time.Millisecond)
	db.Inflight(-1)
	if d := <-done; d > 2*time.Second {
		t.Fatalf("the write waited %v after the other message was done", d)
	}
	db.Inflight(-1)

	db.commit.lingerMax = 30 * time.Millisecond
	db.Inflight(5) // never come
	if d := addOne(t, db); d < 30*time.Millisecond || d > 2*time.Second {
		t.Fatalf("the wait for messages that never write took %v, want about 30ms", d)
	}
}

// TestLingerClose: Close during a wait commits what was gathered and
// returns.
func TestLingerClose(t *testing.T) {
	db := openTest(t, Options{})
	db.commit.lingerMax = time.Minute
	db.Inflight(3)
	done := make(chan time.Duration, 1)
	go func() { done <- addOne(t, db) }()
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case d := <-done:
		if d > 10*time.Second {
			t.Fatalf("write took %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write hung at Close")
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
