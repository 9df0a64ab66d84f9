package fakes

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/store/storetest"
)

// The fake passes the unit-of-work conformance suite, so protocol tests that
// use it see the semantics of the real store.
func TestStoreCommit(t *testing.T) {
	storetest.TestCommit(t, func(t *testing.T) storetest.Backend {
		s := &Store{}
		return storetest.Backend{Committer: s, Records: &s.Records, Outbox: outboxView{s}, Queue: &s.Queue, Replay: replayView{s}}
	})
}

type outboxView struct{ s *Store }

func (o outboxView) Enqueue(ctx context.Context, m *agent.OutboundMessage) error {
	w := agent.NewWork(nil)
	w.Enqueue(m)
	return o.s.Commit(ctx, w)
}

func (o outboxView) Depth(context.Context) (int, int, error) { return len(o.s.Outbound()), 0, nil }

type replayView struct{ s *Store }

func (r replayView) Remember(ctx context.Context, id string, exp time.Time) (bool, error) {
	w := agent.NewWork(nil)
	w.Remember(id, exp)
	err := r.s.Commit(ctx, w)
	if errors.Is(err, agent.ErrReplay) {
		return true, nil
	}
	return false, err
}
