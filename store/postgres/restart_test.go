package postgres

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/pgtest"
)

// While the server is down, writes fail promptly with an error (no hang, no
// acknowledgment), WriteFailure says so, and nothing else breaks; once it
// is back, the pool reconnects by itself, Probe clears the failure, and
// every acknowledged write is there.
func TestServerDownAndBack(t *testing.T) {
	srv := pgtest.NewServer(t)
	db := openURL(t, srv.URL(), Options{MaxConns: 4})
	ctx := context.Background()
	acked := 0
	put := func(i int) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return db.Records().Put(cctx, "k", strconv.Itoa(i), []byte("v"))
	}
	for i := range 10 {
		if err := put(i); err != nil {
			t.Fatal(err)
		}
		acked++
	}

	srv.Stop()
	start := time.Now()
	err := put(100)
	if err == nil {
		t.Fatal("a write succeeded while the server was down")
	}
	if errors.Is(err, agent.ErrConflict) || errors.Is(err, agent.ErrReplay) {
		t.Fatalf("a lost server reported as a refusal: %v", err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Fatalf("the failed write took %s", d)
	}
	if werr, since := db.WriteFailure(); werr == nil || since.IsZero() {
		t.Fatal("WriteFailure does not report the failing writes")
	}
	if err := db.Probe(ctx); err == nil {
		t.Fatal("Probe succeeded while the server was down")
	}
	if _, err := db.Records().Get(ctx, "k", "1"); err == nil {
		t.Fatal("a read succeeded while the server was down")
	}

	srv.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := db.Probe(pctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Probe still fails 15s after the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if werr, _ := db.WriteFailure(); werr != nil {
		t.Fatalf("WriteFailure after a successful probe: %v", werr)
	}
	if err := put(200); err != nil {
		t.Fatalf("a write after the restart: %v", err)
	}
	recs, err := db.Records().List(ctx, "k", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != acked+1 {
		t.Fatalf("%d records after the restart, want the %d acknowledged ones and the new one", len(recs), acked)
	}
	if _, err := db.Records().Get(ctx, "k", "100"); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("the write that failed while the server was down is there: %v", err)
	}
}
