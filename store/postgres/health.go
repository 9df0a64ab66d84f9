package postgres

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// Write health, as in the bbolt store: a group commit that fails for the
// database's sake (connection lost, server down, disk full on the server),
// not because a work refused itself, marks the writes as failing until a
// later commit succeeds. The daemon reports it on /healthz and in a metric,
// and probes with Probe while it lasts, so that it notices the recovery
// even when nothing else writes.

type writeHealth struct {
	failing  atomic.Pointer[writeFailure]
	failures atomic.Int64
}

type writeFailure struct {
	err   error
	since time.Time
}

func (h *writeHealth) record(err error) {
	if err == nil {
		if h.failing.Load() != nil {
			h.failing.Store(nil)
		}
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	h.failures.Add(1)
	if h.failing.Load() == nil {
		h.failing.CompareAndSwap(nil, &writeFailure{err: err, since: time.Now()})
	}
}

// WriteFailure reports whether commits are failing: the error of the first
// failed commit since the last one that succeeded, and when it happened;
// nil when the last commit succeeded.
func (db *DB) WriteFailure() (err error, since time.Time) {
	if f := db.health.failing.Load(); f != nil {
		return f.err, f.since
	}
	return nil, time.Time{}
}

// WriteFailures returns how many commits have failed since Open, for a
// metric.
func (db *DB) WriteFailures() int64 { return db.health.failures.Load() }

// Probe commits a small write (the current time under the meta key
// "probe") and records its outcome in WriteFailure like any commit.
func (db *DB) Probe(ctx context.Context) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO agentd_meta (key, value) VALUES ('probe', $1)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	if ctx.Err() == nil {
		db.health.record(err)
	}
	return err
}
