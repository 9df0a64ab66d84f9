package bolt

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/agent"
)

// Records is a small document store for protocol state, implementing
// agent.Records: opaque values (JSON by convention) by kind and id. Each kind
// is a nested bucket, so List walks one kind in id (byte) order.
//
// Put and Delete are durable on return. Values are copied in and out: the caller may reuse or modify its
// slices.
type Records struct{ db *DB }

var _ agent.Records = (*Records)(nil)

// Put stores value under kind and id, replacing any value there. kind and id
// must be non-empty. A nil value is stored as an empty one.
func (r *Records) Put(ctx context.Context, kind, id string, value []byte) error {
	if err := checkID("record kind", kind); err != nil {
		return err
	}
	if err := checkID("record id", id); err != nil {
		return err
	}
	v := append([]byte{}, value...)
	return r.db.write(ctx, func(tx *bbolt.Tx) error {
		b, err := tx.Bucket(bRecords).CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		return b.Put([]byte(id), v)
	})
}

// Get returns a copy of the value under kind and id, or an error wrapping
// agent.ErrNotFound.
func (r *Records) Get(ctx context.Context, kind, id string) ([]byte, error) {
	var out []byte
	err := r.db.view(ctx, func(tx *bbolt.Tx) error {
		if v, found := recordIn(tx, kind, id); found {
			out = append([]byte{}, v...)
			return nil
		}
		return fmt.Errorf("bolt: record %s/%s: %w", kind, id, agent.ErrNotFound)
	})
	return out, err
}

// Delete removes the record under kind and id. Deleting a record that does
// not exist is not an error.
func (r *Records) Delete(ctx context.Context, kind, id string) error {
	return r.db.write(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bRecords).Bucket([]byte(kind))
		if b == nil || id == "" {
			return nil
		}
		return b.Delete([]byte(id))
	})
}

// List returns up to limit records of kind in id (byte) order, starting after
// the id after, or at the first if after is "". Unlike the outbox's dead-letter
// cursor, after need not exist. limit must be positive. An unknown kind has no
// records.
func (r *Records) List(ctx context.Context, kind, after string, limit int) ([]agent.Record, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	var out []agent.Record
	err := r.db.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bRecords).Bucket([]byte(kind))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var k, v []byte
		if after == "" {
			k, v = c.First()
		} else if k, v = c.Seek([]byte(after)); bytes.Equal(k, []byte(after)) {
			k, v = c.Next()
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			out = append(out, agent.Record{ID: string(k), Value: append([]byte{}, v...)})
		}
		return nil
	})
	return out, err
}
