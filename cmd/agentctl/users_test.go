package main

import (
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
	"github.com/agentd/agentd/transport/email/emailtest"
	httptransport "github.com/agentd/agentd/transport/http"
)

// startUsers runs a daemon with user accounts: it mails through a capture
// SMTP server.
func startUsers(t *testing.T) (*daemon.Daemon, *emailtest.Server) {
	t.Helper()
	relay := emailtest.Start(t, emailtest.Options{})
	addr := testport.Addr(t)
	cfg := config.Default()
	cfg.DataDir, cfg.HTTP.Addr = t.TempDir(), addr
	cfg.Email.Address, cfg.Email.Relay.Addr = "agent@agent.test", relay.Addr
	cfg.Outbox.AllowPrivate = true
	d, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return d, relay
}

func TestUsersCommands(t *testing.T) {
	d, relay := startUsers(t)
	out, err := ctl(t, d, "users", "create", "dora@example.org", "--name", "Dora", "--reference", "crm-1")
	var u httptransport.User
	if err != nil || json.Unmarshal([]byte(out), &u) != nil || u.State != "unclaimed" || u.Reference != "crm-1" {
		t.Fatalf("create: %v %s", err, out)
	}
	if _, err := ctl(t, d, "users", "create", "not-an-address"); err == nil || !strings.Contains(err.Error(), "email:") {
		t.Fatalf("bad address: %v", err)
	}
	out, err = ctl(t, d, "users", "list", "--state", "unclaimed", "--email", "DORA")
	if err != nil || !strings.Contains(out, u.ID) {
		t.Fatalf("list: %v %s", err, out)
	}
	if out, _ := ctl(t, d, "users", "list", "--state", "active"); strings.Contains(out, u.ID) {
		t.Fatalf("list active shows an unclaimed account: %s", out)
	}
	if _, err := ctl(t, d, "users", "key-token", u.ID); err == nil || !strings.Contains(err.Error(), "unclaimed") {
		t.Fatalf("key-token for an unclaimed account: %v", err)
	}
	// The public client: a sign-up (mailed), then its status.
	c := &httptransport.Client{BaseURL: "http://" + d.Addr()}
	rec, err := c.RequestSignup(context.Background(), httptransport.SignupRequest{Name: "Dora", Email: "dora@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.SignupStatus(context.Background(), rec.ID, time.Millisecond); err != nil || st.State != "pending" {
		t.Fatalf("status: %+v %v", st, err)
	}
	if m := relay.Wait(t, 20*time.Second); m.To[0] != "dora@example.org" {
		t.Fatalf("mailed to %v", m.To)
	}
	if out, err := ctl(t, d, "users", "disable", u.ID); err != nil || !strings.Contains(out, `"disabled"`) {
		t.Fatalf("disable: %v %s", err, out)
	}
	if out, err := ctl(t, d, "users", "get", u.ID); err != nil || !strings.Contains(out, `"disabled"`) {
		t.Fatalf("get: %v %s", err, out)
	}
	if out, err := ctl(t, d, "users", "delete", u.ID); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("delete: %v %s", err, out)
	}
	if _, err := ctl(t, d, "users", "get", u.ID); err == nil || !strings.Contains(err.Error(), "e.p.req.not-found") {
		t.Fatalf("get deleted: %v", err)
	}
}

// TestUsersOpenAPIAgainstDaemon: with user accounts on, the document lists
// their admin routes, and the daemon's answers have only documented members.
func TestUsersOpenAPIAgainstDaemon(t *testing.T) {
	d, _ := startUsers(t)
	c := &httptransport.Client{BaseURL: "http://" + d.Addr(), Token: d.AdminToken()}
	ctx := context.Background()
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	if err := c.Do(ctx, "GET", "/admin/openapi.json", nil, &doc); err != nil {
		t.Fatal(err)
	}
	u, err := c.CreateUser(ctx, httptransport.CreateUserRequest{Email: "eve@example.org", Name: "Eve", Reference: "r"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ doc, path string }{{"/admin/users", "/admin/users"}, {"/admin/users/{id}", "/admin/users/" + u.ID}} {
		raw, ok := doc.Paths[p.doc]["get"]
		if !ok {
			t.Fatalf("the document lacks GET %s", p.doc)
		}
		var op struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema schema `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		}
		json.Unmarshal(raw, &op)
		var answer any
		if err := c.Do(ctx, "GET", p.path, nil, &answer); err != nil {
			t.Fatal(err)
		}
		for _, problem := range undocumented(op.Responses["200"].Content["application/json"].Schema, answer, doc.Components.Schemas, "GET "+p.doc) {
			t.Error(problem)
		}
	}
	for _, want := range []string{"/admin/users/{id}/disable", "/admin/users/{id}/key-upload-token"} {
		if doc.Paths[want]["post"] == nil {
			t.Errorf("the document lacks POST %s", want)
		}
	}
}
