package daemon

import (
	"context"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/discoverfeatures"
	"github.com/agentd/agentd/protocols/oob"
	"github.com/agentd/agentd/protocols/trustping"
)

// admin implements the admin API over the daemon's services.
type admin struct {
	ping           *trustping.Service
	discover       *discoverfeatures.Service
	oob            *oob.Service
	accept         *oob.Acceptor
	publicDID      publicDID
	invitationBase string
	outboxStore    agent.OutboxStore
	outbox         *agent.Outbox
}

// admin returns the admin API.
func (d *Daemon) admin() *admin {
	return &admin{ping: d.ping, discover: d.discover, oob: d.oob, accept: d.accept, publicDID: d.publicDID(),
		invitationBase: d.cfg.Endpoint(), outboxStore: d.db.Outbox(), outbox: d.outbox}
}

// Ping sends a trust ping to a DID and returns the round trip time.
func (a *admin) Ping(ctx context.Context, to string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return a.ping.Ping(ctx, to)
}

// Discover asks a DID which protocols matching match it supports.
func (a *admin) Discover(ctx context.Context, to, match string) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return a.discover.Query(ctx, to, discoverfeatures.Query{FeatureType: discoverfeatures.FeatureProtocol, Match: match})
}

// CreateInvitation makes an invitation from the published DID.
func (a *admin) CreateInvitation(ctx context.Context, goalCode, goal string) (any, string, error) {
	var opts []oob.Option
	if goalCode != "" || goal != "" {
		opts = append(opts, oob.WithGoal(goalCode, goal))
	}
	inv, err := a.oob.Create(ctx, a.publicDID.get(), opts...)
	if err != nil {
		return nil, "", err
	}
	return inv, inv.URL(a.invitationBase), nil
}

// AcceptInvitation accepts an invitation (URL, encoded or JSON).
func (a *admin) AcceptInvitation(ctx context.Context, s string) (any, error) {
	return a.accept.Accept(ctx, s)
}

// OutboxDepth returns the numbers of pending and dead messages.
func (a *admin) OutboxDepth(ctx context.Context) (int, int, error) {
	return a.outboxStore.Depth(ctx)
}

// DeadLetters lists dead letters.
func (a *admin) DeadLetters(ctx context.Context, after string, limit int) ([]*agent.OutboundMessage, error) {
	return a.outboxStore.Dead(ctx, after, limit)
}

// RetryDeadLetter puts a dead letter back into the outbox.
func (a *admin) RetryDeadLetter(ctx context.Context, id string) error {
	return a.outbox.Revive(ctx, id)
}

// DeleteDeadLetter deletes a dead letter.
func (a *admin) DeleteDeadLetter(ctx context.Context, id string) error {
	return a.outboxStore.PurgeDead(ctx, id)
}
