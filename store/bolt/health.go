package bolt

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// Write health.
//
// A commit that fails for the file's sake (no space left on device, an I/O
// error), not because a write refused itself, marks the database's writes as
// failing until a later commit succeeds. The daemon reports it on /healthz
// and in a metric, and probes with Probe while it lasts, so that it notices
// the recovery even when nothing else writes.

// writeHealth tracks the outcome of commits.
type writeHealth struct {
	failing  atomic.Pointer[writeFailure]
	failures atomic.Int64
}

// writeFailure is the first error of a run of failing commits.
type writeFailure struct {
	err   error
	since time.Time
}

// record notes the outcome of a commit.
func (h *writeHealth) record(err error) {
	if err == nil {
		if h.failing.Load() != nil {
			h.failing.Store(nil)
		}
		return
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	h.failures.Add(1)
	if h.failing.Load() == nil {
		h.failing.CompareAndSwap(nil, &writeFailure{err: err, since: time.Now()})
	}
}

// WriteFailure reports whether commits are failing: the error of the first
// failed commit since the last one that succeeded, and when it happened; nil
// when the last commit succeeded.
func (db *DB) WriteFailure() (err error, since time.Time) {
	if f := db.health.failing.Load(); f != nil {
		return f.err, f.since
	}
	return nil, time.Time{}
}

// WriteFailures returns how many commits have failed since Open, for a metric.
func (db *DB) WriteFailures() int64 { return db.health.failures.Load() }

// kProbe is the meta key Probe writes.
var kProbe = []byte("probe")

// Probe commits a small write (the current time under a key of the meta
// bucket) to find out whether writes work again; its outcome updates
// WriteFailure like any commit.
func (db *DB) Probe(ctx context.Context) error {
	now := putBE64(uint64(time.Now().UnixNano()))
	return db.write(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bMeta).Put(kProbe, now)
	})
}
