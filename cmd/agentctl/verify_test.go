package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/testport"
	"github.com/agentd/agentd/internal/unboundtest"
)

// startAgentWith starts a daemon on a fresh data directory and port, or on
// those of base when it is set, with the settings edit makes.
func startAgentWith(t *testing.T, base *config.Config, edit func(*config.Config)) (*daemon.Daemon, config.Config) {
	t.Helper()
	cfg := config.Default()
	if base != nil {
		cfg.DataDir, cfg.HTTP.Addr = base.DataDir, base.HTTP.Addr
	} else {
		cfg.HTTP.Addr = testport.Addr(t)
		cfg.DataDir = t.TempDir()
	}
	cfg.Outbox.BaseDelay = 50 * time.Millisecond
	cfg.Outbox.AllowPrivate = true // the test agents talk on 127.0.0.1
	edit(&cfg)
	d, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return d, cfg
}

var txtLine = regexp.MustCompile(`\n  (\S+)\. 300 IN TXT "([0-9a-f]{64})"\n`)

// The operator commands of Prove Control on both sides: a Domain
// verification proved through agentctl, then the verifier's listings.
func TestVerifyCommands(t *testing.T) {
	// The TXT record is only known once the challenge exists, so the DNS
	// server is chosen up front and started when the record is known.
	verifierSettings := func(dns string) func(c *config.Config) {
		return func(c *config.Config) {
			c.ProveControl.Verifier.Letters = true
			c.ProveControl.DNSServer = dns
		}
	}
	verifier, vcfg := startAgentWith(t, nil, verifierSettings("127.0.0.1:1"))
	user, _ := startAgentWith(t, nil, func(*config.Config) {})

	out, err := ctl(t, user, "verify", "request", verifier.DID(), "Domain", "Example.test")
	if err != nil {
		t.Fatalf("verify request: %v", err)
	}
	m := txtLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("verify request did not print the TXT record:\n%s", out)
	}
	name, value := m[1], m[2]
	id := strings.TrimSuffix(name, ".example.test")
	// verify prove prints the record and sends nothing until it is published.
	out, err = ctl(t, user, "verify", "prove", id)
	if err != nil || !strings.Contains(out, value) || !strings.Contains(out, "--published") {
		t.Fatalf("verify prove before publishing: %v\n%s", err, out)
	}
	out, _ = ctl(t, user, "verify", "list")
	if !strings.Contains(out, `"state": "received"`) {
		t.Fatalf("the challenge was proved without --published:\n%s", out)
	}

	// Publish the record on a private unbound; the verifier is restarted
	// with it as its DNS server.
	dnsAddr := unboundtest.Start(t, map[string][]string{name: {value}})
	verifier.Shutdown(context.Background())
	verifier, _ = startAgentWith(t, &vcfg, verifierSettings(dnsAddr))
	out, err = ctl(t, user, "verify", "prove", "--published", id)
	if err != nil || !strings.Contains(out, `"credential"`) || !strings.Contains(out, `"state": "confirmed"`) {
		t.Fatalf("verify prove --published: %v\n%s", err, out)
	}
	out, err = ctl(t, user, "credentials")
	if err != nil || !strings.Contains(out, `"subject": "example.test"`) || !strings.Contains(out, verifier.DID()) {
		t.Fatalf("credentials: %v\n%s", err, out)
	}
	var creds struct {
		Credentials []struct{ ID string } `json:"credentials"`
	}
	json.Unmarshal([]byte(out), &creds)
	if out, err := ctl(t, user, "credentials", creds.Credentials[0].ID); err != nil || !strings.Contains(out, `"jwt"`) {
		t.Fatalf("credentials ID: %v\n%s", err, out)
	}
	if out, err := ctl(t, verifier, "verify", "verifications"); err != nil || !strings.Contains(out, user.DID()) {
		t.Fatalf("verify verifications: %v\n%s", err, out)
	}
	if out, err := ctl(t, verifier, "verify", "challenges", "confirmed"); err != nil || !strings.Contains(out, id) {
		t.Fatalf("verify challenges confirmed: %v\n%s", err, out)
	}
	if out, err := ctl(t, user, "verify", "requests"); err != nil || !strings.Contains(out, id) {
		t.Fatalf("verify requests: %v\n%s", err, out)
	}

	// The verifier's operator starts an Address verification: the letter is
	// saved to a file.
	out, err = ctl(t, verifier, "verify", "start", user.DID(), "Address", "Ana Example\n1 Main Street\nSpringfield")
	if err != nil || !strings.Contains(out, `"state": "pending"`) {
		t.Fatalf("verify start: %v\n%s", err, out)
	}
	var started struct{ ID string }
	json.Unmarshal([]byte(out), &started)
	if out, err := ctl(t, verifier, "verify", "letters", "--unsent"); err != nil || !strings.Contains(out, started.ID) {
		t.Fatalf("verify letters: %v\n%s", err, out)
	}
	file := filepath.Join(t.TempDir(), "letter.pdf")
	if _, err := ctl(t, verifier, "verify", "letter", started.ID, file); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatal("the saved letter is not a PDF")
	}
	if _, err := ctl(t, verifier, "verify", "sent", started.ID); err != nil {
		t.Fatal(err)
	}
	// Errors are clear.
	if _, err := ctl(t, user, "verify", "request", verifier.DID(), "Fax", "x"); err == nil || !strings.Contains(err.Error(), "verification_type") {
		t.Fatalf("an unknown type: %v", err)
	}
	if _, err := ctl(t, user, "verify", "prove", "no-such-id"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("an unknown challenge: %v", err)
	}
	if _, err := ctl(t, user, "verify"); err == nil {
		t.Fatal("verify without a subcommand")
	}
}
