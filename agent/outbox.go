package agent

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"
)

// Transport delivers a packed message to an endpoint URI of the schemes it
// serves. Deliver returns nil once the peer accepted the message; a
// PermanentError when retrying cannot help (the message goes to the dead
// letters at once); any other error is retried.
type Transport interface {
	Deliver(ctx context.Context, endpoint, mediaType string, payload []byte) error
}

// PermanentError marks a delivery failure that retrying cannot fix, such as an
// HTTP 4xx answer or an SMTP 5xx.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent delivery failure: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// RetryPolicy says when a failed delivery is tried again: after Base, doubling
// each attempt up to Max, with up to Jitter (a fraction, 0..1) of random
// spread; after MaxAttempts attempts the message is a dead letter.
type RetryPolicy struct {
	Base        time.Duration
	Max         time.Duration
	Jitter      float64
	MaxAttempts int
}

// DefaultRetryPolicy retries for roughly a day: 2s, 4s, ... capped at 1h, 30 attempts.
var DefaultRetryPolicy = RetryPolicy{Base: 2 * time.Second, Max: time.Hour, Jitter: 0.2, MaxAttempts: 30}

// Delay returns the wait before attempt number attempts+1, given that attempts
// attempts have failed.
func (p RetryPolicy) Delay(attempts int) time.Duration {
	d := p.Base
	for i := 1; i < attempts && d < p.Max; i++ {
		d *= 2
	}
	if d > p.Max {
		d = p.Max
	}
	if p.Jitter > 0 {
		spread := float64(d) * p.Jitter
		d += time.Duration(spread*rand.Float64()*2 - spread)
	}
	if d < 0 {
		d = 0
	}
	return d
}

// Outbox delivers queued messages through the transport registered for their
// endpoint's scheme, retrying failures under its RetryPolicy. Messages live in
// an OutboxStore, so a message handed to Enqueue survives a restart and is
// delivered at least once.
type Outbox struct {
	Store      OutboxStore
	Policy     RetryPolicy
	Observer   Observer
	Logger     *slog.Logger
	Workers    int           // concurrent deliveries; default 8
	Timeout    time.Duration // per delivery attempt; default 30s
	transports map[string]Transport
	wake       chan struct{}
	once       sync.Once
}

// Handle registers the transport for a URI scheme ("http", "https", "mailto", ...).
func (o *Outbox) Handle(scheme string, t Transport) {
	o.init()
	o.transports[scheme] = t
}

func (o *Outbox) init() {
	o.once.Do(func() {
		o.transports = map[string]Transport{}
		o.wake = make(chan struct{}, 1)
		if o.Policy == (RetryPolicy{}) {
			o.Policy = DefaultRetryPolicy
		}
		if o.Observer == nil {
			o.Observer = nopObserver{}
		}
		if o.Logger == nil {
			o.Logger = slog.Default()
		}
		if o.Workers <= 0 {
			o.Workers = 8
		}
		if o.Timeout <= 0 {
			o.Timeout = 30 * time.Second
		}
	})
}

// Enqueue stores m durably and wakes the delivery loop. It returns once m is committed.
func (o *Outbox) Enqueue(ctx context.Context, m *OutboundMessage) error {
	o.init()
	if m.ID == "" {
		m.ID = NewID()
	}
	now := time.Now()
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	if m.NextAttempt.IsZero() {
		m.NextAttempt = now
	}
	if err := o.Store.Enqueue(ctx, m); err != nil {
		return Wrap(CodeMe, err, "could not queue the message")
	}
	o.Wake()
	return nil
}

// Wake makes the delivery loop look for due messages now: call it after
// committing outbound messages through a unit of work (Store.Wake).
func (o *Outbox) Wake() {
	o.init()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Run delivers due messages until ctx is cancelled. Deliveries in flight when
// ctx ends are abandoned and stay queued, to be retried on the next start.
func (o *Outbox) Run(ctx context.Context) {
	o.init()
	for {
		n := o.deliverDue(ctx)
		if ctx.Err() != nil {
			return
		}
		if n > 0 {
			continue
		}
		wait := time.Minute
		if next, ok, err := o.Store.NextDue(ctx); err == nil && ok {
			wait = time.Until(next)
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-o.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// deliverDue attempts every due message once and returns how many it attempted.
func (o *Outbox) deliverDue(ctx context.Context) int {
	due, err := o.Store.Due(ctx, time.Now(), 256)
	if err != nil {
		if ctx.Err() == nil {
			o.Logger.Error("outbox: reading due messages failed", "err", err)
		}
		return 0
	}
	sem := make(chan struct{}, o.Workers)
	var wg sync.WaitGroup
	for _, m := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func(m *OutboundMessage) {
			defer func() { <-sem; wg.Done() }()
			o.attempt(ctx, m)
		}(m)
	}
	wg.Wait()
	return len(due)
}

func (o *Outbox) attempt(ctx context.Context, m *OutboundMessage) {
	err := o.deliver(ctx, m)
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		if derr := o.Store.Delete(ctx, m.ID); derr != nil {
			o.Logger.Error("outbox: removing delivered message failed", "id", m.ID, "err", derr)
		}
		o.Observer.MessageOut(m.MessageType, "delivered")
		o.Logger.Debug("outbox: delivered", "id", m.ID, "to", m.To, "endpoint", m.Endpoint, "attempts", m.Attempts+1)
		return
	}
	m.Attempts++
	m.LastError = err.Error()
	var perm *PermanentError
	if errors.As(err, &perm) || m.Attempts >= o.Policy.MaxAttempts {
		if kerr := o.Store.Kill(ctx, m); kerr != nil {
			o.Logger.Error("outbox: dead-lettering failed", "id", m.ID, "err", kerr)
		}
		o.Observer.MessageOut(m.MessageType, "dead")
		o.Logger.Warn("outbox: message dead-lettered", "id", m.ID, "to", m.To, "endpoint", m.Endpoint, "attempts", m.Attempts, "err", err)
		return
	}
	m.NextAttempt = time.Now().Add(o.Policy.Delay(m.Attempts))
	if rerr := o.Store.Reschedule(ctx, m); rerr != nil {
		o.Logger.Error("outbox: rescheduling failed", "id", m.ID, "err", rerr)
	}
	o.Observer.MessageOut(m.MessageType, "retry")
	o.Logger.Info("outbox: delivery failed, will retry", "id", m.ID, "to", m.To, "endpoint", m.Endpoint, "attempts", m.Attempts, "next", m.NextAttempt, "err", err)
}

func (o *Outbox) deliver(ctx context.Context, m *OutboundMessage) error {
	u, err := url.Parse(m.Endpoint)
	if err != nil {
		return &PermanentError{Err: err}
	}
	t, ok := o.transports[u.Scheme]
	if !ok {
		return &PermanentError{Err: errors.New("no transport for scheme " + u.Scheme)}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	return t.Deliver(ctx, m.Endpoint, m.MediaType, m.Payload)
}

// Revive puts a dead letter back into the outbox for immediate delivery.
func (o *Outbox) Revive(ctx context.Context, id string) error {
	o.init()
	if err := o.Store.Revive(ctx, id, time.Now()); err != nil {
		return err
	}
	o.Wake()
	return nil
}
