// Package daemon wires agentd together from its configuration: the store, the
// agent's identity, the resolvers, the router with its protocols, the outbox
// and the HTTP and mail transports. It holds wiring, the translation of the
// configuration into the parts' settings, and lifecycle (Start, Shutdown,
// Banner); behaviour lives in the packages it wires. cmd/agentd only parses
// the configuration and calls Run; tests start whole daemons through New.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"github.com/agentd/agentd/internal/qrterm"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/metrics"
	"github.com/agentd/agentd/internal/netguard"
	"github.com/agentd/agentd/internal/ratelimit"
	"github.com/agentd/agentd/protocols/credstore"
	"github.com/agentd/agentd/protocols/discoverfeatures"
	"github.com/agentd/agentd/protocols/mediation"
	"github.com/agentd/agentd/protocols/oob"
	"github.com/agentd/agentd/protocols/privado"
	"github.com/agentd/agentd/protocols/provecontrol"
	"github.com/agentd/agentd/protocols/reportproblem"
	"github.com/agentd/agentd/protocols/trustping"
	"github.com/agentd/agentd/protocols/users"
	httptransport "github.com/agentd/agentd/transport/http"
)

// Version is reported in the User-Agent of outbound requests.
const Version = "0.1.0"

// Daemon is a running agent: everything opened from one configuration.
type Daemon struct {
	cfg      config.Config
	log      *slog.Logger
	db       backend
	identity *agent.Identity
	record   *identityRecord
	resolver did.Resolver
	router   *agent.Router
	outbox   *agent.Outbox
	store    agent.Store
	metrics  *metrics.Metrics
	ping     *trustping.Service
	discover *discoverfeatures.Service
	oob      *oob.Service
	accept   *oob.Acceptor
	handler  http.Handler
	token    string
	mail     *mailTransport
	// mediator is the mediator, when mediator.enabled (mediator.go).
	mediator *mediatorParts
	// client is the mediation client, when mediation_client.invitation is
	// set (mediation_client.go).
	client *mediation.ClientLoop
	// ws tracks the WebSockets of the HTTP listener.
	ws *webSockets
	// provecontrol is the Prove Control protocol (provecontrol.go).
	provecontrol *proveControlParts
	// iden3 is the iden3 verifier, when iden3.resolvers are set (iden3.go).
	iden3 *iden3Parts
	// users are the user accounts, when users.enabled and the agent sends
	// mail (users.go).
	users *users.Service
	// privado is the proof-request service for exchanges, when
	// privado.enabled (privado.go).
	privado *privado.Service
	// waiters are the shared waiters (store.driver postgres), swept of
	// unclaimed answers; nil otherwise.
	waiters *agent.Waiters
	// stopShared ends the background work of share.
	stopShared context.CancelFunc
	// aip are the cloud-agent services, when aip.enabled (aip.go).
	aip *aipParts
	// hooks are the operator's webhooks, one outbox transport.
	hooks *httptransport.Webhooks

	listener net.Listener
	// stopPprof stops the profiling listener (admin.pprof_addr), if any.
	stopPprof func(context.Context)
	server    *http.Server
	wg        sync.WaitGroup
	cancel    context.CancelFunc
}

// New opens the data directory and builds the agent. It does not listen yet;
// call Start. Close releases what New opened.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Daemon, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	db, err := openBackend(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, db: db}
	if err := d.build(ctx); err != nil {
		if d.stopShared != nil {
			d.stopShared()
		}
		db.Close()
		return nil, err
	}
	return d, nil
}

// build constructs the agent, each part after the parts it is given.
func (d *Daemon) build(ctx context.Context) (err error) {
	cfg, records := d.cfg, d.db.Records()
	if d.token, err = adminToken(cfg); err != nil {
		return err
	}
	ks, err := d.db.Keys()
	if err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	d.identity = agent.NewIdentity(ks)
	if d.record, err = loadIdentity(ctx, agent.Store{Records: records, Committer: d.db}, d.identity, cfg.Endpoint(), cfg.WebSocketEndpoint(), cfg.Email.Address, cfg.DID.KeyAgreement, d.log); err != nil {
		return err
	}
	d.resolver = newResolver(cfg)
	keyResolver := did.NewKeyResolver(d.resolver)
	d.metrics = metrics.New()
	d.metrics.WatchOutbox(d.db.Outbox())
	d.metrics.WatchStore(d.db.WriteFailures, func() bool { err, _ := d.db.WriteFailure(); return err != nil })
	d.metrics.WatchCommits(d.db.CommitStats)
	if j, ok := d.db.(journaled); ok {
		d.metrics.WatchJournal(j.JournalFigures)
	}
	if p, ok := d.db.(pooled); ok {
		d.metrics.WatchPool(p.PoolFigures)
	}
	d.outbox = buildOutbox(cfg, d.db.Outbox(), d.metrics, d.log)
	d.hooks = &httptransport.Webhooks{}
	d.outbox.Handle("webhook+https", d.hooks)
	d.outbox.Handle("webhook+http", d.hooks)
	d.store = agent.Store{Records: records, Committer: d.db, Wake: d.outbox.Wake,
		OutboxLimits: agent.OutboxLimits{MaxPending: cfg.Outbox.MaxPending, MaxPendingPerDestination: cfg.Outbox.MaxPendingPerDestination}}
	messenger := &agent.Messenger{Identity: d.identity, Resolver: d.resolver, Keys: keyResolver, Store: d.store,
		Schemes: messengerSchemes(cfg)}
	d.router = agent.NewRouter(agent.RouterConfig{
		Identity: d.identity, Keys: keyResolver, Store: d.store, Replay: d.db.ReplayCache(), Messenger: messenger,
		ReplayWindow: cfg.Replay.Window, Observer: d.metrics, Logger: d.log.With("component", "router"),
		SenderLimit: limiter(cfg.Limits.SenderRate, cfg.Limits.SenderBurst, cfg.Limits.MaxKeys),
		Attribute:   d.attribution(cfg),
	})
	messenger.Signs = d.router.Signs
	if d.mail, err = buildEmail(cfg, d.router, messenger, d.outbox, records, sharedLeases(d.db), d.metrics, d.log); err != nil {
		return err
	}
	waiters := &agent.Waiters{}
	plog := d.log.With("component", "protocol")
	d.ping = trustping.New(messenger, waiters, plog)
	d.discover = discoverfeatures.New(d.router, messenger, waiters, plog)
	d.oob = oob.New(records, plog)
	d.accept = oob.NewAcceptor(oob.AcceptorConfig{Service: d.oob, Resolver: d.resolver, Inbound: vouched{d.router}, Logger: d.log})
	d.router.Register(d.ping.Protocol())
	d.router.Register(d.discover.Protocol())
	d.router.Register(reportproblem.New(waiters, plog).Protocol())
	if d.mediator, err = buildMediator(ctx, cfg, d.db, d.identity, d.record.DID, d.router, messenger, d.store, d.metrics, d.log); err != nil {
		return err
	}
	if d.client, err = buildMediationClient(ctx, cfg, records, d.identity, d.record.DID, d.resolver, keyResolver, messenger, d.router, d.log); err != nil {
		return err
	}
	if d.aip, err = buildAIP(cfg, aipDeps{store: d.store, messenger: messenger, oob: d.oob, resolver: d.resolver,
		myDID: func() string { return d.publicDID().get() }, hooks: d.hooks, router: d.router,
		identity: d.identity, authKID: firstOf(d.record.AuthKID),
		sealer: func() (credstore.Sealer, error) { return d.db.Sealer() }, leases: leases(d.db)}, d.log); err != nil {
		return err
	}
	var held provecontrol.HeldCredentials
	if d.aip != nil {
		held = d.aip.store
	}
	if d.provecontrol, err = buildProveControl(cfg, d.identity, messenger, d.store, d.resolver, d.router, waiters, held, plog, d.log); err != nil {
		return err
	}
	if err := adoptProveControlCredentials(ctx, d.provecontrol, d.aip, d.store); err != nil {
		return fmt.Errorf("prove control credentials into the credential store: %w", err)
	}
	if d.iden3, err = buildIden3(cfg, d.store, d.hooks, d.metrics, d.log); err != nil {
		return err
	}
	if d.users, err = buildUsers(cfg, d.store, keyResolver, d.router, d.log); err != nil {
		return err
	}
	if d.privado, err = buildPrivado(cfg, d.db, d.store, d.outbox, d.users, d.iden3, d.log); err != nil {
		return err
	}
	wrapAIP(d.aip, d.router) // after every protocol is registered
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	d.stopShared = stop
	d.share(sctx, waiters)
	d.ws = newWebSockets()
	proxies, err := httptransport.ParseTrustedProxies(cfg.HTTP.TrustedProxies)
	if err != nil {
		return fmt.Errorf("http.trusted_proxies: %w", err)
	}
	d.handler = proxies.Wrap(httptransport.NewHandler(httptransport.Config{
		Receiver: d.router, EndpointPath: config.EndpointPath, MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		Public: d, AdminToken: d.token, MetricsPublic: cfg.Admin.MetricsPublic,
		Metrics: d.metrics, Logger: d.log.With("component", "http"), Health: health(d.db),
		WebSocket: d.webSocketConfig(), Features: d.httpFeatures(),
		ClientLimit:   limiter(cfg.Limits.ClientRate, cfg.Limits.ClientBurst, cfg.Limits.MaxKeys),
		OnRateLimited: d.metrics.RateLimited,
	}))
	return nil
}

// firstOf is the first of ids, or "".
func firstOf(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// vouched hands the messages of invitations the operator accepts to the
// router as messages the operator vouches for: their replies may go
// through the outbox although they are plaintext.
type vouched struct{ r *agent.Router }

// Receive implements oob.Inbound.
func (v vouched) Receive(ctx context.Context, transport string, raw []byte) (*agent.Reply, error) {
	return v.r.ReceiveVouched(ctx, transport, raw)
}

// limiter is a rate limiter of perMinute a minute with bursts of burst, or
// nil (no limit) when perMinute is 0.
func limiter(perMinute, burst, maxKeys int) agent.Limiter {
	if perMinute <= 0 {
		return nil
	}
	return ratelimit.New(perMinute, burst, maxKeys)
}

// buildOutbox is the outbox from the outbox section, delivering to http(s)
// endpoints (mailto: is added by buildEmail).
func buildOutbox(cfg config.Config, store agent.OutboxStore, m *metrics.Metrics, log *slog.Logger) *agent.Outbox {
	o := &agent.Outbox{
		Store: store,
		Policy: agent.RetryPolicy{Base: cfg.Outbox.BaseDelay, Max: cfg.Outbox.MaxDelay, Jitter: 0.2,
			MaxAttempts: cfg.Outbox.MaxAttempts},
		Observer: m, Logger: log.With("component", "outbox"),
		Workers: cfg.Outbox.Workers, Timeout: cfg.Outbox.Timeout,
	}
	sender := httptransport.NewSender("agentd/"+Version, netguard.Policy{AllowPrivate: cfg.Outbox.AllowPrivate})
	o.Handle("http", sender)
	o.Handle("https", sender)
	return o
}

// messengerSchemes are the endpoint schemes the agent sends to, in order of
// preference: https and http, and mailto when it sends mail (email.address).
func messengerSchemes(cfg config.Config) []string {
	s := []string{"https", "http"}
	if cfg.Email.Address != "" {
		s = append(s, "mailto")
	}
	return s
}

// DID returns the agent's published DID: its own, or the DID routed through
// its mediator once mediation is set up (mediation_client).
func (d *Daemon) DID() string { return d.publicDID().get() }

// publicDID is the DID the agent publishes (GET /did, the invitation, the
// banner): the mediated DID once mediation is set up (client), else its
// own.
type publicDID struct {
	own    string
	client *mediation.ClientLoop
}

func (p publicDID) get() string {
	if p.client != nil {
		if m := p.client.MediatedDID(); m != "" {
			return m
		}
	}
	return p.own
}

func (d *Daemon) publicDID() publicDID { return publicDID{own: d.record.DID, client: d.client} }

// Handler returns the HTTP handler of all routes (for tests that serve it themselves).
func (d *Daemon) Handler() http.Handler { return d.handler }

// AdminToken returns the admin API bearer token.
func (d *Daemon) AdminToken() string { return d.token }

// Addr returns the address the HTTP listener is bound to, after Start.
func (d *Daemon) Addr() string {
	if d.listener == nil {
		return ""
	}
	return d.listener.Addr().String()
}

// DIDDocument returns the agent's DID and its document; it serves GET /did.
func (d *Daemon) DIDDocument(ctx context.Context) (string, *did.Doc, error) {
	id := d.publicDID().get()
	doc, err := d.resolver.Resolve(ctx, id)
	if err != nil {
		return "", nil, err
	}
	return id, doc, nil
}

// Invitation returns the agent's standing Out-of-Band invitation; it serves GET /invitation.
func (d *Daemon) Invitation(ctx context.Context) (httptransport.Invitation, string, error) {
	inv, err := d.oob.Standing(ctx, d.publicDID().get())
	if err != nil {
		return httptransport.Invitation{}, "", err
	}
	return invitationOut(inv), inv.URL(d.cfg.Endpoint()), nil
}

// Start listens on the configured address and starts the background work
// (outbox delivery, sweeps, the mediation client).
func (d *Daemon) Start(ctx context.Context) error {
	raw, err := net.Listen("tcp", d.cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("http.addr: %w", err)
	}
	// Caps on open connections (http.max_connections, _per_ip): one client
	// cannot take them all.
	ln := httptransport.LimitListener(raw, d.cfg.HTTP.MaxConnections, d.cfg.HTTP.MaxConnectionsPerIP)
	d.listener = ln
	if err := d.mail.listen(); err != nil {
		ln.Close()
		return err
	}
	if d.cfg.Admin.PprofAddr != "" {
		if d.stopPprof, err = servePprof(d.cfg.Admin.PprofAddr, d.log.With("component", "pprof")); err != nil {
			ln.Close()
			return err
		}
	}
	d.server = &http.Server{Handler: d.handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	d.server.RegisterOnShutdown(d.ws.closeAll)
	d.spawn(func() {
		if err := d.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server stopped", "err", err)
		}
	})
	d.spawn(func() { d.outbox.Run(bg) })
	d.spawn(func() { watchStorage(bg, d.db, d.log.With("component", "store")) })
	d.mail.serve(bg, d.spawn)
	if d.client != nil {
		d.spawn(func() { d.client.Run(bg) })
	}
	d.startSweeps(bg)
	d.log.Info("agentd listening", "addr", ln.Addr().String(), "endpoint", d.cfg.Endpoint(), "did", d.record.DID)
	return nil
}

// spawn runs f in the background; Shutdown waits for it.
func (d *Daemon) spawn(f func()) {
	d.wg.Add(1)
	go func() { defer d.wg.Done(); f() }()
}

// sweepOnce forgets expired replay-cache entries, and deletes dead letters
// older than outbox.dead_retention (once an hour: startSweeps).
func (d *Daemon) sweepOnce(ctx context.Context) {
	{
		if n, err := d.db.ReplayCache().Sweep(ctx, time.Now()); err != nil && ctx.Err() == nil {
			d.log.Warn("replay cache sweep failed", "err", err)
		} else if n > 0 {
			d.log.Debug("replay cache swept", "removed", n)
		}
		if keep := d.cfg.Outbox.DeadRetention; keep > 0 {
			if n, err := d.db.Outbox().PurgeDeadBefore(ctx, time.Now().Add(-keep)); err != nil && ctx.Err() == nil {
				d.log.Warn("purging old dead letters failed", "err", err)
			} else if n > 0 {
				d.log.Info("old dead letters purged", "removed", n, "retention", keep)
			}
		}
	}
}

// Shutdown stops accepting connections, waits for in-flight requests up to the
// configured timeout, stops background work and closes the store.
func (d *Daemon) Shutdown(ctx context.Context) error {
	var errs []error
	if d.server != nil {
		sctx, cancel := context.WithTimeout(ctx, d.cfg.HTTP.ShutdownTimeout)
		if err := d.server.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		cancel()
	}
	if err := d.mail.stop(ctx); err != nil {
		errs = append(errs, err)
	}
	d.ws.shutdown()
	if d.stopPprof != nil {
		d.stopPprof(ctx)
	}
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
	d.aip.close()
	if d.stopShared != nil {
		d.stopShared()
	}
	if err := d.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the database: %w", err))
	}
	return errors.Join(errs...)
}

// Banner writes what an operator needs on start: the DID, the invitation URL
// and its QR code, and where the admin token is.
func (d *Daemon) Banner(ctx context.Context, w io.Writer) error {
	inv, err := d.oob.Standing(ctx, d.publicDID().get())
	if err != nil {
		return err
	}
	url := inv.URL(d.cfg.Endpoint())
	fmt.Fprintf(w, "\nagentd %s\n  DID:         %s\n  endpoint:    %s\n  invitation:  %s\n", Version, d.publicDID().get(), d.cfg.Endpoint(), url)
	d.mail.banner(w)
	if d.cfg.Admin.Token == "" {
		path := d.cfg.Admin.TokenFile
		if path == "" {
			path = filepath.Join(d.cfg.DataDir, "admin.token")
		}
		fmt.Fprintf(w, "  admin token: in %s\n", path)
	}
	if q, err := qrterm.Render(url); err == nil {
		fmt.Fprintf(w, "\nScan to connect:\n%s\n", q)
	} else {
		fmt.Fprintf(w, "(invitation too long for a QR code: %v)\n", err)
	}
	return nil
}
