package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/did/didtest"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/testport"
)

// running is an agentd started for a test on a free loopback port.
type running struct {
	*daemon.Daemon
	base string
	cfg  config.Config
}

func freePort(t testing.TB) string {
	t.Helper()
	return testport.Addr(t)
}

func testConfig(t testing.TB, dataDir string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.HTTP.Addr = freePort(t)
	cfg.Outbox.BaseDelay = 50 * time.Millisecond
	cfg.Outbox.MaxDelay = 200 * time.Millisecond
	// The test agents talk to each other on 127.0.0.1.
	cfg.Outbox.AllowPrivate = true
	return cfg
}

func start(t testing.TB, cfg config.Config) *running {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d, err := daemon.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return &running{Daemon: d, base: "http://" + d.Addr(), cfg: cfg}
}

type testWriter struct{ t testing.TB }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// wallet is a party with its own did:peer:2 and keys, as a wallet would have.
type wallet struct {
	did     string
	doc     *did.Doc
	secrets []keys.PrivateKey
}

func newWallet(t testing.TB, endpoint string) *wallet {
	t.Helper()
	var services []did.Service
	if endpoint != "" {
		services = []did.Service{{ID: "#didcomm", Type: did.ServiceTypeDIDCommMessaging,
			ServiceEndpoint: did.ServiceEndpoint{URI: endpoint, Accept: []string{"didcomm/v2"}}}}
	}
	p := didtest.NewPeer2(t, services...)
	return &wallet{did: p.DID, doc: p.Doc, secrets: p.Keys()}
}

// didDocJSON returns the DID document GET /did of the agentd at base
// serves, as generic JSON for a third-party peer.
func didDocJSON(t *testing.T, base string) any {
	t.Helper()
	var got struct {
		DIDDocument json.RawMessage `json:"didDocument"`
	}
	getJSON(t, base+"/did", "", &got)
	var doc any
	json.Unmarshal(got.DIDDocument, &doc)
	return doc
}

// docJSON returns a DID document as generic JSON for the didcomm-node peer.
func docJSON(t *testing.T, doc any) any {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	json.Unmarshal(b, &v)
	return v
}

func (w *wallet) secretJSON() []any {
	var out []any
	for _, k := range w.secrets {
		j := k.PrivateJWK()
		out = append(out, map[string]any{"id": k.ID, "type": "JsonWebKey2020",
			"privateKeyJwk": map[string]any{"kty": j.Kty, "crv": j.Crv, "x": j.X, "d": j.D}})
	}
	return out
}

func getJSON(t testing.TB, url, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode
}

func post(t testing.TB, url, contentType string, body []byte) (int, string, []byte) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func TestStartKeepsDIDAndServesPublicEndpoints(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	a := start(t, cfg)
	var got struct {
		DID         string          `json:"did"`
		DIDDocument json.RawMessage `json:"didDocument"`
	}
	if code := getJSON(t, a.base+"/did", "", &got); code != 200 || got.DID != a.DID() {
		t.Fatalf("GET /did = %d %+v", code, got)
	}
	if !strings.HasPrefix(got.DID, "did:peer:2.") {
		t.Fatalf("agent DID %q is not a did:peer:2", got.DID)
	}
	var doc did.Doc
	if err := json.Unmarshal(got.DIDDocument, &doc); err != nil {
		t.Fatal(err)
	}
	// The HTTP endpoint first, then its WebSocket URL (http.publish_websocket_service).
	svcs := doc.DIDCommServices()
	if len(svcs) != 2 || svcs[0].ServiceEndpoint.URI != cfg.Endpoint() || svcs[1].ServiceEndpoint.URI != "ws://"+cfg.HTTP.Addr+"/didcomm" ||
		svcs[1].Type != did.ServiceTypeDIDCommMessaging || len(svcs[1].ServiceEndpoint.Accept) != 1 || svcs[1].ServiceEndpoint.Accept[0] != "didcomm/v2" {
		t.Fatalf("DID document services %+v, want the endpoint %s and its WebSocket URL", svcs, cfg.Endpoint())
	}
	var inv struct {
		Invitation map[string]any `json:"invitation"`
		URL        string         `json:"url"`
	}
	if code := getJSON(t, a.base+"/invitation", "", &inv); code != 200 || inv.Invitation["from"] != a.DID() || !strings.Contains(inv.URL, "?_oob=") {
		t.Fatalf("GET /invitation = %d %+v", code, inv)
	}
	var health map[string]string
	if code := getJSON(t, a.base+"/healthz", "", &health); code != 200 || health["status"] != "ok" {
		t.Fatalf("GET /healthz = %d %v", code, health)
	}
	// Admin and metrics need the token; the token file is private.
	if code := getJSON(t, a.base+"/admin/outbox", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("admin without token: %d", code)
	}
	if code := getJSON(t, a.base+"/admin/outbox", "wrong-token-wrong-token", nil); code != http.StatusUnauthorized {
		t.Fatalf("admin with a wrong token: %d", code)
	}
	if code := getJSON(t, a.base+"/metrics", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("metrics without token: %d", code)
	}
	var depth map[string]int
	if code := getJSON(t, a.base+"/admin/outbox", a.AdminToken(), &depth); code != 200 || depth["pending"] != 0 {
		t.Fatalf("admin outbox = %d %v", code, depth)
	}
	info, err := osStat(filepath.Join(dir, "admin.token"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v mode %v", err, info.Mode())
	}
	first, invURL := a.DID(), inv.URL
	a.Shutdown(context.Background())

	// A restart on the same data directory keeps the DID and the invitation.
	b := start(t, cfg)
	if b.DID() != first {
		t.Fatalf("DID changed across restart: %s -> %s", first, b.DID())
	}
	getJSON(t, b.base+"/invitation", "", &inv)
	if inv.URL != invURL {
		t.Fatal("standing invitation changed across restart")
	}
}

func TestMetricsAfterTraffic(t *testing.T) {
	a := start(t, testConfig(t, t.TempDir()))
	post(t, a.base+"/didcomm", "application/didcomm-plain+json", []byte(`{"id":"1","type":"https://didcomm.org/trust-ping/2.0/ping","body":{"response_requested":false}}`))
	req, _ := http.NewRequest("GET", a.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+a.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`agentd_messages_in_total{result="ok",type="https://didcomm.org/trust-ping/2.0/ping"} 1`,
		"agentd_outbox_pending 0",
		"agentd_message_processing_seconds_bucket",
		`agentd_http_request_seconds_count{code="202",route="didcomm"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestPassphraseProtectedKeys(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Keys.Passphrase = "correct horse battery staple"
	a := start(t, cfg)
	first := a.DID()
	a.Shutdown(context.Background())

	cfg.Keys.Passphrase = "wrong passphrase"
	_, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "passphrase") || strings.Contains(err.Error(), cfg.Keys.Passphrase) {
		t.Fatalf("wrong passphrase: %v; want a clear error without the secret", err)
	}
	cfg.Keys.Passphrase = "correct horse battery staple"
	b := start(t, cfg)
	if b.DID() != first {
		t.Fatal("DID changed after reopening with the right passphrase")
	}
	if _, err := osStat(filepath.Join(dir, "master.key")); err == nil {
		t.Fatal("a key file was generated although a passphrase is configured")
	}
}

func TestChangedEndpointGivesNewDIDAndKeepsOld(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	a := start(t, cfg)
	old := a.DID()
	a.Shutdown(context.Background())
	cfg.HTTP.PublicURL = "https://agent.example/didcomm"
	b := start(t, cfg)
	if b.DID() == old {
		t.Fatal("a new public URL must give a new DID (the endpoint is part of did:peer:2)")
	}
	// The old DID is still answered: a plaintext ping to it is accepted.
	code, _, body := post(t, b.base+"/didcomm", "application/didcomm-plain+json",
		[]byte(`{"id":"x1","type":"https://didcomm.org/trust-ping/2.0/ping","to":["`+old+`"],"body":{"response_requested":false}}`))
	if code != 202 {
		t.Fatalf("message to the previous DID: %d %s", code, body)
	}
}
