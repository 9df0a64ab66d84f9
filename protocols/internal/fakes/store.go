package fakes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/agentd/agentd/agent"
)

// Store is an in-memory agent.Committer over Records, Queue, an outbox and
// a replay cache: it applies a unit of work as a whole or not at all, with
// the checks of the real store (changed reads, recorded replay keys, queue
// quota, outbox limits). The zero value is ready to use.
type Store struct {
	Records Records
	Queue   Queue

	mu       sync.Mutex
	outbound []*agent.OutboundMessage
	replay   map[string]time.Time
	// FailCommit, when set, makes Commit fail with it, storing nothing.
	FailCommit error
}

// Agent returns the agent.Store protocols use: reads from s.Records, units
// of work committed by s.
func (s *Store) Agent() agent.Store { return agent.Store{Records: &s.Records, Committer: s} }

// Commit applies w, or nothing of it.
func (s *Store) Commit(ctx context.Context, w *agent.Work) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailCommit != nil {
		return s.FailCommit
	}
	now := time.Now()
	for _, r := range w.Reads {
		v, err := s.Records.Get(ctx, r.Kind, r.ID)
		missing := errors.Is(err, agent.ErrNotFound)
		if r.Missing != missing || (!missing && !bytes.Equal(v, r.Value)) {
			return agent.ErrConflict
		}
	}
	for _, r := range w.Replay {
		if exp, ok := s.replay[r.Key]; ok && !exp.Before(now) {
			return agent.ErrReplay
		}
	}
	for _, m := range w.Outbound {
		for _, o := range s.outbound {
			if o.ID == m.ID {
				return fmt.Errorf("fakes: outbox message %q already exists", m.ID)
			}
		}
	}
	if err := checkOutboxLimits(s.outbound, w.Outbound, w.OutboxLimits); err != nil {
		return err
	}
	if len(w.Queued) > 0 {
		if err := s.Queue.Add(ctx, w.Queued, w.QueueLimits); err != nil {
			return err
		}
	}
	for _, wr := range w.Writes {
		if wr.Delete {
			_ = s.Records.Delete(ctx, wr.Kind, wr.ID)
		} else {
			_ = s.Records.Put(ctx, wr.Kind, wr.ID, wr.Value)
		}
	}
	s.outbound = append(s.outbound, w.Outbound...)
	if s.replay == nil {
		s.replay = map[string]time.Time{}
	}
	for _, r := range w.Replay {
		s.replay[r.Key] = r.Until
	}
	return nil
}

// checkOutboxLimits refuses adding outs to pending beyond limits, as the
// real store does.
func checkOutboxLimits(pending, outs []*agent.OutboundMessage, limits agent.OutboxLimits) error {
	if len(outs) == 0 {
		return nil
	}
	if limits.MaxPending > 0 && len(pending)+len(outs) > limits.MaxPending {
		return fmt.Errorf("fakes: %d messages pending: %w", len(pending), agent.ErrOutboxFull)
	}
	if limits.MaxPendingPerDestination > 0 {
		count := map[string]int{}
		for _, m := range pending {
			count[m.Endpoint]++
		}
		for _, m := range outs {
			if count[m.Endpoint]++; count[m.Endpoint] > limits.MaxPendingPerDestination {
				return fmt.Errorf("fakes: too many messages pending for %s: %w", m.Endpoint, agent.ErrOutboxFull)
			}
		}
	}
	return nil
}

// Outbound returns the outbound messages committed so far.
func (s *Store) Outbound() []*agent.OutboundMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.outbound)
}
