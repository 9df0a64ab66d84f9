package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/agent"
)

// Outbox is the durable outbound message queue, implementing
// agent.OutboxStore. Get it from DB.Outbox.
//
// Pending messages are indexed by (NextAttempt, id), so Due and NextDue are
// index scans that cost in proportion to what they return, not to the size of
// the queue; dead letters are kept in (DeadAt, id) order. Depth reads two
// counters maintained in the same transactions as the changes they count.
//
// Every write is durable on return, and concurrent writes share fsyncs (see
// the package documentation). The store does not lease messages: two dispatchers
// calling Due concurrently get the same messages, so run one dispatcher per
// database.
//
// Methods that take an id of a message that is not where they expect it
// (Reschedule, Delete and Kill for a pending message, Revive and PurgeDead
// for a dead letter) return an error wrapping agent.ErrNotFound.
type Outbox struct{ db *DB }

var _ agent.OutboxStore = (*Outbox)(nil)

// outboxBuckets are the nested buckets of the outbox bucket in one transaction.
type outboxBuckets struct {
	top, msg, due, dead, deadID, dest *bbolt.Bucket
}

func outboxOf(tx *bbolt.Tx) outboxBuckets {
	top := tx.Bucket(bOutbox)
	return outboxBuckets{top, top.Bucket(bMsg), top.Bucket(bDue), top.Bucket(bDead), top.Bucket(bDeadID), top.Bucket(bDest)}
}

// fillDestCounts creates the per-endpoint counters of pending messages in a
// database that has none yet (one written by an older agentd), counting
// the pending messages. It runs when the database is opened.
func fillDestCounts(tx *bbolt.Tx) error {
	top := tx.Bucket(bOutbox)
	if top.Bucket(bDest) != nil {
		return nil
	}
	dest, err := top.CreateBucket(bDest)
	if err != nil {
		return err
	}
	counts := map[string]uint64{}
	err = top.Bucket(bMsg).ForEach(func(_, v []byte) error {
		var m struct {
			Endpoint string `json:"endpoint"`
		}
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		counts[m.Endpoint]++
		return nil
	})
	if err != nil {
		return err
	}
	for ep, n := range counts {
		if err := dest.Put(destKey(ep), putBE64(n)); err != nil {
			return err
		}
	}
	return nil
}

// destKey is an endpoint's key in the dest bucket (bbolt refuses empty
// keys, so every key has a prefix byte).
func destKey(endpoint string) []byte { return append([]byte{'e'}, endpoint...) }

// addDest adds delta to the count of pending messages for endpoint,
// deleting the counter at zero.
func (o outboxBuckets) addDest(endpoint string, delta int64) error {
	k := destKey(endpoint)
	n := int64(be64(o.dest.Get(k))) + delta
	if n <= 0 {
		return o.dest.Delete(k)
	}
	return o.dest.Put(k, putBE64(uint64(n)))
}

// checkLimits returns an error wrapping agent.ErrOutboxFull when adding
// outs would take the pending messages over limits.
func checkLimits(tx *bbolt.Tx, outs []preparedOutbound, limits agent.OutboxLimits) error {
	if len(outs) == 0 || limits == (agent.OutboxLimits{}) {
		return nil
	}
	ob := outboxOf(tx)
	if limits.MaxPending > 0 {
		if n := be64(ob.top.Get(kNPending)); n+uint64(len(outs)) > uint64(limits.MaxPending) {
			return fmt.Errorf("bolt: %d messages pending, limit %d: %w", n, limits.MaxPending, agent.ErrOutboxFull)
		}
	}
	if limits.MaxPendingPerDestination > 0 {
		adding := map[string]uint64{}
		for _, p := range outs {
			adding[p.endpoint]++
		}
		for ep, k := range adding {
			if n := be64(ob.dest.Get(destKey(ep))); n+k > uint64(limits.MaxPendingPerDestination) {
				return fmt.Errorf("bolt: %d messages pending for one endpoint, limit %d: %w", n, limits.MaxPendingPerDestination, agent.ErrOutboxFull)
			}
		}
	}
	return nil
}

// add adds delta to the counter at key.
func (o outboxBuckets) add(key []byte, delta int64) error {
	n := int64(be64(o.top.Get(key))) + delta
	if n < 0 {
		n = 0 // never negative, even if a counter was somehow lost
	}
	return o.top.Put(key, putBE64(uint64(n)))
}

// putPending stores m as pending and indexes it by NextAttempt.
func (o outboxBuckets) putPending(m *agent.OutboundMessage) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := o.msg.Put([]byte(m.ID), v); err != nil {
		return err
	}
	return o.due.Put(timeIDKey(m.NextAttempt, m.ID), nil)
}

// getPending loads a pending message, or returns agent.ErrNotFound.
func (o outboxBuckets) getPending(id string) (*agent.OutboundMessage, error) {
	v := o.msg.Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("bolt: outbox message %q: %w", id, agent.ErrNotFound)
	}
	m := new(agent.OutboundMessage)
	if err := json.Unmarshal(v, m); err != nil {
		return nil, fmt.Errorf("bolt: outbox message %q: %w", id, err)
	}
	return m, nil
}

// removePending deletes a pending message and its index entry.
func (o outboxBuckets) removePending(m *agent.OutboundMessage) error {
	if err := o.due.Delete(timeIDKey(m.NextAttempt, m.ID)); err != nil {
		return err
	}
	return o.msg.Delete([]byte(m.ID))
}

// deadKey returns the key of a dead letter in the dead bucket, or nil.
func (o outboxBuckets) deadKey(id string) []byte {
	at := o.deadID.Get([]byte(id))
	if at == nil {
		return nil
	}
	return append(clone(at), id...)
}

// Enqueue adds m to the outbox, due at m.NextAttempt (a zero NextAttempt is
// due at once). m.ID must be non-empty and not already in the outbox or the
// dead letters; a taken id gives an error wrapping ErrExists. The message is
// stored as given. Enqueue returns after the commit is on disk.
func (o *Outbox) Enqueue(ctx context.Context, m *agent.OutboundMessage) error {
	p, err := prepareOutbound(m)
	if err != nil {
		return err
	}
	return o.db.write(ctx, p.put)
}

// preparedOutbound is an outbound message encoded for the outbox outside the
// transaction.
type preparedOutbound struct {
	id, value, dueKey []byte
	endpoint          string
}

func prepareOutbound(m *agent.OutboundMessage) (preparedOutbound, error) {
	if err := checkID("message id", m.ID); err != nil {
		return preparedOutbound{}, err
	}
	v, err := json.Marshal(m)
	if err != nil {
		return preparedOutbound{}, fmt.Errorf("bolt: outbox message %q: %w", m.ID, err)
	}
	return preparedOutbound{id: []byte(m.ID), value: v, dueKey: timeIDKey(m.NextAttempt, m.ID), endpoint: m.Endpoint}, nil
}

// put adds the message to the outbox, refusing an id that is taken.
func (p preparedOutbound) put(tx *bbolt.Tx) error {
	ob := outboxOf(tx)
	if ob.msg.Get(p.id) != nil || ob.deadID.Get(p.id) != nil {
		return fmt.Errorf("bolt: outbox message %q: %w", p.id, ErrExists)
	}
	if err := ob.msg.Put(p.id, p.value); err != nil {
		return err
	}
	if err := ob.due.Put(p.dueKey, nil); err != nil {
		return err
	}
	if err := ob.addDest(p.endpoint, 1); err != nil {
		return err
	}
	return ob.add(kNPending, 1)
}

// Due returns up to limit pending messages whose NextAttempt is at or before
// now, in (NextAttempt, id) order. limit must be positive. The messages are
// copies; changing them changes nothing stored.
func (o *Outbox) Due(ctx context.Context, now time.Time, limit int) ([]*agent.OutboundMessage, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	bound := timeBits(now)
	var out []*agent.OutboundMessage
	err := o.db.view(ctx, func(tx *bbolt.Tx) error {
		ob := outboxOf(tx)
		c := ob.due.Cursor()
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if be64(k) > bound {
				break
			}
			m, err := ob.getPending(string(k[8:]))
			if err != nil {
				return fmt.Errorf("bolt: outbox index inconsistent: %w", err)
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// NextDue returns the earliest NextAttempt of the pending messages (at
// nanosecond precision, in the local time zone; the zero time for a message
// enqueued with a zero NextAttempt), and false if there are none.
func (o *Outbox) NextDue(ctx context.Context) (time.Time, bool, error) {
	var (
		t  time.Time
		ok bool
	)
	err := o.db.view(ctx, func(tx *bbolt.Tx) error {
		if k, _ := outboxOf(tx).due.Cursor().First(); k != nil {
			t, ok = bitsTime(be64(k)), true
		}
		return nil
	})
	return t, ok, err
}

// Reschedule records a failed attempt of a pending message: it saves
// m.Attempts, m.NextAttempt and m.LastError (other fields of m are ignored)
// and re-indexes the message by its new NextAttempt.
func (o *Outbox) Reschedule(ctx context.Context, m *agent.OutboundMessage) error {
	return o.db.write(ctx, func(tx *bbolt.Tx) error {
		ob := outboxOf(tx)
		cur, err := ob.getPending(m.ID)
		if err != nil {
			return err
		}
		if err := ob.removePending(cur); err != nil {
			return err
		}
		cur.Attempts, cur.NextAttempt, cur.LastError = m.Attempts, m.NextAttempt, m.LastError
		return ob.putPending(cur)
	})
}

// Delete removes a pending message, typically once it has been delivered.
func (o *Outbox) Delete(ctx context.Context, id string) error {
	return o.db.write(ctx, func(tx *bbolt.Tx) error {
		ob := outboxOf(tx)
		cur, err := ob.getPending(id)
		if err != nil {
			return err
		}
		if err := ob.removePending(cur); err != nil {
			return err
		}
		if err := ob.addDest(cur.Endpoint, -1); err != nil {
			return err
		}
		return ob.add(kNPending, -1)
	})
}

// Kill moves a pending message to the dead letters. It saves m.Attempts and
// m.LastError and stamps the dead letter with m.DeadAt; if m.DeadAt is zero,
// Kill first sets it (on m) to the current time.
func (o *Outbox) Kill(ctx context.Context, m *agent.OutboundMessage) error {
	if m.DeadAt.IsZero() {
		m.DeadAt = time.Now()
	}
	deadAt := m.DeadAt
	return o.db.write(ctx, func(tx *bbolt.Tx) error {
		ob := outboxOf(tx)
		cur, err := ob.getPending(m.ID)
		if err != nil {
			return err
		}
		if err := ob.removePending(cur); err != nil {
			return err
		}
		cur.Attempts, cur.LastError, cur.DeadAt = m.Attempts, m.LastError, deadAt
		v, err := json.Marshal(cur)
		if err != nil {
			return err
		}
		key := timeIDKey(deadAt, cur.ID)
		if err := ob.dead.Put(key, v); err != nil {
			return err
		}
		if err := ob.deadID.Put([]byte(cur.ID), key[:8]); err != nil {
			return err
		}
		if err := ob.addDest(cur.Endpoint, -1); err != nil {
			return err
		}
		if err := ob.add(kNPending, -1); err != nil {
			return err
		}
		return ob.add(kNDead, 1)
	})
}

// Dead lists up to limit dead letters in (DeadAt, id) order, starting after
// the cursor after (see agent.OutboxStore): at the oldest if after is "",
// after the dead letter with id after, or after the position a
// agent.DeadLetterCursor names, whether or not that letter is still there
// (the dead key is that very position: DeadAt, then id). limit must be
// positive. If after is neither (an id that is no longer a dead letter)
// Dead returns an error wrapping agent.ErrNotFound.
func (o *Outbox) Dead(ctx context.Context, after string, limit int) ([]*agent.OutboundMessage, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	var out []*agent.OutboundMessage
	err := o.db.view(ctx, func(tx *bbolt.Tx) error {
		ob := outboxOf(tx)
		c := ob.dead.Cursor()
		var k, v []byte
		if after == "" {
			k, v = c.First()
		} else {
			start := ob.deadKey(after)
			if start == nil {
				at, id, ok := agent.ParseDeadLetterCursor(after)
				if !ok {
					return fmt.Errorf("bolt: dead-letter cursor %q: %w", after, agent.ErrNotFound)
				}
				start = timeIDKey(at, id)
			}
			k, v = c.Seek(start)
			if bytes.Equal(k, start) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			m := new(agent.OutboundMessage)
			if err := json.Unmarshal(v, m); err != nil {
				return fmt.Errorf("bolt: dead letter %q: %w", k[8:], err)
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// Revive moves a dead letter back to the outbox, due at now, with Attempts
// reset to zero and DeadAt cleared. LastError is kept until the next attempt
// replaces it.
func (o *Outbox) Revive(ctx context.Context, id string, now time.Time) error {
	return o.db.write(ctx, func(tx *bbolt.Tx) error {
		ob := outboxOf(tx)
		key := ob.deadKey(id)
		var v []byte
		if key != nil {
			v = ob.dead.Get(key)
		}
		if v == nil {
			return fmt.Errorf("bolt: dead letter %q: %w", id, agent.ErrNotFound)
		}
		m := new(agent.OutboundMessage)
		if err := json.Unmarshal(v, m); err != nil {
			return fmt.Errorf("bolt: dead letter %q: %w", id, err)
		}
		if err := ob.dead.Delete(key); err != nil {
			return err
		}
		if err := ob.deadID.Delete([]byte(id)); err != nil {
			return err
		}
		m.Attempts, m.NextAttempt, m.DeadAt = 0, now, time.Time{}
		if err := ob.putPending(m); err != nil {
			return err
		}
		if err := ob.addDest(m.Endpoint, 1); err != nil {
			return err
		}
		if err := ob.add(kNDead, -1); err != nil {
			return err
		}
		return ob.add(kNPending, 1)
	})
}

// PurgeDead deletes a dead letter for good.
func (o *Outbox) PurgeDead(ctx context.Context, id string) error {
	return o.db.write(ctx, func(tx *bbolt.Tx) error {
		ob := outboxOf(tx)
		key := ob.deadKey(id)
		if key == nil {
			return fmt.Errorf("bolt: dead letter %q: %w", id, agent.ErrNotFound)
		}
		if err := ob.dead.Delete(key); err != nil {
			return err
		}
		if err := ob.deadID.Delete([]byte(id)); err != nil {
			return err
		}
		return ob.add(kNDead, -1)
	})
}

// purgeBatch bounds the dead letters PurgeDeadBefore deletes in one
// transaction, so that a large purge does not hold the writer for long.
const purgeBatch = 1000

// PurgeDeadBefore deletes the dead letters whose DeadAt is before t, in
// DeadAt order, a batch per transaction, and returns how many it deleted.
func (o *Outbox) PurgeDeadBefore(ctx context.Context, t time.Time) (int, error) {
	bound := timeBits(t)
	total := 0
	for {
		n := 0
		err := o.db.write(ctx, func(tx *bbolt.Tx) error {
			n = 0 // this function may run more than once
			ob := outboxOf(tx)
			c := ob.dead.Cursor()
			var keys [][]byte
			for k, _ := c.First(); k != nil && len(keys) < purgeBatch && be64(k) < bound; k, _ = c.Next() {
				keys = append(keys, clone(k))
			}
			for _, k := range keys {
				if err := ob.dead.Delete(k); err != nil {
					return err
				}
				if err := ob.deadID.Delete(k[8:]); err != nil {
					return err
				}
			}
			n = len(keys)
			return ob.add(kNDead, -int64(n))
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < purgeBatch {
			return total, nil
		}
	}
}

// Depth returns the number of pending messages and of dead letters. It reads
// two counters, so it is cheap enough to call on every metrics scrape.
func (o *Outbox) Depth(ctx context.Context) (pending, dead int, err error) {
	err = o.db.view(ctx, func(tx *bbolt.Tx) error {
		top := tx.Bucket(bOutbox)
		pending, dead = int(be64(top.Get(kNPending))), int(be64(top.Get(kNDead)))
		return nil
	})
	return pending, dead, err
}
