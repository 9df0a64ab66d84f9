package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentd/agentd/agent"
)

var _ agent.Leases = (*DB)(nil)

// Lead implements agent.Leases with a row per lease (agentd_leases): it
// takes the lease on name for d when it is free or expired, renews it when
// this DB holds it, and reports false when another DB holds it unexpired.
// A lease taken over from another holder (whose lease expired: it crashed
// or stalled) counts in LeaseStats.
func (db *DB) Lead(ctx context.Context, name string, d time.Duration) (bool, error) {
	if err := checkText("lease name", name); err != nil {
		return false, err
	}
	if name == "" || len(name) > 1024 {
		return false, errors.New("postgres: a lease name is 1 to 1024 bytes")
	}
	if d <= 0 {
		return false, fmt.Errorf("postgres: lease %q: duration %s is not positive", name, d)
	}
	now := time.Now()
	var prev *string
	err := db.pool.QueryRow(ctx, `WITH prev AS (SELECT owner, until FROM agentd_leases WHERE name = $1)
		INSERT INTO agentd_leases (name, owner, until) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until
			WHERE agentd_leases.owner = EXCLUDED.owner OR agentd_leases.until < $4
		RETURNING (SELECT owner FROM prev)`,
		name, db.owner, nanos(now.Add(d)), nanos(now)).Scan(&prev)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if prev != nil && *prev != db.owner {
		db.takeovers.Add(1)
	}
	return true, nil
}

// Release implements agent.Leases: it ends this DB's lease on name, if it
// holds it, so that another DB may take it at once.
func (db *DB) Release(ctx context.Context, name string) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM agentd_leases WHERE name = $1 AND owner = $2`, name, db.owner)
	return err
}

// LeaseStats counts the leases this DB took over from another holder.
func (db *DB) LeaseStats() (takeovers int64) { return db.takeovers.Load() }

// OutboxTakeovers counts the outbound messages this DB's Outbox.Due
// claimed after another instance's claim on them had expired (that
// instance crashed or stalled before delivering them).
func (db *DB) OutboxTakeovers() int64 { return db.outboxTakeovers.Load() }
