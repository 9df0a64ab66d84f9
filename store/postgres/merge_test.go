package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
)

// runGroup commits works as one group (as the committer does when they
// arrive together) and returns each one's outcome.
func runGroup(t *testing.T, db *DB, works ...*agent.Work) []error {
	t.Helper()
	group := make([]*commitCall, len(works))
	for i, w := range works {
		p, err := prepare(w, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		group[i] = &commitCall{ctx: context.Background(), work: p, done: make(chan error, 1)}
	}
	db.commitGroup(group)
	out := make([]error, len(works))
	for i, call := range group {
		out[i] = <-call.done
		if out[i] == nil {
			for j, m := range works[i].Queued {
				m.ID = formatQueueID(call.work.seqs[j])
			}
		}
	}
	return out
}

// forward is the work of a mediator's forward: the recipient's
// registration read, the message's replay key and the queued message.
func forward(key, recipient, payload string, limits agent.QueueLimits) *agent.Work {
	w := agent.NewWork(nil)
	w.Expect("registration", recipient, []byte("yes"))
	w.Remember(key, time.Now().Add(time.Hour))
	w.Queue(limits, &agent.QueuedMessage{Recipient: recipient, Payload: []byte(payload), Expires: time.Now().Add(time.Hour)})
	return w
}

// Forwards that arrive together are committed by one statement of each
// kind (merged): each gets its own message's queue id, and a refusal of
// one of them (a replayed key, a quota, a stale read) is that work's
// alone, as when each work has its statements.
func TestMergedGroups(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	seed := agent.NewWork(nil)
	for _, r := range []string{"did:ex:a", "did:ex:b", "did:ex:c"} {
		seed.Put("registration", r, []byte("yes"))
	}
	if err := db.Commit(ctx, seed); err != nil {
		t.Fatal(err)
	}
	none := agent.QueueLimits{}

	t.Run("ids", func(t *testing.T) {
		var works []*agent.Work
		for i := range 12 {
			works = append(works, forward(fmt.Sprintf("ids-%d", i), []string{"did:ex:a", "did:ex:b"}[i%2], fmt.Sprintf("payload %d", i), none))
		}
		before := db.commit.merged.Load()
		for i, err := range runGroup(t, db, works...) {
			if err != nil {
				t.Fatalf("work %d: %v", i, err)
			}
		}
		if got := db.commit.merged.Load() - before; got != 12 {
			t.Fatalf("%d works committed merged, want 12", got)
		}
		msgs, err := db.Queue().List(ctx, []string{"did:ex:a", "did:ex:b"}, time.Now(), 100)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]string{}
		for _, m := range msgs {
			byID[m.ID] = m.Recipient + " " + string(m.Payload)
		}
		for i, w := range works {
			m := w.Queued[0]
			if want := m.Recipient + " " + string(m.Payload); byID[m.ID] != want {
				t.Errorf("work %d: queue id %q holds %q, want %q", i, m.ID, byID[m.ID], want)
			}
		}
		purge(t, db, "did:ex:a", "did:ex:b")
	})

	t.Run("refusals", func(t *testing.T) {
		// Recorded before: replayed.
		if err := db.Commit(ctx, forward("seen", "did:ex:a", "first", none)); err != nil {
			t.Fatal(err)
		}
		stale := forward("stale", "did:ex:a", "stale", none)
		stale.Reads[0].Value = []byte("no") // read before a change
		quota := agent.QueueLimits{MaxMessages: 2}
		works := []*agent.Work{
			forward("r1", "did:ex:b", "ok 1", quota),
			forward("seen", "did:ex:a", "replayed", none),
			forward("r2", "did:ex:b", "ok 2", quota),
			stale,
			forward("r3", "did:ex:b", "over quota", quota),
			forward("r4", "did:ex:c", "ok 3", none),
			forward("r4", "did:ex:c", "same key in the group", none),
		}
		errs := runGroup(t, db, works...)
		want := []error{nil, agent.ErrReplay, nil, agent.ErrConflict, agent.ErrQuota, nil, agent.ErrReplay}
		for i := range works {
			if want[i] == nil && errs[i] != nil || want[i] != nil && !errors.Is(errs[i], want[i]) {
				t.Errorf("work %d (%s): %v, want %v", i, works[i].Queued[0].Payload, errs[i], want[i])
			}
		}
		for _, c := range []struct {
			recipient string
			payloads  []string
		}{{"did:ex:a", []string{"first"}}, {"did:ex:b", []string{"ok 1", "ok 2"}}, {"did:ex:c", []string{"ok 3"}}} {
			msgs, err := db.Queue().List(ctx, []string{c.recipient}, time.Now(), 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, string(m.Payload))
			}
			if fmt.Sprint(got) != fmt.Sprint(c.payloads) {
				t.Errorf("%s: queued %q, want %q", c.recipient, got, c.payloads)
			}
			st, err := db.Queue().Stats(ctx, []string{c.recipient})
			if err != nil {
				t.Fatal(err)
			}
			if st.Messages != len(c.payloads) {
				t.Errorf("%s: stats %d messages, want %d", c.recipient, st.Messages, len(c.payloads))
			}
		}
		tot, err := db.Queue().Totals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tot.Messages != 4 || tot.Recipients != 3 {
			t.Errorf("totals %+v, want 4 messages for 3 recipients", tot)
		}
		// The works that committed hold their replay keys; the refused ones
		// stored none.
		for key, want := range map[string]bool{"r1": true, "r2": true, "r3": false, "stale": false, "r4": true} {
			w := agent.NewWork(nil)
			w.Remember(key, time.Now().Add(time.Hour))
			err := db.Commit(ctx, w)
			if got := errors.Is(err, agent.ErrReplay); got != want {
				t.Errorf("replay key %q recorded: %v (%v), want %v", key, got, err, want)
			}
		}
	})

	t.Run("with other works", func(t *testing.T) {
		// A work writing the registration a merged forward read: the
		// forward is checked against the state before it, the write lands.
		w := agent.NewWork(nil)
		w.Put("registration", "did:ex:c", []byte("changed"))
		before := db.commit.merged.Load()
		errs := runGroup(t, db, forward("m1", "did:ex:a", "m1", none), w, forward("m2", "did:ex:c", "m2", none))
		for i, err := range errs {
			if err != nil {
				t.Errorf("work %d: %v", i, err)
			}
		}
		if got := db.commit.merged.Load() - before; got != 2 {
			t.Errorf("%d works committed merged, want 2", got)
		}
		v, err := db.Records().Get(ctx, "registration", "did:ex:c")
		if err != nil || string(v) != "changed" {
			t.Errorf("registration after the group: %q, %v", v, err)
		}
	})
}

func purge(t *testing.T, db *DB, recipients ...string) {
	t.Helper()
	for _, r := range recipients {
		if _, err := db.Queue().Purge(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

// Many concurrent forwards with replay keys shared among them and tight
// quotas, committed in whatever groups form: every work's outcome is what
// it would be alone in some order. Each key is accepted at most once, and
// only for a work that stored its message; the queue holds exactly the
// accepted messages under the ids their works were given, within the
// quota; the totals agree with the rows.
func TestMergedGroupsConcurrent(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	recipients := []string{"did:ex:r0", "did:ex:r1", "did:ex:r2", "did:ex:r3"}
	seed := agent.NewWork(nil)
	for _, r := range append(recipients, "did:ex:warm") {
		seed.Put("registration", r, []byte("yes"))
	}
	if err := db.Commit(ctx, seed); err != nil {
		t.Fatal(err)
	}
	const workers, each, keys, quota = 16, 40, 600, 150
	limits := agent.QueueLimits{MaxMessages: quota}
	type outcome struct {
		key, recipient, payload, id string
		err                         error
	}
	// First forwards without refusals, so that some groups commit merged
	// (a group with a refusal falls back to savepoints).
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				w := forward(fmt.Sprintf("warm-%d-%d", g, i), "did:ex:warm", "warm", agent.QueueLimits{})
				if err := db.Commit(ctx, w); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if _, err := db.Queue().Purge(ctx, "did:ex:warm"); err != nil {
		t.Fatal(err)
	}
	results := make([][]outcome, workers)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := g*each + i
				o := outcome{key: fmt.Sprintf("k%d", (n*7919)%keys), recipient: recipients[n%len(recipients)], payload: fmt.Sprintf("p%d", n)}
				w := forward(o.key, o.recipient, o.payload, limits)
				o.err = db.Commit(ctx, w)
				if o.err == nil {
					o.id = w.Queued[0].ID
				}
				results[g] = append(results[g], o)
			}
		}()
	}
	wg.Wait()
	groups, works := db.CommitStats()
	t.Logf("%d works in %d groups, %d committed merged", works, groups, db.commit.merged.Load())
	if merged := db.commit.merged.Load(); merged == 0 {
		t.Fatal("no group was merged: the test did not test merging")
	}
	accepted := map[string]int{}
	stored := map[string]string{} // id → recipient payload
	perRecipient := map[string]int{}
	for _, rs := range results {
		for _, o := range rs {
			switch {
			case o.err == nil:
				accepted[o.key]++
				if _, dup := stored[o.id]; dup || o.id == "" {
					t.Fatalf("queue id %q given twice or empty", o.id)
				}
				stored[o.id] = o.recipient + " " + o.payload
				perRecipient[o.recipient]++
			case errors.Is(o.err, agent.ErrReplay), errors.Is(o.err, agent.ErrQuota):
			default:
				t.Fatalf("forward %s: %v", o.payload, o.err)
			}
		}
	}
	for k, n := range accepted {
		if n > 1 {
			t.Fatalf("replay key %s accepted %d times", k, n)
		}
	}
	msgs, err := db.Queue().List(ctx, recipients, time.Now(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(stored) {
		t.Fatalf("%d messages queued, %d forwards accepted", len(msgs), len(stored))
	}
	for _, m := range msgs {
		if want := stored[m.ID]; want != m.Recipient+" "+string(m.Payload) {
			t.Fatalf("queue id %s holds %s %s, its forward was %q", m.ID, m.Recipient, m.Payload, want)
		}
	}
	for _, r := range recipients {
		st, err := db.Queue().Stats(ctx, []string{r})
		if err != nil {
			t.Fatal(err)
		}
		if st.Messages != perRecipient[r] || st.Messages > quota {
			t.Fatalf("%s: stats say %d messages, %d accepted, quota %d", r, st.Messages, perRecipient[r], quota)
		}
	}
	// The accepted keys are recorded; the others are free.
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		w := agent.NewWork(nil)
		w.Remember(key, time.Now().Add(time.Hour))
		err := db.Commit(ctx, w)
		if recorded := errors.Is(err, agent.ErrReplay); recorded != (accepted[key] == 1) {
			t.Fatalf("key %s: recorded %v (%v), accepted %d times", key, recorded, err, accepted[key])
		}
	}
}
