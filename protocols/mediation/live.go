package mediation

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentd/agentd/agent"
)

// Hub delivers newly queued messages live to the clients that switched live
// delivery on over a persistent connection (Pickup 3.0 live mode).
//
// A forward is first committed to the queue; then the hub hands the new
// messages to each live connection of the message's client, without
// waiting: every connection has its own buffer and goroutine, which packs
// the messages into a delivery (attachment ids are the queue ids, as for a
// delivery-request) and pushes it. The messages stay queued until the client
// names them in messages-received, so a connection that dies, or is half
// open and swallows what is pushed, loses nothing: the client gets them again
// with its next delivery-request. A connection whose buffer is full (a slow
// reader) skips the push; the message is still queued.
type Hub struct {
	packer Packer
	log    *slog.Logger
	buffer int
	batch  int

	mu       sync.RWMutex
	byClient map[string]map[string]*liveConn // client DID → session id → conn
	bySess   map[string]*liveConn

	pushed, skipped, failed atomic.Int64
}

// liveConn is one connection in live mode.
type liveConn struct {
	session agent.Session
	client  string
	from    string
	ch      chan *agent.QueuedMessage
	stop    chan struct{}
	once    sync.Once
}

func newHub(packer Packer, buffer, batch int, log *slog.Logger) *Hub {
	if buffer <= 0 {
		buffer = 1024
	}
	if batch <= 0 {
		batch = 100
	}
	return &Hub{packer: packer, log: log, buffer: buffer, batch: batch,
		byClient: map[string]map[string]*liveConn{}, bySess: map[string]*liveConn{}}
}

// HubStats are the hub's counters.
type HubStats struct {
	// Sessions is the number of connections in live mode.
	Sessions int
	// Pushed counts messages pushed; Skipped those not pushed because a
	// connection's buffer was full; Failed those whose push failed. Skipped
	// and failed messages stay queued.
	Pushed, Skipped, Failed int64
}

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	h.mu.RLock()
	n := len(h.bySess)
	h.mu.RUnlock()
	return HubStats{Sessions: n, Pushed: h.pushed.Load(), Skipped: h.skipped.Load(), Failed: h.failed.Load()}
}

// set switches live delivery of client's messages on s on or off; from is the
// mediator DID deliveries are sent from.
func (h *Hub) set(s agent.Session, client, from string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.bySess[s.ID()]
	if cur != nil {
		if on && cur.client == client {
			cur.from = from
			return
		}
		h.removeLocked(cur)
	}
	if !on {
		return
	}
	c := &liveConn{session: s, client: client, from: from, ch: make(chan *agent.QueuedMessage, h.buffer), stop: make(chan struct{})}
	h.bySess[s.ID()] = c
	if h.byClient[client] == nil {
		h.byClient[client] = map[string]*liveConn{}
	}
	h.byClient[client][s.ID()] = c
	go h.run(c)
}

// removeLocked forgets c and stops its goroutine. h.mu is held.
func (h *Hub) removeLocked(c *liveConn) {
	if h.bySess[c.session.ID()] == c {
		delete(h.bySess, c.session.ID())
	}
	if m := h.byClient[c.client]; m != nil && m[c.session.ID()] == c {
		delete(m, c.session.ID())
		if len(m) == 0 {
			delete(h.byClient, c.client)
		}
	}
	c.once.Do(func() { close(c.stop) })
}

func (h *Hub) remove(c *liveConn) {
	h.mu.Lock()
	h.removeLocked(c)
	h.mu.Unlock()
}

// dropClient ends live delivery on every connection of client.
func (h *Hub) dropClient(client string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.byClient[client] {
		h.removeLocked(c)
	}
}

// isLive reports whether live delivery is on for s.
func (h *Hub) isLive(s agent.Session) bool {
	if s == nil {
		return false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.bySess[s.ID()] != nil
}

// notify hands newly queued messages of client to its live connections.
func (h *Hub) notify(client string, msgs []*agent.QueuedMessage) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, c := range h.byClient[client] {
		for _, m := range msgs {
			select {
			case c.ch <- m:
			default:
				h.skipped.Add(1)
			}
		}
	}
}

// pushTimeout bounds packing and writing one delivery.
const pushTimeout = 10 * time.Second

// run pushes c's messages until live delivery ends or the connection does.
func (h *Hub) run(c *liveConn) {
	defer h.remove(c)
	batch := make([]*agent.QueuedMessage, 0, h.batch)
	for {
		select {
		case <-c.stop:
			return
		case <-c.session.Done():
			return
		case m := <-c.ch:
			batch = append(batch[:0], m)
		}
	fill:
		for len(batch) < h.batch {
			select {
			case m := <-c.ch:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		if err := h.push(c, batch); err != nil {
			h.failed.Add(int64(len(batch)))
			h.log.Info("live delivery failed; the messages stay queued", "client", c.client, "session", c.session.ID(), "messages", len(batch), "err", err)
			select {
			case <-c.session.Done():
				return
			default:
			}
			continue
		}
		h.pushed.Add(int64(len(batch)))
	}
}

// push packs one delivery of msgs for c's client and writes it.
func (h *Hub) push(c *liveConn, msgs []*agent.QueuedMessage) error {
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	d, err := agent.NewMessage(DeliveryType, DeliveryBody{})
	if err != nil {
		return err
	}
	d.From, d.To = c.from, []string{c.client}
	d.Attachments = make([]agent.Attachment, len(msgs))
	for i, m := range msgs {
		d.Attachments[i] = Attachment(m)
	}
	payload, mt, err := h.packer.PackReply(ctx, d, nil)
	if err != nil {
		return err
	}
	return c.session.Push(ctx, mt, payload)
}
