package daemon

import (
	"context"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/discoverfeatures"
)

// admin implements the admin API over the daemon's services.
type admin struct{ d *Daemon }

func (a *admin) Ping(ctx context.Context, to string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return a.d.ping.Ping(ctx, to)
}

func (a *admin) Discover(ctx context.Context, to, match string) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return a.d.discover.Query(ctx, to, discoverfeatures.Query{FeatureType: discoverfeatures.FeatureProtocol, Match: match})
}

func (a *admin) CreateInvitation(ctx context.Context, goalCode, goal string) (any, string, error) {
	inv, err := a.d.newInvitation(ctx, goalCode, goal)
	if err != nil {
		return nil, "", err
	}
	return inv, inv.URL(a.d.invitationBase()), nil
}

func (a *admin) AcceptInvitation(ctx context.Context, s string) (any, error) {
	return a.d.acceptInvitation(ctx, s)
}

func (a *admin) OutboxDepth(ctx context.Context) (int, int, error) {
	return a.d.db.Outbox().Depth(ctx)
}

func (a *admin) DeadLetters(ctx context.Context, after string, limit int) ([]*agent.OutboundMessage, error) {
	return a.d.db.Outbox().Dead(ctx, after, limit)
}

func (a *admin) RetryDeadLetter(ctx context.Context, id string) error {
	return a.d.outbox.Revive(ctx, id)
}

func (a *admin) DeleteDeadLetter(ctx context.Context, id string) error {
	return a.d.db.Outbox().PurgeDead(ctx, id)
}
