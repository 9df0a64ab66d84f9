package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/protocols/mediation"
	"github.com/agentd/agentd/protocols/oob"
	httptransport "github.com/agentd/agentd/transport/http"
)

// buildMediationClient sets up the agent as a mediation client from the
// mediation_client section, or returns nil when no invitation is set. Its
// requests come from the agent's own DID (ownDID) and go over the HTTP
// transport's client side.
func buildMediationClient(ctx context.Context, cfg config.Config, records agent.Records, identity *agent.Identity, ownDID string,
	resolver did.Resolver, keys *did.KeyResolver, messenger *agent.Messenger, router *agent.Router, log *slog.Logger) (*mediation.ClientLoop, error) {
	mc := cfg.MediationClient
	if mc.Invitation == "" {
		return nil, nil
	}
	inv, err := oob.Parse(mc.Invitation)
	if err != nil {
		return nil, fmt.Errorf("mediation_client.invitation: %w", err)
	}
	v := mediation.V3
	if mc.Version == "2.0" {
		v = mediation.V2
	}
	mediator := agent.DIDOf(inv.From)
	hc := httptransport.NewPeer("agentd/" + Version)
	return mediation.NewClientLoop(ctx, mediation.ClientLoopConfig{
		Client:       mediation.Client{DID: ownDID, Mediator: mediator, Version: v},
		InvitationID: inv.ID, PollInterval: mc.PollInterval,
		Records: records, Identity: identity, Resolver: resolver, Keys: keys,
		Encrypter: messenger, Receiver: router,
		HTTP: hc,
		DialLive: func(ctx context.Context, endpoint string) (mediation.LiveConn, error) {
			conn, err := hc.DialWebSocket(ctx, endpoint)
			if err != nil {
				return nil, err
			}
			return conn, nil
		},
		Logger: log.With("component", "mediation-client", "mediator", mediator),
	})
}
