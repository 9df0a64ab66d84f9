package main

import (
	"context"
	"fmt"
	"net/url"
)

const mediationUsage = `  mediation grants            list mediation grants (mediator)
  mediation show DID          show a client's grant, recipient DIDs and queue
  mediation grant DID         grant mediation to DID whatever the policy
  mediation revoke DID        revoke DID's mediation and drop its queued messages
  mediation queue             show the queue, clients and live connections
  mediation invite            make a mediation invitation (invitation policy; one grant each)
`

// mediation runs the mediation subcommands over the admin API.
func (c *client) mediation(ctx context.Context, rest []string, out *any) error {
	if len(rest) == 0 {
		return fmt.Errorf("mediation: missing subcommand (grants, show, grant, revoke, queue, invite)")
	}
	arg := func() (string, error) {
		if len(rest) < 2 {
			return "", fmt.Errorf("mediation %s: missing DID", rest[0])
		}
		return rest[1], nil
	}
	switch rest[0] {
	case "grants":
		return c.do(ctx, "GET", "/admin/mediation/grants", nil, out)
	case "show":
		did, err := arg()
		if err != nil {
			return err
		}
		return c.do(ctx, "GET", "/admin/mediation/grants/"+url.PathEscape(did), nil, out)
	case "grant":
		did, err := arg()
		if err != nil {
			return err
		}
		return c.do(ctx, "POST", "/admin/mediation/grants", map[string]string{"did": did}, out)
	case "revoke":
		did, err := arg()
		if err != nil {
			return err
		}
		return c.do(ctx, "DELETE", "/admin/mediation/grants/"+url.PathEscape(did), nil, nil)
	case "queue":
		return c.do(ctx, "GET", "/admin/mediation/queue", nil, out)
	case "invite":
		return c.do(ctx, "POST", "/admin/mediation/invitations", nil, out)
	}
	return fmt.Errorf("mediation: unknown subcommand %q", rest[0])
}
