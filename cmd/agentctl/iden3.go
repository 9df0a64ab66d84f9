package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/agentd/agentd/internal/qrterm"
	"io"
	"os"
	"strings"

	httptransport "github.com/agentd/agentd/transport/http"
)

const iden3Usage = `  iden3 create SCOPE.json [REASON] [--message M] [--expires 15m] [--chain polygon:amoy]
                              make an iden3 authorization request (SCOPE.json: a list of
                              {id, circuitId, query} proof requests; - reads stdin); prints
                              the deep link, a terminal QR code and the session
  iden3 get ID                show a verification session and its result
  iden3 list [STATE]          list sessions (pending, verified, failed, cancelled, expired)
  iden3 cancel ID             cancel a pending session
  iden3 schema load URL FILE  put a JSON-LD schema into the verifier's cache (air-gapped)
`

// iden3 runs the iden3 subcommands over the admin API and returns the
// answer to print, if any.
func (c *client) iden3(ctx context.Context, rest []string, stdout io.Writer) (any, error) {
	if len(rest) == 0 {
		return nil, fmt.Errorf("iden3: missing subcommand (create, get, list, cancel, schema load)")
	}
	arg := func(what string) (string, error) {
		if len(rest) < 2 {
			return "", fmt.Errorf("iden3 %s: missing %s", rest[0], what)
		}
		return rest[1], nil
	}
	switch rest[0] {
	case "create":
		return c.iden3Create(ctx, rest[1:], stdout)
	case "get":
		id, err := arg("session id")
		if err != nil {
			return nil, err
		}
		return value(c.api.Iden3Session(ctx, id))
	case "list":
		state := ""
		if len(rest) > 1 {
			state = rest[1]
		}
		return value(c.api.Iden3Sessions(ctx, state, httptransport.PageRequest{}))
	case "cancel":
		id, err := arg("session id")
		if err != nil {
			return nil, err
		}
		return value(c.api.CancelIden3(ctx, id))
	case "schema":
		if len(rest) != 4 || rest[1] != "load" {
			return nil, fmt.Errorf("iden3 schema: usage: iden3 schema load URL FILE")
		}
		doc, err := os.ReadFile(rest[3])
		if err != nil {
			return nil, fmt.Errorf("iden3 schema load: %w", err)
		}
		if !json.Valid(doc) {
			return nil, fmt.Errorf("iden3 schema load: %s is not JSON", rest[3])
		}
		return nil, c.api.LoadIden3Schema(ctx, rest[2], doc)
	}
	return nil, fmt.Errorf("iden3: unknown subcommand %q", rest[0])
}

// iden3Create reads the scope file and options and creates the request.
func (c *client) iden3Create(ctx context.Context, args []string, stdout io.Writer) (any, error) {
	var req httptransport.Iden3CreateRequest
	var pos []string
	for i := 0; i < len(args); i++ {
		opt := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("iden3 create: %s needs a value", args[i])
			}
			i++
			return args[i], nil
		}
		var err error
		switch args[i] {
		case "--message":
			req.Message, err = opt()
		case "--expires":
			var v string
			v, err = opt()
			req.ExpiresIn = httptransport.Seconds(v)
		case "--chain":
			req.Chain, err = opt()
		default:
			pos = append(pos, args[i])
		}
		if err != nil {
			return nil, err
		}
	}
	if len(pos) == 0 {
		return nil, fmt.Errorf("iden3 create: missing SCOPE.json")
	}
	var raw []byte
	var err error
	if pos[0] == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(pos[0])
	}
	if err != nil {
		return nil, fmt.Errorf("iden3 create: %w", err)
	}
	if err := json.Unmarshal(raw, &req.Scope); err != nil {
		return nil, fmt.Errorf("iden3 create: %s is not a JSON list of proof requests: %v", pos[0], err)
	}
	req.Reason = strings.Join(pos[1:], " ")
	out, err := c.api.CreateIden3Request(ctx, req)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(stdout, out.DeepLink)
	if q, err := qrterm.Render(out.DeepLink); err == nil {
		fmt.Fprintln(stdout, q)
	}
	return out, nil
}
