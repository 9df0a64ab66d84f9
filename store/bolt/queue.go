package bolt

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/agent"
)

// Queue is a mediator's message queue, implementing agent.QueueStore. Get it
// from DB.Queue.
//
// A message is stored once, under its queue id, a sequence number that only
// grows: the payloads are appended at the end of one bucket, which is the
// cheapest way to write them. An index by recipient, receive time and id,
// kept in memory and rebuilt from the records on open (see qindex.go),
// makes listing a recipient's oldest messages, and finding the oldest and
// newest for a status, cost in proportion to what they return. An expiry index lets Sweep
// remove expired messages without a scan, and per-recipient counters (count
// and bytes), kept in the same transactions as the messages, make the quota
// check and the status cheap.
//
// Add is durable on return and goes through group commit, so concurrent
// forwards share fsyncs. A quota refusal does not fail the group it was
// committed with.
type Queue struct{ db *DB }

var _ agent.QueueStore = (*Queue)(nil)

// Bucket and key names of the queue; see the package documentation.
var (
	bQueue    = []byte("queue")
	bData     = []byte("data")
	bRcpt     = []byte("rcpt")
	kNMsgs    = []byte("n-msgs")
	kNBytes   = []byte("n-bytes")
	kNRcpt    = []byte("n-rcpt")
	queueSubs = [][]byte{bData, bExp, bRcpt}
)

// queueChunk bounds the messages one Sweep or Purge transaction removes.
const queueChunk = 10000

type queueBuckets struct {
	db                   *DB
	tx                   *bbolt.Tx
	top, data, exp, rcpt *bbolt.Bucket
}

func (db *DB) queueOf(tx *bbolt.Tx) queueBuckets {
	top := tx.Bucket(bQueue)
	return queueBuckets{db, tx, top, top.Bucket(bData), top.Bucket(bExp), top.Bucket(bRcpt)}
}

// Queue ids are the sequence numbers in base 36.
func formatQueueID(seq uint64) string { return strconv.FormatUint(seq, 36) }

func parseQueueID(id string) (uint64, bool) {
	if id == "" || len(id) > 13 {
		return 0, false
	}
	n, err := strconv.ParseUint(id, 36, 64)
	return n, err == nil && n > 0
}

// record is a stored message: be64 received, be64 expires, uvarint length
// of the recipient, the recipient, the payload.
type record struct {
	receivedBits, expiresBits uint64
	recipient                 string
	payload                   []byte // aliases the page until copied
}

func encodeRecord(m *agent.QueuedMessage) []byte {
	v := make([]byte, 16, 16+binary.MaxVarintLen64+len(m.Recipient)+len(m.Payload))
	binary.BigEndian.PutUint64(v, timeBits(m.Received))
	binary.BigEndian.PutUint64(v[8:], timeBits(m.Expires))
	v = binary.AppendUvarint(v, uint64(len(m.Recipient)))
	v = append(v, m.Recipient...)
	return append(v, m.Payload...)
}

func decodeRecord(v []byte) (record, error) {
	h, err := decodeRecordHead(v)
	if err != nil {
		return record{}, err
	}
	return record{receivedBits: h.receivedBits, expiresBits: h.expiresBits, recipient: string(h.recipient), payload: h.payload}, nil
}

// recordHead is a record decoded without copying: its slices alias v.
type recordHead struct {
	receivedBits, expiresBits uint64
	recipient, payload        []byte
}

func decodeRecordHead(v []byte) (recordHead, error) {
	if len(v) < 17 {
		return recordHead{}, errors.New("bolt: queue record too short")
	}
	n, w := binary.Uvarint(v[16:])
	if w <= 0 || uint64(len(v)-16-w) < n {
		return recordHead{}, errors.New("bolt: queue record is corrupt")
	}
	rest := v[16+w:]
	return recordHead{receivedBits: be64(v), expiresBits: be64(v[8:]), recipient: rest[:n], payload: rest[n:]}, nil
}

// rcptState is a recipient's entry in the rcpt bucket: be64 count, be64
// bytes, be64 handle. A recipient has an entry only while it has messages.
// The handle named the recipient in the index while the index was a bucket
// (schema 1); it is now always zero.
type rcptState struct {
	n, size int64
	handle  uint64
	ok      bool
}

func (b queueBuckets) state(recipient []byte) rcptState {
	v := b.rcpt.Get(recipient)
	if len(v) < 24 {
		return rcptState{}
	}
	return rcptState{n: int64(be64(v[:8])), size: int64(be64(v[8:16])), handle: be64(v[16:24]), ok: true}
}

func (b queueBuckets) putState(recipient []byte, st rcptState) error {
	v := make([]byte, 24)
	binary.BigEndian.PutUint64(v, uint64(st.n))
	binary.BigEndian.PutUint64(v[8:], uint64(st.size))
	binary.BigEndian.PutUint64(v[16:], st.handle)
	return b.rcpt.Put(recipient, v)
}

// account adds dn messages and dsize bytes to a recipient's entry and the
// global counters, creating the entry when messages are added to a recipient
// that has none and dropping it when it has no messages left.
func (b queueBuckets) account(recipient []byte, dn, dsize int64) error {
	st := b.state(recipient)
	if !st.ok {
		if dn <= 0 {
			return fmt.Errorf("bolt: queue recipient %q has no entry", recipient)
		}
		if err := addCounter(b.top, kNRcpt, 1); err != nil {
			return err
		}
	}
	st.n, st.size = max(st.n+dn, 0), max(st.size+dsize, 0)
	if st.n == 0 {
		if err := b.rcpt.Delete(recipient); err != nil {
			return err
		}
		if err := addCounter(b.top, kNRcpt, -1); err != nil {
			return err
		}
	} else if err := b.putState(recipient, st); err != nil {
		return err
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

// load reads the record of message seq, or reports false.
func (b queueBuckets) load(seq uint64) (record, bool, error) {
	v := b.data.Get(putBE64(seq))
	if v == nil {
		return record{}, false, nil
	}
	r, err := decodeRecord(v)
	return r, err == nil, err
}

// remove deletes message seq, whose record is r, with its index entries,
// and accounts for it.
func (b queueBuckets) remove(seq uint64, r record) error {
	size := int64(len(r.payload))
	recipient := r.recipient
	expKey := binary.BigEndian.AppendUint64(putBE64(r.expiresBits), seq)
	if err := b.exp.Delete(expKey); err != nil {
		return err
	}
	if err := b.data.Delete(putBE64(seq)); err != nil {
		return err
	}
	b.db.indexChange(b.tx, qchange{recipient: recipient, e: qentry{r.receivedBits, seq}, del: true})
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

// Add queues msgs in one group-committed transaction, assigning each an ID:
// a unit of work holding only the messages (see DB.Commit, which queues
// messages together with everything else a handler decides on). Received
// defaults to now and Expires must be set. If the batch would take a
// recipient over limits, nothing is stored and the error wraps
// agent.ErrQuota.
func (q *Queue) Add(ctx context.Context, msgs []*agent.QueuedMessage, limits agent.QueueLimits) error {
	if len(msgs) == 0 {
		return nil
	}
	w := agent.NewWork(nil)
	w.Queue(limits, msgs...)
	return q.db.Commit(ctx, w)
}

// queueBatch is a batch of messages prepared for queueing outside the
// transaction: validated and encoded.
type queueBatch struct {
	msgs         []*agent.QueuedMessage
	values       [][]byte
	perRecipient map[string][2]int64 // count, bytes
	limits       agent.QueueLimits
	seqs         []uint64
}

func prepareQueue(msgs []*agent.QueuedMessage, limits agent.QueueLimits, now time.Time) (*queueBatch, error) {
	qb := &queueBatch{msgs: msgs, values: make([][]byte, len(msgs)), perRecipient: map[string][2]int64{},
		limits: limits, seqs: make([]uint64, len(msgs))}
	for i, m := range msgs {
		if err := checkRecipient(m.Recipient); err != nil {
			return nil, err
		}
		if m.Received.IsZero() {
			m.Received = now
		}
		if m.Expires.IsZero() {
			return nil, errors.New("bolt: queued message without an expiry")
		}
		qb.values[i] = encodeRecord(m)
		c := qb.perRecipient[m.Recipient]
		qb.perRecipient[m.Recipient] = [2]int64{c[0] + 1, c[1] + int64(len(m.Payload))}
	}
	return qb, nil
}

// checkQuota returns an error wrapping agent.ErrQuota if the batch would take
// a recipient over its limits. It writes nothing.
func (qb *queueBatch) checkQuota(b queueBuckets) error {
	return qb.checkQuotaOf(func(r string) (int64, int64) {
		st := b.state([]byte(r))
		return st.n, st.size
	})
}

// checkQuotaOf is checkQuota with what each recipient has queued given by
// have (count, bytes).
func (qb *queueBatch) checkQuotaOf(have func(recipient string) (n, size int64)) error {
	lim := qb.limits
	if lim.MaxMessages <= 0 && lim.MaxBytes <= 0 {
		return nil
	}
	for r, add := range qb.perRecipient {
		n, size := have(r)
		if lim.MaxMessages > 0 && n+add[0] > int64(lim.MaxMessages) {
			return fmt.Errorf("%w: %s has %d messages queued, the limit is %d", agent.ErrQuota, r, n, lim.MaxMessages)
		}
		if lim.MaxBytes > 0 && size+add[1] > lim.MaxBytes {
			return fmt.Errorf("%w: %s has %d bytes queued, the limit is %d", agent.ErrQuota, r, size, lim.MaxBytes)
		}
	}
	return nil
}

// put stores the batch, recording each message's sequence number in seqs.
func (qb *queueBatch) put(b queueBuckets) error {
	// Payloads go at the end of the data bucket, which only grows: fill its
	// pages.
	b.data.FillPercent = 1
	for i, m := range qb.msgs {
		seq, err := b.data.NextSequence()
		if err != nil {
			return err
		}
		qb.seqs[i] = seq
		v := qb.values[i]
		if err := b.putRecord(seq, v); err != nil {
			return err
		}
		b.db.indexChange(b.tx, qchange{recipient: m.Recipient, e: qentry{be64(v), seq}})
	}
	for r, add := range qb.perRecipient {
		if err := b.account([]byte(r), add[0], add[1]); err != nil {
			return err
		}
	}
	return nil
}

// putRecord stores message seq's record v (encodeRecord) with its expiry
// entry; the caller accounts for it and changes the index.
func (b queueBuckets) putRecord(seq uint64, v []byte) error {
	if err := b.data.Put(putBE64(seq), v); err != nil {
		return err
	}
	return b.exp.Put(binary.BigEndian.AppendUint64(clone(v[8:16]), seq), nil)
}

// assignIDs gives each message its queue id once the batch is committed.
func (qb *queueBatch) assignIDs() {
	for i, m := range qb.msgs {
		m.ID = formatQueueID(qb.seqs[i])
	}
}

// List returns up to limit messages queued for any of the recipients whose
// expiry is not before now, oldest first (by receive time, then id). limit
// must be positive. The messages are copies.
func (q *Queue) List(ctx context.Context, recipients []string, now time.Time, limit int) ([]*agent.QueuedMessage, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	nowBits := timeBits(now)
	type found struct {
		m   *agent.QueuedMessage
		seq uint64
	}
	var out []found
	// The pending set is locked before the transaction begins (journal.go).
	q.db.pend.mu.RLock()
	defer q.db.pend.mu.RUnlock()
	err := q.db.view(ctx, func(tx *bbolt.Tx) error {
		b := q.db.queueOf(tx)
		var ferr error
		for _, r := range dedupe(recipients) {
			n := 0
			q.db.qidx.walk(r, func(e qentry) bool {
				v := b.data.Get(putBE64(e.seq))
				if v == nil {
					v = q.db.pend.msg(e.seq)
				}
				if v == nil {
					return true // removed since this transaction began, or added after it
				}
				rec, err := decodeRecordHead(v)
				if err != nil {
					ferr = err
					return false
				}
				if rec.expiresBits < nowBits {
					return true // expired, waiting for the sweeper
				}
				out = append(out, found{&agent.QueuedMessage{ID: formatQueueID(e.seq), Recipient: r, Payload: clone(rec.payload),
					Received: bitsTime(e.received), Expires: bitsTime(rec.expiresBits)}, e.seq})
				n++
				return n < limit
			})
			if ferr != nil {
				return ferr
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(recipients) > 1 {
		slices.SortStableFunc(out, func(a, b found) int {
			if c := a.m.Received.Compare(b.m.Received); c != 0 {
				return c
			}
			return cmp.Compare(a.seq, b.seq)
		})
	}
	if len(out) > limit {
		out = out[:limit]
	}
	msgs := make([]*agent.QueuedMessage, len(out))
	for i, f := range out {
		msgs[i] = f.m
	}
	return msgs, nil
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
// deleted. Ids that are unknown, malformed, already removed or queued for
// someone else are ignored.
func (q *Queue) Remove(ctx context.Context, recipients []string, ids []string) (int, error) {
	if len(ids) == 0 || len(recipients) == 0 {
		return 0, nil
	}
	allowed := make(map[string]bool, len(recipients))
	for _, r := range recipients {
		allowed[r] = true
	}
	seqs := make([]uint64, 0, len(ids))
	for _, id := range ids {
		if seq, ok := parseQueueID(id); ok {
			seqs = append(seqs, seq)
		}
	}
	n := 0
	err := q.db.write(ctx, func(tx *bbolt.Tx) error {
		n = 0
		b := q.db.queueOf(tx)
		for _, seq := range seqs {
			rec, ok, err := b.load(seq)
			if err != nil {
				return err
			}
			if !ok || !allowed[rec.recipient] {
				continue
			}
			if err := b.remove(seq, rec); err != nil {
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
	q.db.pend.mu.RLock() // before the transaction (journal.go)
	defer q.db.pend.mu.RUnlock()
	err := q.db.view(ctx, func(tx *bbolt.Tx) error {
		s = agent.QueueStats{}
		b := q.db.queueOf(tx)
		outside := q.db.pend.outsideOf(tx)
		for _, r := range dedupe(recipients) {
			st := b.state([]byte(r))
			if pn, psize := rcptIn(outside, r); pn > 0 {
				st.n, st.size, st.ok = st.n+pn, st.size+psize, true
			}
			if !st.ok || st.n == 0 {
				continue
			}
			s.Messages += int(st.n)
			s.Bytes += st.size
			oldest, newest, ok := q.db.qidx.bounds(r)
			if !ok {
				continue
			}
			if t := bitsTime(oldest.received); s.Oldest.IsZero() || t.Before(s.Oldest) {
				s.Oldest = t
			}
			if t := bitsTime(newest.received); t.After(s.Newest) {
				s.Newest = t
			}
		}
		return nil
	})
	return s, err
}

// Totals reads the global counters.
func (q *Queue) Totals(ctx context.Context) (agent.QueueTotals, error) {
	var t agent.QueueTotals
	q.db.pend.mu.RLock() // before the transaction (journal.go)
	defer q.db.pend.mu.RUnlock()
	err := q.db.view(ctx, func(tx *bbolt.Tx) error {
		top := tx.Bucket(bQueue)
		t = agent.QueueTotals{Messages: int(be64(top.Get(kNMsgs))), Bytes: int64(be64(top.Get(kNBytes))),
			Recipients: int(be64(top.Get(kNRcpt)))}
		// What the journal holds that the transaction does not.
		b := q.db.queueOf(tx)
		counted := map[string]bool{}
		for _, ps := range q.db.pend.outsideOf(tx) {
			for r, c := range ps.rcpt {
				t.Messages += int(c[0])
				t.Bytes += c[1]
				if !counted[r] && !b.state([]byte(r)).ok {
					t.Recipients++
				}
				counted[r] = true
			}
		}
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
	// A write transaction sees the index as of the last commit (see
	// qindex.go), so the chunk taken from it is what the transaction holds.
	var chunk []qentry
	var chunkTx *bbolt.Tx
	return q.removeChunks(ctx, func(b queueBuckets) (uint64, bool) {
		if b.tx != chunkTx {
			chunk, chunkTx = q.db.qidx.first(recipient, queueChunk), b.tx
		}
		if len(chunk) == 0 {
			return 0, false
		}
		seq := chunk[0].seq
		chunk = chunk[1:]
		return seq, true
	})
}

// Sweep deletes the messages whose expiry is before now, walking the expiry
// index in transactions of at most 10,000 messages, and returns how many it
// deleted.
func (q *Queue) Sweep(ctx context.Context, now time.Time) (int, error) {
	bound := timeBits(now)
	return q.removeChunks(ctx, func(b queueBuckets) (uint64, bool) {
		k, _ := b.exp.Cursor().First()
		if k == nil || len(k) != 16 || be64(k) >= bound {
			return 0, false
		}
		return be64(k[8:]), true
	})
}

// removeChunks removes the message next names, again and again, up to
// queueChunk per transaction, until next reports none.
func (q *Queue) removeChunks(ctx context.Context, next func(b queueBuckets) (uint64, bool)) (int, error) {
	total := 0
	for {
		n := 0
		err := q.db.update(ctx, func(tx *bbolt.Tx) error {
			n = 0
			b := q.db.queueOf(tx)
			for n < queueChunk {
				seq, ok := next(b)
				if !ok {
					return nil
				}
				rec, ok, err := b.load(seq)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("bolt: queue index inconsistent for message %d", seq)
				}
				if err := b.remove(seq, rec); err != nil {
					return err
				}
				n++
			}
			return nil
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
