package daemon_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/pgtest"
	"github.com/agentd/agentd/store/seal"
)

// TestMain runs the private PostgreSQL server of the store.driver postgres
// tests (internal/pgtest); the other tests do not use it.
// A process started with AGENTD_PG_CHILD set is one agentd instance of the
// multi-process tests (postgres_procs_test.go), not a test run.
func TestMain(m *testing.M) {
	if os.Getenv(pgChildEnv) != "" {
		runPGChild()
		return
	}
	os.Exit(pgtest.Main(m))
}

// pgConfig is testConfig on the PostgreSQL database url, with the master
// key in keyFile and a public URL shared by the instances.
func pgConfig(t *testing.T, url, keyFile string) config.Config {
	cfg := testConfig(t, t.TempDir())
	cfg.Store.Driver = config.DriverPostgres
	cfg.Store.Postgres.URL = url
	cfg.Keys.KeyFile = keyFile
	cfg.HTTP.PublicURL = "https://agent.example/didcomm"
	return cfg
}

func sharedKeyFile(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "master.key")
	if _, err := seal.GenerateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// Two agentd instances on one PostgreSQL database, each with a data
// directory of its own, answer as the same agent: one DID, one standing
// invitation, kept across restarts; both are healthy.
func TestPostgresInstancesShareTheIdentity(t *testing.T) {
	url, key := pgtest.Start(t), sharedKeyFile(t)
	a := start(t, pgConfig(t, url, key))
	b := start(t, pgConfig(t, url, key))
	if a.DID() != b.DID() {
		t.Fatalf("two instances on one database have DIDs %s and %s", a.DID(), b.DID())
	}
	var invA, invB struct {
		URL string `json:"url"`
	}
	getJSON(t, a.base+"/invitation", "", &invA)
	getJSON(t, b.base+"/invitation", "", &invB)
	if invA.URL == "" || invA.URL != invB.URL {
		t.Fatalf("standing invitations differ: %q, %q", invA.URL, invB.URL)
	}
	req, _ := http.NewRequest("GET", a.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+a.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"agentd_db_pool_max_connections 10", "agentd_db_pool_acquires_total", "agentd_store_commits_total"} {
		if !strings.Contains(string(metricsText), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, r := range []*running{a, b} {
		var health map[string]string
		if code := getJSON(t, r.base+"/healthz", "", &health); code != 200 || health["status"] != "ok" {
			t.Fatalf("GET /healthz = %d %v", code, health)
		}
		var depth map[string]int
		if code := getJSON(t, r.base+"/admin/outbox", r.AdminToken(), &depth); code != 200 || depth["pending"] != 0 {
			t.Fatalf("admin outbox = %d %v", code, depth)
		}
	}
	first := a.DID()
	a.Shutdown(context.Background())
	b.Shutdown(context.Background())
	// A new instance with an empty data directory is the same agent.
	c := start(t, pgConfig(t, url, key))
	if c.DID() != first {
		t.Fatalf("DID changed: %s -> %s", first, c.DID())
	}
	// Nothing of the state went to the data directory.
	if _, err := os.Stat(filepath.Join(c.cfg.DataDir, "agentd.db")); err == nil {
		t.Fatal("a bbolt file was created although store.driver is postgres")
	}
}

// An instance with another master key is refused at start, with a clear
// error that shows neither the key nor the database password.
func TestPostgresWrongMasterKeyAndNoPasswordInErrors(t *testing.T) {
	const secret = "pw-s3cret-xyz"
	url := strings.Replace(pgtest.Start(t), "postgres@", "postgres:"+secret+"@", 1)
	var logged bytes.Buffer
	d, err := daemon.New(context.Background(), pgConfig(t, url, sharedKeyFile(t)), slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	d.Shutdown(context.Background())
	if !strings.Contains(logged.String(), "store: PostgreSQL") || !strings.Contains(logged.String(), "xxxxx") || strings.Contains(logged.String(), secret) {
		t.Fatalf("the start-up log should name the database without its password:\n%s", logged.String())
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err = daemon.New(context.Background(), pgConfig(t, url, sharedKeyFile(t)), log)
	if err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("another master key: %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("the error shows the database password: %v", err)
	}
	bad := pgConfig(t, strings.Replace(url, "/t_", "/missing_", 1), sharedKeyFile(t))
	_, err = daemon.New(context.Background(), bad, log)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("a missing database: %v", err)
	}
}

// A mediator on PostgreSQL with two instances: the wallet gets mediation
// and registers through A; one forward posted to A and to B (the same
// message, at once) is queued once; B, which never saw the grant, answers
// the wallet's pickup with it.
func TestPostgresMediatorTwoInstances(t *testing.T) {
	url, key := pgtest.Start(t), sharedKeyFile(t)
	onPostgres := func(c *config.Config) {
		c.Store.Driver = config.DriverPostgres
		c.Store.Postgres.URL = url
		c.Keys.KeyFile = key
		c.HTTP.PublicURL = "http://" + c.HTTP.Addr + "/didcomm"
	}
	f := newMediatorFixture(t, onPostgres)
	f.grant(t, coord3)
	if r := f.register(t, coord3, "recipient-update", f.inbox.did); r != "success" {
		t.Fatalf("register: %s", r)
	}
	cfgB := f.med.cfg
	cfgB.DataDir, cfgB.HTTP.Addr = t.TempDir(), freePort(t)
	b := start(t, cfgB)
	if b.DID() != f.med.DID() {
		t.Fatalf("instance B is %s, A is %s", b.DID(), f.med.DID())
	}

	m := map[string]any{"id": agent.NewID(), "type": "https://didcomm.org/basicmessage/2.0/message", "from": f.sender.did,
		"to": []string{f.inbox.did}, "body": map[string]any{"content": "once"}}
	packed, _, err := f.node.PackEncrypted(m, f.inbox.did, f.sender.did, "", nil, f.docs(t), f.sender.secretJSON())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, base := range []string{f.med.base, b.base} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = post(t, base+"/didcomm", agent.MediaTypeEncrypted, []byte(packed))
		}()
	}
	wg.Wait()
	if codes[0] != http.StatusAccepted || codes[1] != http.StatusAccepted {
		t.Fatalf("the forward posted to A and B: %v", codes)
	}
	// The wallet asks B.
	a := f.med
	f.med = b
	defer func() { f.med = a }()
	st := f.request(t, f.wallet, pickup+"status-request", nil)
	if body(st)["message_count"] != 1.0 {
		t.Fatalf("status through B after one forward posted to A and B: %v", st)
	}
	del := f.request(t, f.wallet, pickup+"delivery-request", map[string]any{"limit": 10})
	if got, _ := f.openDelivery(t, del); len(got) != 1 {
		t.Fatalf("delivery through B: %d messages", len(got))
	}
}
