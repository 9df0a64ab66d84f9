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
	"github.com/agentd/agentd/store/bolt"
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
func buildMediator(ctx context.Context, cfg config.Config, db *bolt.DB, identity *agent.Identity, ownDID string,
	router *agent.Router, messenger *agent.Messenger, outbox *agent.Outbox, m *metrics.Metrics, log *slog.Logger) (*mediatorParts, error) {
	mc := cfg.Mediator
	if !mc.Enabled {
		return nil, nil
	}
	rec, err := mediation.LoadRoutingDID(ctx, db.Records(), identity, cfg.Endpoint())
	if err != nil {
		return nil, fmt.Errorf("mediator routing DID: %w", err)
	}
	policy, err := mediation.ParsePolicy(mc.Policy)
	if err != nil {
		return nil, fmt.Errorf("mediator.policy: %w", err)
	}
	med := mediation.NewMediator(mediation.Config{
		DID: ownDID, RoutingDID: rec.DID, Policy: policy, AllowList: mc.AllowList, Relay: mc.Relay,
		MaxMessageBytes: mc.MaxMessageBytes, Limits: agent.QueueLimits{MaxMessages: mc.QuotaMessages, MaxBytes: mc.QuotaBytes},
		MessageTTL: mc.MessageTTL, MaxRecipients: mc.MaxRecipients, MaxDeliveryMessages: mc.MaxDelivery,
		InvitationTTL: mc.InvitationTTL, Logger: log,
	}, mediation.Deps{
		Records: db.Records(), Queue: db.Queue(), Packer: messenger,
		Relayer: relayer{messenger, outbox}, Replay: db.ReplayCache(),
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

// relayer joins the messenger's PrepareRelay and the outbox's Enqueue.
type relayer struct {
	m *agent.Messenger
	o *agent.Outbox
}

// PrepareRelay implements mediation.Relayer.
func (r relayer) PrepareRelay(ctx context.Context, packed []byte, next string) (*agent.OutboundMessage, error) {
	return r.m.PrepareRelay(ctx, packed, next)
}

// Enqueue implements mediation.Relayer.
func (r relayer) Enqueue(ctx context.Context, m *agent.OutboundMessage) error {
	return r.o.Enqueue(ctx, m)
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
	return d.ws.config(d.cfg.Mediator)
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

// grantView is the operator's view of a grant.
type grantView struct {
	mediation.Grant
	Recipients []mediation.Recipient `json:"recipients,omitempty"`
	RecipientN int                   `json:"recipient_count"`
	Queue      *queueView            `json:"queue,omitempty"`
}

type queueView struct {
	Messages int       `json:"messages"`
	Bytes    int64     `json:"bytes"`
	Oldest   time.Time `json:"oldest,omitzero"`
	Newest   time.Time `json:"newest,omitzero"`
}

// MediationGrants implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) MediationGrants(ctx context.Context, after string, limit int) (any, error) {
	reg := a.med.Registry()
	out := []grantView{}
	for _, g := range reg.Grants(after, limit) {
		out = append(out, grantView{Grant: g, RecipientN: len(reg.Recipients(g.ClientDID))})
	}
	return out, nil
}

// MediationGrant implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) MediationGrant(ctx context.Context, clientDID string) (any, error) {
	reg := a.med.Registry()
	g := reg.Grant(agent.DIDOf(clientDID))
	if g.State == mediation.GrantNone {
		return nil, fmt.Errorf("mediation grant %s: %w", clientDID, agent.ErrNotFound)
	}
	regs := reg.Registrations(g.ClientDID)
	st, err := a.queue.Stats(ctx, reg.Recipients(g.ClientDID))
	if err != nil {
		return nil, err
	}
	return grantView{Grant: g, Recipients: regs, RecipientN: len(regs),
		Queue: &queueView{Messages: st.Messages, Bytes: st.Bytes, Oldest: st.Oldest, Newest: st.Newest}}, nil
}

// GrantMediation implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) GrantMediation(ctx context.Context, clientDID string) (any, error) {
	g, err := a.med.GrantTo(ctx, clientDID)
	if err != nil {
		return nil, err
	}
	return grantView{Grant: g}, nil
}

// RevokeMediation implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) RevokeMediation(ctx context.Context, clientDID string) error {
	return a.med.Revoke(ctx, clientDID)
}

// MediationQueue implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) MediationQueue(ctx context.Context) (any, error) {
	t, err := a.queue.Totals(ctx)
	if err != nil {
		return nil, err
	}
	med := a.med
	granted, revoked, recipients := med.Registry().Counts()
	hs := med.Live().Stats()
	return map[string]any{
		"routing_did": a.routingDID, "policy": a.policy,
		"messages": t.Messages, "bytes": t.Bytes, "recipients_with_messages": t.Recipients,
		"clients": granted, "revoked": revoked, "recipients": recipients,
		"live_sessions": hs.Sessions, "websockets": a.ws.open.Load(),
		"pushed": hs.Pushed, "push_skipped": hs.Skipped, "push_failed": hs.Failed,
	}, nil
}

// mediationGoalCode is the goal code of mediation invitations.
const mediationGoalCode = "request-mediate"

// CreateMediationInvitation implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) CreateMediationInvitation(ctx context.Context) (any, string, error) {
	med := a.med
	inv, err := a.oob.Create(ctx, a.ownDID, oob.WithGoal(mediationGoalCode, "Request mediation"),
		oob.WithExpiry(time.Now().Add(med.InvitationTTL())))
	if err != nil {
		return nil, "", err
	}
	if _, err := med.RecordInvitation(ctx, inv.ID); err != nil {
		return nil, "", agent.Wrap(agent.CodeMe, err, "could not record the invitation")
	}
	return inv, inv.URL(a.invitationBase), nil
}
