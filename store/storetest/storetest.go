// Package storetest is a conformance suite for the agent's storage
// interfaces: agent.OutboxStore, agent.ReplayCache, agent.Records and
// keys.Store. A backend's tests call TestOutbox, TestReplayCache, TestRecords
// and TestKeyStore with a constructor for fresh, empty stores; every backend
// must pass them.
//
// Besides what the interfaces' comments say, the suite pins down these
// behaviours, which the agent relies on:
//
//   - Outbox: Enqueue of an id already in the outbox or the dead letters fails
//     and changes nothing; Reschedule, Delete and Kill of an id that is not
//     pending, and Revive and PurgeDead of an id that is not a dead letter,
//     fail with an error wrapping agent.ErrNotFound; Kill keeps a non-zero
//     m.DeadAt and sets a zero one to the current time; messages read back are
//     copies, and the caller's message may be changed after Enqueue returns.
//   - Dead lists in (DeadAt, id) order; PurgeDeadBefore deletes exactly the
//     dead letters whose DeadAt is strictly before its argument.
//   - ReplayCache: an id remembered with an expiry in the future stays seen
//     until a Sweep with a later time removes it; Sweep removes exactly the
//     ids whose expiry is before its argument.
//   - Records: kinds are separate namespaces; List is in byte order of id and
//     after need not exist; Delete of a missing record returns nil or
//     agent.ErrNotFound.
//   - keys.Store: Put of a key already stored under the same kid succeeds.
//
// The constructors are called once per subtest; they should register any
// cleanup with t.Cleanup. Subtests do not call t.Parallel, but several start
// many goroutines against one store, so run them with -race. Only the
// replay-cache tests depend on the wall clock.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/keys"
)

// base is a fixed instant the outbox tests schedule around, far enough in the
// future that no message is accidentally due against the wall clock.
var base = time.Date(2031, 3, 14, 15, 9, 26, 535897932, time.UTC)

func msg(id string, next time.Time) *agent.OutboundMessage {
	return &agent.OutboundMessage{
		ID:          id,
		To:          "did:example:bob",
		Endpoint:    "https://bob.example/didcomm",
		MediaType:   "application/didcomm-encrypted+json",
		MessageType: "https://didcomm.org/basicmessage/2.0/message",
		Payload:     []byte(`{"protected":"` + id + `"}`),
		CreatedAt:   base.Add(-time.Hour),
		NextAttempt: next,
	}
}

// sameMessage reports the first difference between two messages, or "".
func sameMessage(got, want *agent.OutboundMessage) string {
	switch {
	case got == nil:
		return "nil message"
	case got.ID != want.ID:
		return fmt.Sprintf("ID %q, want %q", got.ID, want.ID)
	case got.To != want.To || got.Endpoint != want.Endpoint || got.MediaType != want.MediaType || got.MessageType != want.MessageType:
		return fmt.Sprintf("addressing %q %q %q %q, want %q %q %q %q", got.To, got.Endpoint, got.MediaType, got.MessageType, want.To, want.Endpoint, want.MediaType, want.MessageType)
	case !bytes.Equal(got.Payload, want.Payload):
		return fmt.Sprintf("payload %q, want %q", got.Payload, want.Payload)
	case got.Attempts != want.Attempts:
		return fmt.Sprintf("Attempts %d, want %d", got.Attempts, want.Attempts)
	case !got.CreatedAt.Equal(want.CreatedAt):
		return fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt)
	case !got.NextAttempt.Equal(want.NextAttempt):
		return fmt.Sprintf("NextAttempt %v, want %v", got.NextAttempt, want.NextAttempt)
	case got.LastError != want.LastError:
		return fmt.Sprintf("LastError %q, want %q", got.LastError, want.LastError)
	case !got.DeadAt.Equal(want.DeadAt):
		return fmt.Sprintf("DeadAt %v, want %v", got.DeadAt, want.DeadAt)
	}
	return ""
}

func ids(ms []*agent.OutboundMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func checkDepth(t *testing.T, s agent.OutboxStore, pending, dead int) {
	t.Helper()
	p, d, err := s.Depth(context.Background())
	if err != nil {
		t.Fatalf("Depth: %v", err)
	}
	if p != pending || d != dead {
		t.Fatalf("Depth = %d pending, %d dead; want %d, %d", p, d, pending, dead)
	}
}

func mustEnqueue(t *testing.T, s agent.OutboxStore, m *agent.OutboundMessage) {
	t.Helper()
	if err := s.Enqueue(context.Background(), m); err != nil {
		t.Fatalf("Enqueue(%s): %v", m.ID, err)
	}
}

func due(t *testing.T, s agent.OutboxStore, now time.Time, limit int) []*agent.OutboundMessage {
	t.Helper()
	ms, err := s.Due(context.Background(), now, limit)
	if err != nil {
		t.Fatalf("Due: %v", err)
	}
	return ms
}

func allDead(t *testing.T, s agent.OutboxStore) []*agent.OutboundMessage {
	t.Helper()
	ms, err := s.Dead(context.Background(), "", 1<<20)
	if err != nil {
		t.Fatalf("Dead: %v", err)
	}
	return ms
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("%s: err = %v, want agent.ErrNotFound", what, err)
	}
}

// TestOutbox checks an agent.OutboxStore. newStore must return a fresh, empty
// store each time it is called.
func TestOutbox(t *testing.T, newStore func(t *testing.T) agent.OutboxStore) {
	ctx := context.Background()

	t.Run("Empty", func(t *testing.T) {
		s := newStore(t)
		checkDepth(t, s, 0, 0)
		if _, ok, err := s.NextDue(ctx); err != nil || ok {
			t.Errorf("NextDue on empty store = ok %v, err %v; want false, nil", ok, err)
		}
		if ms := due(t, s, base.Add(1000*time.Hour), 10); len(ms) != 0 {
			t.Errorf("Due on empty store returned %v", ids(ms))
		}
		if ms := allDead(t, s); len(ms) != 0 {
			t.Errorf("Dead on empty store returned %v", ids(ms))
		}
	})

	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		m := msg("m1", base)
		m.Attempts, m.LastError = 2, "earlier failure"
		want := *m
		want.Payload = bytes.Clone(m.Payload)
		mustEnqueue(t, s, m)
		// The caller may reuse its message once Enqueue returns.
		m.Payload[0], m.To, m.NextAttempt = 'X', "did:example:mallory", base.Add(time.Hour)
		got := due(t, s, base, 10)
		if len(got) != 1 {
			t.Fatalf("Due = %v, want [m1]", ids(got))
		}
		if d := sameMessage(got[0], &want); d != "" {
			t.Fatalf("stored message differs: %s", d)
		}
		// Returned messages are copies.
		got[0].Payload[0], got[0].Attempts = 'Y', 99
		if d := sameMessage(due(t, s, base, 10)[0], &want); d != "" {
			t.Fatalf("changing a returned message changed the store: %s", d)
		}
		checkDepth(t, s, 1, 0)
	})

	t.Run("DueOrderAndLimit", func(t *testing.T) {
		s := newStore(t)
		// Ids chosen so that id order and time order disagree; ties on time
		// must be broken by id.
		sched := map[string]time.Duration{
			"a": 5 * time.Second, "b": -time.Hour, "c": 0, "d": time.Nanosecond,
			"e": -time.Nanosecond, "f": -time.Hour, "g": 10 * time.Minute, "h": 0,
			"i": -24 * time.Hour, "j": time.Hour,
		}
		order := make([]string, 0, len(sched))
		for id := range sched {
			order = append(order, id)
		}
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, id := range order {
			mustEnqueue(t, s, msg(id, base.Add(sched[id])))
		}
		checkDepth(t, s, len(sched), 0)

		// At base: everything at or before base, oldest first, ties by id.
		want := []string{"i", "b", "f", "e", "c", "h"}
		if got := ids(due(t, s, base, 100)); !slices.Equal(got, want) {
			t.Errorf("Due(base) = %v, want %v", got, want)
		}
		if got := ids(due(t, s, base, 4)); !slices.Equal(got, want[:4]) {
			t.Errorf("Due(base, limit 4) = %v, want %v", got, want[:4])
		}
		if got := ids(due(t, s, base.Add(-25*time.Hour), 100)); len(got) != 0 {
			t.Errorf("Due before everything = %v, want none", got)
		}
		all := []string{"i", "b", "f", "e", "c", "h", "d", "a", "g", "j"}
		if got := ids(due(t, s, base.Add(1000*time.Hour), 100)); !slices.Equal(got, all) {
			t.Errorf("Due(far future) = %v, want %v", got, all)
		}
		next, ok, err := s.NextDue(ctx)
		if err != nil || !ok || !next.Equal(base.Add(-24*time.Hour)) {
			t.Errorf("NextDue = %v, %v, %v; want %v, true, nil", next, ok, err, base.Add(-24*time.Hour))
		}
	})

	t.Run("DuplicateEnqueue", func(t *testing.T) {
		s := newStore(t)
		mustEnqueue(t, s, msg("dup", base))
		other := msg("dup", base.Add(-time.Hour))
		other.Payload = []byte("other")
		if err := s.Enqueue(ctx, other); err == nil {
			t.Fatal("second Enqueue with the same id succeeded")
		}
		got := due(t, s, base, 10)
		if len(got) != 1 || string(got[0].Payload) != string(msg("dup", base).Payload) || !got[0].NextAttempt.Equal(base) {
			t.Fatalf("after duplicate Enqueue, Due = %v (payload %q)", ids(got), got[0].Payload)
		}
		checkDepth(t, s, 1, 0)
		// A dead letter's id is taken too.
		if err := s.Kill(ctx, msg("dup", base)); err != nil {
			t.Fatal(err)
		}
		if err := s.Enqueue(ctx, msg("dup", base)); err == nil {
			t.Fatal("Enqueue with the id of a dead letter succeeded")
		}
		checkDepth(t, s, 0, 1)
	})

	t.Run("Reschedule", func(t *testing.T) {
		s := newStore(t)
		mustEnqueue(t, s, msg("r1", base))
		mustEnqueue(t, s, msg("r2", base.Add(time.Minute)))
		m := due(t, s, base, 10)[0]
		m.Attempts = 1
		m.LastError = "connection refused"
		m.NextAttempt = base.Add(2 * time.Minute)
		if err := s.Reschedule(ctx, m); err != nil {
			t.Fatalf("Reschedule: %v", err)
		}
		if got := due(t, s, base, 10); len(got) != 0 {
			t.Errorf("after Reschedule into the future, Due(base) = %v", ids(got))
		}
		next, ok, err := s.NextDue(ctx)
		if err != nil || !ok || !next.Equal(base.Add(time.Minute)) {
			t.Errorf("NextDue = %v, %v, %v; want %v", next, ok, err, base.Add(time.Minute))
		}
		got := due(t, s, base.Add(time.Hour), 10)
		if !slices.Equal(ids(got), []string{"r2", "r1"}) {
			t.Fatalf("Due = %v, want [r2 r1]", ids(got))
		}
		want := msg("r1", base.Add(2*time.Minute))
		want.Attempts, want.LastError = 1, "connection refused"
		if d := sameMessage(got[1], want); d != "" {
			t.Errorf("rescheduled message: %s", d)
		}
		// Rescheduling earlier works too.
		got[1].NextAttempt = base.Add(-time.Second)
		got[1].Attempts = 2
		if err := s.Reschedule(ctx, got[1]); err != nil {
			t.Fatal(err)
		}
		if g := due(t, s, base, 10); len(g) != 1 || g[0].ID != "r1" || g[0].Attempts != 2 {
			t.Errorf("after Reschedule earlier, Due(base) = %v", ids(g))
		}
		checkDepth(t, s, 2, 0)
		wantNotFound(t, "Reschedule(unknown)", s.Reschedule(ctx, msg("nope", base)))
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		mustEnqueue(t, s, msg("d1", base))
		mustEnqueue(t, s, msg("d2", base))
		if err := s.Delete(ctx, "d1"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if got := ids(due(t, s, base, 10)); !slices.Equal(got, []string{"d2"}) {
			t.Errorf("after Delete, Due = %v", got)
		}
		checkDepth(t, s, 1, 0)
		wantNotFound(t, "Delete(deleted)", s.Delete(ctx, "d1"))
		wantNotFound(t, "Delete(unknown)", s.Delete(ctx, "nope"))
		if err := s.Delete(ctx, "d2"); err != nil {
			t.Fatal(err)
		}
		checkDepth(t, s, 0, 0)
		if _, ok, err := s.NextDue(ctx); ok || err != nil {
			t.Errorf("NextDue after deleting everything = %v, %v", ok, err)
		}
		// A deleted id may be enqueued again.
		mustEnqueue(t, s, msg("d1", base))
		checkDepth(t, s, 1, 0)
	})

	t.Run("KillReviveCycle", func(t *testing.T) {
		s := newStore(t)
		for _, id := range []string{"k1", "k2", "k3"} {
			mustEnqueue(t, s, msg(id, base))
		}
		m := due(t, s, base, 10)[0] // k1
		m.Attempts, m.LastError = 30, "gave up"
		before := time.Now()
		if err := s.Kill(ctx, m); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		after := time.Now()
		checkDepth(t, s, 2, 1)
		if got := ids(due(t, s, base.Add(time.Hour), 10)); !slices.Equal(got, []string{"k2", "k3"}) {
			t.Errorf("after Kill, Due = %v", got)
		}
		dead := allDead(t, s)
		if len(dead) != 1 {
			t.Fatalf("Dead = %v, want [k1]", ids(dead))
		}
		if dead[0].DeadAt.Before(before.Add(-time.Second)) || dead[0].DeadAt.After(after.Add(time.Second)) {
			t.Errorf("Kill with zero DeadAt set it to %v, want about now (%v)", dead[0].DeadAt, before)
		}
		want := msg("k1", base)
		want.Attempts, want.LastError, want.DeadAt = 30, "gave up", dead[0].DeadAt
		if d := sameMessage(dead[0], want); d != "" {
			t.Errorf("dead letter: %s", d)
		}
		wantNotFound(t, "Kill(dead)", s.Kill(ctx, msg("k1", base)))
		wantNotFound(t, "Kill(unknown)", s.Kill(ctx, msg("nope", base)))
		wantNotFound(t, "Delete(dead)", s.Delete(ctx, "k1"))
		wantNotFound(t, "Reschedule(dead)", s.Reschedule(ctx, msg("k1", base)))
		wantNotFound(t, "Revive(pending)", s.Revive(ctx, "k2", base))
		wantNotFound(t, "PurgeDead(pending)", s.PurgeDead(ctx, "k2"))
		wantNotFound(t, "Revive(unknown)", s.Revive(ctx, "nope", base))
		wantNotFound(t, "PurgeDead(unknown)", s.PurgeDead(ctx, "nope"))
		checkDepth(t, s, 2, 1)

		// Revive: due at the given time, attempts reset, no longer dead.
		reviveAt := base.Add(-time.Minute)
		if err := s.Revive(ctx, "k1", reviveAt); err != nil {
			t.Fatalf("Revive: %v", err)
		}
		checkDepth(t, s, 3, 0)
		if got := allDead(t, s); len(got) != 0 {
			t.Errorf("after Revive, Dead = %v", ids(got))
		}
		got := due(t, s, reviveAt, 10)
		if len(got) != 1 || got[0].ID != "k1" {
			t.Fatalf("after Revive, Due(reviveAt) = %v, want [k1]", ids(got))
		}
		if got[0].Attempts != 0 || !got[0].DeadAt.IsZero() || !got[0].NextAttempt.Equal(reviveAt) {
			t.Errorf("revived message: Attempts %d, DeadAt %v, NextAttempt %v; want 0, zero, %v",
				got[0].Attempts, got[0].DeadAt, got[0].NextAttempt, reviveAt)
		}
		if string(got[0].Payload) != string(want.Payload) {
			t.Errorf("revived payload %q, want %q", got[0].Payload, want.Payload)
		}
		wantNotFound(t, "Revive(revived)", s.Revive(ctx, "k1", base))

		// Kill again (with an explicit DeadAt, which is kept), then purge.
		got[0].DeadAt = base.Add(time.Hour)
		if err := s.Kill(ctx, got[0]); err != nil {
			t.Fatal(err)
		}
		dead = allDead(t, s)
		if len(dead) != 1 || !dead[0].DeadAt.Equal(base.Add(time.Hour)) {
			t.Fatalf("Kill with DeadAt set: Dead = %v", dead)
		}
		if err := s.PurgeDead(ctx, "k1"); err != nil {
			t.Fatalf("PurgeDead: %v", err)
		}
		checkDepth(t, s, 2, 0)
		wantNotFound(t, "PurgeDead(purged)", s.PurgeDead(ctx, "k1"))
		wantNotFound(t, "Revive(purged)", s.Revive(ctx, "k1", base))
		if got := ids(due(t, s, base.Add(time.Hour), 10)); !slices.Equal(got, []string{"k2", "k3"}) {
			t.Errorf("at the end, Due = %v", got)
		}
		// A purged id may be enqueued again.
		mustEnqueue(t, s, msg("k1", base))
		checkDepth(t, s, 3, 0)
	})

	t.Run("PurgeDeadBefore", func(t *testing.T) {
		s := newStore(t)
		for i, id := range []string{"p1", "p2", "p3", "p4"} {
			mustEnqueue(t, s, msg(id, base))
			m := msg(id, base)
			m.DeadAt = base.Add(time.Duration(i) * time.Hour)
			if err := s.Kill(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		mustEnqueue(t, s, msg("live", base))
		n, err := s.PurgeDeadBefore(ctx, base.Add(2*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("PurgeDeadBefore = %d, %v; want 2 (DeadAt strictly before)", n, err)
		}
		if got := ids(allDead(t, s)); !slices.Equal(got, []string{"p3", "p4"}) {
			t.Errorf("after PurgeDeadBefore, Dead = %v, want [p3 p4]", got)
		}
		checkDepth(t, s, 1, 2)
		wantNotFound(t, "Revive(purged)", s.Revive(ctx, "p1", base))
		if n, err := s.PurgeDeadBefore(ctx, base); err != nil || n != 0 {
			t.Errorf("PurgeDeadBefore with nothing old = %d, %v", n, err)
		}
		if n, err := s.PurgeDeadBefore(ctx, base.Add(24*time.Hour)); err != nil || n != 2 {
			t.Errorf("PurgeDeadBefore of the rest = %d, %v", n, err)
		}
		checkDepth(t, s, 1, 0)
		// A purged id may be enqueued again.
		mustEnqueue(t, s, msg("p1", base))
	})

	t.Run("DeadOrderAndCursor", func(t *testing.T) {
		s := newStore(t)
		const n = 25
		type entry struct {
			id string
			at time.Time
		}
		var want []entry
		for i := range n {
			id := fmt.Sprintf("x%02d", (i*7)%n) // id order unrelated to kill order
			m := msg(id, base)
			mustEnqueue(t, s, m)
			// Consecutive pairs share a DeadAt, to exercise the id tie-break.
			m.DeadAt = base.Add(time.Duration(n-i/2) * time.Second)
			if err := s.Kill(ctx, m); err != nil {
				t.Fatal(err)
			}
			want = append(want, entry{id, m.DeadAt})
		}
		sort.Slice(want, func(i, j int) bool {
			if !want[i].at.Equal(want[j].at) {
				return want[i].at.Before(want[j].at)
			}
			return want[i].id < want[j].id
		})
		var wantIDs []string
		for _, e := range want {
			wantIDs = append(wantIDs, e.id)
		}
		if got := ids(allDead(t, s)); !slices.Equal(got, wantIDs) {
			t.Fatalf("Dead = %v\nwant   %v", got, wantIDs)
		}
		var paged []string
		after := ""
		for {
			page, err := s.Dead(ctx, after, 7)
			if err != nil {
				t.Fatalf("Dead(%q, 7): %v", after, err)
			}
			if len(page) > 7 {
				t.Fatalf("Dead returned %d > limit 7", len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, ids(page)...)
			after = page[len(page)-1].ID
		}
		if !slices.Equal(paged, wantIDs) {
			t.Fatalf("paged Dead = %v\nwant         %v", paged, wantIDs)
		}
		checkDepth(t, s, 0, n)

		// Paging by DeadLetterCursor (what the admin API gives as next)
		// while the last letter of each page is purged or revived: the
		// cursor keeps its position, no letter is skipped or repeated.
		paged, after = nil, ""
		for i := 0; ; i++ {
			page, err := s.Dead(ctx, after, 4)
			if err != nil {
				t.Fatalf("Dead(%q, 4): %v", after, err)
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, ids(page)...)
			last := page[len(page)-1]
			after = agent.DeadLetterCursor(last)
			if i%2 == 0 {
				err = s.PurgeDead(ctx, last.ID)
			} else {
				err = s.Revive(ctx, last.ID, base)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(paged, wantIDs) {
			t.Fatalf("Dead paged by cursor while purging = %v\nwant                             %v", paged, wantIDs)
		}
		// A bare id that is no longer a dead letter has no known position.
		_, err := s.Dead(ctx, wantIDs[3], 4)
		wantNotFound(t, "Dead(after a purged id)", err)
		_, err = s.Dead(ctx, "never-was", 4)
		wantNotFound(t, "Dead(after an unknown id)", err)
		// A cursor past the end gives an empty page.
		end := &agent.OutboundMessage{ID: "zz", DeadAt: base.Add(time.Hour)}
		if page, err := s.Dead(ctx, agent.DeadLetterCursor(end), 4); err != nil || len(page) != 0 {
			t.Fatalf("Dead(after the end) = %v, %v", ids(page), err)
		}
	})

	t.Run("ConcurrentEnqueue", func(t *testing.T) {
		s := newStore(t)
		const workers, each = 50, 10
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					m := msg(fmt.Sprintf("c%02d-%02d", w, i), base.Add(time.Duration(i)*time.Millisecond))
					if err := s.Enqueue(ctx, m); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent Enqueue: %v", err)
		}
		checkDepth(t, s, workers*each, 0)
		got := due(t, s, base.Add(time.Hour), workers*each+1)
		if len(got) != workers*each {
			t.Fatalf("Due returned %d messages, want %d", len(got), workers*each)
		}
		for i := 1; i < len(got); i++ {
			a, b := got[i-1], got[i]
			if b.NextAttempt.Before(a.NextAttempt) || (b.NextAttempt.Equal(a.NextAttempt) && b.ID <= a.ID) {
				t.Fatalf("Due out of order at %d: %s@%v then %s@%v", i, a.ID, a.NextAttempt, b.ID, b.NextAttempt)
			}
		}
	})

	t.Run("ConcurrentMixed", func(t *testing.T) {
		// Dispatcher-like traffic from many goroutines: each message is
		// enqueued, rescheduled, then delivered (deleted) or killed; half the
		// dead letters are revived, the rest purged. The counters must agree
		// with what is stored at the end.
		s := newStore(t)
		const workers = 20
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- func() error {
					for i := range 5 {
						m := msg(fmt.Sprintf("w%02d-%d", w, i), base)
						if err := s.Enqueue(ctx, m); err != nil {
							return err
						}
						m.Attempts, m.NextAttempt = 1, base.Add(time.Minute)
						if err := s.Reschedule(ctx, m); err != nil {
							return err
						}
						switch i % 3 {
						case 0:
							if err := s.Delete(ctx, m.ID); err != nil {
								return err
							}
						case 1:
							if err := s.Kill(ctx, m); err != nil {
								return err
							}
							if w%2 == 0 {
								if err := s.Revive(ctx, m.ID, base); err != nil {
									return err
								}
							} else if err := s.PurgeDead(ctx, m.ID); err != nil {
								return err
							}
						case 2:
							if err := s.Kill(ctx, m); err != nil {
								return err
							}
						}
					}
					return nil
				}()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		// Per worker: i=0,3 deleted; i=1,4 killed then revived (even w) or
		// purged (odd w); i=2 dead.
		pending := len(due(t, s, base.Add(time.Hour), 1000))
		dead := len(allDead(t, s))
		if pending != workers/2*2 || dead != workers {
			t.Errorf("stored: %d pending, %d dead; want %d, %d", pending, dead, workers/2*2, workers)
		}
		checkDepth(t, s, pending, dead)
	})
}

// TestReplayCache checks an agent.ReplayCache. newCache must return a fresh,
// empty cache each time it is called.
func TestReplayCache(t *testing.T, newCache func(t *testing.T) agent.ReplayCache) {
	ctx := context.Background()
	// Expiries are relative to the wall clock: a cache may treat an expired
	// id as forgotten before it is swept.
	now := time.Now()

	remember := func(t *testing.T, c agent.ReplayCache, id string, exp time.Time) bool {
		t.Helper()
		seen, err := c.Remember(ctx, id, exp)
		if err != nil {
			t.Fatalf("Remember(%q): %v", id, err)
		}
		return seen
	}

	t.Run("Remember", func(t *testing.T) {
		c := newCache(t)
		if remember(t, c, "id-1", now.Add(time.Hour)) {
			t.Error("first Remember reported a replay")
		}
		if !remember(t, c, "id-1", now.Add(time.Hour)) {
			t.Error("second Remember did not report a replay")
		}
		if !remember(t, c, "id-1", now.Add(2*time.Hour)) {
			t.Error("Remember with another expiry did not report a replay")
		}
		if remember(t, c, "id-2", now.Add(time.Hour)) {
			t.Error("Remember of a new id reported a replay")
		}
		if remember(t, c, "ID-1", now.Add(time.Hour)) {
			t.Error("ids must be compared exactly (case-sensitive)")
		}
	})

	t.Run("Seen", func(t *testing.T) {
		c := newCache(t)
		if seen, err := c.Seen(ctx, "s-1"); err != nil || seen {
			t.Fatalf("Seen of an unknown id = %v, %v", seen, err)
		}
		if seen, _ := c.Seen(ctx, "s-1"); seen {
			t.Fatal("Seen recorded the id")
		}
		remember(t, c, "s-1", now.Add(time.Hour))
		if seen, err := c.Seen(ctx, "s-1"); err != nil || !seen {
			t.Fatalf("Seen of a recorded id = %v, %v", seen, err)
		}
		remember(t, c, "s-old", now.Add(-time.Second))
		if seen, _ := c.Seen(ctx, "s-old"); seen {
			t.Error("Seen reports an expired id")
		}
	})

	t.Run("ConcurrentSameID", func(t *testing.T) {
		c := newCache(t)
		const goroutines, rounds = 50, 5
		for r := range rounds {
			id := fmt.Sprintf("race-%d", r)
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				fresh  int
				errs   []error
				starts = make(chan struct{})
			)
			for range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-starts
					seen, err := c.Remember(ctx, id, now.Add(time.Hour))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
					} else if !seen {
						fresh++
					}
				}()
			}
			close(starts)
			wg.Wait()
			if len(errs) > 0 {
				t.Fatalf("concurrent Remember: %v", errs[0])
			}
			if fresh != 1 {
				t.Fatalf("round %d: %d of %d concurrent Remember calls reported a new id, want exactly 1", r, fresh, goroutines)
			}
		}
	})

	t.Run("ConcurrentDistinctIDs", func(t *testing.T) {
		c := newCache(t)
		const goroutines = 50
		var wg sync.WaitGroup
		var mu sync.Mutex
		replays := 0
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				seen, err := c.Remember(ctx, fmt.Sprintf("distinct-%d", g), now.Add(time.Hour))
				mu.Lock()
				defer mu.Unlock()
				if err != nil || seen {
					replays++
				}
			}()
		}
		wg.Wait()
		if replays != 0 {
			t.Fatalf("%d of %d distinct ids reported as replays or failed", replays, goroutines)
		}
		for g := range goroutines {
			if !remember(t, c, fmt.Sprintf("distinct-%d", g), now.Add(time.Hour)) {
				t.Fatalf("distinct-%d was not remembered", g)
			}
		}
	})

	t.Run("Sweep", func(t *testing.T) {
		c := newCache(t)
		t1, t2, t3 := now.Add(time.Hour), now.Add(2*time.Hour), now.Add(3*time.Hour)
		for i := range 10 {
			remember(t, c, fmt.Sprintf("early-%d", i), t1)
		}
		remember(t, c, "edge", t2)
		remember(t, c, "late", t3)

		n, err := c.Sweep(ctx, now)
		if err != nil || n != 0 {
			t.Fatalf("Sweep(now) = %d, %v; want 0, nil", n, err)
		}
		n, err = c.Sweep(ctx, t2)
		if err != nil || n != 10 {
			t.Fatalf("Sweep(t2) = %d, %v; want 10 (expiry equal to now is kept)", n, err)
		}
		if n, err := c.Sweep(ctx, t2); err != nil || n != 0 {
			t.Fatalf("second Sweep(t2) = %d, %v; want 0, nil", n, err)
		}
		if remember(t, c, "early-3", t1) {
			t.Error("swept id still reported as a replay")
		}
		if !remember(t, c, "edge", t2) || !remember(t, c, "late", t3) {
			t.Error("Sweep forgot ids that had not expired")
		}
		// early-3 is back, expiring at t1.
		if n, err := c.Sweep(ctx, t3.Add(time.Nanosecond)); err != nil || n != 3 {
			t.Fatalf("Sweep(after t3) = %d, %v; want 3", n, err)
		}
		if remember(t, c, "late", t3) {
			t.Error("late was not swept")
		}
	})
}

// TestRecords checks an agent.Records. newRecords must return a fresh, empty
// store each time it is called.
func TestRecords(t *testing.T, newRecords func(t *testing.T) agent.Records) {
	ctx := context.Background()

	list := func(t *testing.T, r agent.Records, kind, after string, limit int) []agent.Record {
		t.Helper()
		recs, err := r.List(ctx, kind, after, limit)
		if err != nil {
			t.Fatalf("List(%q, %q, %d): %v", kind, after, limit, err)
		}
		return recs
	}
	recIDs := func(recs []agent.Record) []string {
		out := make([]string, len(recs))
		for i, r := range recs {
			out[i] = r.ID
		}
		return out
	}

	t.Run("GetPutDelete", func(t *testing.T) {
		r := newRecords(t)
		_, err := r.Get(ctx, "oob-invitation", "inv-1")
		wantNotFound(t, "Get from unknown kind", err)
		val := []byte(`{"state":"sent"}`)
		if err := r.Put(ctx, "oob-invitation", "inv-1", val); err != nil {
			t.Fatalf("Put: %v", err)
		}
		val[2] = 'X' // the caller may reuse its slice
		got, err := r.Get(ctx, "oob-invitation", "inv-1")
		if err != nil || string(got) != `{"state":"sent"}` {
			t.Fatalf("Get = %q, %v", got, err)
		}
		got[2] = 'Y' // and change what it got back
		if again, _ := r.Get(ctx, "oob-invitation", "inv-1"); string(again) != `{"state":"sent"}` {
			t.Fatalf("changing a returned value changed the store: %q", again)
		}
		_, err = r.Get(ctx, "oob-invitation", "inv-2")
		wantNotFound(t, "Get of unknown id", err)

		if err := r.Put(ctx, "oob-invitation", "inv-1", []byte(`{"state":"done"}`)); err != nil {
			t.Fatal(err)
		}
		if got, err := r.Get(ctx, "oob-invitation", "inv-1"); err != nil || string(got) != `{"state":"done"}` {
			t.Fatalf("after overwrite, Get = %q, %v", got, err)
		}
		if err := r.Put(ctx, "oob-invitation", "empty", []byte{}); err != nil {
			t.Fatal(err)
		}
		if got, err := r.Get(ctx, "oob-invitation", "empty"); err != nil || len(got) != 0 {
			t.Fatalf("empty value: Get = %q, %v; want empty, nil", got, err)
		}

		if err := r.Delete(ctx, "oob-invitation", "inv-1"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		_, err = r.Get(ctx, "oob-invitation", "inv-1")
		wantNotFound(t, "Get after Delete", err)
		if err := r.Delete(ctx, "oob-invitation", "inv-1"); err != nil && !errors.Is(err, agent.ErrNotFound) {
			t.Errorf("Delete of a missing record: %v", err)
		}
		if err := r.Delete(ctx, "no-such-kind", "x"); err != nil && !errors.Is(err, agent.ErrNotFound) {
			t.Errorf("Delete from a missing kind: %v", err)
		}
	})

	t.Run("KindsAreNamespaces", func(t *testing.T) {
		r := newRecords(t)
		for _, kind := range []string{"a", "b", "a/b", "ab"} {
			if err := r.Put(ctx, kind, "same-id", []byte(kind)); err != nil {
				t.Fatal(err)
			}
		}
		for _, kind := range []string{"a", "b", "a/b", "ab"} {
			if got, err := r.Get(ctx, kind, "same-id"); err != nil || string(got) != kind {
				t.Errorf("Get(%q) = %q, %v", kind, got, err)
			}
			if got := list(t, r, kind, "", 10); len(got) != 1 {
				t.Errorf("List(%q) = %v, want one record", kind, recIDs(got))
			}
		}
		if err := r.Delete(ctx, "a", "same-id"); err != nil {
			t.Fatal(err)
		}
		if got, err := r.Get(ctx, "ab", "same-id"); err != nil || string(got) != "ab" {
			t.Errorf("Delete in one kind touched another: %q, %v", got, err)
		}
	})

	t.Run("ListOrderAndCursor", func(t *testing.T) {
		r := newRecords(t)
		if got := list(t, r, "conn", "", 10); len(got) != 0 {
			t.Fatalf("List of unknown kind = %v", recIDs(got))
		}
		var want []string
		for i := range 30 {
			want = append(want, fmt.Sprintf("id-%03d", i))
		}
		want = append(want, "ID-upper", "id-", "id-0010", "zz", "\u00e9t\u00e9") // byte order, not locale order
		shuffled := slices.Clone(want)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for _, id := range shuffled {
			if err := r.Put(ctx, "conn", id, []byte("v:"+id)); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Put(ctx, "other", "id-005", []byte("x")); err != nil {
			t.Fatal(err)
		}
		sort.Strings(want)
		all := list(t, r, "conn", "", 1000)
		if got := recIDs(all); !slices.Equal(got, want) {
			t.Fatalf("List = %v\nwant   %v", got, want)
		}
		for _, rec := range all {
			if string(rec.Value) != "v:"+rec.ID {
				t.Errorf("List value for %q = %q", rec.ID, rec.Value)
			}
		}
		var paged []string
		for after := ""; ; {
			page := list(t, r, "conn", after, 4)
			if len(page) > 4 {
				t.Fatalf("List returned %d > limit 4", len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, recIDs(page)...)
			after = page[len(page)-1].ID
		}
		if !slices.Equal(paged, want) {
			t.Fatalf("paged List = %v\nwant         %v", paged, want)
		}
		// after need not exist: listing resumes at the next id.
		if got := recIDs(list(t, r, "conn", "id-0055", 2)); !slices.Equal(got, []string{"id-006", "id-007"}) {
			t.Errorf("List after a missing id = %v, want [id-006 id-007]", got)
		}
		if got := list(t, r, "conn", "\xff", 10); len(got) != 0 {
			t.Errorf("List after the last id = %v", recIDs(got))
		}
	})

	t.Run("ConcurrentPut", func(t *testing.T) {
		r := newRecords(t)
		const goroutines = 50
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- r.Put(ctx, "k", fmt.Sprintf("r%02d", g), []byte{byte(g)})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got := list(t, r, "k", "", 100)
		if len(got) != goroutines {
			t.Fatalf("List after %d concurrent Puts has %d records", goroutines, len(got))
		}
		for i, rec := range got {
			if rec.ID != fmt.Sprintf("r%02d", i) || !bytes.Equal(rec.Value, []byte{byte(i)}) {
				t.Fatalf("record %d = %q %v", i, rec.ID, rec.Value)
			}
		}
	})
}

// TestKeyStore checks a keys.Store. newStore must return a fresh, empty store
// each time it is called.
func TestKeyStore(t *testing.T, newStore func(t *testing.T) keys.Store) {
	ctx := context.Background()
	curves := []keys.Curve{keys.Ed25519, keys.X25519, keys.P256, keys.P384, keys.P521, keys.Secp256k1}

	gen := func(t *testing.T, c keys.Curve, kid string) keys.PrivateKey {
		t.Helper()
		k, err := keys.Generate(c, kid)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	same := func(a, b keys.PrivateKey) bool {
		return a.ID == b.ID && a.Curve == b.Curve && bytes.Equal(a.Raw, b.Raw) && bytes.Equal(a.D, b.D)
	}

	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Get(ctx, "did:example:alice#key-1"); !errors.Is(err, keys.ErrNotFound) {
			t.Fatalf("Get(unknown) err = %v, want keys.ErrNotFound", err)
		}
		if l, err := s.List(ctx); err != nil || len(l) != 0 {
			t.Fatalf("List on empty store = %v, %v", l, err)
		}
		want := map[string]keys.PrivateKey{}
		for i, c := range curves {
			k := gen(t, c, fmt.Sprintf("did:example:alice#key-%d", i))
			if err := s.Put(ctx, k); err != nil {
				t.Fatalf("Put(%s): %v", c, err)
			}
			want[k.ID] = k
		}
		for kid, k := range want {
			got, err := s.Get(ctx, kid)
			if err != nil {
				t.Fatalf("Get(%s): %v", kid, err)
			}
			if !same(got, k) {
				t.Errorf("Get(%s) = %v, a different key", kid, got)
			}
		}
		list, err := s.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(list) != len(want) {
			t.Fatalf("List has %d keys, want %d", len(list), len(want))
		}
		for _, pk := range list {
			k, ok := want[pk.ID]
			if !ok || !pk.Equal(k.PublicKey) || pk.Curve != k.Curve {
				t.Errorf("List returned %s %s, not a stored public key", pk.Curve, pk.ID)
			}
		}
		if _, err := s.Get(ctx, "did:example:alice#key-99"); !errors.Is(err, keys.ErrNotFound) {
			t.Errorf("Get(unknown) err = %v, want keys.ErrNotFound", err)
		}
	})

	t.Run("PutAgain", func(t *testing.T) {
		s := newStore(t)
		k := gen(t, keys.Ed25519, "did:example:alice#sig")
		for range 2 {
			if err := s.Put(ctx, k); err != nil {
				t.Fatalf("Put: %v", err)
			}
		}
		if l, err := s.List(ctx); err != nil || len(l) != 1 {
			t.Fatalf("List after putting one key twice = %v, %v", l, err)
		}
		if got, err := s.Get(ctx, k.ID); err != nil || !same(got, k) {
			t.Fatalf("Get = %v, %v", got, err)
		}
	})

	t.Run("ConcurrentPut", func(t *testing.T) {
		s := newStore(t)
		const goroutines = 20
		ks := make([]keys.PrivateKey, goroutines)
		for i := range ks {
			ks[i] = gen(t, curves[i%len(curves)], fmt.Sprintf("did:example:carol#k%02d", i))
		}
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for _, k := range ks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.Put(ctx, k)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range ks {
			if got, err := s.Get(ctx, k.ID); err != nil || !same(got, k) {
				t.Fatalf("Get(%s) = %v, %v", k.ID, got, err)
			}
		}
		if l, err := s.List(ctx); err != nil || len(l) != goroutines {
			t.Fatalf("List = %d keys, %v; want %d", len(l), err, goroutines)
		}
	})
}
