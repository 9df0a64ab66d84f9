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
	publicDID      func() string
	invitationBase string
	outboxStore    agent.OutboxStore
	outbox         *agent.Outbox
}

// admin returns the admin API.
func (d *Daemon) admin() *admin {
	return &admin{ping: d.ping, discover: d.discover, oob: d.oob, accept: d.accept, publicDID: d.publicDID,
		invitationBase: d.cfg.Endpoint(), outboxStore: d.db.Outbox(), outbox: d.outbox}
}

func (a *admin) Ping(ctx context.Context, to string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return a.ping.Ping(ctx, to)
}

func (a *admin) Discover(ctx context.Context, to, match string) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return a.discover.Query(ctx, to, discoverfeatures.Query{FeatureType: discoverfeatures.FeatureProtocol, Match: match})
}

func (a *admin) CreateInvitation(ctx context.Context, goalCode, goal string) (any, string, error) {
	var opts []oob.Option
	if goalCode != "" || goal != "" {
		opts = append(opts, oob.WithGoal(goalCode, goal))
	}
	inv, err := a.oob.Create(ctx, a.publicDID(), opts...)
	if err != nil {
		return nil, "", err
	}
	return inv, inv.URL(a.invitationBase), nil
}

func (a *admin) AcceptInvitation(ctx context.Context, s string) (any, error) {
	return a.accept.Accept(ctx, s)
}

func (a *admin) OutboxDepth(ctx context.Context) (int, int, error) {
	return a.outboxStore.Depth(ctx)
}

func (a *admin) DeadLetters(ctx context.Context, after string, limit int) ([]*agent.OutboundMessage, error) {
	return a.outboxStore.Dead(ctx, after, limit)
}

func (a *admin) RetryDeadLetter(ctx context.Context, id string) error {
	return a.outbox.Revive(ctx, id)
}

func (a *admin) DeleteDeadLetter(ctx context.Context, id string) error {
	return a.outboxStore.PurgeDead(ctx, id)
}
