package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/store/bolt"
)

// Tests of issue 9, part 1: replies a sender can steer. Each reproduces an
// attack and shows it refused or bounded.

// abuseKA returns the key agreement keys of the agentd at base, read from
// its published DID document.
func abuseKA(t *testing.T, base string) []keys.PublicKey {
	t.Helper()
	var got struct {
		DIDDocument json.RawMessage `json:"didDocument"`
	}
	getJSON(t, base+"/did", "", &got)
	var doc struct {
		ID                 string `json:"id"`
		VerificationMethod []struct {
			ID                 string `json:"id"`
			PublicKeyMultibase string `json:"publicKeyMultibase"`
		} `json:"verificationMethod"`
		KeyAgreement []string `json:"keyAgreement"`
	}
	json.Unmarshal(got.DIDDocument, &doc)
	var out []keys.PublicKey
	for _, ref := range doc.KeyAgreement {
		for _, vm := range doc.VerificationMethod {
			if vm.ID == ref {
				k, err := keys.ParseMultikey(vm.PublicKeyMultibase, doc.ID+ref)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, k)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("agent DID document has no key agreement key")
	}
	return out
}

// pingFrom is a trust ping from w to the agent that asks for a pong.
func pingFrom(r *running, w *wallet, returnRoute string) []byte {
	m := map[string]any{
		"id": agent.NewID(), "type": "https://didcomm.org/trust-ping/2.0/ping",
		"from": w.did, "to": []string{r.DID()}, "created_time": time.Now().Unix(),
		"body": map[string]any{"response_requested": true},
	}
	if returnRoute != "" {
		m["return_route"] = returnRoute
	}
	b, _ := json.Marshal(m)
	return b
}

// authcrypted packs plain from w's key agreement key to the agent.
func authcrypted(t *testing.T, r *running, w *wallet, plain []byte) []byte {
	t.Helper()
	packed, err := envelope.PackAuthcrypt(plain, w.secrets[0], abuseKA(t, r.base))
	if err != nil {
		t.Fatal(err)
	}
	return packed
}

// countingEndpoint serves an endpoint that counts the POSTs it gets and
// answers *status (which the test may change).
func countingEndpoint(t *testing.T, status int) (string, *atomic.Int64, *atomic.Int64) {
	var n, st atomic.Int64
	st.Store(int64(status))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(int(st.Load()))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n, &st
}

// deadLetterList lists the agent's dead letters with their ids and attempts.
func deadLetterList(t *testing.T, r *running) []agent.OutboundMessage {
	t.Helper()
	var page struct {
		DeadLetters []agent.OutboundMessage `json:"deadLetters"`
	}
	getJSON(t, r.base+"/admin/deadletters", r.AdminToken(), &page)
	return page.DeadLetters
}

func outboxDepth(t *testing.T, r *running) (pending, dead int) {
	t.Helper()
	var depth map[string]int
	getJSON(t, r.base+"/admin/outbox", r.AdminToken(), &depth)
	return depth["pending"], depth["dead"]
}

type answer struct {
	status     int
	retryAfter string
	code       string
	body       []byte
}

func postMsg(t *testing.T, r *running, mediaType string, body []byte) answer {
	t.Helper()
	resp, err := http.Post(r.base+"/didcomm", mediaType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	var e struct{ Error string }
	json.Unmarshal(buf.Bytes(), &e)
	return answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), code: e.Error, body: buf.Bytes()}
}

// A plaintext ping whose from is a made-up DID with an endpoint anywhere
// is answered on its connection when it asks for that, and otherwise not at
// all: nothing reaches the endpoint and nothing waits in the outbox. (The
// outbox may deliver to loopback here, so the reply policy alone stops it.)
func TestPlaintextPingNotAnsweredThroughOutbox(t *testing.T) {
	url, hits, _ := countingEndpoint(t, http.StatusAccepted)
	r := start(t, testConfig(t, t.TempDir()))
	w := newWallet(t, url)

	a := postMsg(t, r, agent.MediaTypePlain, pingFrom(r, w, ""))
	if a.status != http.StatusAccepted {
		t.Fatalf("plaintext ping without return_route: status %d %s", a.status, a.body)
	}
	// With return_route, the pong comes back on the connection.
	// (encrypted to the DID the ping names, so only its holder reads it).
	a = postMsg(t, r, agent.MediaTypePlain, pingFrom(r, w, "all"))
	if a.status != http.StatusOK || !strings.Contains(string(a.body), `"ciphertext"`) {
		t.Fatalf("plaintext ping with return_route: status %d %s", a.status, a.body)
	}
	// A problem with an unauthenticated message is not queued either: with
	// no way back, the message is refused with the problem's status and
	// code instead, and nothing of it is kept.
	bad, _ := json.Marshal(map[string]any{"id": agent.NewID(), "type": "https://didcomm.org/unknown/1.0/x",
		"from": w.did, "to": []string{r.DID()}, "body": map[string]any{}})
	if a = postMsg(t, r, agent.MediaTypePlain, bad); a.status != http.StatusBadRequest || !strings.Contains(string(a.body), agent.CodeMsgUnsupported) {
		t.Fatalf("unsupported plaintext message: status %d %s", a.status, a.body)
	}
	time.Sleep(300 * time.Millisecond)
	if n := hits.Load(); n != 0 {
		t.Errorf("the sender-named endpoint got %d deliveries", n)
	}
	if p, d := outboxDepth(t, r); p != 0 || d != 0 {
		t.Errorf("outbox pending %d dead %d, want 0 0", p, d)
	}
}

// An authcrypted ping from a freshly made DID whose endpoint is on
// loopback: with outbox.allow_private off, the pong is dead-lettered on
// its first attempt, with the reason, and the endpoint never sees it.
func TestReplyToLoopbackEndpointRefused(t *testing.T) {
	url, hits, _ := countingEndpoint(t, http.StatusAccepted)
	cfg := testConfig(t, t.TempDir())
	cfg.Outbox.AllowPrivate = false
	r := start(t, cfg)
	w := newWallet(t, url)
	if a := postMsg(t, r, agent.MediaTypeEncrypted, authcrypted(t, r, w, pingFrom(r, w, ""))); a.status != http.StatusAccepted {
		t.Fatalf("authcrypted ping: status %d %s", a.status, a.body)
	}
	waitFor(t, 5*time.Second, "the pong to be dead-lettered", func() bool { p, d := outboxDepth(t, r); return p == 0 && d == 1 })
	dead := deadLetterList(t, r)
	if len(dead) != 1 || dead[0].Attempts != 1 || !strings.Contains(dead[0].LastError, "allow_private") {
		t.Fatalf("dead letter %+v, want one attempt and a reason naming outbox.allow_private", dead)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback endpoint got %d deliveries", n)
	}
}

// 1,000 pings from one address: past the client budget the endpoint
// answers 429 with Retry-After and the rate-limit code, and the outbox
// stays bounded (here: empty, as they are plaintext).
func TestClientRateLimit(t *testing.T) {
	url, _, _ := countingEndpoint(t, http.StatusAccepted)
	cfg := testConfig(t, t.TempDir())
	cfg.Limits.ClientRate, cfg.Limits.ClientBurst = 60, 20
	r := start(t, cfg)
	w := newWallet(t, url)
	accepted, limited := 0, 0
	for i := 0; i < 1000; i++ {
		a := postMsg(t, r, agent.MediaTypePlain, pingFrom(r, w, ""))
		switch a.status {
		case http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
			limited++
			if s, err := strconv.Atoi(a.retryAfter); err != nil || s < 1 || a.code != agent.CodeRateLimited {
				t.Fatalf("429 with Retry-After %q and code %q", a.retryAfter, a.code)
			}
		default:
			t.Fatalf("ping %d: status %d %s", i, a.status, a.body)
		}
	}
	// The burst, and maybe a token or two that came back meanwhile.
	if accepted < 20 || accepted > 25 || limited != 1000-accepted {
		t.Errorf("accepted %d, limited %d; want about the burst of 20 accepted", accepted, limited)
	}
	if p, d := outboxDepth(t, r); p != 0 || d != 0 {
		t.Errorf("outbox pending %d dead %d, want 0 0", p, d)
	}
	var metrics bytes.Buffer
	req, _ := http.NewRequest("GET", r.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+r.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(metrics.String(), `agentd_rate_limited_total{by="client"} `+strconv.Itoa(limited)) {
		t.Errorf("metrics do not count the %d refusals", limited)
	}
}

// An authenticated sender whose messages make the agent send is held to
// its own budget; a message answered on its connection does not count.
func TestSenderRateLimit(t *testing.T) {
	url, _, _ := countingEndpoint(t, http.StatusAccepted)
	cfg := testConfig(t, t.TempDir())
	cfg.Limits.ClientRate = 0
	cfg.Limits.SenderRate, cfg.Limits.SenderBurst = 1, 3
	r := start(t, cfg)
	w := newWallet(t, url)
	for i := 0; i < 3; i++ {
		if a := postMsg(t, r, agent.MediaTypeEncrypted, authcrypted(t, r, w, pingFrom(r, w, ""))); a.status != http.StatusAccepted {
			t.Fatalf("ping %d: status %d %s", i, a.status, a.body)
		}
	}
	refused := pingFrom(r, w, "")
	a := postMsg(t, r, agent.MediaTypeEncrypted, authcrypted(t, r, w, refused))
	if a.status != http.StatusTooManyRequests || a.code != agent.CodeRateLimited || a.retryAfter == "" {
		t.Fatalf("ping over the sender's budget: status %d Retry-After %q %s", a.status, a.retryAfter, a.body)
	}
	if a := postMsg(t, r, agent.MediaTypeEncrypted, authcrypted(t, r, w, pingFrom(r, w, "all"))); a.status != http.StatusOK {
		t.Fatalf("return-route ping over the budget: status %d %s", a.status, a.body)
	}
	// Another sender has its own budget.
	other := newWallet(t, url)
	if a := postMsg(t, r, agent.MediaTypeEncrypted, authcrypted(t, r, other, pingFrom(r, other, ""))); a.status != http.StatusAccepted {
		t.Fatalf("another sender: status %d %s", a.status, a.body)
	}
}

// When the outbox holds its maximum, a message that would queue more is
// refused with 503, Retry-After and the outbox-full code, and nothing of it
// is stored: the same message is taken once there is room.
func TestOutboxFullRefuses(t *testing.T) {
	url, hits, status := countingEndpoint(t, http.StatusServiceUnavailable) // not delivered for now: stays pending
	cfg := testConfig(t, t.TempDir())
	cfg.Outbox.MaxPending = 3
	cfg.Outbox.MaxAttempts = 1000
	r := start(t, cfg)
	for i := 0; i < 3; i++ {
		w := newWallet(t, url)
		if a := postMsg(t, r, agent.MediaTypeEncrypted, authcrypted(t, r, w, pingFrom(r, w, ""))); a.status != http.StatusAccepted {
			t.Fatalf("ping %d: status %d %s", i, a.status, a.body)
		}
	}
	w := newWallet(t, url)
	packed := authcrypted(t, r, w, pingFrom(r, w, ""))
	a := postMsg(t, r, agent.MediaTypeEncrypted, packed)
	if a.status != http.StatusServiceUnavailable || a.code != agent.CodeOutboxFull || a.retryAfter == "" {
		t.Fatalf("ping with the outbox full: status %d Retry-After %q %s", a.status, a.retryAfter, a.body)
	}
	if p, _ := outboxDepth(t, r); p != 3 {
		t.Errorf("outbox pending %d, want 3", p)
	}
	// A return-route ping needs no room in the outbox.
	if a := postMsg(t, r, agent.MediaTypeEncrypted, authcrypted(t, r, w, pingFrom(r, w, "all"))); a.status != http.StatusOK {
		t.Fatalf("return-route ping with the outbox full: status %d %s", a.status, a.body)
	}
	// The endpoint recovers and the outbox drains; the refused message
	// was not recorded as handled, so sent again it is answered.
	status.Store(http.StatusAccepted)
	waitFor(t, 5*time.Second, "the outbox to drain", func() bool { p, _ := outboxDepth(t, r); return p == 0 })
	before := hits.Load()
	if a := postMsg(t, r, agent.MediaTypeEncrypted, packed); a.status != http.StatusAccepted {
		t.Fatalf("the refused ping sent again: status %d %s", a.status, a.body)
	}
	waitFor(t, 5*time.Second, "the pong of the refused ping", func() bool { return hits.Load() > before })
}

// Dead letters older than outbox.dead_retention are deleted by the
// daemon's sweep; newer ones are kept.
func TestDeadLetterRetention(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Outbox.DeadRetention = 24 * time.Hour
	// Put an old and a recent dead letter in the database before the start.
	r := start(t, cfg)
	r.Shutdown(context.Background())
	db, err := bolt.Open(filepath.Join(dir, "agentd.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for id, age := range map[string]time.Duration{"old": 48 * time.Hour, "recent": time.Hour} {
		m := &agent.OutboundMessage{ID: id, To: "did:example:x", Endpoint: "https://x.example/", Payload: []byte("{}")}
		if err := db.Outbox().Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
		m.DeadAt = time.Now().Add(-age)
		if err := db.Outbox().Kill(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	r = start(t, cfg)
	waitFor(t, 5*time.Second, "the old dead letter to be purged", func() bool {
		dead := deadLetterList(t, r)
		return len(dead) == 1 && dead[0].ID == "recent"
	})
	if p, d := outboxDepth(t, r); p != 0 || d != 1 {
		t.Errorf("outbox pending %d dead %d, want 0 1", p, d)
	}
}
