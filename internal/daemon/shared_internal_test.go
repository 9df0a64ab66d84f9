package daemon

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/pgtest"
	"github.com/agentd/agentd/store/postgres"
)

// A periodic sweep (every) runs on one of two instances sharing the
// database, never on both in one interval; when that instance stops (its
// lease no longer renewed, as after a crash), the other takes over within
// two intervals and counts the takeover. On bbolt (no shared database) it
// runs every interval.
func TestSweepsRunOnOneInstance(t *testing.T) {
	url := pgtest.Start(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func() (*Daemon, *postgres.DB) {
		db, err := postgres.Open(context.Background(), postgres.Options{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		return &Daemon{db: pgBackend{db}, log: log}, db
	}
	a, dbA := open()
	b, dbB := open()
	const interval = 200 * time.Millisecond
	var runsA, runsB atomic.Int64
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneA, doneB := make(chan struct{}), make(chan struct{})
	go func() { defer close(doneA); a.every(ctxA, "test", interval, func(context.Context) { runsA.Add(1) }) }()
	time.Sleep(20 * time.Millisecond) // A first
	go func() { defer close(doneB); b.every(ctxB, "test", interval, func(context.Context) { runsB.Add(1) }) }()
	time.Sleep(8 * interval)
	if runsA.Load() < 5 || runsB.Load() != 0 {
		t.Fatalf("in 8 intervals A ran %d times and B %d times; want A alone", runsA.Load(), runsB.Load())
	}
	stopA()
	<-doneA
	at := runsB.Load()
	time.Sleep(3 * interval)
	if runsB.Load() == at {
		t.Fatal("B did not take over within three intervals of A stopping")
	}
	if dbB.LeaseStats() != 1 || dbA.LeaseStats() != 0 {
		t.Fatalf("takeovers: A %d, B %d; want B 1", dbA.LeaseStats(), dbB.LeaseStats())
	}
	stopB()
	<-doneB

	// bbolt: SoleLeases, every interval.
	var runs atomic.Int64
	d := &Daemon{db: boltBackend{}, log: log}
	ctx, cancel := context.WithTimeout(context.Background(), 5*interval+interval/2)
	defer cancel()
	d.every(ctx, "test", interval, func(context.Context) { runs.Add(1) })
	if n := runs.Load(); n < 5 || n > 7 {
		t.Fatalf("on bbolt the sweep ran %d times in 5.5 intervals", n)
	}
}
