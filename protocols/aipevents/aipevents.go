// Package aipevents carries the changes the cloud-agent services make
// (connection, credential and proof exchanges, received basic messages) to
// the operator's application, so that it does not poll:
//
//   - a webhook, POST {webhook_url}/topics/{topic} with the aip.Event as JSON,
//     staged through the outbox in the unit of work of the change itself:
//     it leaves only if the change commits, and then at least once (the
//     outbox retries; the receiver dedupes by eventId). The body is signed
//     by the outbox's webhook transport (transport/http.Webhook: header
//     X-Agentd-Signature: sha256=<hex HMAC-SHA256 of the body>); the secret
//     stays in that transport, in the process, and is never stored.
//   - an in-process Broker, published to after the commit, that GraphQL
//     subscriptions read from.
package aipevents

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
)

// MediaType is the content type of a webhook body.
const MediaType = "application/json"

// Publisher publishes a change made in a unit of work.
type Publisher interface {
	// Publish stages, in w, the webhook delivery of record under topic and
	// its publication to subscribers once w commits. record must not be
	// changed after the call.
	Publish(w *agent.Work, topic string, record any) error
}

// Config is what Events needs.
type Config struct {
	// Broker receives every event after its commit; nil: none.
	Broker *Broker
	// WebhookEndpoint is the outbox endpoint of the webhook's base URL
	// (transport/http.Webhook.Endpoint: "webhook+https://app.example/hooks");
	// each event goes to WebhookEndpoint + "/topics/" + topic. Empty: no
	// webhook.
	WebhookEndpoint string
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Events is the Publisher of the daemon: webhook and broker (and, with
// Share, the other instances' brokers).
type Events struct {
	cfg    Config
	shared *shared
}

// New returns Events.
func New(cfg Config) *Events {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.WebhookEndpoint = strings.TrimRight(cfg.WebhookEndpoint, "/")
	return &Events{cfg: cfg}
}

// Publish implements Publisher.
func (e *Events) Publish(w *agent.Work, topic string, record any) error {
	if topic == "" || strings.ContainsAny(topic, "/?#") {
		return fmt.Errorf("aipevents: bad topic %q", topic)
	}
	ev := aip.Event{ID: agent.NewID(), Topic: topic, Emitted: e.cfg.Now().UTC(), Record: snapshot(record)}
	if sh := e.shared; sh != nil {
		rec, err := json.Marshal(ev.Record)
		if err != nil {
			return fmt.Errorf("aipevents: %w", err)
		}
		if err := w.PutJSON(KindEvent, Key(ev.Emitted, ev.ID), storedEvent{Origin: sh.origin, ID: ev.ID,
			Topic: topic, At: ev.Emitted, Record: rec}); err != nil {
			return fmt.Errorf("aipevents: %w", err)
		}
	}
	if e.cfg.WebhookEndpoint != "" {
		body, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("aipevents: %w", err)
		}
		w.Enqueue(&agent.OutboundMessage{To: "webhook", Endpoint: e.cfg.WebhookEndpoint + "/topics/" + topic,
			MediaType: MediaType, MessageType: topic, Payload: body})
	}
	if b := e.cfg.Broker; b != nil {
		w.AfterCommit(func() { b.Publish(ev) })
	}
	return nil
}

// snapshot copies the struct a pointer points to, so that the event keeps
// the record as it was at Publish.
func snapshot(record any) any {
	v := reflect.ValueOf(record)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return record
	}
	c := reflect.New(v.Elem().Type())
	c.Elem().Set(v.Elem())
	return c.Interface()
}
