package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/protocols/provecontrol"
	httptransport "github.com/agentd/agentd/transport/http"
)

// pcWallet is a wallet that speaks Prove Control by hand: it packs its own
// messages and reads what arrives at its endpoint.
type pcWallet struct {
	*wallet
	mu     sync.Mutex
	inbox  []agent.Message
	meta   []envelope.Metadata
	raw    [][]byte
	server *httptest.Server
}

var pcResolver = did.NewDefaultRegistry(nil, nil)

func (w *pcWallet) PrivateKey(_ context.Context, kid string) (keys.PrivateKey, error) {
	for _, k := range w.secrets {
		if k.ID == kid {
			return k, nil
		}
	}
	return keys.PrivateKey{}, keys.ErrNotFound
}

// newPCWallet serves an endpoint that unpacks and keeps every message.
func newPCWallet(t *testing.T) *pcWallet {
	w := &pcWallet{}
	w.server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		plain, md, err := envelope.Unpack(r.Context(), b, envelope.UnpackOptions{Keys: did.NewKeyResolver(pcResolver), Secrets: w})
		if err != nil {
			t.Errorf("wallet could not unpack a message: %v", err)
			rw.WriteHeader(400)
			return
		}
		var m agent.Message
		json.Unmarshal(plain, &m)
		w.mu.Lock()
		w.inbox, w.meta, w.raw = append(w.inbox, m), append(w.meta, md), append(w.raw, b)
		w.mu.Unlock()
		rw.WriteHeader(202)
	}))
	t.Cleanup(w.server.Close)
	w.wallet = newWallet(t, w.server.URL)
	return w
}

// await returns the first message kept after skip messages that satisfies ok.
func (w *pcWallet) await(t *testing.T, ok func(agent.Message) bool) (agent.Message, envelope.Metadata) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		for i, m := range w.inbox {
			if ok(m) {
				md := w.meta[i]
				w.inbox = append(w.inbox[:i], w.inbox[i+1:]...)
				w.meta = append(w.meta[:i], w.meta[i+1:]...)
				w.raw = append(w.raw[:i], w.raw[i+1:]...)
				w.mu.Unlock()
				return m, md
			}
		}
		w.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the wallet got no such message")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *pcWallet) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.inbox)
}

// send authcrypts msg from the wallet to the agent and POSTs it; it returns
// the packed message.
func (w *pcWallet) send(t *testing.T, a *running, msg agent.Message) []byte {
	t.Helper()
	doc, err := did.ResolvePeer2(a.DID())
	if err != nil {
		t.Fatal(err)
	}
	ka, _ := doc.KeyAgreement()
	plain, _ := json.Marshal(msg)
	packed, err := envelope.PackAuthcrypt(plain, w.secrets[0], ka)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, body := post(t, a.base+"/didcomm", agent.MediaTypeEncrypted, packed); code != 202 {
		t.Fatalf("POST /didcomm: %d %s", code, body)
	}
	return packed
}

// logBuffer collects a daemon's log.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startLogged(t testing.TB, cfg config.Config) (*running, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	d, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return &running{Daemon: d, base: "http://" + d.Addr(), cfg: cfg}, logs
}

func verifierConfig(t *testing.T) config.Config {
	cfg := testConfig(t, t.TempDir())
	cfg.ProveControl.Verifier.AllowPrivateIPs = true
	cfg.ProveControl.Verifier.MaxAttempts = 3
	cfg.ProveControl.Verifier.MaxPendingPerSubject = 20
	return cfg
}

// challengeFor has the wallet request an IP verification of its own
// endpoint's address and returns the challenge the verifier POSTed there.
func challengeFor(t *testing.T, v *running, w *pcWallet) (provecontrol.VerificationChallenge, envelope.Metadata) {
	t.Helper()
	ip := strings.TrimPrefix(w.server.URL, "http://")
	req, _ := provecontrol.RequestVerification{To: v.DID(), From: w.did, VerificationType: provecontrol.IP, Subject: ip}.Message()
	w.send(t, v, req)
	m, md := w.await(t, func(m agent.Message) bool {
		return m.Type == provecontrol.VerificationChallengeType && m.ThID == req.ID
	})
	c, err := provecontrol.ParseVerificationChallenge(m)
	if err != nil {
		t.Fatal(err)
	}
	return c, md
}

func verificationCount(t *testing.T, v *running) int {
	t.Helper()
	var vs struct {
		Verifications []json.RawMessage `json:"verifications"`
	}
	if code := getJSON(t, v.base+"/admin/provecontrol/verifications", v.AdminToken(), &vs); code != 200 {
		t.Fatalf("verifications: %d", code)
	}
	return len(vs.Verifications)
}

// Every kind of bad prove, over the real wire: each is answered with a
// problem report of its own code, and nothing is confirmed.
func TestProveControlBadInputOverDIDComm(t *testing.T) {
	v, logs := startLogged(t, verifierConfig(t))
	w, intruder := newPCWallet(t), newPCWallet(t)
	c, md := challengeFor(t, v, w)
	if !md.Encrypted || !md.Authenticated || md.EncryptedFrom == "" || c.To != w.did || c.From != v.DID() {
		t.Fatalf("challenge %+v, envelope %+v", c, md)
	}
	good := c.Prove()
	problem := func(wallet *pcWallet, code string, msg agent.Message) {
		t.Helper()
		pr, _ := wallet.await(t, func(m agent.Message) bool {
			return m.Type == agent.ProblemReportType && m.PThID == msg.Thread()
		})
		var body agent.ProblemReportBody
		json.Unmarshal(pr.Body, &body)
		if body.Code != code {
			t.Fatalf("problem %s (%s), want %s", body.Code, body.Comment, code)
		}
		if n := verificationCount(t, v); n != 0 {
			t.Fatalf("%d verifications after a refused prove", n)
		}
	}
	proveMsg := func(edit func(p *provecontrol.Prove, m *agent.Message)) agent.Message {
		p := good
		m, _ := p.Message()
		if edit != nil {
			edit(&p, &m)
			m2, _ := p.Message()
			m.Body = m2.Body
		}
		return m
	}
	cases := []struct {
		name string
		from *pcWallet
		edit func(p *provecontrol.Prove, m *agent.Message)
		code string
	}{
		{"wrong proof", w, func(p *provecontrol.Prove, _ *agent.Message) { p.Proof = strings.Repeat("0", 64) }, provecontrol.CodeWrongProof},
		{"unknown thid", w, func(_ *provecontrol.Prove, m *agent.Message) { m.ThID = agent.NewID() }, provecontrol.CodeUnknownChallenge},
		{"mismatched subject", w, func(p *provecontrol.Prove, _ *agent.Message) { p.Subject = "127.0.0.1:1" }, provecontrol.CodeSubjectMismatch},
		{"mismatched type", w, func(p *provecontrol.Prove, _ *agent.Message) { p.VerificationType = provecontrol.Domain }, provecontrol.CodeTypeMismatch},
		{"to with two DIDs", w, func(_ *provecontrol.Prove, m *agent.Message) { m.To = []string{v.DID(), intruder.did} }, provecontrol.CodeTo},
		{"prove from another DID", intruder, func(_ *provecontrol.Prove, m *agent.Message) { m.From = intruder.did }, provecontrol.CodeWrongUser},
	}
	for _, tc := range cases {
		m := proveMsg(tc.edit)
		tc.from.send(t, v, m)
		problem(tc.from, tc.code, m)
	}
	// A plaintext prove: from is not authenticated. Without a return
	// route its problem cannot reach the sender, so the prove is refused
	// with it; with one, the report goes back on the connection, never
	// through the outbox to whatever from names.
	plain := proveMsg(nil)
	b, _ := json.Marshal(plain)
	if code, _, body := post(t, v.base+"/didcomm", agent.MediaTypePlain, b); code != 400 || !strings.Contains(string(body), provecontrol.CodeUnauthenticated) {
		t.Fatalf("plaintext prove: %d %s", code, body)
	}
	plain = proveMsg(nil)
	plain.ReturnRoute = "all"
	b, _ = json.Marshal(plain)
	code, _, answer := post(t, v.base+"/didcomm", agent.MediaTypePlain, b)
	// The report is encrypted to the DID the message names: only its
	// holder reads it.
	opened, _, err := envelope.Unpack(context.Background(), answer, envelope.UnpackOptions{Keys: did.NewKeyResolver(pcResolver), Secrets: w})
	if err != nil {
		t.Fatalf("plaintext prove with return_route: %d %s: %v", code, answer, err)
	}
	var pr agent.Message
	json.Unmarshal(opened, &pr)
	var prBody agent.ProblemReportBody
	json.Unmarshal(pr.Body, &prBody)
	if code != 200 || pr.Type != agent.ProblemReportType || pr.PThID != plain.Thread() || prBody.Code != provecontrol.CodeUnauthenticated {
		t.Fatalf("plaintext prove with return_route: %d %s", code, answer)
	}
	if n := verificationCount(t, v); n != 0 {
		t.Fatalf("%d verifications after a plaintext prove", n)
	}

	var ch provecontrol.ChallengeView
	getJSON(t, v.base+"/admin/provecontrol/challenges/"+c.ID, v.AdminToken(), &ch)
	if ch.State != provecontrol.StatePending || ch.Attempts != 1 {
		t.Fatalf("after the bad proves: %+v (only the wrong proof counts)", ch)
	}

	// The right prove: a signed confirmation with a credential.
	m := proveMsg(nil)
	packed := w.send(t, v, m)
	confirm, cmd := w.await(t, func(m agent.Message) bool { return m.Type == provecontrol.ConfirmVerificationType })
	if !cmd.Encrypted || !cmd.NonRepudiation || agent.DIDOf(cmd.SignFrom) != v.DID() || confirm.ThID != c.ID {
		t.Fatalf("confirmation envelope %+v thid %s", cmd, confirm.ThID)
	}
	cv, err := provecontrol.ParseConfirmVerification(confirm)
	if err != nil || len(cv.Attachments) != 1 || cv.Attachments[0].Format != provecontrol.CredentialFormat {
		t.Fatalf("confirmation %+v %v", cv, err)
	}
	if verificationCount(t, v) != 1 {
		t.Fatal("not recorded")
	}
	// The same prove replayed byte for byte is dropped by the router (never
	// answered twice). A new prove of the confirmed challenge with the right
	// proof gets the same confirmation again (the first may have been lost);
	// with another proof it is refused.
	if code, _, _ := post(t, v.base+"/didcomm", agent.MediaTypeEncrypted, packed); code != 202 {
		t.Fatalf("replay: %d", code)
	}
	again := proveMsg(nil)
	w.send(t, v, again)
	confirm2, _ := w.await(t, func(m agent.Message) bool { return m.Type == provecontrol.ConfirmVerificationType })
	cv2, err := provecontrol.ParseConfirmVerification(confirm2)
	if err != nil || confirm2.ThID != c.ID || len(cv2.Attachments) != 1 || cv2.Attachments[0].Data.Base64 != cv.Attachments[0].Data.Base64 ||
		verificationCount(t, v) != 1 {
		t.Fatalf("repeated prove: %+v %v, %d verifications", cv2, err, verificationCount(t, v))
	}
	wrong := proveMsg(func(p *provecontrol.Prove, _ *agent.Message) { p.Proof = strings.Repeat("1", 64) })
	w.send(t, v, wrong)
	problem2, _ := w.await(t, func(m agent.Message) bool { return m.Type == agent.ProblemReportType && m.PThID == wrong.Thread() })
	var body agent.ProblemReportBody
	json.Unmarshal(problem2.Body, &body)
	if body.Code != provecontrol.CodeAlreadyConfirmed || verificationCount(t, v) != 1 {
		t.Fatalf("another proof for a confirmed challenge: %s, %d verifications", body.Code, verificationCount(t, v))
	}
	if n := w.count(); n != 0 {
		t.Fatalf("%d unexpected messages (the byte-for-byte replay must not be answered)", n)
	}

	// Neither the admin API nor the log holds the secret or the proof.
	for _, path := range []string{"/admin/provecontrol/challenges", "/admin/provecontrol/challenges/" + c.ID} {
		_, _, body := getRaw(t, v.base+path, v.AdminToken())
		if strings.Contains(body, c.Secret) || strings.Contains(body, good.Proof) {
			t.Fatalf("%s shows the secret or the proof", path)
		}
	}
	if strings.Contains(logs.String(), c.Secret) || strings.Contains(logs.String(), good.Proof) {
		t.Fatal("the log holds the secret or the proof")
	}
	// The admin API needs the token.
	if code, _, _ := getRaw(t, v.base+"/admin/provecontrol/challenges", ""); code != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", code)
	}
}

func getRaw(t *testing.T, url, token string) (int, string, string) {
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
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// An expired challenge is refused, and so is the prove after the attempts ran out.
func TestProveControlExpiredAndExhausted(t *testing.T) {
	cfg := verifierConfig(t)
	cfg.ProveControl.Verifier.ChallengeTTL = 1500 * time.Millisecond
	v, _ := startLogged(t, cfg)
	w := newPCWallet(t)
	c, _ := challengeFor(t, v, w)
	time.Sleep(1600 * time.Millisecond)
	m, _ := c.Prove().Message()
	w.send(t, v, m)
	pr, _ := w.await(t, func(x agent.Message) bool { return x.Type == agent.ProblemReportType && x.PThID == c.ID })
	var body agent.ProblemReportBody
	json.Unmarshal(pr.Body, &body)
	if body.Code != provecontrol.CodeExpired || verificationCount(t, v) != 0 {
		t.Fatalf("expired: %s", body.Code)
	}

	cfg = verifierConfig(t)
	v, _ = startLogged(t, cfg)
	c, _ = challengeFor(t, v, w)
	for i := 0; i < 3; i++ {
		p := c.Prove()
		p.Proof = strings.Repeat("1", 64)
		m, _ := p.Message()
		w.send(t, v, m)
		w.await(t, func(x agent.Message) bool { return x.Type == agent.ProblemReportType && x.PThID == c.ID })
	}
	m, _ = c.Prove().Message()
	w.send(t, v, m)
	pr, _ = w.await(t, func(x agent.Message) bool { return x.Type == agent.ProblemReportType && x.PThID == c.ID })
	json.Unmarshal(pr.Body, &body)
	if body.Code != provecontrol.CodeAttemptsExhausted || verificationCount(t, v) != 0 {
		t.Fatalf("after the attempts ran out: %s", body.Code)
	}
}

// The public routes: one-time links and the well-known path refuse what
// they must, with clear statuses.
func TestProveControlPublicRoutes(t *testing.T) {
	v, _ := startLogged(t, verifierConfig(t))
	if httptransport.ChallengeLinkPath != provecontrol.LinkPath || httptransport.ChallengeWellKnownPath != provecontrol.WellKnownPath {
		t.Fatal("the transport's paths are not the protocol's")
	}
	get := func(path, accept string) (int, string) {
		req, _ := http.NewRequest("GET", v.base+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Content-Type")
	}
	if code, _ := get("/c/"+strings.Repeat("a", 43), agent.MediaTypeEncrypted); code != 404 {
		t.Fatalf("unknown link: %d", code)
	}
	if code, ct := get("/c/"+strings.Repeat("a", 43), "text/html"); code != 200 || !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("link in a browser: %d %s", code, ct)
	}
	wk := v.base + provecontrol.WellKnownPath
	if code, _, _ := post(t, wk, "application/json", []byte(`{}`)); code != http.StatusUnsupportedMediaType {
		t.Fatalf("wrong content type: %d", code)
	}
	if code, _, _ := post(t, wk, agent.MediaTypeEncrypted, bytes.Repeat([]byte("a"), 70<<10)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("too large: %d", code)
	}
	if code, _, _ := post(t, wk, agent.MediaTypeEncrypted, []byte(`{"not":"a jwe"}`)); code != 400 {
		t.Fatalf("not a JWE: %d", code)
	}
	// An encrypted message that is not a challenge is refused, not routed.
	w := newPCWallet(t)
	doc, _ := did.ResolvePeer2(v.DID())
	ka, _ := doc.KeyAgreement()
	ping, _ := agent.NewMessage("https://didcomm.org/trust-ping/2.0/ping", map[string]bool{"response_requested": true})
	ping.From, ping.To = w.did, []string{v.DID()}
	plain, _ := json.Marshal(ping)
	packed, _ := envelope.PackAuthcrypt(plain, w.secrets[0], ka)
	code, _, body := post(t, wk, agent.MediaTypeEncrypted, packed)
	if code != 400 || !strings.Contains(string(body), "verificationchallenge") {
		t.Fatalf("a ping at the well-known path: %d %s", code, body)
	}
	time.Sleep(200 * time.Millisecond)
	if w.count() != 0 {
		t.Fatal("the ping was answered")
	}
}
