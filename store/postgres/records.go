package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/agentd/agentd/agent"
)

// Records is the protocol-state document store, implementing agent.Records.
// Get it from DB.Records. Kinds and ids are arbitrary non-empty byte
// strings, listed in byte order. Put and Delete are units of work of one
// change (see DB.Commit): group-committed, durable on return, and
// serialized with the units of work that read the record.
type Records struct{ db *DB }

var _ agent.Records = (*Records)(nil)

// Put stores value under kind and id, replacing any previous value.
func (r *Records) Put(ctx context.Context, kind, id string, value []byte) error {
	w := agent.NewWork(nil)
	w.Put(kind, id, value)
	return r.db.Commit(ctx, w)
}

// Get returns the value under kind and id, or an error wrapping
// agent.ErrNotFound.
func (r *Records) Get(ctx context.Context, kind, id string) ([]byte, error) {
	var v []byte
	err := r.db.pool.QueryRow(ctx, `SELECT value FROM agentd_records WHERE kind = $1 AND id = $2`, []byte(kind), []byte(id)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: record %s/%s: %w", kind, id, agent.ErrNotFound)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Delete removes the record under kind and id; deleting a missing record is
// not an error.
func (r *Records) Delete(ctx context.Context, kind, id string) error {
	w := agent.NewWork(nil)
	w.Delete(kind, id)
	return r.db.Commit(ctx, w)
}

// List returns up to limit records of kind in byte order of id, starting
// after the id after (which need not exist), by the primary key: one index
// range scan per page.
func (r *Records) List(ctx context.Context, kind, after string, limit int) ([]agent.Record, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := r.db.pool.Query(ctx, `SELECT id, value FROM agentd_records WHERE kind = $1 AND id > $2 ORDER BY id LIMIT $3`,
		[]byte(kind), []byte(after), limit)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []agent.Record
	for rows.Next() {
		var id, v []byte
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		if v == nil {
			v = []byte{}
		}
		out = append(out, agent.Record{ID: string(id), Value: v})
	}
	return out, rows.Err()
}
