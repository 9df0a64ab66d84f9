package oob

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
)

// Inbound takes the messages attached to an accepted invitation as if they
// had arrived from the inviter: agent.Router.Receive.
type Inbound interface {
	Receive(ctx context.Context, transport string, raw []byte) (*agent.Reply, error)
}

// AcceptorConfig is what an Acceptor needs.
type AcceptorConfig struct {
	// Service records the connection.
	Service *Service
	// Resolver resolves the inviter's DID, to make sure it can be reached.
	Resolver did.Resolver
	// Inbound takes the attached messages.
	Inbound Inbound
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Acceptor accepts invitations on the agent's behalf.
type Acceptor struct{ cfg AcceptorConfig }

// NewAcceptor returns an Acceptor.
func NewAcceptor(cfg AcceptorConfig) *Acceptor {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Acceptor{cfg: cfg}
}

// Accept accepts an invitation given as a URL, an encoded value or JSON
// (see Parse): it resolves the inviter's DID to make sure it can be
// reached, records the connection (Service.Accept), and hands the attached
// messages to Inbound as if they had arrived from the inviter (transport
// "oob"). A message Inbound refuses is logged, not an error.
func (a *Acceptor) Accept(ctx context.Context, s string) (Connection, error) {
	inv, err := Parse(s)
	if err != nil {
		return Connection{}, err
	}
	if _, err := a.cfg.Resolver.Resolve(ctx, agent.DIDOf(inv.From)); err != nil {
		if errors.Is(err, did.ErrUnsupportedMethod) {
			return Connection{}, agent.Wrap(agent.CodeDIDUnsupported, err, err.Error())
		}
		return Connection{}, agent.Wrap(agent.CodeDIDUnresolved, err, "cannot resolve the inviter's DID")
	}
	conn, err := a.cfg.Service.Accept(ctx, inv)
	if err != nil {
		return Connection{}, err
	}
	for _, m := range conn.Messages {
		raw, err := json.Marshal(m)
		if err != nil {
			continue
		}
		if _, err := a.cfg.Inbound.Receive(ctx, "oob", raw); err != nil {
			a.cfg.Logger.Warn("attached invitation message refused", "invitation", inv.ID, "type", m.Type, "err", err)
		}
	}
	return conn, nil
}
