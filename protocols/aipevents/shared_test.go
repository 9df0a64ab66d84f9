package aipevents

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/internal/pgtest"
	"github.com/agentd/agentd/store/postgres"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// instance is one agentd instance's events on a shared database.
type instance struct {
	db     *postgres.DB
	store  agent.Store
	events *Events
	broker *Broker
	got    <-chan aip.Event
}

func newInstance(t *testing.T, ctx context.Context, url, name string, now func() time.Time) *instance {
	t.Helper()
	db, err := postgres.Open(context.Background(), postgres.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	in := &instance{db: db, store: agent.Store{Records: db.Records(), Committer: db}, broker: &Broker{Buffer: 1000}}
	in.events = New(Config{Broker: in.broker, Now: now})
	sig := db.Signals()
	sig.Watch(KindEvent)
	in.events.Share(ctx, in.store, sig, name, slog.New(slog.NewTextHandler(io.Discard, nil)))
	in.got = in.broker.Subscribe(ctx, "")
	deadline := time.Now().Add(10 * time.Second)
	for !sig.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("the signal listener did not connect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return in
}

func (in *instance) publish(t *testing.T, id string, state aip.ProofExState) {
	t.Helper()
	err := in.store.Update(context.Background(), func(w *agent.Work) error {
		return in.events.Publish(w, aip.TopicProofExchange, &aip.ProofExchange{ID: id, State: state, MyRole: aip.ProofExVerifier})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// collect reads n events from in's subscription, then checks that no
// other comes within quiet.
func (in *instance) collect(t *testing.T, n int, quiet time.Duration) map[string]int {
	t.Helper()
	seen := map[string]int{}
	deadline := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case e := <-in.got:
			x, ok := e.Record.(*aip.ProofExchange)
			if !ok || e.Topic != aip.TopicProofExchange || x.MyRole != aip.ProofExVerifier {
				t.Fatalf("event %+v: record %T", e, e.Record)
			}
			seen[x.ID+"/"+string(x.State)]++
		case <-deadline:
			t.Fatalf("got %d of %d events: %v", i, n, seen)
		}
	}
	select {
	case e := <-in.got:
		t.Fatalf("an event more: %+v", e)
	case <-time.After(quiet):
	}
	return seen
}

// TestEventsAcrossInstances: events committed on either of two instances
// sharing a database reach the subscribers of both, once each, typed as
// their topic says; a resynchronisation publishes nothing twice, and
// catches up an event whose signal was lost; Sweep removes the records
// after SharedTTL, oldest first.
func TestEventsAcrossInstances(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := pgtest.Start(t)
	var shift atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	a := newInstance(t, ctx, url, "A", now)
	b := newInstance(t, ctx, url, "B", now)

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, name := a, "a"
			if i%4 == 3 {
				in, name = b, "b"
			}
			in.publish(t, fmt.Sprint(name, i), aip.ProofExPresented)
		}()
	}
	wg.Wait()
	for _, in := range []*instance{a, b} {
		seen := in.collect(t, 20, 300*time.Millisecond)
		if len(seen) != 20 {
			t.Fatalf("%d distinct events, want 20: %v", len(seen), seen)
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("%s published %d times", k, n)
			}
		}
	}

	// A resynchronisation (a reconnection) reads the recent records again:
	// nothing is published twice.
	b.events.shared.resync()
	b.collect(t, 0, 300*time.Millisecond)

	// An event committed while B was not listening (here: by an instance
	// whose commits do not signal) is published at B's next resync.
	c, err := postgres.Open(context.Background(), postgres.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	silent := &instance{store: agent.Store{Records: c.Records(), Committer: c}, events: New(Config{Now: now})}
	silent.events.shared = &shared{origin: "C", store: silent.store}
	silent.publish(t, "lost", aip.ProofExDone)
	b.collect(t, 0, 200*time.Millisecond) // no signal: not yet
	b.events.shared.resync()
	if seen := b.collect(t, 1, 200*time.Millisecond); seen["lost/DONE"] != 1 {
		t.Fatalf("caught up %v", seen)
	}

	// Sweep: nothing is old yet; after SharedTTL every record goes.
	if n, err := a.events.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("early sweep removed %d: %v", n, err)
	}
	a.publish(t, "late", aip.ProofExDone)
	shift.Store(int64(SharedTTL + time.Second))
	a.publish(t, "later", aip.ProofExDone)
	if n, err := a.events.Sweep(ctx); err != nil || n != 22 {
		t.Fatalf("sweep removed %d, want 22: %v", n, err)
	}
	left, err := a.store.Records.List(ctx, KindEvent, "", 100)
	if err != nil || len(left) != 1 {
		t.Fatalf("left %d records (%v), want the newest", len(left), err)
	}
}
