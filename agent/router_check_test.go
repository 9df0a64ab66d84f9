package agent_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
)

// TestRouterCheckChangesNothing: Check refuses what Receive refuses, and
// accepts a good message without dispatching it or recording its id, so the
// same message is still handled by Receive afterwards.
func TestRouterCheckChangesNothing(t *testing.T) {
	r, _ := newRouter(t)
	var handled atomic.Int32
	r.Register(agent.Protocol{PIURI: "https://example.org/echo/1.0", Handler: agent.HandlerFunc(
		func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
			in.Work.AfterCommit(func() { handled.Add(1) }) // counts handlings that took effect
			return nil, nil
		})})
	ctx := context.Background()
	for name, raw := range map[string][]byte{
		"not JSON":   []byte("{nope"),
		"no type":    plain(t, map[string]any{}),
		"not for us": plain(t, map[string]any{"type": "https://example.org/echo/1.0/say", "to": []string{"did:example:other"}}),
		"expired":    plain(t, map[string]any{"type": "https://example.org/echo/1.0/say", "expires_time": time.Now().Add(-time.Minute).Unix()}),
	} {
		if _, err := r.Check(ctx, "smtp", raw); err == nil {
			t.Errorf("%s: Check accepted it", name)
		} else if _, rerr := r.Receive(ctx, "smtp", raw); rerr == nil || agent.ErrorCode(rerr) != agent.ErrorCode(err) {
			t.Errorf("%s: Check said %v, Receive %v", name, err, rerr)
		}
	}
	good := plain(t, map[string]any{"id": "c1", "type": "https://example.org/echo/1.0/say", "to": []string{self}})
	for i := 0; i < 3; i++ {
		m, err := r.Check(ctx, "smtp", good)
		if err != nil || m.ID != "c1" {
			t.Fatalf("Check #%d: %v, %v", i, m, err)
		}
	}
	if handled.Load() != 0 {
		t.Fatal("Check dispatched the message")
	}
	if _, err := r.Receive(ctx, "smtp", good); err != nil || handled.Load() != 1 {
		t.Fatalf("Receive after Check: %v, handled %d (Check must not record the id)", err, handled.Load())
	}
	if _, err := r.Receive(ctx, "smtp", good); err != nil || handled.Load() != 1 {
		t.Fatalf("the second Receive must be dropped as a replay: %v, handled %d", err, handled.Load())
	}
}

// TestRouterNoReturnRouteOverMail: a reply asked for with return_route is
// not packed for the connection when the message came by mail (one-way);
// it goes through the messenger instead.
func TestRouterNoReturnRouteOverMail(t *testing.T) {
	r, _ := newRouter(t)
	r.Register(agent.Protocol{PIURI: "https://example.org/echo/1.0", Handler: agent.HandlerFunc(
		func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
			reply, _ := in.Message.Reply("https://example.org/echo/1.0/echoed", nil)
			return []agent.Message{reply}, nil
		})})
	rep, err := r.Receive(context.Background(), "smtp", plain(t, map[string]any{"type": "https://example.org/echo/1.0/say", "return_route": "all"}))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Payload != nil {
		t.Fatalf("a reply was packed for an SMTP connection: %s", rep.Payload)
	}
}
