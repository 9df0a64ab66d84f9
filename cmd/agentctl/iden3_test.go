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
)

func startVerifier(t *testing.T) *daemon.Daemon {
	t.Helper()
	chain := iden3test.Start(t)
	addr := testport.Addr(t)
	cfg := config.Default()
	cfg.DataDir, cfg.HTTP.Addr = t.TempDir(), addr
	cfg.Iden3.VerifierDID = "did:iden3:polygon:amoy:xCRp75DgAdS63W65fmXHz6p9DwdonuRU9e46DifhX"
	cfg.Iden3.Resolvers = []config.Iden3Resolver{{Chain: "polygon", Network: "amoy", RPCURL: chain.URL,
		StateContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3", ChainID: 31337}}
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

func TestIden3Commands(t *testing.T) {
	d := startVerifier(t)
	dir := t.TempDir()
	scope := filepath.Join(dir, "scope.json")
	os.WriteFile(scope, []byte(`[{"id":12345,"circuitId":"credentialAtomicQuerySigV2","query":{"allowedIssuers":["*"],
	  "context":"https://schemas.example/kyc.jsonld","type":"KYCAgeCredential","credentialSubject":{"birthday":{"$lt":20000101}}}}]`), 0o600)
	schema := filepath.Join(dir, "kyc.jsonld")
	os.WriteFile(schema, []byte(`{"@context":{"KYCAgeCredential":{"@id":"https://schemas.example/kyc.jsonld#KYCAgeCredential"}}}`), 0o600)
	if out, err := ctl(t, d, "iden3", "schema", "load", "https://schemas.example/kyc.jsonld", schema); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("schema load: %v %q", err, out)
	}
	out, err := ctl(t, d, "iden3", "create", scope, "over", "18", "--expires", "10m", "--message", "12345")
	if err != nil || !strings.HasPrefix(out, "iden3comm://?request_uri=http%3A%2F%2F") {
		t.Fatalf("create: %v %q", err, out)
	}
	// The JSON answer follows the deep link and the QR code.
	var created struct {
		ID      string `json:"id"`
		Request struct {
			Body struct {
				Reason, Message string
			}
		} `json:"request"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{\n"):]), &created); err != nil || created.ID == "" ||
		created.Request.Body.Reason != "over 18" || created.Request.Body.Message != "12345" {
		t.Fatalf("created %+v %v\n%s", created, err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"iden3", "get", created.ID}, `"state": "pending"`},
		{[]string{"iden3", "list", "pending"}, created.ID},
		{[]string{"iden3", "cancel", created.ID}, `"state": "cancelled"`},
		{[]string{"iden3", "list", "pending"}, `"requests": []`},
	} {
		if out, err := ctl(t, d, tc.args...); err != nil || !strings.Contains(out, tc.want) {
			t.Fatalf("%v: %v %q, want %q", tc.args, err, out, tc.want)
		}
	}
	if _, err := ctl(t, d, "iden3", "cancel", created.ID); err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("second cancel: %v", err)
	}
	if _, err := ctl(t, d, "iden3", "get", "nope"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := ctl(t, d, "iden3", "schema", "load", "https://x.example/s", scope+".missing"); err == nil {
		t.Fatal("loaded a missing file")
	}
}
