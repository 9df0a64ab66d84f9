// Command agentctl is the operator's command line for a running agentd: it
// talks to the daemon's public endpoints and its admin API.
//
//	agentctl [flags] did | invitation [new [goal-code [goal]]] | ping DID | health |
//	         discover DID [MATCH] | accept URL | outbox | deadletters | retry ID | drop ID |
//	         verify SUBCOMMAND ... | credentials [ID] | mediation SUBCOMMAND ... |
//	         iden3 SUBCOMMAND ... | users SUBCOMMAND ... | db status|migrate
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	httptransport "github.com/agentd/agentd/transport/http"
)

const usage = `Usage: agentctl [flags] COMMAND [ARGS]

Commands:
  did                         print the agent's DID and DID document
  invitation                  print the agent's standing Out-of-Band invitation URL and JSON
  invitation new [CODE [GOAL]] make a new invitation with a goal code and goal
  accept URL|JSON             accept an Out-of-Band invitation
  ping DID                    send a Trust Ping to DID and print the round trip time
  discover DID [MATCH]        ask DID which protocols it supports (default MATCH: *)
  health                      check the daemon's health
  outbox                      show how many messages are pending and dead
  deadletters                 list dead letters
  retry ID                    move a dead letter back into the outbox
  drop ID                     delete a dead letter
%s
Flags:
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "agentctl:", err)
		os.Exit(1)
	}
}

// client runs the commands over the typed admin API client.
type client struct {
	api *httptransport.Client
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("agentctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", envOr("AGENTCTL_URL", "http://127.0.0.1:8080"), "agentd base URL (env AGENTCTL_URL)")
	tokenFile := fs.String("token-file", envOr("AGENTD_ADMIN_TOKEN_FILE", "data/admin.token"), "file with the admin token (env AGENTD_ADMIN_TOKEN_FILE); AGENTD_ADMIN_TOKEN wins when set")
	timeout := fs.Duration("timeout", 30*time.Second, "request timeout")
	fs.Usage = func() {
		fmt.Fprintf(stderr, usage, verifyUsage+mediationUsage+iden3Usage+usersUsage+privadoUsage+dbUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no command given")
	}
	api := &httptransport.Client{BaseURL: strings.TrimRight(*url, "/"), HTTP: &http.Client{Timeout: *timeout}}
	api.Token = os.Getenv("AGENTD_ADMIN_TOKEN")
	if api.Token == "" {
		if b, err := os.ReadFile(*tokenFile); err == nil {
			api.Token = strings.TrimSpace(string(b))
		}
	}
	c := &client{api: api}
	ctx := context.Background()
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	need := func(n int, what string) error {
		if len(rest) < n {
			return fmt.Errorf("%s: missing %s", cmd, what)
		}
		return nil
	}
	var out any
	var err error
	switch cmd {
	case "did":
		out, err = value(c.api.DID(ctx))
	case "invitation":
		var inv httptransport.InvitationResponse
		if len(rest) > 0 && rest[0] == "new" {
			var req httptransport.InvitationRequest
			if len(rest) > 1 {
				req.GoalCode = rest[1]
			}
			if len(rest) > 2 {
				req.Goal = strings.Join(rest[2:], " ")
			}
			inv, err = c.api.CreateInvitation(ctx, req)
		} else {
			inv, err = c.api.Invitation(ctx)
		}
		if err == nil {
			fmt.Fprintln(stdout, inv.URL)
			out = inv
		}
	case "accept":
		if err = need(1, "invitation URL or JSON"); err == nil {
			out, err = value(c.api.AcceptInvitation(ctx, rest[0]))
		}
	case "ping":
		if err = need(1, "DID"); err == nil {
			out, err = value(c.api.Ping(ctx, rest[0]))
		}
	case "discover":
		if err = need(1, "DID"); err == nil {
			match := "*"
			if len(rest) > 1 {
				match = rest[1]
			}
			out, err = value(c.api.Discover(ctx, rest[0], match))
		}
	case "health":
		out, err = value(c.api.Health(ctx))
	case "outbox":
		out, err = value(c.api.Outbox(ctx))
	case "deadletters":
		out, err = value(c.api.DeadLetters(ctx, httptransport.PageRequest{}))
	case "retry":
		if err = need(1, "dead letter id"); err == nil {
			err = c.api.RetryDeadLetter(ctx, rest[0])
		}
	case "drop":
		if err = need(1, "dead letter id"); err == nil {
			err = c.api.DeleteDeadLetter(ctx, rest[0])
		}
	case "verify":
		out, err = c.verify(ctx, rest, stdout)
	case "credentials":
		out, err = c.credentials(ctx, rest)
	case "mediation":
		out, err = c.mediation(ctx, rest)
	case "iden3":
		out, err = c.iden3(ctx, rest, stdout)
	case "users":
		out, err = c.users(ctx, rest)
	case "privado":
		out, err = c.privado(ctx, rest)
	case "db":
		out, err = db(ctx, rest)
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		return err
	}
	if out != nil {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// value makes a typed answer the output to print, keeping the error.
func value[T any](v T, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
