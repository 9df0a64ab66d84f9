package fakes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/agent"
)

// Queue is an in-memory agent.QueueStore. The zero value is ready to use.
// It passes the store conformance suite (see queue_test.go), so protocol
// tests that use it see the semantics of the real store.
type Queue struct {
	mu   sync.Mutex
	seq  int
	msgs map[string]*agent.QueuedMessage // by id
	// FailAdd, when set, makes Add fail with it.
	FailAdd error
}

func (q *Queue) init() {
	if q.msgs == nil {
		q.msgs = map[string]*agent.QueuedMessage{}
	}
}

func cloneMsg(m *agent.QueuedMessage) *agent.QueuedMessage {
	c := *m
	c.Payload = slices.Clone(m.Payload)
	return &c
}

// Add stores msgs, refusing the batch over quota.
func (q *Queue) Add(_ context.Context, msgs []*agent.QueuedMessage, limits agent.QueueLimits) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.init()
	if q.FailAdd != nil {
		return q.FailAdd
	}
	now := time.Now()
	add := map[string][2]int64{}
	for _, m := range msgs {
		if m.Recipient == "" || m.Expires.IsZero() {
			return errors.New("fakes: queued message without recipient or expiry")
		}
		c := add[m.Recipient]
		add[m.Recipient] = [2]int64{c[0] + 1, c[1] + int64(len(m.Payload))}
	}
	for r, a := range add {
		n, size := q.countLocked(r)
		if l := limits; (l.MaxMessages > 0 && n+a[0] > int64(l.MaxMessages)) || (l.MaxBytes > 0 && size+a[1] > l.MaxBytes) {
			return fmt.Errorf("%w: %s", agent.ErrQuota, r)
		}
	}
	for _, m := range msgs {
		if m.Received.IsZero() {
			m.Received = now
		}
		q.seq++
		m.ID = "q" + strconv.Itoa(q.seq)
		q.msgs[m.ID] = cloneMsg(m)
	}
	return nil
}

func (q *Queue) countLocked(r string) (n, size int64) {
	for _, m := range q.msgs {
		if m.Recipient == r {
			n++
			size += int64(len(m.Payload))
		}
	}
	return n, size
}

func (q *Queue) sortedLocked(recipients []string) []*agent.QueuedMessage {
	var out []*agent.QueuedMessage
	for _, m := range q.msgs {
		if slices.Contains(recipients, m.Recipient) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *agent.QueuedMessage) int {
		if c := a.Received.Compare(b.Received); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// List returns unexpired messages for the recipients, oldest first.
func (q *Queue) List(_ context.Context, recipients []string, now time.Time, limit int) ([]*agent.QueuedMessage, error) {
	if limit <= 0 {
		return nil, errors.New("fakes: limit must be positive")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*agent.QueuedMessage
	for _, m := range q.sortedLocked(recipients) {
		if m.Expires.Before(now) {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, cloneMsg(m))
	}
	return out, nil
}

// Remove deletes the named messages of the recipients.
func (q *Queue) Remove(_ context.Context, recipients []string, ids []string) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, id := range ids {
		if m, ok := q.msgs[id]; ok && slices.Contains(recipients, m.Recipient) {
			delete(q.msgs, id)
			n++
		}
	}
	return n, nil
}

// Stats describes the recipients' messages.
func (q *Queue) Stats(_ context.Context, recipients []string) (agent.QueueStats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var s agent.QueueStats
	for _, m := range q.sortedLocked(recipients) {
		s.Messages++
		s.Bytes += int64(len(m.Payload))
		if s.Oldest.IsZero() || m.Received.Before(s.Oldest) {
			s.Oldest = m.Received
		}
		if m.Received.After(s.Newest) {
			s.Newest = m.Received
		}
	}
	return s, nil
}

// Totals describes the whole queue.
func (q *Queue) Totals(context.Context) (agent.QueueTotals, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var t agent.QueueTotals
	rs := map[string]bool{}
	for _, m := range q.msgs {
		t.Messages++
		t.Bytes += int64(len(m.Payload))
		rs[m.Recipient] = true
	}
	t.Recipients = len(rs)
	return t, nil
}

// Purge deletes a recipient's messages.
func (q *Queue) Purge(_ context.Context, recipient string) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for id, m := range q.msgs {
		if m.Recipient == recipient {
			delete(q.msgs, id)
			n++
		}
	}
	return n, nil
}

// Sweep deletes expired messages.
func (q *Queue) Sweep(_ context.Context, now time.Time) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for id, m := range q.msgs {
		if m.Expires.Before(now) {
			delete(q.msgs, id)
			n++
		}
	}
	return n, nil
}
