package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/agentd/agentd/agent"
)

// ReplayCache remembers message ids to drop replays, implementing
// agent.ReplayCache. Get it from DB.ReplayCache. An id is a unique key:
// of any number of concurrent Remember calls for one id, from any number of
// DBs on the database, exactly one reports it new.
type ReplayCache struct{ db *DB }

var _ agent.ReplayCache = (*ReplayCache)(nil)

// replayKey is how id is stored: as is, or, when longer than MaxIDLen (a
// peer chooses message ids), as a marker byte and its SHA-256, so that any
// id can be remembered.
func replayKey(id string) []byte {
	if len(id) <= MaxIDLen {
		return []byte(id)
	}
	h := sha256.Sum256([]byte(id))
	return append([]byte("\xffsha256:"), h[:]...)
}

// sweepChunk bounds the ids one Sweep transaction removes.
const sweepChunk = 10000

// Remember records id until expires and reports whether it was already
// recorded with an expiry not before the current time (a replay). A replay
// leaves the stored expiry unchanged; an expired entry not swept yet is
// replaced. It is one INSERT … ON CONFLICT, durable on return.
func (r *ReplayCache) Remember(ctx context.Context, id string, expires time.Time) (seen bool, err error) {
	if id == "" {
		return false, errors.New("postgres: empty message id")
	}
	tag, err := r.db.pool.Exec(ctx, `INSERT INTO agentd_replay (key, expires) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET expires = EXCLUDED.expires WHERE agentd_replay.expires < $3`,
		replayKey(id), nanos(expires), nanos(time.Now()))
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 0, nil
}

// Seen reports whether id is recorded with an expiry not before now; it
// writes nothing.
func (r *ReplayCache) Seen(ctx context.Context, id string) (bool, error) {
	var seen bool
	err := r.db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM agentd_replay WHERE key = $1 AND expires >= $2)`,
		replayKey(id), nanos(time.Now())).Scan(&seen)
	return seen, err
}

// Sweep forgets the ids whose expiry is before now and returns how many it
// removed, in transactions of at most 10,000 ids (by the expiry index).
func (r *ReplayCache) Sweep(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		tag, err := r.db.pool.Exec(ctx, `DELETE FROM agentd_replay WHERE key IN
			(SELECT key FROM agentd_replay WHERE expires < $1 ORDER BY expires LIMIT $2)`, nanos(now), sweepChunk)
		if err != nil {
			return total, err
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < sweepChunk {
			return total, nil
		}
	}
}
