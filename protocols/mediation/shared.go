package mediation

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/agentd/agentd/agent"
)

// Share makes the mediator one of several instances on one shared store
// (store/postgres): its registry follows the grants and registrations the
// others commit (signalled record changes, a full reload after every
// reconnection, and a read-through of what is missing from the index),
// and messages another instance queues for a client live on one of this
// instance's connections are pushed to it, read from the queue (the
// signal names the recipient, never the message). After every
// reconnection each live connection is woken once, so that nothing queued
// while the signals were down waits for the client's next pickup. The
// messages stay queued until the client acknowledges them, as always.
// Call Share once, after Load; ctx ends the background work.
func (m *Mediator) Share(ctx context.Context, signals agent.Signals) {
	m.registry.share(ctx, signals, m.log)
	// A grant revoked through another instance ends live delivery here
	// too, as Revoke does on the instance it runs on.
	signals.Subscribe(agent.SignalRecord, func(p string) {
		if kind, client, ok := agent.RecordSignal(p); ok && kind == KindGrant && m.live.hasClient(client) {
			go m.dropIfNotGranted(ctx, client)
		}
	})
	wake := newCoalescer()
	signals.Subscribe(agent.SignalQueue, wake.add)
	signals.OnResync(wake.addAll)
	go wake.run(ctx, func(recipients []string, all bool) { m.pushQueued(ctx, recipients, all) })
}

// dropIfNotGranted ends live delivery to client when its committed grant
// is not (or no longer) granted.
func (m *Mediator) dropIfNotGranted(ctx context.Context, client string) {
	rctx, cancel := context.WithTimeout(ctx, readThroughTimeout)
	defer cancel()
	b, err := m.store.Records.Get(rctx, KindGrant, client)
	var g Grant
	switch {
	case errors.Is(err, agent.ErrNotFound):
	case err != nil:
		return // unknown: the grant stays as it was
	case json.Unmarshal(b, &g) != nil:
		return
	}
	if g.State != GrantGranted {
		m.live.dropClient(client)
		m.log.Info("live delivery ended: mediation revoked through another instance", "client", client)
	}
}

// syncer is implemented by Signals that can wait for every signal
// committed so far (store/postgres).
type syncer interface {
	Sync(ctx context.Context) error
}

// catchUpTimeout bounds the wait of CatchUp.
const catchUpTimeout = time.Second

// CatchUp returns once a shared registry holds every grant and
// registration committed through another instance before it was called
// (the signals of those commits received and applied), so that a client
// that registered a DID through one instance and picks up through another
// is served that DID's messages. It waits at most a second; a registry
// that is not shared returns at once. The error says why it could not
// (the caller serves from the index as it is).
func (r *Registry) CatchUp(ctx context.Context) error {
	r.mu.RLock()
	fn := r.catchUp
	r.mu.RUnlock()
	if fn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	return fn(ctx)
}

// pushQueued pushes what is queued for the recipients (all: for every
// client with a live connection here) to the clients' live connections on
// this instance. The clients' queues are read in parallel, a few at a
// time: one slow read does not hold up the others' pushes. For signalled
// recipients it does not wait for the reads (pushers): a signal arriving
// meanwhile for another client is read at once rather than after the
// slowest read of the batch before it.
func (m *Mediator) pushQueued(ctx context.Context, recipients []string, all bool) {
	if !all {
		byClient := map[string][]string{}
		for _, rc := range recipients {
			if canonical, client, ok := m.registry.Route(rc); ok && m.live.hasClient(client) {
				byClient[client] = append(byClient[client], canonical)
			}
		}
		for client, rcpts := range byClient {
			m.pushers.start(ctx, client, rcpts, m.pushClient)
		}
		return
	}
	sem := make(chan struct{}, pushReaders)
	var wg sync.WaitGroup
	for _, client := range m.live.clients() {
		rcpts := m.registry.Recipients(client)
		if len(rcpts) == 0 {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			m.pushClient(ctx, client, rcpts)
		}()
	}
	wg.Wait()
}

// pushClient reads what is queued for the client's recipients and hands
// it to the client's live connections here.
func (m *Mediator) pushClient(ctx context.Context, client string, rcpts []string) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	msgs, err := m.queue.List(lctx, rcpts, m.cfg.Now(), m.live.buffer)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("live delivery of messages queued by another instance failed; they stay queued", "client", client, "err", err)
		}
		return
	}
	m.live.notifyQueued(client, msgs)
}

// pushers runs the queue reads of signalled pushes: one at a time per
// client (a client signalled again while its read runs is read once more
// after it, for the recipients signalled meanwhile), clients in parallel,
// at most pushReaders reads at once. The zero value is ready to use.
type pushers struct {
	mu   sync.Mutex
	busy map[string]map[string]bool // client → recipients signalled during its read
	sem  chan struct{}
	once sync.Once
}

func (p *pushers) start(ctx context.Context, client string, rcpts []string, read func(context.Context, string, []string)) {
	p.once.Do(func() { p.sem = make(chan struct{}, pushReaders) })
	p.mu.Lock()
	if p.busy == nil {
		p.busy = map[string]map[string]bool{}
	}
	if again, running := p.busy[client]; running {
		for _, r := range rcpts {
			again[r] = true
		}
		p.mu.Unlock()
		return
	}
	p.busy[client] = map[string]bool{}
	p.mu.Unlock()
	go func() {
		for {
			select {
			case p.sem <- struct{}{}:
			case <-ctx.Done():
				p.mu.Lock()
				delete(p.busy, client)
				p.mu.Unlock()
				return
			}
			read(ctx, client, rcpts)
			<-p.sem
			p.mu.Lock()
			again := p.busy[client]
			if len(again) == 0 {
				delete(p.busy, client)
				p.mu.Unlock()
				return
			}
			rcpts = make([]string, 0, len(again))
			for r := range again {
				rcpts = append(rcpts, r)
			}
			p.busy[client] = map[string]bool{}
			p.mu.Unlock()
		}
	}()
}

// pushReaders bounds the queue reads of pushes across instances at once.
const pushReaders = 8

// share switches the registry to shared mode (see Mediator.Share).
func (r *Registry) share(ctx context.Context, signals agent.Signals, log interface {
	Warn(msg string, args ...any)
}) {
	changed := newCoalescer()
	sy, _ := signals.(syncer)
	r.mu.Lock()
	r.shared, r.missing = true, map[string]time.Time{}
	r.catchUp = func(ctx context.Context) error {
		if sy == nil {
			return nil
		}
		if err := sy.Sync(ctx); err != nil {
			return err
		}
		return changed.flush(ctx)
	}
	r.mu.Unlock()
	signals.Subscribe(agent.SignalRecord, func(p string) {
		kind, id, ok := agent.RecordSignal(p)
		if !ok || (kind != KindGrant && kind != KindRecipient) {
			return
		}
		r.forgetMiss(kind, id)
		changed.add(p)
	})
	signals.OnResync(changed.addAll)
	go changed.run(ctx, func(keys []string, all bool) {
		if all {
			if err := r.Load(ctx); err != nil && ctx.Err() == nil {
				log.Warn("reloading the mediation grants after a reconnection failed", "err", err)
			}
			return
		}
		for _, p := range keys {
			switch kind, id, _ := agent.RecordSignal(p); kind {
			case KindGrant:
				r.refreshGrant(ctx, id)
			case KindRecipient:
				r.refreshRecipient(ctx, id)
			}
		}
	})
}

func missKey(kind, id string) string {
	if kind == KindGrant {
		return "g" + id
	}
	return "r" + id
}

func (r *Registry) forgetMiss(kind, id string) {
	r.mu.Lock()
	delete(r.missing, missKey(kind, id))
	r.mu.Unlock()
}

// missed reports whether a read-through of kind/id found nothing less than
// missTTL ago.
func (r *Registry) missed(kind, id string) bool {
	r.mu.RLock()
	until, ok := r.missing[missKey(kind, id)]
	r.mu.RUnlock()
	return ok && time.Now().Before(until)
}

// readThrough reads kind/id from the store for a lookup missing from the
// index: it returns the value (nil when there is none or the read failed)
// and remembers an absence for missTTL.
func (r *Registry) readThrough(kind, id string) []byte {
	if r.missed(kind, id) {
		return nil
	}
	r.readThroughs.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), readThroughTimeout)
	defer cancel()
	b, err := r.records.Get(ctx, kind, id)
	if errors.Is(err, agent.ErrNotFound) {
		r.mu.Lock()
		if len(r.missing) >= maxMissing {
			clear(r.missing)
		}
		r.missing[missKey(kind, id)] = time.Now().Add(missTTL)
		r.mu.Unlock()
		return nil
	}
	if err != nil {
		return nil
	}
	return b
}

// readGrant reads client's grant through to the store and indexes it.
func (r *Registry) readGrant(client string) *Grant {
	b := r.readThrough(KindGrant, client)
	if b == nil {
		return nil
	}
	g := new(Grant)
	if json.Unmarshal(b, g) != nil {
		return nil
	}
	r.mu.Lock()
	if _, ok := r.grants[client]; !ok { // a refresh may have been quicker
		r.grants[client] = g
	}
	r.mu.Unlock()
	return g
}

// readRecipient reads a registration through to the store and indexes it;
// it returns the record too.
func (r *Registry) readRecipient(canonical string) (*Recipient, []byte) {
	b := r.readThrough(KindRecipient, canonical)
	if b == nil {
		return nil, nil
	}
	var rc Recipient
	if json.Unmarshal(b, &rc) != nil {
		return nil, nil
	}
	r.mu.Lock()
	if _, ok := r.recipients[canonical]; !ok {
		r.recipients[canonical] = rc
		r.raw[canonical] = b
		if r.byClient[rc.ClientDID] == nil {
			r.byClient[rc.ClientDID] = map[string]bool{}
		}
		r.byClient[rc.ClientDID][canonical] = true
	}
	r.mu.Unlock()
	return &rc, b
}

// ReadThroughs counts the store reads of lookups missing from a shared
// registry's index.
func (r *Registry) ReadThroughs() int64 { return r.readThroughs.Load() }

// coalescer hands keys added from a signal listener (which must not
// block) to one worker, merging the keys added while the worker is busy.
type coalescer struct {
	mu      sync.Mutex
	keys    map[string]bool
	all     bool
	flushes []chan struct{} // closed once what was added before them is done
	wake    chan struct{}
}

func newCoalescer() *coalescer {
	return &coalescer{keys: map[string]bool{}, wake: make(chan struct{}, 1)}
}

func (c *coalescer) add(key string) {
	c.mu.Lock()
	c.keys[key] = true
	c.mu.Unlock()
	c.poke()
}

// addAll asks the worker for a pass over everything.
func (c *coalescer) addAll() {
	c.mu.Lock()
	c.all = true
	c.mu.Unlock()
	c.poke()
}

func (c *coalescer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// flush returns once the worker has handled every key added before it was
// called, or ctx ends.
func (c *coalescer) flush(ctx context.Context) error {
	done := make(chan struct{})
	c.mu.Lock()
	c.flushes = append(c.flushes, done)
	c.mu.Unlock()
	c.poke()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run calls fn with the keys added since its last call, or all, until ctx
// ends.
func (c *coalescer) run(ctx context.Context, fn func(keys []string, all bool)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		c.mu.Lock()
		keys := make([]string, 0, len(c.keys))
		for k := range c.keys {
			keys = append(keys, k)
		}
		clear(c.keys)
		all := c.all
		c.all = false
		flushes := c.flushes
		c.flushes = nil
		c.mu.Unlock()
		if len(keys) > 0 || all {
			fn(keys, all)
		}
		for _, done := range flushes {
			close(done)
		}
	}
}
