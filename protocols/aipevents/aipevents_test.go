package aipevents

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/protocols/internal/fakes"
)

func TestPublishStagesWebhookAndPublishesAfterCommit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := &Broker{}
	all, bms := b.Subscribe(ctx, ""), b.Subscribe(ctx, aip.TopicBasicMessage)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := New(Config{Broker: b, WebhookEndpoint: "webhook+https://app.example/hooks/", Now: func() time.Time { return now }})
	st := &fakes.Store{}
	rec := &aip.ConnectionExchange{ID: "x1", State: aip.ConnExInvitation}

	// A work that fails to commit publishes nothing and queues nothing.
	st.FailCommit = errors.New("disk full")
	err := st.Agent().Update(context.Background(), func(w *agent.Work) error {
		return ev.Publish(w, aip.TopicConnectionExchange, rec)
	})
	if err == nil || len(st.Outbound()) != 0 || len(all) != 0 {
		t.Fatalf("failed commit: %v, %d queued, %d published", err, len(st.Outbound()), len(all))
	}
	st.FailCommit = nil
	if err := st.Agent().Update(context.Background(), func(w *agent.Work) error {
		return ev.Publish(w, aip.TopicConnectionExchange, rec)
	}); err != nil {
		t.Fatal(err)
	}
	rec.State = aip.ConnExDone // the event keeps the record as it was
	outs := st.Outbound()
	if len(outs) != 1 || outs[0].Endpoint != "webhook+https://app.example/hooks/topics/aip_connection_exchange" || outs[0].MediaType != MediaType {
		t.Fatalf("webhook %+v", outs)
	}
	var body struct {
		ID      string                 `json:"eventId"`
		Topic   string                 `json:"topic"`
		Emitted time.Time              `json:"emittedTimestamp"`
		Record  aip.ConnectionExchange `json:"record"`
	}
	if err := json.Unmarshal(outs[0].Payload, &body); err != nil || body.ID == "" || body.Topic != aip.TopicConnectionExchange ||
		!body.Emitted.Equal(now) || body.Record.ID != "x1" || body.Record.State != aip.ConnExInvitation {
		t.Fatalf("body %s %v", outs[0].Payload, err)
	}
	select {
	case e := <-all:
		if e.ID != body.ID || e.Record.(*aip.ConnectionExchange).State != aip.ConnExInvitation {
			t.Fatalf("event %+v", e)
		}
	default:
		t.Fatal("not published after the commit")
	}
	if len(bms) != 0 {
		t.Fatal("a basic-message subscriber got a connection event")
	}
	if err := ev.Publish(agent.NewWork(nil), "a/b", rec); err == nil {
		t.Fatal("topic with a slash accepted")
	}
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{Buffer: 2}
	slow := b.Subscribe(ctx, "t")
	for i := range 3 {
		b.Publish(aip.Event{ID: string(rune('a' + i)), Topic: "t"})
	}
	got := 0
	for range slow {
		got++
	}
	if got != 2 || b.Subscribers() != 0 {
		t.Fatalf("got %d before the close, %d subscribers", got, b.Subscribers())
	}
	// Ending the context closes a subscription too.
	sub := b.Subscribe(ctx, "")
	cancel()
	select {
	case _, ok := <-sub:
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("not closed on cancel")
	}
}
