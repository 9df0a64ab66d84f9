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
// waiting: every connection has its own bounded buffer, and a goroutine,
// started when the buffer stops being empty and ending when it is empty
// again, packs the messages into deliveries (attachment ids are the queue
// ids, as for a delivery-request) and pushes them in order. An idle live
// connection therefore costs the hub no goroutine and no buffer: a mediator
// holds thousands of them. The messages stay queued until the client names
// them in messages-received, so a connection that dies, or is half open and
// swallows what is pushed, loses nothing: the client gets them again with
// its next delivery-request. A connection whose buffer is full (a slow
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

	mu      sync.Mutex
	from    string
	pending []*agent.QueuedMessage // at most Hub.buffer; nil when empty
	pushing bool                   // a goroutine is draining pending
	stopped bool                   // live delivery ended on the connection
	stop    chan struct{}          // closed when stopped (sessions without AfterClose)
	// sent are the ids of the messages handed to the connection lately,
	// so that a wake by another instance does not push them again.
	sent map[string]bool
}

// maxSent bounds liveConn.sent; it is emptied when full (at worst a
// message is pushed twice, which the client acknowledges twice).
const maxSent = 8192

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
			cur.mu.Lock()
			cur.from = from
			cur.mu.Unlock()
			return
		}
		h.removeLocked(cur)
	}
	if !on {
		return
	}
	c := &liveConn{session: s, client: client, from: from}
	h.bySess[s.ID()] = c
	if h.byClient[client] == nil {
		h.byClient[client] = map[string]*liveConn{}
	}
	h.byClient[client][s.ID()] = c
	// Forget the connection when it ends: told by the session when it can,
	// otherwise watched by a goroutine.
	if cn, ok := s.(agent.CloseNotifier); ok {
		cn.AfterClose(func() { h.remove(c) })
	} else {
		c.stop = make(chan struct{})
		go func() {
			select {
			case <-s.Done():
				h.remove(c)
			case <-c.stop:
			}
		}()
	}
}

// removeLocked forgets c and drops what it had not pushed yet. h.mu is held.
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
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		c.pending = nil
		if c.stop != nil {
			close(c.stop)
		}
	}
	c.mu.Unlock()
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
		h.enqueue(c, msgs)
	}
}

// notifyQueued hands the client's live connections the messages read from
// the queue after another instance queued them, without those already
// handed to each.
func (h *Hub) notifyQueued(client string, msgs []*agent.QueuedMessage) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, c := range h.byClient[client] {
		h.enqueueNew(c, msgs)
	}
}

// clients returns the clients with a live connection.
func (h *Hub) clients() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]string, 0, len(h.byClient))
	for c := range h.byClient {
		out = append(out, c)
	}
	return out
}

// hasClient reports whether client has a live connection.
func (h *Hub) hasClient(client string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.byClient[client]) > 0
}

// enqueueNew is enqueue without the messages c was handed already.
func (h *Hub) enqueueNew(c *liveConn, msgs []*agent.QueuedMessage) {
	c.mu.Lock()
	fresh := make([]*agent.QueuedMessage, 0, len(msgs))
	for _, m := range msgs {
		if !c.sent[m.ID] {
			fresh = append(fresh, m)
		}
	}
	c.mu.Unlock()
	if len(fresh) > 0 {
		h.enqueue(c, fresh)
	}
}

// enqueue adds msgs to c's buffer, skipping what does not fit, and starts
// c's pusher when none is running.
func (h *Hub) enqueue(c *liveConn, msgs []*agent.QueuedMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}

	room := h.buffer - len(c.pending)
	n := min(len(msgs), max(room, 0))
	if n < len(msgs) {
		h.skipped.Add(int64(len(msgs) - n))
	}
	if n == 0 {
		return
	}
	if c.sent == nil || len(c.sent)+n > maxSent {
		c.sent = make(map[string]bool, n)
	}
	for _, m := range msgs[:n] {
		c.sent[m.ID] = true
	}
	c.pending = append(c.pending, msgs[:n]...)
	if !c.pushing {
		c.pushing = true
		go h.drain(c)
	}
}

// pushTimeout bounds packing and writing one delivery.
const pushTimeout = 10 * time.Second

// drain pushes c's buffered messages, a delivery of up to h.batch at a time,
// until the buffer is empty or live delivery ends on c.
func (h *Hub) drain(c *liveConn) {
	for {
		c.mu.Lock()
		if c.stopped || len(c.pending) == 0 {
			c.pushing = false
			c.pending = nil
			c.mu.Unlock()
			return
		}
		n := min(len(c.pending), h.batch)
		batch := c.pending[:n:n]
		if n == len(c.pending) {
			c.pending = nil
		} else {
			c.pending = c.pending[n:]
		}
		from := c.from
		c.mu.Unlock()

		if err := h.push(c, from, batch); err != nil {
			h.failed.Add(int64(len(batch)))
			h.log.Info("live delivery failed; the messages stay queued", "client", c.client, "session", c.session.ID(), "messages", len(batch), "err", err)
			select {
			case <-c.session.Done():
				h.remove(c)
			default:
			}
			continue
		}
		h.pushed.Add(int64(len(batch)))
	}
}

// push packs one delivery of msgs for c's client and writes it.
func (h *Hub) push(c *liveConn, from string, msgs []*agent.QueuedMessage) error {
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	d, err := agent.NewMessage(DeliveryType, DeliveryBody{})
	if err != nil {
		return err
	}
	d.From, d.To = from, []string{c.client}
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
