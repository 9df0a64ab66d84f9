package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/testport"
)

func startMediator(t *testing.T) *daemon.Daemon {
	t.Helper()
	addr := testport.Addr(t)
	cfg := config.Default()
	cfg.DataDir, cfg.HTTP.Addr = t.TempDir(), addr
	cfg.Mediator.Enabled, cfg.Mediator.Policy = true, "invitation"
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

func TestMediationCommands(t *testing.T) {
	m := startMediator(t)
	client := startAgent(t).DID()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mediation", "queue"}, `"policy": "invitation"`},
		{[]string{"mediation", "invite"}, `"goal_code": "request-mediate"`},
		{[]string{"mediation", "grant", client}, `"state": "granted"`},
		{[]string{"mediation", "grants"}, client},
		{[]string{"mediation", "show", client}, `"queue"`},
		{[]string{"mediation", "revoke", client}, "ok"},
		{[]string{"mediation", "show", client}, `"state": "revoked"`},
	} {
		out, err := ctl(t, m, tc.args...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Fatalf("%v: %v %q, want %q", tc.args, err, out, tc.want)
		}
	}
	if _, err := ctl(t, m, "mediation", "show", "did:example:nobody"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("show of an unknown client: %v", err)
	}
	if _, err := ctl(t, m, "mediation", "grant"); err == nil || !strings.Contains(err.Error(), "missing DID") {
		t.Fatalf("grant without DID: %v", err)
	}
	if _, err := ctl(t, startAgent(t), "mediation", "queue"); err == nil || !strings.Contains(err.Error(), "not enabled") {
		t.Fatalf("mediation on an agent that is not a mediator: %v", err)
	}
}
