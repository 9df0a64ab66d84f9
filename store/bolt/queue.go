package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/agent"
)

// Queue is a mediator's message queue, implementing agent.QueueStore. Get it
// from DB.Queue.
//
// Messages are keyed by recipient, receive time and id, so a recipient's
// messages are one contiguous, time-ordered range: listing the oldest, and
// finding the oldest and newest for a status, cost in proportion to what they
// return. An id index finds a message from its queue id (messages-received),
// an expiry index lets Sweep remove expired messages without a scan, and
// per-recipient counters (count and bytes), kept in the same transactions as
// the messages, make the quota check and the status cheap.
//
// Add is durable on return and goes through group commit, so concurrent
// forwards share fsyncs. A quota refusal or a duplicate does not fail the
// group it was committed with.
type Queue struct {
	db *DB

	// Queue ids are a random prefix drawn when the database is opened and a
	// counter: unique, short, and generated without a system call. Add also
	// checks the id index, so a collision fails instead of overwriting.
	idPrefix string
	idSeq    atomic.Uint64
}

var _ agent.QueueStore = (*Queue)(nil)

// Bucket and key names of the queue; see the package documentation.
var (
	bQueue    = []byte("queue")
	bRcpt     = []byte("rcpt")
	kNMsgs    = []byte("n-msgs")
	kNBytes   = []byte("n-bytes")
	kNRcpt    = []byte("n-rcpt")
	queueSubs = [][]byte{bMsg, bID, bExp, bRcpt}
)

// queueChunk bounds the messages one Sweep or Purge transaction removes.
const queueChunk = 10000

func (q *Queue) init(db *DB) error {
	q.db = db
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	q.idPrefix = strconv.FormatUint(binary.BigEndian.Uint64(b[:])>>16, 36) + "."
	return nil
}

func (q *Queue) newID() string {
	return q.idPrefix + strconv.FormatUint(q.idSeq.Add(1), 36)
}

type queueBuckets struct {
	top, msg, id, exp, rcpt *bbolt.Bucket
}

func queueOf(tx *bbolt.Tx) queueBuckets {
	top := tx.Bucket(bQueue)
	return queueBuckets{top, top.Bucket(bMsg), top.Bucket(bID), top.Bucket(bExp), top.Bucket(bRcpt)}
}

// queuePrefix is the key prefix of a recipient's messages.
func queuePrefix(recipient string) []byte {
	p := make([]byte, 0, len(recipient)+1)
	return append(append(p, recipient...), 0)
}

// queueKey is recipient 0x00 be64(received) id.
func queueKey(recipient string, received time.Time, id string) []byte {
	k := make([]byte, 0, len(recipient)+9+len(id))
	k = append(append(k, recipient...), 0)
	k = binary.BigEndian.AppendUint64(k, timeBits(received))
	return append(k, id...)
}

// splitQueueKey returns the parts of a message key.
func splitQueueKey(k []byte) (recipient string, received time.Time, id string, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 || len(k) < i+9 {
		return "", time.Time{}, "", false
	}
	return string(k[:i]), bitsTime(be64(k[i+1 : i+9])), string(k[i+9:]), true
}

// counters reads a recipient's message count and bytes.
func (b queueBuckets) counters(recipient []byte) (n, size int64) {
	v := b.rcpt.Get(recipient)
	if len(v) < 16 {
		return 0, 0
	}
	return int64(be64(v[:8])), int64(be64(v[8:16]))
}

// account adds dn messages and dsize bytes to a recipient's and the global
// counters, dropping the recipient's entry when it reaches zero.
func (b queueBuckets) account(recipient []byte, dn, dsize int64) error {
	n, size := b.counters(recipient)
	wasEmpty := n == 0
	n, size = max(n+dn, 0), max(size+dsize, 0)
	if n == 0 {
		if !wasEmpty {
			if err := b.rcpt.Delete(recipient); err != nil {
				return err
			}
			if err := addCounter(b.top, kNRcpt, -1); err != nil {
				return err
			}
		}
	} else {
		v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(n))
		if err := b.rcpt.Put(recipient, binary.BigEndian.AppendUint64(v, uint64(size))); err != nil {
			return err
		}
		if wasEmpty {
			if err := addCounter(b.top, kNRcpt, 1); err != nil {
				return err
			}
		}
	}
	if err := addCounter(b.top, kNMsgs, dn); err != nil {
		return err
	}
	return addCounter(b.top, kNBytes, dsize)
}

// addCounter adds delta to the be64 counter at key, never going below zero.
func addCounter(b *bbolt.Bucket, key []byte, delta int64) error {
	if delta == 0 {
		return nil
	}
	n := max(int64(be64(b.Get(key)))+delta, 0)
	return b.Put(key, putBE64(uint64(n)))
}

// remove deletes the message at key (value v) with its index entries and
// accounts for it.
func (b queueBuckets) remove(key, v []byte) error {
	recipient, _, id, ok := splitQueueKey(key)
	if !ok || len(v) < 8 {
		return fmt.Errorf("bolt: queue entry %q is corrupt", key)
	}
	size := int64(len(v) - 8)
	if err := b.exp.Delete(append(clone(v[:8]), id...)); err != nil {
		return err
	}
	if err := b.id.Delete([]byte(id)); err != nil {
		return err
	}
	if err := b.msg.Delete(key); err != nil {
		return err
	}
	return b.account([]byte(recipient), -1, -size)
}

func checkRecipient(r string) error {
	if r == "" || strings.IndexByte(r, 0) >= 0 {
		return fmt.Errorf("bolt: queue recipient %q is empty or contains NUL", r)
	}
	if len(r) > bbolt.MaxKeySize-64 {
		return fmt.Errorf("bolt: queue recipient longer than %d bytes", bbolt.MaxKeySize-64)
	}
	return nil
}

// Add queues msgs in one group-committed transaction, assigning each an ID.
// Received defaults to now and Expires must be set. If opts.ReplayKey is
// already in the replay cache, nothing is stored and Add reports a
// duplicate; otherwise the key is recorded in the same transaction. If the
// batch would take a recipient over opts.Limits, nothing is stored and the
// error wraps agent.ErrQuota.
func (q *Queue) Add(ctx context.Context, msgs []*agent.QueuedMessage, opts agent.QueueAdd) (duplicate bool, err error) {
	if len(msgs) == 0 {
		return false, nil
	}
	now := time.Now()
	type entry struct {
		key, val, idxKey, expKey []byte
		recipient                []byte
		size                     int64
	}
	entries := make([]entry, len(msgs))
	perRecipient := map[string][2]int64{}
	for i, m := range msgs {
		if err := checkRecipient(m.Recipient); err != nil {
			return false, err
		}
		if m.Received.IsZero() {
			m.Received = now
		}
		if m.Expires.IsZero() {
			return false, errors.New("bolt: queued message without an expiry")
		}
		m.ID = q.newID()
		val := make([]byte, 8, 8+len(m.Payload))
		binary.BigEndian.PutUint64(val, timeBits(m.Expires))
		val = append(val, m.Payload...)
		e := entry{
			key: queueKey(m.Recipient, m.Received, m.ID), val: val, idxKey: []byte(m.ID),
			recipient: []byte(m.Recipient), size: int64(len(m.Payload)),
		}
		e.expKey = append(clone(val[:8]), m.ID...)
		entries[i] = e
		c := perRecipient[m.Recipient]
		perRecipient[m.Recipient] = [2]int64{c[0] + 1, c[1] + e.size}
	}
	var replayKey, replayExp []byte
	if opts.ReplayKey != "" {
		if err := checkID("replay key", opts.ReplayKey); err != nil {
			return false, err
		}
		replayKey = []byte(opts.ReplayKey)
		replayExp = putBE64(timeBits(opts.ReplayUntil))
	}
	nowBits := timeBits(now)
	var quotaErr error
	err = q.db.write(ctx, func(tx *bbolt.Tx) error {
		duplicate, quotaErr = false, nil // this function may run more than once
		if replayKey != nil && replaySeen(tx, replayKey, nowBits) {
			duplicate = true
			return nil
		}
		b := queueOf(tx)
		lim := opts.Limits
		for r, add := range perRecipient {
			n, size := b.counters([]byte(r))
			if lim.MaxMessages > 0 && n+add[0] > int64(lim.MaxMessages) {
				quotaErr = fmt.Errorf("%w: %s has %d messages queued, the limit is %d", agent.ErrQuota, r, n, lim.MaxMessages)
				return nil
			}
			if lim.MaxBytes > 0 && size+add[1] > lim.MaxBytes {
				quotaErr = fmt.Errorf("%w: %s has %d bytes queued, the limit is %d", agent.ErrQuota, r, size, lim.MaxBytes)
				return nil
			}
		}
		for _, e := range entries {
			if b.id.Get(e.idxKey) != nil {
				return fmt.Errorf("bolt: queue id %q: %w", e.idxKey, ErrExists)
			}
			if err := b.msg.Put(e.key, e.val); err != nil {
				return err
			}
			if err := b.id.Put(e.idxKey, e.key); err != nil {
				return err
			}
			if err := b.exp.Put(e.expKey, nil); err != nil {
				return err
			}
		}
		for r, add := range perRecipient {
			if err := b.account([]byte(r), add[0], add[1]); err != nil {
				return err
			}
		}
		if replayKey != nil {
			return replayPut(tx, replayKey, replayExp)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if quotaErr != nil {
		return false, quotaErr
	}
	return duplicate, nil
}

// List returns up to limit messages queued for any of the recipients whose
// expiry is not before now, oldest first (by receive time, then id). limit
// must be positive. The messages are copies.
func (q *Queue) List(ctx context.Context, recipients []string, now time.Time, limit int) ([]*agent.QueuedMessage, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	nowBits := timeBits(now)
	var out []*agent.QueuedMessage
	err := q.db.view(ctx, func(tx *bbolt.Tx) error {
		b := queueOf(tx)
		for _, r := range dedupe(recipients) {
			prefix := queuePrefix(r)
			c := b.msg.Cursor()
			n := 0
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && n < limit; k, v = c.Next() {
				if len(v) < 8 || be64(v[:8]) < nowBits {
					continue // expired, waiting for the sweeper
				}
				recipient, received, id, ok := splitQueueKey(k)
				if !ok {
					return fmt.Errorf("bolt: queue entry %q is corrupt", k)
				}
				out = append(out, &agent.QueuedMessage{ID: id, Recipient: recipient, Payload: clone(v[8:]),
					Received: received, Expires: bitsTime(be64(v[:8]))})
				n++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(recipients) > 1 {
		slices.SortStableFunc(out, func(a, b *agent.QueuedMessage) int {
			if c := a.Received.Compare(b.Received); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func dedupe(ss []string) []string {
	if len(ss) < 2 {
		return ss
	}
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}

// Remove deletes the messages among ids that are queued for one of the
// recipients, in one group-committed transaction, and returns how many it
// deleted. Ids that are unknown, already removed or queued for someone else
// are ignored.
func (q *Queue) Remove(ctx context.Context, recipients []string, ids []string) (int, error) {
	if len(ids) == 0 || len(recipients) == 0 {
		return 0, nil
	}
	allowed := make(map[string]bool, len(recipients))
	for _, r := range recipients {
		allowed[r] = true
	}
	n := 0
	err := q.db.write(ctx, func(tx *bbolt.Tx) error {
		n = 0
		b := queueOf(tx)
		for _, id := range ids {
			if id == "" || len(id) > bbolt.MaxKeySize {
				continue
			}
			key := b.id.Get([]byte(id))
			if key == nil {
				continue
			}
			key = clone(key)
			recipient, _, _, ok := splitQueueKey(key)
			if !ok || !allowed[recipient] {
				continue
			}
			v := b.msg.Get(key)
			if v == nil {
				return fmt.Errorf("bolt: queue index inconsistent for id %q", id)
			}
			if err := b.remove(key, clone(v)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Stats sums the counters of the recipients and finds their oldest and newest
// message. Expired messages not yet swept are counted.
func (q *Queue) Stats(ctx context.Context, recipients []string) (agent.QueueStats, error) {
	var s agent.QueueStats
	err := q.db.view(ctx, func(tx *bbolt.Tx) error {
		s = agent.QueueStats{}
		b := queueOf(tx)
		for _, r := range dedupe(recipients) {
			n, size := b.counters([]byte(r))
			if n == 0 {
				continue
			}
			s.Messages += int(n)
			s.Bytes += size
			prefix := queuePrefix(r)
			c := b.msg.Cursor()
			if k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
				if _, t, _, ok := splitQueueKey(k); ok && (s.Oldest.IsZero() || t.Before(s.Oldest)) {
					s.Oldest = t
				}
			}
			end := append(clone(prefix[:len(prefix)-1]), 1)
			k, _ := c.Seek(end)
			if k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
			if k != nil && bytes.HasPrefix(k, prefix) {
				if _, t, _, ok := splitQueueKey(k); ok && t.After(s.Newest) {
					s.Newest = t
				}
			}
		}
		return nil
	})
	return s, err
}

// Totals reads the global counters.
func (q *Queue) Totals(ctx context.Context) (agent.QueueTotals, error) {
	var t agent.QueueTotals
	err := q.db.view(ctx, func(tx *bbolt.Tx) error {
		top := tx.Bucket(bQueue)
		t = agent.QueueTotals{Messages: int(be64(top.Get(kNMsgs))), Bytes: int64(be64(top.Get(kNBytes))),
			Recipients: int(be64(top.Get(kNRcpt)))}
		return nil
	})
	return t, err
}

// Purge deletes every message queued for recipient, in transactions of at
// most 10,000 messages, and returns how many it deleted.
func (q *Queue) Purge(ctx context.Context, recipient string) (int, error) {
	if err := checkRecipient(recipient); err != nil {
		return 0, err
	}
	prefix := queuePrefix(recipient)
	return q.removeChunks(ctx, func(b queueBuckets, yield func(key, v []byte) bool) {
		c := b.msg.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Seek(prefix) {
			if !yield(clone(k), clone(v)) {
				return
			}
		}
	})
}

// Sweep deletes the messages whose expiry is before now, walking the expiry
// index in transactions of at most 10,000 messages, and returns how many it
// deleted.
func (q *Queue) Sweep(ctx context.Context, now time.Time) (int, error) {
	bound := timeBits(now)
	return q.removeChunks(ctx, func(b queueBuckets, yield func(key, v []byte) bool) {
		c := b.exp.Cursor()
		for k, _ := c.First(); k != nil && be64(k) < bound; k, _ = c.First() {
			id := clone(k[8:])
			key := b.id.Get(id)
			if key == nil {
				// An orphan index entry: drop it rather than loop on it.
				if err := c.Delete(); err != nil {
					return
				}
				continue
			}
			key = clone(key)
			if !yield(key, clone(b.msg.Get(key))) {
				return
			}
		}
	})
}

// removeChunks removes the messages walk yields, up to queueChunk per
// transaction, until walk yields none.
func (q *Queue) removeChunks(ctx context.Context, walk func(b queueBuckets, yield func(key, v []byte) bool)) (int, error) {
	total := 0
	for {
		n := 0
		err := q.db.update(ctx, func(tx *bbolt.Tx) error {
			n = 0
			b := queueOf(tx)
			var ferr error
			walk(b, func(key, v []byte) bool {
				if v == nil {
					ferr = fmt.Errorf("bolt: queue index inconsistent for %q", key)
					return false
				}
				if ferr = b.remove(key, v); ferr != nil {
					return false
				}
				n++
				return n < queueChunk
			})
			return ferr
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < queueChunk {
			return total, nil
		}
	}
}
