package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
)

// TestQueue checks an agent.QueueStore. newStore must return a fresh, empty
// store each time it is called.
//
// Besides the interface's comments, it pins down: Add assigns distinct,
// non-empty ids and keeps Received and Expires exactly (nanoseconds); the
// caller may reuse its payload after Add; List skips expired messages but
// Stats counts them until Sweep removes them; Sweep removes exactly the
// messages whose expiry is before its argument; a batch refused for quota
// stores nothing and does not record its replay key; Remove ignores ids of
// other recipients.
func TestQueue(t *testing.T, newStore func(t *testing.T) agent.QueueStore) {
	ctx := context.Background()
	now := time.Now()
	far := now.Add(24 * time.Hour)

	qm := func(recipient string, received time.Time, payload string) *agent.QueuedMessage {
		return &agent.QueuedMessage{Recipient: recipient, Payload: []byte(payload), Received: received, Expires: far}
	}
	add := func(t *testing.T, s agent.QueueStore, limits agent.QueueLimits, msgs ...*agent.QueuedMessage) {
		t.Helper()
		if err := s.Add(ctx, msgs, limits); err != nil {
			t.Fatalf("Add = %v; want nil", err)
		}
	}
	list := func(t *testing.T, s agent.QueueStore, recipients []string, limit int) []*agent.QueuedMessage {
		t.Helper()
		ms, err := s.List(ctx, recipients, now, limit)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		return ms
	}
	payloads := func(ms []*agent.QueuedMessage) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = string(m.Payload)
		}
		return out
	}
	stats := func(t *testing.T, s agent.QueueStore, recipients ...string) agent.QueueStats {
		t.Helper()
		st, err := s.Stats(ctx, recipients)
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		return st
	}
	totals := func(t *testing.T, s agent.QueueStore) agent.QueueTotals {
		t.Helper()
		tt, err := s.Totals(ctx)
		if err != nil {
			t.Fatalf("Totals: %v", err)
		}
		return tt
	}

	t.Run("Empty", func(t *testing.T) {
		s := newStore(t)
		if ms := list(t, s, []string{"did:example:a"}, 10); len(ms) != 0 {
			t.Errorf("List on an empty queue: %v", payloads(ms))
		}
		if st := stats(t, s, "did:example:a"); st != (agent.QueueStats{}) {
			t.Errorf("Stats on an empty queue: %+v", st)
		}
		if tt := totals(t, s); tt != (agent.QueueTotals{}) {
			t.Errorf("Totals on an empty queue: %+v", tt)
		}
		if n, err := s.Remove(ctx, []string{"did:example:a"}, []string{"nope"}); err != nil || n != 0 {
			t.Errorf("Remove on an empty queue = %d, %v", n, err)
		}
		if n, err := s.Sweep(ctx, far.Add(time.Hour)); err != nil || n != 0 {
			t.Errorf("Sweep on an empty queue = %d, %v", n, err)
		}
	})

	t.Run("AddAndList", func(t *testing.T) {
		s := newStore(t)
		a, b := "did:example:alice", "did:example:bob"
		m1, m2, m3 := qm(a, now.Add(-3*time.Minute), "a1"), qm(a, now.Add(-time.Minute), "a3"), qm(a, now.Add(-2*time.Minute), "a2")
		m1.Expires = far.Add(123 * time.Nanosecond)
		add(t, s, agent.QueueLimits{}, m1, m2)
		add(t, s, agent.QueueLimits{}, m3)
		add(t, s, agent.QueueLimits{}, qm(b, now.Add(-90*time.Second), "b1"))
		if m1.ID == "" || m2.ID == "" || m3.ID == "" || m1.ID == m2.ID || m2.ID == m3.ID || m1.ID == m3.ID {
			t.Fatalf("ids not assigned or not distinct: %q %q %q", m1.ID, m2.ID, m3.ID)
		}
		m1.Payload[0] = 'X' // the caller may reuse its payload
		got := list(t, s, []string{a}, 10)
		if !slices.Equal(payloads(got), []string{"a1", "a2", "a3"}) {
			t.Fatalf("List(alice) = %v, want oldest first", payloads(got))
		}
		g := got[0]
		if g.ID != m1.ID || g.Recipient != a || !g.Received.Equal(m1.Received) || !g.Expires.Equal(m1.Expires) {
			t.Errorf("stored message %+v differs from %+v", g, m1)
		}
		g.Payload[0] = 'Y'
		if p := payloads(list(t, s, []string{a}, 1)); !slices.Equal(p, []string{"a1"}) {
			t.Errorf("changing a listed message changed the store, or limit ignored: %v", p)
		}
		if p := payloads(list(t, s, []string{b, a, b}, 10)); !slices.Equal(p, []string{"a1", "a2", "b1", "a3"}) {
			t.Errorf("List(bob, alice) = %v, want merged oldest first", p)
		}
		if p := payloads(list(t, s, []string{a, b}, 2)); !slices.Equal(p, []string{"a1", "a2"}) {
			t.Errorf("List(alice, bob, limit 2) = %v", p)
		}
		if ms := list(t, s, []string{"did:example:carol"}, 10); len(ms) != 0 {
			t.Errorf("List(carol) = %v", payloads(ms))
		}
		if _, err := s.List(ctx, []string{a}, now, 0); err == nil {
			t.Error("List with limit 0 accepted")
		}
	})

	t.Run("StatsAndTotals", func(t *testing.T) {
		s := newStore(t)
		a, b := "did:example:alice", "did:example:bob"
		t1, t2, t3 := now.Add(-time.Hour), now.Add(-time.Minute), now.Add(-30*time.Minute)
		add(t, s, agent.QueueLimits{}, qm(a, t1, "1234"), qm(a, t2, "12"))
		add(t, s, agent.QueueLimits{}, qm(b, t3, "123456"))
		st := stats(t, s, a)
		if st.Messages != 2 || st.Bytes != 6 || !st.Oldest.Equal(t1) || !st.Newest.Equal(t2) {
			t.Errorf("Stats(alice) = %+v", st)
		}
		st = stats(t, s, a, b)
		if st.Messages != 3 || st.Bytes != 12 || !st.Oldest.Equal(t1) || !st.Newest.Equal(t2) {
			t.Errorf("Stats(alice, bob) = %+v", st)
		}
		st = stats(t, s, b)
		if st.Messages != 1 || !st.Oldest.Equal(t3) || !st.Newest.Equal(t3) {
			t.Errorf("Stats(bob) = %+v", st)
		}
		if tt := totals(t, s); tt != (agent.QueueTotals{Messages: 3, Bytes: 12, Recipients: 2}) {
			t.Errorf("Totals = %+v", tt)
		}
	})

	t.Run("Remove", func(t *testing.T) {
		s := newStore(t)
		a, b := "did:example:alice", "did:example:bob"
		ma1, ma2, mb := qm(a, now.Add(-2*time.Second), "a1"), qm(a, now.Add(-time.Second), "a2"), qm(b, now, "b1")
		add(t, s, agent.QueueLimits{}, ma1, ma2, mb)
		// Bob cannot remove Alice's message; unknown ids are ignored.
		n, err := s.Remove(ctx, []string{b}, []string{ma1.ID, "unknown"})
		if err != nil || n != 0 {
			t.Fatalf("Remove of another recipient's message = %d, %v; want 0", n, err)
		}
		n, err = s.Remove(ctx, []string{a}, []string{ma1.ID, mb.ID, "unknown", ""})
		if err != nil || n != 1 {
			t.Fatalf("Remove = %d, %v; want 1", n, err)
		}
		if n, err := s.Remove(ctx, []string{a}, []string{ma1.ID}); err != nil || n != 0 {
			t.Fatalf("second Remove = %d, %v; want 0", n, err)
		}
		if p := payloads(list(t, s, []string{a, b}, 10)); !slices.Equal(p, []string{"a2", "b1"}) {
			t.Errorf("after Remove: %v", p)
		}
		if n, err := s.Remove(ctx, []string{a, b}, []string{ma2.ID, mb.ID}); err != nil || n != 2 {
			t.Fatalf("Remove for two recipients = %d, %v", n, err)
		}
		if tt := totals(t, s); tt != (agent.QueueTotals{}) {
			t.Errorf("Totals after removing everything = %+v", tt)
		}
		if st := stats(t, s, a, b); st != (agent.QueueStats{}) {
			t.Errorf("Stats after removing everything = %+v", st)
		}
	})

	t.Run("Quota", func(t *testing.T) {
		s := newStore(t)
		a := "did:example:alice"
		lim := agent.QueueLimits{MaxMessages: 3, MaxBytes: 10}
		add(t, s, lim, qm(a, now, "1234"), qm(a, now, "1234"))
		// A batch over the count limit is refused as a whole.
		if err := s.Add(ctx, []*agent.QueuedMessage{qm(a, now, "1"), qm(a, now, "1")}, lim); !errors.Is(err, agent.ErrQuota) {
			t.Fatalf("Add over the count quota = %v; want ErrQuota", err)
		}
		// Over the byte limit.
		if err := s.Add(ctx, []*agent.QueuedMessage{qm(a, now, "123")}, lim); !errors.Is(err, agent.ErrQuota) {
			t.Fatalf("Add over the byte quota: %v; want ErrQuota", err)
		}
		if st := stats(t, s, a); st.Messages != 2 || st.Bytes != 8 {
			t.Fatalf("refused batches changed the queue: %+v", st)
		}
		// Exactly at the limits is allowed.
		add(t, s, lim, qm(a, now, "12"))
		if _, err := s.Remove(ctx, []string{a}, []string{list(t, s, []string{a}, 1)[0].ID}); err != nil {
			t.Fatal(err)
		}
		if err := s.Add(ctx, []*agent.QueuedMessage{qm(a, now, "123")}, lim); err != nil {
			t.Fatalf("retry after room was made = %v", err)
		}
		// Other recipients have their own quota.
		add(t, s, lim, qm("did:example:bob", now, "1234567890"))
	})

	t.Run("ExpiryAndSweep", func(t *testing.T) {
		s := newStore(t)
		a := "did:example:alice"
		gone := qm(a, now.Add(-time.Hour), "expired")
		gone.Expires = now.Add(-time.Second)
		edge := qm(a, now.Add(-time.Minute), "edge")
		edge.Expires = now.Add(time.Hour)
		add(t, s, agent.QueueLimits{}, gone, edge, qm(a, now, "fresh"))
		if p := payloads(list(t, s, []string{a}, 10)); !slices.Equal(p, []string{"edge", "fresh"}) {
			t.Errorf("List shows expired messages: %v", p)
		}
		if st := stats(t, s, a); st.Messages != 3 {
			t.Errorf("Stats before Sweep = %+v, want 3 messages", st)
		}
		if n, err := s.Sweep(ctx, now); err != nil || n != 1 {
			t.Fatalf("Sweep(now) = %d, %v; want 1", n, err)
		}
		if n, err := s.Sweep(ctx, edge.Expires); err != nil || n != 0 {
			t.Fatalf("Sweep(edge expiry) = %d, %v; want 0 (an expiry equal to now is kept)", n, err)
		}
		if n, err := s.Sweep(ctx, edge.Expires.Add(time.Nanosecond)); err != nil || n != 1 {
			t.Fatalf("Sweep(after edge) = %d, %v; want 1", n, err)
		}
		if st := stats(t, s, a); st.Messages != 1 || st.Bytes != 5 {
			t.Errorf("Stats after Sweep = %+v", st)
		}
		if tt := totals(t, s); tt.Messages != 1 || tt.Recipients != 1 {
			t.Errorf("Totals after Sweep = %+v", tt)
		}
	})

	t.Run("Purge", func(t *testing.T) {
		s := newStore(t)
		a, b := "did:example:alice", "did:example:bob"
		for i := range 25 {
			add(t, s, agent.QueueLimits{}, qm(a, now.Add(time.Duration(i)), fmt.Sprint(i)))
		}
		add(t, s, agent.QueueLimits{}, qm(b, now, "b"))
		if n, err := s.Purge(ctx, a); err != nil || n != 25 {
			t.Fatalf("Purge = %d, %v; want 25", n, err)
		}
		if ms := list(t, s, []string{a}, 100); len(ms) != 0 {
			t.Errorf("Purge left %d messages", len(ms))
		}
		if tt := totals(t, s); tt != (agent.QueueTotals{Messages: 1, Bytes: 1, Recipients: 1}) {
			t.Errorf("Totals after Purge = %+v", tt)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		const writers, each = 8, 40
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					r := fmt.Sprintf("did:example:r%d", w%3)
					if err := s.Add(ctx, []*agent.QueuedMessage{qm(r, now, fmt.Sprintf("%d-%d", w, i))}, agent.QueueLimits{MaxMessages: 1 << 20}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		all := list(t, s, []string{"did:example:r0", "did:example:r1", "did:example:r2"}, 10000)
		if len(all) != writers*each {
			t.Fatalf("%d messages stored, want %d", len(all), writers*each)
		}
		seen := map[string]bool{}
		for _, m := range all {
			if seen[m.ID] {
				t.Fatalf("duplicate id %q", m.ID)
			}
			seen[m.ID] = true
		}
		if tt := totals(t, s); tt.Messages != writers*each || tt.Recipients != 3 {
			t.Errorf("Totals = %+v", tt)
		}
		var size int64
		for _, m := range all {
			size += int64(len(m.Payload))
		}
		if tt := totals(t, s); tt.Bytes != size {
			t.Errorf("Totals.Bytes = %d, want %d", tt.Bytes, size)
		}
	})

	t.Run("BinaryPayload", func(t *testing.T) {
		s := newStore(t)
		p := bytes.Repeat([]byte{0, 1, 2, 255}, 3000)
		m := &agent.QueuedMessage{Recipient: "did:example:alice", Payload: p, Expires: far}
		add(t, s, agent.QueueLimits{}, m)
		got := list(t, s, []string{"did:example:alice"}, 1)
		if len(got) != 1 || !bytes.Equal(got[0].Payload, p) || got[0].Received.IsZero() {
			t.Fatalf("payload or receive time not kept")
		}
	})
}
