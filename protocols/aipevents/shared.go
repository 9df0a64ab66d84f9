package aipevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
)

// Several instances. When agentd instances share a store (store/postgres),
// a change committed on one must reach the subscribers of the others. With
// Share, Publish also stages the event as a short-lived record (KindEvent)
// in the change's own unit of work; the commit signals the record (the
// store watches KindEvent: agent.SignalRecord), and every other instance
// reads it and publishes it to its broker. The instance that made the
// change publishes it after its commit, as without Share, and skips its
// own records. Each instance's broker hence sees each event once: a
// subscriber on any instance gets every instance's events, at most once.
// After a reconnection of the signal listener (or when signals come faster
// than they are read), the records of the last moments are read again and
// the events not yet published are; the records are swept after
// SharedTTL (Sweep, under a lease).

// KindEvent is the record kind of the events kept for the other
// instances, by Key.
const KindEvent = "aip-event"

// SharedTTL is how long an event record is kept for the other instances.
const SharedTTL = 5 * time.Minute

// catchUpSlack is how far before the last event read a catch-up reads
// again: the instances' clocks and commit orders differ by that much at
// most.
const catchUpSlack = 5 * time.Second

// storedEvent is an event as kept for the other instances.
type storedEvent struct {
	// Origin is the instance that published it (it skips its own).
	Origin string          `json:"origin"`
	ID     string          `json:"eventId"`
	Topic  string          `json:"topic"`
	At     time.Time       `json:"emittedTimestamp"`
	Record json.RawMessage `json:"record"`
}

// Key is the record id of an event: its emission time (nanoseconds,
// zero-padded, so that ids sort by time) and its id.
func Key(emitted time.Time, id string) string {
	return fmt.Sprintf("%020d-%s", emitted.UnixNano(), id)
}

// keyTime is the emission time of a Key.
func keyTime(key string) (time.Time, bool) {
	ns, _, ok := strings.Cut(key, "-")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// shared is the state of Events.Share.
type shared struct {
	store  agent.Store
	origin string
	log    *slog.Logger
	wake   chan struct{}

	mu      sync.Mutex
	pending []string  // keys signalled, in order
	catchUp bool      // read the recent records again
	since   time.Time // emission time of the last event read
	seen    map[string]time.Time
}

// maxPending bounds the keys waiting to be read; beyond it they are
// dropped and a catch-up reads the records instead.
const maxPending = 10000

// Share makes the events span the instances sharing store: see above.
// signals must be the store's; the caller makes its commits signal writes
// of KindEvent (store/postgres Signals.Watch). origin names this instance
// (unique among them). The reader ends with ctx. Call it once, before
// use.
func (e *Events) Share(ctx context.Context, store agent.Store, signals agent.Signals, origin string, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	sh := &shared{store: store, origin: origin, log: log, wake: make(chan struct{}, 1),
		since: e.cfg.Now(), seen: map[string]time.Time{}}
	e.shared = sh
	signals.Subscribe(agent.SignalRecord, func(payload string) {
		if kind, id, ok := agent.RecordSignal(payload); ok && kind == KindEvent {
			sh.add(id)
		}
	})
	signals.OnResync(sh.resync)
	go sh.run(ctx, e.cfg.Broker)
}

func (sh *shared) add(key string) {
	sh.mu.Lock()
	if len(sh.pending) < maxPending {
		sh.pending = append(sh.pending, key)
	} else {
		sh.catchUp = true
	}
	sh.mu.Unlock()
	sh.poke()
}

func (sh *shared) resync() {
	sh.mu.Lock()
	sh.catchUp = true
	sh.mu.Unlock()
	sh.poke()
}

func (sh *shared) poke() {
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

// run reads the signalled records and publishes their events to b, in
// order, until ctx ends.
func (sh *shared) run(ctx context.Context, b *Broker) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sh.wake:
		}
		for ctx.Err() == nil {
			sh.mu.Lock()
			keys, catchUp := sh.pending, sh.catchUp
			sh.pending, sh.catchUp = nil, false
			since := sh.since
			sh.mu.Unlock()
			if len(keys) == 0 && !catchUp {
				break
			}
			if catchUp {
				var err error
				if keys, err = sh.recent(ctx, since.Add(-catchUpSlack)); err != nil {
					sh.log.Warn("aip events: could not read the other instances' recent events; retrying", "err", err)
					sh.retryLater(ctx)
					continue
				}
			}
			for _, k := range keys {
				sh.deliver(ctx, b, k)
			}
		}
	}
}

// retryLater asks for a catch-up in a second.
func (sh *shared) retryLater(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
		sh.resync()
	}
}

// recent lists the keys of the event records emitted from since on.
func (sh *shared) recent(ctx context.Context, since time.Time) ([]string, error) {
	var keys []string
	after := Key(since, "")
	for {
		page, err := sh.store.Records.List(ctx, KindEvent, after, 500)
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			keys = append(keys, r.ID)
		}
		if len(page) < 500 {
			return keys, nil
		}
		after = page[len(page)-1].ID
	}
}

// deliver reads the record of key and publishes its event to b, unless it
// is this instance's or was published already.
func (sh *shared) deliver(ctx context.Context, b *Broker, key string) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	raw, err := sh.store.Records.Get(rctx, KindEvent, key)
	cancel()
	if errors.Is(err, agent.ErrNotFound) {
		return // swept
	}
	if err != nil {
		sh.log.Warn("aip events: could not read another instance's event; catching up", "err", err)
		sh.resync()
		return
	}
	var se storedEvent
	if err := json.Unmarshal(raw, &se); err != nil || se.Origin == sh.origin {
		return
	}
	sh.mu.Lock()
	_, dup := sh.seen[se.ID]
	if !dup {
		sh.remember(se.ID, se.At)
	}
	sh.mu.Unlock()
	if dup {
		return
	}
	rec, err := decodeRecord(se.Topic, se.Record)
	if err != nil {
		sh.log.Warn("aip events: another instance's event is unreadable; skipped", "topic", se.Topic, "err", err)
		return
	}
	b.Publish(aip.Event{ID: se.ID, Topic: se.Topic, Emitted: se.At, Record: rec})
}

// remember notes an event published (sh.mu held), forgetting those older
// than what a catch-up reads again.
func (sh *shared) remember(id string, at time.Time) {
	sh.seen[id] = at
	if at.After(sh.since) {
		sh.since = at
	}
	if len(sh.seen) > 4*maxPending {
		cutoff := sh.since.Add(-2 * catchUpSlack)
		for k, t := range sh.seen {
			if t.Before(cutoff) {
				delete(sh.seen, k)
			}
		}
	}
}

// decodeRecord decodes an event's record into the type of its topic.
func decodeRecord(topic string, raw json.RawMessage) (any, error) {
	var v any
	switch topic {
	case aip.TopicConnectionExchange:
		v = &aip.ConnectionExchange{}
	case aip.TopicCredentialExchange:
		v = &aip.CredentialExchange{}
	case aip.TopicProofExchange:
		v = &aip.ProofExchange{}
	case aip.TopicBasicMessage:
		v = &aip.BasicMessage{}
	default:
		var m map[string]any
		v = &m
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, err
	}
	return v, nil
}

// Sweep deletes the event records older than SharedTTL, oldest first
// (they are listed by emission time: it reads no more than it deletes and
// one page). It returns how many it deleted; without Share it does
// nothing.
func (e *Events) Sweep(ctx context.Context) (int, error) {
	sh := e.shared
	if sh == nil {
		return 0, nil
	}
	cutoff := e.cfg.Now().Add(-SharedTTL)
	n := 0
	for {
		page, err := sh.store.Records.List(ctx, KindEvent, "", 500)
		if err != nil {
			return n, err
		}
		for _, r := range page {
			if at, ok := keyTime(r.ID); ok && !at.Before(cutoff) {
				return n, nil
			}
			if err := sh.store.Records.Delete(ctx, KindEvent, r.ID); err != nil && !errors.Is(err, agent.ErrNotFound) {
				return n, err
			}
			n++
		}
		if len(page) < 500 {
			return n, nil
		}
	}
}
