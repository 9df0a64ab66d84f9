package main

import (
	"context"
	"fmt"

	httptransport "github.com/agentd/agentd/transport/http"
)

const mediationUsage = `  mediation grants            list mediation grants (mediator)
  mediation show DID          show a client's grant, recipient DIDs and queue
  mediation grant DID         grant mediation to DID whatever the policy
  mediation revoke DID        revoke DID's mediation and drop its queued messages
  mediation queue             show the queue, clients and live connections
  mediation invite            make a mediation invitation (invitation policy; one grant each)
`

// mediation runs the mediation subcommands over the admin API and returns
// the answer to print, if any.
func (c *client) mediation(ctx context.Context, rest []string) (any, error) {
	if len(rest) == 0 {
		return nil, fmt.Errorf("mediation: missing subcommand (grants, show, grant, revoke, queue, invite)")
	}
	arg := func() (string, error) {
		if len(rest) < 2 {
			return "", fmt.Errorf("mediation %s: missing DID", rest[0])
		}
		return rest[1], nil
	}
	switch rest[0] {
	case "grants":
		return value(c.api.MediationGrants(ctx, httptransport.PageRequest{}))
	case "show":
		did, err := arg()
		if err != nil {
			return nil, err
		}
		return value(c.api.MediationGrant(ctx, did))
	case "grant":
		did, err := arg()
		if err != nil {
			return nil, err
		}
		return value(c.api.GrantMediation(ctx, did))
	case "revoke":
		did, err := arg()
		if err != nil {
			return nil, err
		}
		return nil, c.api.RevokeMediation(ctx, did)
	case "queue":
		return value(c.api.MediationQueue(ctx))
	case "invite":
		return value(c.api.CreateMediationInvitation(ctx))
	}
	return nil, fmt.Errorf("mediation: unknown subcommand %q", rest[0])
}
