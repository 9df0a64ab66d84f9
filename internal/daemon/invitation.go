package daemon

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/protocols/oob"
)

// standingInvitationID is the record holding the id of the agent's standing
// invitation, the one printed at start and served at GET /invitation. It stays
// the same across restarts until the agent's DID changes.
const standingInvitationID = "standing-invitation"

func (d *Daemon) standingInvitation(ctx context.Context) (oob.Invitation, error) {
	raw, err := d.db.Records().Get(ctx, recordKind, standingInvitationID)
	if err == nil {
		var id string
		if json.Unmarshal(raw, &id) == nil {
			inv, err := d.oob.Invitation(ctx, id)
			if err == nil && inv.From == d.publicDID() {
				return inv, nil
			}
		}
	} else if !errors.Is(err, agent.ErrNotFound) {
		return oob.Invitation{}, err
	}
	inv, err := d.oob.Create(ctx, d.publicDID(), oob.WithGoal("connect", "Connect with this agent"))
	if err != nil {
		return oob.Invitation{}, err
	}
	b, _ := json.Marshal(inv.ID)
	if err := d.db.Records().Put(ctx, recordKind, standingInvitationID, b); err != nil {
		return oob.Invitation{}, err
	}
	return inv, nil
}

func (d *Daemon) newInvitation(ctx context.Context, goalCode, goal string) (oob.Invitation, error) {
	var opts []oob.Option
	if goalCode != "" || goal != "" {
		opts = append(opts, oob.WithGoal(goalCode, goal))
	}
	return d.oob.Create(ctx, d.publicDID(), opts...)
}

// acceptInvitation accepts an invitation (URL or JSON), resolves the inviter's
// DID to make sure it can be reached, and processes attached messages as if
// they had arrived from the inviter.
func (d *Daemon) acceptInvitation(ctx context.Context, s string) (oob.Connection, error) {
	inv, err := oob.Parse(s)
	if err != nil {
		return oob.Connection{}, err
	}
	if _, err := d.resolver.Resolve(ctx, agent.DIDOf(inv.From)); err != nil {
		if errors.Is(err, did.ErrUnsupportedMethod) {
			return oob.Connection{}, agent.Wrap(agent.CodeDIDUnsupported, err, err.Error())
		}
		return oob.Connection{}, agent.Wrap(agent.CodeDIDUnresolved, err, "cannot resolve the inviter's DID")
	}
	conn, err := d.oob.Accept(ctx, inv)
	if err != nil {
		return oob.Connection{}, err
	}
	for _, m := range conn.Messages {
		raw, err := json.Marshal(m)
		if err != nil {
			continue
		}
		if _, err := d.router.Receive(ctx, "oob", raw); err != nil {
			d.log.Warn("attached invitation message refused", "invitation", inv.ID, "type", m.Type, "err", err)
		}
	}
	return conn, nil
}

// newResolver builds the DID resolver: did:peer and did:key always, did:web
// when enabled, behind a cache.
func newResolver(cfg config.Config) did.Resolver {
	var web *did.WebResolver
	if cfg.DID.WebResolve {
		web = &did.WebResolver{Timeout: cfg.DID.WebTimeout}
	}
	reg := did.NewDefaultRegistry(nil, web)
	if !cfg.DID.WebResolve {
		reg.Register("web", nil)
	}
	return did.NewCache(reg, did.CacheOptions{TTL: cfg.DID.CacheTTL, MaxEntries: cfg.DID.CacheSize})
}
