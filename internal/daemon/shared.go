package daemon

import (
	"context"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/metrics"
	"github.com/agentd/agentd/protocols/aipevents"
	"github.com/agentd/agentd/protocols/mediation"
	"github.com/agentd/agentd/store/postgres"
)

// leases returns the backend's leases: PostgreSQL's when several
// instances may share the database, otherwise the sole instance's, which
// always leads.
func leases(db backend) agent.Leases {
	if pg, ok := db.(pgBackend); ok {
		return pg.DB
	}
	return agent.SoleLeases{}
}

// share connects the parts that cache or wait for shared state to the
// other instances on the database (store.driver postgres): the mediator's
// registry and live delivery, the waiters, and the cloud-agent events. With bbolt it does nothing.
// The background work ends with ctx.
func (d *Daemon) share(ctx context.Context, waiters *agent.Waiters) {
	pg, ok := d.db.(pgBackend)
	if !ok {
		return
	}
	sig := pg.DB.Signals()
	sig.Watch(mediation.KindGrant, mediation.KindRecipient)
	waiters.Share(d.store, sig)
	d.waiters = waiters
	if d.mediator != nil {
		d.mediator.med.Share(ctx, sig)
	}
	if d.aip != nil {
		// The cloud-agent events reach the GraphQL subscribers of every
		// instance (aipevents.Events.Share).
		sig.Watch(aipevents.KindEvent)
		d.aip.events.Share(ctx, d.store, sig, agent.NewID(), d.log.With("component", "aip"))
	}
	d.metrics.WatchShared(func() metrics.SharedFigures {
		received, reconnects := sig.Stats()
		f := metrics.SharedFigures{Connected: sig.Connected(), Received: received, Reconnects: reconnects,
			Takeovers: pg.DB.LeaseStats(), OutboxTakeovers: pg.DB.OutboxTakeovers()}
		if d.mediator != nil {
			f.ReadThroughs = d.mediator.med.Registry().ReadThroughs()
		}
		return f
	})
	d.log.Info("store: shared with other instances (signals over LISTEN/NOTIFY, leases for the sweeps)")
}

// every runs fn now and then every interval until ctx ends, on one
// instance at a time: each run first takes (or renews) the lease "sweep/"
// + name for one and a half intervals, so that the instance holding it
// keeps it while it runs, and another instance takes over within two
// intervals when it dies.
func (d *Daemon) every(ctx context.Context, name string, interval time.Duration, fn func(ctx context.Context)) {
	if interval <= 0 {
		interval = time.Minute
	}
	l := leases(d.db)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := l.Lead(ctx, "sweep/"+name, interval+interval/2)
		switch {
		case err != nil && ctx.Err() == nil:
			d.log.Warn("could not take the lease of a sweep; skipped", "sweep", name, "err", err)
		case ok:
			fn(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startSweeps starts the periodic sweeps, each on one instance at a time
// (every).
func (d *Daemon) startSweeps(bg context.Context) {
	d.spawn(func() { d.every(bg, "replay-dead-letters", time.Hour, d.sweepOnce) })
	if d.mediator != nil {
		med := d.mediator.med
		d.spawn(func() {
			d.every(bg, "mediator-queue", d.cfg.Mediator.SweepInterval, func(ctx context.Context) {
				if n, err := med.Sweep(ctx); err != nil && ctx.Err() == nil {
					d.log.Warn("mediator queue sweep failed", "err", err)
				} else if n > 0 {
					d.log.Info("expired messages removed from the mediator queue", "removed", n)
				}
			})
		})
	}
	d.spawn(func() {
		d.every(bg, "provecontrol", 10*time.Minute, func(ctx context.Context) {
			if _, err := d.provecontrol.service.Sweep(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("prove control sweep failed", "err", err)
			}
		})
	})
	if d.users != nil {
		d.spawn(func() {
			d.every(bg, "users", 10*time.Minute, func(ctx context.Context) {
				if _, err := d.users.Sweep(ctx, d.cfg.Users.Retention); err != nil && ctx.Err() == nil {
					d.log.Warn("users sweep failed", "err", err)
				}
			})
		})
	}
	if d.iden3 != nil {
		svc := d.iden3.svc
		d.spawn(func() {
			d.every(bg, "iden3", time.Minute, func(ctx context.Context) {
				if res, err := svc.Sweep(ctx); err != nil && ctx.Err() == nil {
					d.log.Warn("iden3: sweep failed", "err", err)
				} else if res.Expired+res.Deleted > 0 {
					d.log.Info("iden3: sweep", "expired", res.Expired, "deleted", res.Deleted)
				}
			})
		})
	}
	if d.privado != nil {
		d.spawn(func() {
			d.every(bg, "privado", d.cfg.Privado.SweepInterval, func(ctx context.Context) {
				if n, err := d.privado.Sweep(ctx); err != nil && ctx.Err() == nil {
					d.log.Warn("privado: sweep failed", "err", err)
				} else if n > 0 {
					d.log.Info("privado: sweep", "expired", n)
				}
			})
		})
	}
	if d.aip != nil {
		aipp := d.aip
		d.spawn(func() {
			d.every(bg, "presentproof-resume", time.Minute, func(ctx context.Context) { aipp.resume(ctx, d.log) })
		})
		d.spawn(func() {
			d.every(bg, "aip-events", time.Minute, func(ctx context.Context) {
				if _, err := aipp.events.Sweep(ctx); err != nil && ctx.Err() == nil {
					d.log.Warn("sweeping the events kept for other instances failed", "err", err)
				}
			})
		})
	}
	if d.waiters != nil {
		d.spawn(func() {
			d.every(bg, "waiter-answers", 10*time.Minute, func(ctx context.Context) {
				if _, err := d.waiters.SweepShared(ctx); err != nil && ctx.Err() == nil {
					d.log.Warn("sweeping the answers kept for other instances failed", "err", err)
				}
			})
		})
	}
}

// sharedLeases returns the leases that claim spooled mails when the
// database may be shared (PostgreSQL), or nil: a bbolt spool has one
// processor.
func sharedLeases(db backend) agent.Leases {
	if pg, ok := db.(pgBackend); ok {
		return pg.DB
	}
	return nil
}

var _ agent.Leases = (*postgres.DB)(nil)
