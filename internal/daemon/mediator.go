package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/metrics"
	"github.com/agentd/agentd/protocols/mediation"
	"github.com/agentd/agentd/protocols/oob"
	httptransport "github.com/agentd/agentd/transport/http"
)

// mediatorParts is the daemon's mediator (mediator.enabled) and its routing DID.
type mediatorParts struct {
	med     *mediation.Mediator
	routing *mediation.RoutingRecord
}

// buildMediator sets up the mediator from the mediator section, or returns
// nil when it is off: its routing DID, its grants, and its protocols on the
// router.
func buildMediator(ctx context.Context, cfg config.Config, db backend, identity *agent.Identity, ownDID string,
	router *agent.Router, messenger *agent.Messenger, store agent.Store, m *metrics.Metrics, log *slog.Logger) (*mediatorParts, error) {
	mc := cfg.Mediator
	if !mc.Enabled {
		return nil, nil
	}
	rec, err := mediation.LoadRoutingDIDIn(ctx, agent.Store{Records: db.Records(), Committer: db}, identity, cfg.Endpoint(), cfg.WebSocketEndpoint())
	if err != nil {
		return nil, fmt.Errorf("mediator routing DID: %w", err)
	}
	policy, err := mediation.ParsePolicy(mc.Policy)
	if err != nil {
		return nil, fmt.Errorf("mediator.policy: %w", err)
	}
	med := mediation.NewMediator(mediation.Config{
		DID: ownDID, RoutingDID: rec.DID, Policy: policy, AllowList: mc.AllowList, Relay: mc.Relay,
		MaxMessageBytes: mc.MaxMessageBytes, MaxAttachments: mc.MaxAttachments, Limits: agent.QueueLimits{MaxMessages: mc.QuotaMessages, MaxBytes: mc.QuotaBytes},
		MessageTTL: mc.MessageTTL, MaxRecipients: mc.MaxRecipients, MaxDeliveryMessages: mc.MaxDelivery,
		InvitationTTL: mc.InvitationTTL, Logger: log,
	}, mediation.Deps{
		Store: store, Queue: db.Queue(), Packer: messenger,
		Relayer: messenger,
	})
	if err := med.Load(ctx); err != nil {
		return nil, fmt.Errorf("loading mediation grants: %w", err)
	}
	for _, p := range med.Protocols() {
		router.Register(p)
	}
	queue := db.Queue()
	m.WatchMediator(func(ctx context.Context) (metrics.MediatorFigures, error) {
		t, err := queue.Totals(ctx)
		h := med.Live().Stats()
		return metrics.MediatorFigures{Messages: t.Messages, Bytes: t.Bytes, Recipients: t.Recipients,
			LiveSessions: h.Sessions, Pushed: h.Pushed, PushSkipped: h.Skipped, PushFailed: h.Failed}, err
	})
	granted, _, recipients := med.Registry().Counts()
	log.Info("mediator enabled", "routing_did", rec.DID, "policy", policy, "relay", mc.Relay, "clients", granted, "recipients", recipients)
	return &mediatorParts{med: med, routing: rec}, nil
}

// webSockets tracks the WebSockets of the HTTP listener, which
// http.Server.Shutdown does not: stop closes them all (once: stopOnce);
// open counts them.
type webSockets struct {
	stop     chan struct{}
	stopOnce sync.Once
	open     atomic.Int64
}

func newWebSockets() *webSockets { return &webSockets{stop: make(chan struct{})} }

// config is the WebSocket setup of the HTTP transport: always on, with the
// mediator's keepalive settings.
func (ws *webSockets) config(cfg config.Mediator) *httptransport.WebSocketConfig {
	return &httptransport.WebSocketConfig{
		PingInterval: cfg.LivePingInterval, PingTimeout: cfg.LivePingTimeout,
		Shutdown: ws.stop,
		OnOpen:   func() { ws.open.Add(1) },
		OnClose:  func() { ws.open.Add(-1) },
	}
}

// closeAll closes every WebSocket. It may be called more than once.
func (ws *webSockets) closeAll() {
	ws.stopOnce.Do(func() { close(ws.stop) })
}

// shutdown closes the WebSockets and waits a little for their handlers to
// finish, so that the database is not closed under them.
func (ws *webSockets) shutdown() {
	ws.closeAll()
	deadline := time.Now().Add(5 * time.Second)
	for ws.open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// webSocketConfig is the WebSocket setup of the HTTP transport.
func (d *Daemon) webSocketConfig() *httptransport.WebSocketConfig {
	wc := d.ws.config(d.cfg.Mediator)
	wc.MaxPerClient = d.cfg.HTTP.MaxWebSocketsPerIP
	return wc
}

// mediatorAdmin is the mediator's admin API, or nil when it is off.
func (d *Daemon) mediatorAdmin() httptransport.MediatorAdmin {
	if d.mediator == nil {
		return nil
	}
	return &mediatorAdmin{med: d.mediator.med, routingDID: d.mediator.routing.DID, policy: d.cfg.Mediator.Policy,
		queue: d.db.Queue(), oob: d.oob, ownDID: d.record.DID, invitationBase: d.cfg.Endpoint(), ws: d.ws}
}

// mediatorAdmin implements the mediator's admin API.
type mediatorAdmin struct {
	med            *mediation.Mediator
	routingDID     string
	policy         string
	queue          agent.QueueStore
	oob            *oob.Service
	ownDID         string
	invitationBase string
	ws             *webSockets
}

// MediationGrants implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) MediationGrants(ctx context.Context, after string, limit int) ([]httptransport.MediationGrant, error) {
	reg := a.med.Registry()
	out := []httptransport.MediationGrant{}
	for _, g := range reg.Grants(after, limit) {
		v := grantOut(g)
		v.RecipientCount = len(reg.Recipients(g.ClientDID))
		out = append(out, v)
	}
	return out, nil
}

// MediationGrant implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) MediationGrant(ctx context.Context, clientDID string) (httptransport.MediationGrant, error) {
	reg := a.med.Registry()
	g := reg.Grant(agent.DIDOf(clientDID))
	if g.State == mediation.GrantNone {
		return httptransport.MediationGrant{}, fmt.Errorf("mediation grant %s: %w", clientDID, agent.ErrNotFound)
	}
	regs := reg.Registrations(g.ClientDID)
	st, err := a.queue.Stats(ctx, reg.Recipients(g.ClientDID))
	if err != nil {
		return httptransport.MediationGrant{}, err
	}
	v := grantOut(g)
	v.Recipients, v.RecipientCount = recipientsOut(regs), len(regs)
	v.Queue = &httptransport.MediationQueueStats{Messages: st.Messages, Bytes: st.Bytes, Oldest: st.Oldest, Newest: st.Newest}
	return v, nil
}

// GrantMediation implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) GrantMediation(ctx context.Context, clientDID string) (httptransport.MediationGrant, error) {
	g, err := a.med.GrantTo(ctx, clientDID)
	if err != nil {
		return httptransport.MediationGrant{}, err
	}
	return grantOut(g), nil
}

// RevokeMediation implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) RevokeMediation(ctx context.Context, clientDID string) error {
	return a.med.Revoke(ctx, clientDID)
}

// MediationQueue implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) MediationQueue(ctx context.Context) (httptransport.MediationQueue, error) {
	t, err := a.queue.Totals(ctx)
	if err != nil {
		return httptransport.MediationQueue{}, err
	}
	med := a.med
	granted, revoked, recipients := med.Registry().Counts()
	hs := med.Live().Stats()
	return httptransport.MediationQueue{
		RoutingDID: a.routingDID, Policy: a.policy,
		Messages: t.Messages, Bytes: t.Bytes, RecipientsWithMessages: t.Recipients,
		Clients: granted, Revoked: revoked, Recipients: recipients,
		LiveSessions: hs.Sessions, WebSockets: a.ws.open.Load(),
		Pushed: hs.Pushed, PushSkipped: hs.Skipped, PushFailed: hs.Failed,
	}, nil
}

// mediationGoalCode is the goal code of mediation invitations.
const mediationGoalCode = "request-mediate"

// CreateMediationInvitation implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) CreateMediationInvitation(ctx context.Context) (httptransport.Invitation, string, error) {
	med := a.med
	inv, err := a.oob.Create(ctx, a.ownDID, oob.WithGoal(mediationGoalCode, "Request mediation"),
		oob.WithExpiry(time.Now().Add(med.InvitationTTL())))
	if err != nil {
		return httptransport.Invitation{}, "", err
	}
	if _, err := med.RecordInvitation(ctx, inv.ID); err != nil {
		return httptransport.Invitation{}, "", agent.Wrap(agent.CodeMe, err, "could not record the invitation")
	}
	return invitationOut(inv), inv.URL(a.invitationBase), nil
}
