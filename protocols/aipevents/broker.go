package aipevents

import (
	"context"
	"sync"

	"github.com/agentd/agentd/aip"
)

// DefaultBuffer is a subscription's buffer when Broker.Buffer is 0.
const DefaultBuffer = 256

// Broker fans committed events out to in-process subscribers (GraphQL
// subscriptions). It never blocks a publisher: a subscriber whose buffer
// is full when an event comes is dropped, its channel closed, so that it
// knows it missed events (it should subscribe again and re-read the state
// it shows). The zero value is ready to use. It implements aip.Events.
type Broker struct {
	// Buffer is each subscription's channel capacity; 0: DefaultBuffer.
	Buffer int

	mu   sync.Mutex
	subs map[*sub]struct{}
}

type sub struct {
	topic string
	ch    chan aip.Event
}

// Subscribe returns the events of topic ("" for every topic) published
// from now on, until ctx ends or the subscriber falls behind; then the
// channel is closed.
func (b *Broker) Subscribe(ctx context.Context, topic string) <-chan aip.Event {
	n := b.Buffer
	if n <= 0 {
		n = DefaultBuffer
	}
	s := &sub{topic: topic, ch: make(chan aip.Event, n)}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[*sub]struct{}{}
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.drop(s)
	}()
	return s.ch
}

// drop removes s and closes its channel, once.
func (b *Broker) drop(s *sub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.ch)
	}
}

// Publish hands e to every subscriber of its topic; a subscriber with a
// full buffer is dropped (its channel closed).
func (b *Broker) Publish(e aip.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.topic != "" && s.topic != e.Topic {
			continue
		}
		select {
		case s.ch <- e:
		default:
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

// Subscribers returns the number of live subscriptions.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

var _ aip.Events = (*Broker)(nil)
