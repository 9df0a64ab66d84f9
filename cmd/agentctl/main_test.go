package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/testport"
)

func startAgent(t *testing.T) *daemon.Daemon {
	t.Helper()
	addr := testport.Addr(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = addr
	cfg.Outbox.BaseDelay = 50 * time.Millisecond
	cfg.Outbox.AllowPrivate = true // the test agents talk on 127.0.0.1
	d, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return d
}

func ctl(t *testing.T, d *daemon.Daemon, args ...string) (string, error) {
	t.Helper()
	t.Setenv("AGENTD_ADMIN_TOKEN", d.AdminToken())
	var out, errOut bytes.Buffer
	err := run(append([]string{"--url", "http://" + d.Addr()}, args...), &out, &errOut)
	return out.String(), err
}

// TestPingAndDiscoverBetweenTwoAgents runs the operator commands against two
// real daemons: A pings B and asks B for its protocols over DIDComm (authcrypt,
// delivered through A's outbox to B's endpoint and back).
func TestPingAndDiscoverBetweenTwoAgents(t *testing.T) {
	a, b := startAgent(t), startAgent(t)
	out, err := ctl(t, a, "ping", b.DID())
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	var ping struct {
		To  string  `json:"to"`
		RTT float64 `json:"rttMillis"`
	}
	if err := json.Unmarshal([]byte(out), &ping); err != nil || ping.To != b.DID() || ping.RTT <= 0 {
		t.Fatalf("ping output %q: %v", out, err)
	}
	out, err = ctl(t, a, "discover", b.DID(), "https://didcomm.org/trust-ping/*")
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	if !strings.Contains(out, `"https://didcomm.org/trust-ping/2.0"`) || strings.Contains(out, "discover-features") {
		t.Fatalf("discover output %q", out)
	}
}

func TestCommands(t *testing.T) {
	a := startAgent(t)
	out, err := ctl(t, a, "did")
	if err != nil || !strings.Contains(out, a.DID()) {
		t.Fatalf("did: %v %q", err, out)
	}
	out, err = ctl(t, a, "health")
	if err != nil || !strings.Contains(out, `"ok"`) {
		t.Fatalf("health: %v %q", err, out)
	}
	out, err = ctl(t, a, "invitation")
	if err != nil || !strings.Contains(out, "?_oob=") {
		t.Fatalf("invitation: %v %q", err, out)
	}
	out, err = ctl(t, a, "invitation", "new", "issue-vc", "Get a credential")
	if err != nil || !strings.Contains(out, `"goal_code": "issue-vc"`) {
		t.Fatalf("invitation new: %v %q", err, out)
	}
	out, err = ctl(t, a, "outbox")
	if err != nil || !strings.Contains(out, `"pending": 0`) {
		t.Fatalf("outbox: %v %q", err, out)
	}
	// Accepting another agent's invitation records the connection.
	b := startAgent(t)
	bInv, _ := ctl(t, b, "invitation")
	url := strings.SplitN(bInv, "\n", 2)[0]
	out, err = ctl(t, a, "accept", url)
	if err != nil || !strings.Contains(out, b.DID()) {
		t.Fatalf("accept: %v %q", err, out)
	}
	// Errors are clear and non-zero.
	if _, err := ctl(t, a, "ping"); err == nil || !strings.Contains(err.Error(), "missing DID") {
		t.Fatalf("ping without DID: %v", err)
	}
	if _, err := ctl(t, a, "ping", "did:example:nobody"); err == nil || !strings.Contains(err.Error(), "did") {
		t.Fatalf("ping to an unresolvable DID: %v", err)
	}
	if _, err := ctl(t, a, "retry", "no-such-id"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("retry of an unknown dead letter: %v", err)
	}
	if _, err := ctl(t, a, "frobnicate"); err == nil {
		t.Fatal("unknown command accepted")
	}
	t.Setenv("AGENTD_ADMIN_TOKEN", "not-the-token-at-all")
	var o, e bytes.Buffer
	if err := run([]string{"--url", "http://" + a.Addr(), "outbox"}, &o, &e); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("wrong token: %v", err)
	}
}
