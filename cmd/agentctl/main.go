// Command agentctl is the operator's command line for a running agentd: it
// talks to the daemon's public endpoints and its admin API.
//
//	agentctl [flags] did | invitation [new [goal-code [goal]]] | ping DID | health |
//	         discover DID [MATCH] | accept URL | outbox | deadletters | retry ID | drop ID |
//	         verify SUBCOMMAND ... | credentials [ID] | mediation SUBCOMMAND ...
package main

import (
	"bytes"
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

type client struct {
	base  string
	token string
	http  *http.Client
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("agentctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", envOr("AGENTCTL_URL", "http://127.0.0.1:8080"), "agentd base URL (env AGENTCTL_URL)")
	tokenFile := fs.String("token-file", envOr("AGENTD_ADMIN_TOKEN_FILE", "data/admin.token"), "file with the admin token (env AGENTD_ADMIN_TOKEN_FILE); AGENTD_ADMIN_TOKEN wins when set")
	timeout := fs.Duration("timeout", 30*time.Second, "request timeout")
	fs.Usage = func() { fmt.Fprintf(stderr, usage, verifyUsage+mediationUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no command given")
	}
	c := &client{base: strings.TrimRight(*url, "/"), http: &http.Client{Timeout: *timeout}}
	c.token = os.Getenv("AGENTD_ADMIN_TOKEN")
	if c.token == "" {
		if b, err := os.ReadFile(*tokenFile); err == nil {
			c.token = strings.TrimSpace(string(b))
		}
	}
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
		err = c.do(ctx, "GET", "/did", nil, &out)
	case "invitation":
		if len(rest) > 0 && rest[0] == "new" {
			body := map[string]string{}
			if len(rest) > 1 {
				body["goal_code"] = rest[1]
			}
			if len(rest) > 2 {
				body["goal"] = strings.Join(rest[2:], " ")
			}
			err = c.do(ctx, "POST", "/admin/invitations", body, &out)
		} else {
			err = c.do(ctx, "GET", "/invitation", nil, &out)
		}
		if err == nil {
			if m, ok := out.(map[string]any); ok {
				fmt.Fprintln(stdout, m["url"])
			}
		}
	case "accept":
		if err = need(1, "invitation URL or JSON"); err == nil {
			err = c.do(ctx, "POST", "/admin/invitations/accept", map[string]string{"invitation": rest[0]}, &out)
		}
	case "ping":
		if err = need(1, "DID"); err == nil {
			err = c.do(ctx, "POST", "/admin/ping", map[string]string{"to": rest[0]}, &out)
		}
	case "discover":
		if err = need(1, "DID"); err == nil {
			match := "*"
			if len(rest) > 1 {
				match = rest[1]
			}
			err = c.do(ctx, "POST", "/admin/discover", map[string]string{"to": rest[0], "match": match}, &out)
		}
	case "health":
		err = c.do(ctx, "GET", "/healthz", nil, &out)
	case "outbox":
		err = c.do(ctx, "GET", "/admin/outbox", nil, &out)
	case "deadletters":
		err = c.do(ctx, "GET", "/admin/deadletters", nil, &out)
	case "retry":
		if err = need(1, "dead letter id"); err == nil {
			err = c.do(ctx, "POST", "/admin/deadletters/"+rest[0]+"/retry", nil, nil)
		}
	case "drop":
		if err = need(1, "dead letter id"); err == nil {
			err = c.do(ctx, "DELETE", "/admin/deadletters/"+rest[0], nil, nil)
		}
	case "verify":
		err = c.verify(ctx, rest, stdout, &out)
	case "credentials":
		err = c.credentials(ctx, rest, &out)
	case "mediation":
		err = c.mediation(ctx, rest, &out)
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

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if raw, ok := body.(rawBody); ok {
		rd = bytes.NewReader(raw)
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if _, ok := body.(rawBody); ok {
		req.Header.Set("Content-Type", "application/octet-stream")
	} else if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if strings.HasPrefix(path, "/admin/") {
		if c.token == "" {
			return errors.New("no admin token: set AGENTD_ADMIN_TOKEN or --token-file (the daemon writes DATA_DIR/admin.token on first start)")
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach agentd at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error, Reason string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s (%s)", method, path, e.Reason, e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
