package daemon

import (
	"context"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/ratelimit"
	"github.com/agentd/agentd/protocols/discoverfeatures"
	"github.com/agentd/agentd/protocols/oob"
	"github.com/agentd/agentd/protocols/trustping"
	httptransport "github.com/agentd/agentd/transport/http"
)

// httpFeatures are the HTTP routes of the enabled features: the core admin
// API, the mediator's admin API (or its "not enabled" answer), and Prove
// Control's admin API and public challenge routes.
func (d *Daemon) httpFeatures() []httptransport.Feature {
	fs := []httptransport.Feature{httptransport.NewAdminAPI(d.admin())}
	if m := d.mediatorAdmin(); m != nil {
		fs = append(fs, httptransport.NewMediationAPI(m))
	} else {
		fs = append(fs, httptransport.MediationDisabled())
	}
	if pc := d.proveControlAdmin(); pc != nil {
		fs = append(fs, httptransport.NewProveControlAPI(pc))
	}
	if c := d.challengeEndpoints(); c != nil {
		fs = append(fs, httptransport.NewChallengeLinks(c))
	}
	if i := d.iden3API(); i != nil {
		var answers *ratelimit.Limiter
		if c := d.cfg.Iden3; c.AnswerRate > 0 {
			answers = ratelimit.New(c.AnswerRate, c.AnswerBurst, d.cfg.Limits.MaxKeys)
		}
		fs = append(fs, httptransport.NewIden3API(i, answers))
	}
	if d.users != nil {
		fs = append(fs, httptransport.NewUsersAPI(usersAPI{d.users}, usersAPI{d.users}))
	} else {
		fs = append(fs, httptransport.UsersDisabled())
	}
	if d.privado != nil {
		fs = append(fs, httptransport.NewPrivadoAPI(privadoAPI{d.privado}, privadoAPI{d.privado}))
	} else {
		fs = append(fs, httptransport.PrivadoDisabled())
	}
	fs = append(fs, d.aip.features(d.token, d.log)...)
	return fs
}

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

// Ping implements httptransport.AdminService.
func (a *admin) Ping(ctx context.Context, to string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return a.ping.Ping(ctx, to)
}

// Discover implements httptransport.AdminService.
func (a *admin) Discover(ctx context.Context, to, match string) ([]httptransport.Disclosure, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ds, err := a.discover.Query(ctx, to, discoverfeatures.Query{FeatureType: discoverfeatures.FeatureProtocol, Match: match})
	out := make([]httptransport.Disclosure, 0, len(ds))
	for _, d := range ds {
		out = append(out, httptransport.Disclosure{FeatureType: d.FeatureType, ID: d.ID, Roles: d.Roles})
	}
	return out, err
}

// CreateInvitation implements httptransport.AdminService: an invitation from
// the published DID.
func (a *admin) CreateInvitation(ctx context.Context, goalCode, goal string) (httptransport.Invitation, string, error) {
	var opts []oob.Option
	if goalCode != "" || goal != "" {
		opts = append(opts, oob.WithGoal(goalCode, goal))
	}
	inv, err := a.oob.Create(ctx, a.publicDID.get(), opts...)
	if err != nil {
		return httptransport.Invitation{}, "", err
	}
	return invitationOut(inv), inv.URL(a.invitationBase), nil
}

// AcceptInvitation implements httptransport.AdminService.
func (a *admin) AcceptInvitation(ctx context.Context, s string) (httptransport.Connection, error) {
	c, err := a.accept.Accept(ctx, s)
	return httptransport.Connection{InvitationID: c.InvitationID, TheirDID: c.TheirDID, GoalCode: c.GoalCode,
		Goal: c.Goal, Accept: c.Accept, AcceptedAt: c.AcceptedAt}, err
}

// OutboxDepth implements httptransport.AdminService.
func (a *admin) OutboxDepth(ctx context.Context) (int, int, error) {
	return a.outboxStore.Depth(ctx)
}

// DeadLetters implements httptransport.AdminService.
func (a *admin) DeadLetters(ctx context.Context, after string, limit int) ([]*agent.OutboundMessage, error) {
	return a.outboxStore.Dead(ctx, after, limit)
}

// RetryDeadLetter implements httptransport.AdminService.
func (a *admin) RetryDeadLetter(ctx context.Context, id string) error {
	return a.outbox.Revive(ctx, id)
}

// DeleteDeadLetter implements httptransport.AdminService.
func (a *admin) DeleteDeadLetter(ctx context.Context, id string) error {
	return a.outboxStore.PurgeDead(ctx, id)
}
