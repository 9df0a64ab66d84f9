package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/testport"
	"github.com/agentd/agentd/protocols/iden3auth/iden3test"
	"github.com/agentd/agentd/transport/email/emailtest"
	httptransport "github.com/agentd/agentd/transport/http"
)

// startPrivado runs a daemon with the proof-request service (user
// accounts mailing through a capture server, the iden3 verifier on a chain
// double).
func startPrivado(t *testing.T) *daemon.Daemon {
	t.Helper()
	relay := emailtest.Start(t, emailtest.Options{})
	chain := iden3test.Start(t)
	addr := testport.Addr(t)
	cfg := config.Default()
	cfg.DataDir, cfg.HTTP.Addr = t.TempDir(), addr
	cfg.Email.Address, cfg.Email.Relay.Addr = "agent@agent.test", relay.Addr
	cfg.Outbox.AllowPrivate = true
	cfg.Iden3.Resolvers = []config.Iden3Resolver{{Chain: "polygon", Network: "amoy", RPCURL: chain.URL,
		StateContract: "0x1a4cC30f2aA0377b0c3bc9848766D90cb4404124", ChainID: 80002}}
	cfg.Iden3.VerifierDID = "did:iden3:polygon:amoy:xCRp75DgAdS63W65fmXHz6p9DwdonuRU9e46DifhX"
	cfg.Privado.Enabled = true
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

func TestPrivadoCommands(t *testing.T) {
	d := startPrivado(t)
	tmpl := filepath.Join(t.TempDir(), "query.json")
	os.WriteFile(tmpl, []byte(`{"allowedIssuers":["*"],"context":"https://schemas.example/kyc.jsonld","type":"KYCAgeCredential"}`), 0o600)
	out, err := ctl(t, d, "privado", "create-exchange", "Kraken", "--allow", "cb.kraken.example,*.kraken.example", "--template", tmpl)
	var c httptransport.ExchangeCredentials
	if err != nil || json.Unmarshal([]byte(out), &c) != nil || c.APIKey == "" || c.HMACSecret == "" {
		t.Fatalf("create: %v %s", err, out)
	}
	if _, err := ctl(t, d, "privado", "create-exchange", "NoAllow"); err == nil || !strings.Contains(err.Error(), "--allow") {
		t.Fatalf("no allow-list: %v", err)
	}
	if _, err := ctl(t, d, "privado", "create-exchange", "X", "--allow", "a.example", "--template", "/does/not/exist"); err == nil {
		t.Fatal("a missing template file was accepted")
	}
	out, err = ctl(t, d, "privado", "exchange", c.ID)
	var ex httptransport.PrivadoExchange
	if err != nil || json.Unmarshal([]byte(out), &ex) != nil || ex.Name != "Kraken" || len(ex.CallbackAllowList) != 2 ||
		strings.Contains(out, c.APIKey) || strings.Contains(out, c.HMACSecret) || !strings.Contains(out, "KYCAgeCredential") {
		t.Fatalf("exchange: %v %s", err, out)
	}
	if out, err = ctl(t, d, "privado", "exchanges"); err != nil || !strings.Contains(out, c.ID) {
		t.Fatalf("exchanges: %v %s", err, out)
	}
	out, err = ctl(t, d, "privado", "rotate-keys", c.ID)
	var r httptransport.ExchangeCredentials
	if err != nil || json.Unmarshal([]byte(out), &r) != nil || r.APIKey == c.APIKey || r.HMACSecret == c.HMACSecret {
		t.Fatalf("rotate: %v %s", err, out)
	}
	if out, err = ctl(t, d, "privado", "disable", c.ID); err != nil || !strings.Contains(out, `"disabled"`) {
		t.Fatalf("disable: %v %s", err, out)
	}
	if out, err = ctl(t, d, "privado", "interactions", "--vasp", c.ID, "--limit", "5"); err != nil || !strings.Contains(out, `"interactions": []`) {
		t.Fatalf("interactions: %v %s", err, out)
	}
	if _, err = ctl(t, d, "privado", "interaction", "00000000000000000000000000000000"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown interaction: %v", err)
	}
	if _, err = ctl(t, d, "privado", "interactions", "--state", "Nope"); err == nil || !strings.Contains(err.Error(), "state") {
		t.Fatalf("bad state: %v", err)
	}
}
