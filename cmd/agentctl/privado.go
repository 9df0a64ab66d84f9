package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	httptransport "github.com/agentd/agentd/transport/http"
)

const privadoUsage = `  privado exchanges [--after ID] [--limit N]
                              list the exchanges of the proof-request service
  privado exchange ID         show an exchange
  privado create-exchange NAME --allow HOST[,HOST...] [--template FILE]
                              register an exchange (FILE: its iden3 query as JSON);
                              prints its API key and HMAC secret, shown only this once
  privado rotate-keys ID      give an exchange a new API key and HMAC secret (shown once)
  privado disable ID          disable an exchange (final)
  privado interactions [--vasp ID] [--user ID] [--state S] [--after ID] [--limit N]
                              list proof requests, newest first
  privado interaction ID      show a proof request with its history
`

// privado runs the privado subcommands over the admin API.
func (c *client) privado(ctx context.Context, rest []string) (any, error) {
	if len(rest) == 0 {
		return nil, fmt.Errorf("privado: missing subcommand (exchanges, exchange, create-exchange, rotate-keys, disable, interactions, interaction)")
	}
	args, err := parseSubArgs("privado", rest, "--after", "--limit", "--allow", "--template", "--vasp", "--user", "--state")
	if err != nil {
		return nil, err
	}
	flags, one, page := args.flags, args.one, args.page
	switch rest[0] {
	case "exchanges":
		p, err := page()
		if err != nil {
			return nil, err
		}
		return value(c.api.Exchanges(ctx, p))
	case "exchange":
		id, err := one("exchange id")
		if err != nil {
			return nil, err
		}
		return value(c.api.Exchange(ctx, id))
	case "create-exchange":
		name, err := one("name")
		if err != nil {
			return nil, err
		}
		if flags["allow"] == "" {
			return nil, fmt.Errorf("privado create-exchange: --allow is required (callback hosts, *.domains or https:// URL prefixes, comma-separated)")
		}
		req := httptransport.CreateExchangeRequest{Name: name, CallbackAllowList: splitList(flags["allow"])}
		if f := flags["template"]; f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("privado create-exchange: --template: %w", err)
			}
			if !json.Valid(b) {
				return nil, fmt.Errorf("privado create-exchange: --template: %s is not JSON", f)
			}
			req.ProofTemplate = b
		}
		return value(c.api.CreateExchange(ctx, req))
	case "rotate-keys":
		id, err := one("exchange id")
		if err != nil {
			return nil, err
		}
		return value(c.api.RotateExchangeKeys(ctx, id))
	case "disable":
		id, err := one("exchange id")
		if err != nil {
			return nil, err
		}
		return value(c.api.DisableExchange(ctx, id))
	case "interactions":
		p, err := page()
		if err != nil {
			return nil, err
		}
		return value(c.api.Interactions(ctx, flags["vasp"], flags["user"], flags["state"], p))
	case "interaction":
		id, err := one("interaction id")
		if err != nil {
			return nil, err
		}
		return value(c.api.Interaction(ctx, id))
	}
	return nil, fmt.Errorf("privado: unknown subcommand %q", rest[0])
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
