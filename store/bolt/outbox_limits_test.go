package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/agent"
)

// The per-endpoint counters follow the pending messages through delivery,
// dead-lettering and revival, so the limit frees up as messages leave.
func TestOutboxPerDestinationCounters(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	const ep = "https://victim.example/didcomm"
	limits := agent.OutboxLimits{MaxPendingPerDestination: 2}
	commit := func(id string) error {
		w := agent.NewWork(nil)
		w.Enqueue(&agent.OutboundMessage{ID: id, Endpoint: ep, MediaType: agent.MediaTypeEncrypted, Payload: []byte("x")})
		w.OutboxLimits = limits
		return db.Commit(ctx, w)
	}
	for _, id := range []string{"m1", "m2"} {
		if err := commit(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := commit("m3"); !errors.Is(err, agent.ErrOutboxFull) {
		t.Fatalf("third message = %v, want ErrOutboxFull", err)
	}
	// Delivered: room for one.
	if err := db.Outbox().Delete(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	if err := commit("m3"); err != nil {
		t.Fatalf("after a delivery: %v", err)
	}
	// Dead-lettered: room for one; revived: full again.
	if err := db.Outbox().Kill(ctx, &agent.OutboundMessage{ID: "m2"}); err != nil {
		t.Fatal(err)
	}
	if err := commit("m4"); err != nil {
		t.Fatalf("after a dead letter: %v", err)
	}
	if err := db.Outbox().Revive(ctx, "m2", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := commit("m5"); !errors.Is(err, agent.ErrOutboxFull) {
		t.Fatalf("after a revival = %v, want ErrOutboxFull", err)
	}
}

// A database written before the per-endpoint counters existed gets them,
// counted from its pending messages, when it is opened.
func TestOutboxDestCountersFilledOnOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := db.Outbox().Enqueue(ctx, &agent.OutboundMessage{ID: id, Endpoint: "https://x.example/"}); err != nil {
			t.Fatal(err)
		}
	}
	// Make it look like an older database.
	if err := db.bolt.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bOutbox).DeleteBucket(bDest) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openAt(t, path, Options{})
	w := agent.NewWork(nil)
	w.Enqueue(&agent.OutboundMessage{ID: "c", Endpoint: "https://x.example/"})
	w.OutboxLimits = agent.OutboxLimits{MaxPendingPerDestination: 2}
	if err := db.Commit(ctx, w); !errors.Is(err, agent.ErrOutboxFull) {
		t.Fatalf("Commit over the limit after reopening = %v, want ErrOutboxFull", err)
	}
}
