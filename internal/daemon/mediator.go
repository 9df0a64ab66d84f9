package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/internal/metrics"
	"github.com/agentd/agentd/protocols/mediation"
	"github.com/agentd/agentd/protocols/oob"
	httptransport "github.com/agentd/agentd/transport/http"
)

// mediationParts is the daemon's mediator (when mediator.enabled) and
// mediation client (when mediation_client.invitation is set), and the
// WebSocket support both use.
type mediationParts struct {
	messenger *agent.Messenger
	keys      *did.KeyResolver
	mediator  *mediation.Mediator
	routing   *routingRecord
	client    *mediationClient
	// wsStop closes every WebSocket on shutdown (once: wsStopOnce); wsOpen
	// counts them.
	wsStop     chan struct{}
	wsStopOnce sync.Once
	wsOpen     atomic.Int64
}

// routingRecord is the mediator's routing DID: a did:peer:2 with one X25519
// key agreement key and the agent's DIDComm endpoint, given to clients in
// mediate-grant. Forwards are anoncrypted to its key. A new endpoint gives a
// new routing DID; the old ones stay answered, so that DIDs routed through
// them keep working.
type routingRecord struct {
	DID      string   `json:"did"`
	KID      string   `json:"kid"`
	Endpoint string   `json:"endpoint"`
	Previous []string `json:"previous,omitempty"`
}

const routingRecordID = "routing-did"

// buildMediation sets up WebSocket support, the mediator and the mediation
// client, from the mediator and mediation_client sections.
func (d *Daemon) buildMediation(ctx context.Context, messenger *agent.Messenger, keyResolver *did.KeyResolver) error {
	d.mediation.messenger, d.mediation.keys = messenger, keyResolver
	d.mediation.wsStop = make(chan struct{})
	if d.cfg.Mediator.Enabled {
		if err := d.buildMediator(ctx, messenger); err != nil {
			return err
		}
	}
	if d.cfg.MediationClient.Invitation != "" {
		if err := d.buildMediationClient(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (d *Daemon) buildMediator(ctx context.Context, messenger *agent.Messenger) error {
	cfg := d.cfg.Mediator
	ks, err := d.db.Keys()
	if err != nil {
		return err
	}
	rec, err := loadRoutingDID(ctx, d.db.Records(), ks, d.cfg.Endpoint())
	if err != nil {
		return fmt.Errorf("mediator routing DID: %w", err)
	}
	d.mediation.routing = rec
	d.identity.AddDID(rec.DID)
	for _, p := range rec.Previous {
		d.identity.AddDID(p)
	}
	policy, err := mediation.ParsePolicy(cfg.Policy)
	if err != nil {
		return fmt.Errorf("mediator.policy: %w", err)
	}
	med := mediation.NewMediator(mediation.Config{
		DID: d.record.DID, RoutingDID: rec.DID, Policy: policy, AllowList: cfg.AllowList, Relay: cfg.Relay,
		MaxMessageBytes: cfg.MaxMessageBytes, Limits: agent.QueueLimits{MaxMessages: cfg.QuotaMessages, MaxBytes: cfg.QuotaBytes},
		MessageTTL: cfg.MessageTTL, MaxRecipients: cfg.MaxRecipients, MaxDeliveryMessages: cfg.MaxDelivery,
		InvitationTTL: cfg.InvitationTTL, Logger: d.log,
	}, mediation.Deps{
		Store: d.store, Queue: d.db.Queue(), Packer: messenger,
		Relayer: messenger,
	})
	if err := med.Load(ctx); err != nil {
		return fmt.Errorf("loading mediation grants: %w", err)
	}
	for _, p := range med.Protocols() {
		d.router.Register(p)
	}
	d.mediation.mediator = med
	d.metrics.WatchMediator(func(ctx context.Context) (metrics.MediatorFigures, error) {
		t, err := d.db.Queue().Totals(ctx)
		h := med.Live().Stats()
		return metrics.MediatorFigures{Messages: t.Messages, Bytes: t.Bytes, Recipients: t.Recipients,
			LiveSessions: h.Sessions, Pushed: h.Pushed, PushSkipped: h.Skipped, PushFailed: h.Failed}, err
	})
	granted, _, recipients := med.Registry().Counts()
	d.log.Info("mediator enabled", "routing_did", rec.DID, "policy", policy, "relay", cfg.Relay, "clients", granted, "recipients", recipients)
	return nil
}

// loadRoutingDID returns the routing DID, creating it on first start and
// again when the endpoint changed.
func loadRoutingDID(ctx context.Context, records agent.Records, ks keys.Store, endpoint string) (*routingRecord, error) {
	var rec routingRecord
	raw, err := records.Get(ctx, recordKind, routingRecordID)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, fmt.Errorf("routing DID record is corrupt: %w", err)
		}
		if rec.Endpoint == endpoint {
			return &rec, nil
		}
	case errors.Is(err, agent.ErrNotFound):
	default:
		return nil, err
	}
	k, err := keys.Generate(keys.X25519, "")
	if err != nil {
		return nil, err
	}
	svc := did.Service{ID: "#didcomm", Type: did.ServiceTypeDIDCommMessaging, ServiceEndpoint: did.ServiceEndpoint{
		URI: endpoint, Accept: []string{"didcomm/v2"}, RoutingKeys: []string{},
	}}
	id, err := did.NewPeer2([]keys.PublicKey{k.PublicKey}, nil, []did.Service{svc})
	if err != nil {
		return nil, err
	}
	doc, err := did.ResolvePeer2(id)
	if err != nil {
		return nil, err
	}
	ka, err := doc.KeyAgreement()
	if err != nil || len(ka) != 1 {
		return nil, fmt.Errorf("routing DID has no key agreement key: %v", err)
	}
	k.ID = ka[0].ID
	if err := ks.Put(ctx, k); err != nil {
		return nil, err
	}
	next := &routingRecord{DID: id, KID: k.ID, Endpoint: endpoint}
	if rec.DID != "" {
		next.Previous = append([]string{rec.DID}, rec.Previous...)
	}
	b, _ := json.Marshal(next)
	if err := records.Put(ctx, recordKind, routingRecordID, b); err != nil {
		return nil, err
	}
	return next, nil
}

// webSocketConfig is the WebSocket setup of the HTTP transport: always on,
// with the mediator's keepalive settings.
func (d *Daemon) webSocketConfig() *httptransport.WebSocketConfig {
	return &httptransport.WebSocketConfig{
		PingInterval: d.cfg.Mediator.LivePingInterval, PingTimeout: d.cfg.Mediator.LivePingTimeout,
		Shutdown: d.mediation.wsStop,
		OnOpen:   func() { d.mediation.wsOpen.Add(1) },
		OnClose:  func() { d.mediation.wsOpen.Add(-1) },
	}
}

// mediatorAdmin is the mediator's admin API, or nil when it is off.
func (d *Daemon) mediatorAdmin() httptransport.MediatorAdmin {
	if d.mediation.mediator == nil {
		return nil
	}
	return &mediatorAdmin{d}
}

// serveMediation starts the background work: the queue sweeper and the
// mediation client.
func (d *Daemon) serveMediation(bg context.Context) {
	d.server.RegisterOnShutdown(d.closeWebSockets)
	if med := d.mediation.mediator; med != nil {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.sweepQueue(bg, med)
		}()
	}
	if c := d.mediation.client; c != nil {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			c.run(bg)
		}()
	}
}

// closeWebSockets closes every WebSocket (http.Server.Shutdown does not
// track them). It may be called more than once.
func (d *Daemon) closeWebSockets() {
	d.mediation.wsStopOnce.Do(func() { close(d.mediation.wsStop) })
}

// stopMediation closes the WebSockets and waits a little for their handlers
// to finish, so that the database is not closed under them.
func (d *Daemon) stopMediation() {
	if d.mediation.wsStop == nil {
		return
	}
	d.closeWebSockets()
	deadline := time.Now().Add(5 * time.Second)
	for d.mediation.wsOpen.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *Daemon) sweepQueue(ctx context.Context, med *mediation.Mediator) {
	t := time.NewTicker(d.cfg.Mediator.SweepInterval)
	defer t.Stop()
	for {
		if n, err := med.Sweep(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("mediator queue sweep failed", "err", err)
		} else if n > 0 {
			d.log.Info("expired messages removed from the mediator queue", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// mediatorAdmin implements the mediator's admin API.
type mediatorAdmin struct{ d *Daemon }

// MediationGrants implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) MediationGrants(ctx context.Context, after string, limit int) ([]httptransport.MediationGrant, error) {
	reg := a.d.mediation.mediator.Registry()
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
	reg := a.d.mediation.mediator.Registry()
	g := reg.Grant(agent.DIDOf(clientDID))
	if g.State == mediation.GrantNone {
		return httptransport.MediationGrant{}, fmt.Errorf("mediation grant %s: %w", clientDID, agent.ErrNotFound)
	}
	regs := reg.Registrations(g.ClientDID)
	st, err := a.d.db.Queue().Stats(ctx, reg.Recipients(g.ClientDID))
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
	g, err := a.d.mediation.mediator.GrantTo(ctx, clientDID)
	if err != nil {
		return httptransport.MediationGrant{}, err
	}
	return grantOut(g), nil
}

// RevokeMediation implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) RevokeMediation(ctx context.Context, clientDID string) error {
	return a.d.mediation.mediator.Revoke(ctx, clientDID)
}

// MediationQueue implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) MediationQueue(ctx context.Context) (httptransport.MediationQueue, error) {
	t, err := a.d.db.Queue().Totals(ctx)
	if err != nil {
		return httptransport.MediationQueue{}, err
	}
	med := a.d.mediation.mediator
	granted, revoked, recipients := med.Registry().Counts()
	hs := med.Live().Stats()
	return httptransport.MediationQueue{
		RoutingDID: a.d.mediation.routing.DID, Policy: a.d.cfg.Mediator.Policy,
		Messages: t.Messages, Bytes: t.Bytes, RecipientsWithMessages: t.Recipients,
		Clients: granted, Revoked: revoked, Recipients: recipients,
		LiveSessions: hs.Sessions, WebSockets: a.d.mediation.wsOpen.Load(),
		Pushed: hs.Pushed, PushSkipped: hs.Skipped, PushFailed: hs.Failed,
	}, nil
}

// mediationGoalCode is the goal code of mediation invitations.
const mediationGoalCode = "request-mediate"

// CreateMediationInvitation implements httptransport.MediatorAdmin.
func (a *mediatorAdmin) CreateMediationInvitation(ctx context.Context) (httptransport.Invitation, string, error) {
	med := a.d.mediation.mediator
	inv, err := a.d.oob.Create(ctx, a.d.record.DID, oob.WithGoal(mediationGoalCode, "Request mediation"),
		oob.WithExpiry(time.Now().Add(med.InvitationTTL())))
	if err != nil {
		return httptransport.Invitation{}, "", err
	}
	if _, err := med.RecordInvitation(ctx, inv.ID); err != nil {
		return httptransport.Invitation{}, "", agent.Wrap(agent.CodeMe, err, "could not record the invitation")
	}
	return invitationOut(inv), inv.URL(a.d.invitationBase()), nil
}

// webSocketURL turns an http(s) endpoint into the ws(s) URL of the same place.
func webSocketURL(endpoint string) (string, bool) {
	if rest, ok := strings.CutPrefix(endpoint, "https://"); ok {
		return "wss://" + rest, true
	}
	if rest, ok := strings.CutPrefix(endpoint, "http://"); ok {
		return "ws://" + rest, true
	}
	return "", false
}
