package agent_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/agentd/agentd/agent"
)

// TestRouterAnonymousReplayKey: unauthenticated messages do not share one id
// space. Two different messages that reuse an id are both handled; an exact
// replay of the bytes is dropped.
func TestRouterAnonymousReplayKey(t *testing.T) {
	r, _ := newRouter(t)
	var handled atomic.Int32
	r.Register(agent.Protocol{PIURI: "https://example.org/echo/1.0", Handler: agent.HandlerFunc(
		func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
			in.Work.AfterCommit(func() { handled.Add(1) })
			return nil, nil
		})})
	ctx := context.Background()
	a := plain(t, map[string]any{"id": "same", "type": "https://example.org/echo/1.0/say", "body": map[string]any{"from": "alice"}})
	b := plain(t, map[string]any{"id": "same", "type": "https://example.org/echo/1.0/say", "body": map[string]any{"from": "mallory"}})
	if _, err := r.Receive(ctx, "http", a); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Receive(ctx, "http", b); err != nil {
		t.Fatal(err)
	}
	if n := handled.Load(); n != 2 {
		t.Fatalf("two anonymous messages with one id: handled %d, want 2", n)
	}
	for _, raw := range [][]byte{a, b} {
		if _, err := r.Receive(ctx, "http", raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := handled.Load(); n != 2 {
		t.Fatalf("exact replays were handled again: handled %d, want 2", n)
	}
}
