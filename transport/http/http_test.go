package http

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/internal/netguard"
)

type fakeReceiver struct {
	got   []byte
	form  envelope.Form // as declared to ReceiveDeclared
	reply *agent.Reply
	err   error
}

func (f *fakeReceiver) ReceiveDuplex(ctx context.Context, transport string, raw []byte, _ agent.Session) (*agent.Reply, error) {
	f.got = bytes.Clone(raw) // raw is not ours past the call (Receiver)
	return f.reply, f.err
}

// ReceiveDeclared refuses a body that is not one JSON object, or not of the
// declared form, as agent.Router does (TestReceiveDeclared there), and
// then takes it as ReceiveDuplex.
func (f *fakeReceiver) ReceiveDeclared(ctx context.Context, transport string, raw []byte, form envelope.Form) (*agent.Reply, error) {
	f.form = form
	got, err := envelope.FormOf(raw)
	if err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, err.Error())
	}
	if got != form {
		err := &envelope.FormMismatchError{Got: got, Declared: form}
		return nil, agent.Wrap(agent.CodeMediaType, err, err.Error())
	}
	return f.ReceiveDuplex(ctx, transport, raw, nil)
}

type fakePublic struct{}

func (fakePublic) DIDDocument(ctx context.Context) (string, *did.Doc, error) {
	return "did:example:a", &did.Doc{ID: "did:example:a"}, nil
}
func (fakePublic) Invitation(ctx context.Context) (Invitation, string, error) {
	return Invitation{ID: "inv"}, "https://x/?_oob=e30", nil
}

type fakeAdmin struct{ AdminService }

func (fakeAdmin) OutboxDepth(ctx context.Context) (int, int, error) { return 3, 1, nil }
func (fakeAdmin) RetryDeadLetter(ctx context.Context, id string) error {
	return agent.ErrNotFound
}

func do(t *testing.T, h http.Handler, method, path, ct, token, body string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(b)
}

func TestEndpoint(t *testing.T) {
	rcv := &fakeReceiver{}
	h := NewHandler(Config{Receiver: rcv, Public: fakePublic{}, MaxBodyBytes: 2048})
	resp, _ := do(t, h, "POST", "/didcomm", "application/didcomm-encrypted+json; charset=utf-8", "", `{"ciphertext":"a"}`)
	if resp.StatusCode != 202 || string(rcv.got) != `{"ciphertext":"a"}` {
		t.Fatalf("accepted message: %d, receiver got %q", resp.StatusCode, rcv.got)
	}
	rcv.reply = &agent.Reply{Payload: []byte(`{"r":1}`), MediaType: agent.MediaTypeEncrypted}
	resp, body := do(t, h, "POST", "/didcomm", agent.MediaTypePlain, "", `{}`)
	if resp.StatusCode != 200 || body != `{"r":1}` || resp.Header.Get("Content-Type") != agent.MediaTypeEncrypted {
		t.Fatalf("return-route reply: %d %q %s", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	rcv.got, rcv.reply = nil, nil
	for _, tc := range []struct {
		ct, body string
		status   int
	}{
		{"application/json", `{}`, 415},
		{"", `{}`, 415},
		{agent.MediaTypeSigned, `{not json`, 400},
		{agent.MediaTypeSigned, `{"x":"` + strings.Repeat("a", 3000) + `"}`, 413},
		// The body's form must be the one the Content-Type declares.
		{agent.MediaTypeEncrypted, `{"id":"1","type":"t","body":{}}`, 415},
		{agent.MediaTypeEncrypted, `{"payload":"e30","signatures":[]}`, 415},
		{agent.MediaTypeSigned, `{"protected":"e30","recipients":[],"ciphertext":"x"}`, 415},
		{agent.MediaTypePlain, `{"protected":"e30","recipients":[],"ciphertext":"x"}`, 415},
		{agent.MediaTypePlain, `{"payload":"e30","signature":"x"}`, 415},
		{agent.MediaTypeEncrypted, `[{"ciphertext":"x"}]`, 400},
		{agent.MediaTypeEncrypted, `{"ciphertext":"x"} {}`, 400},
	} {
		resp, body := do(t, h, "POST", "/didcomm", tc.ct, "", tc.body)
		if resp.StatusCode != tc.status || !strings.Contains(body, `"reason"`) {
			t.Fatalf("%s %.20s: %d %s, want %d with a reason", tc.ct, tc.body, resp.StatusCode, body, tc.status)
		}
		if rcv.got != nil {
			t.Fatal("refused input reached the router")
		}
	}
	rcv.err = agent.Errorf(agent.CodeTrustCrypto, "decryption failed")
	resp, body = do(t, h, "POST", "/didcomm", agent.MediaTypeEncrypted, "", `{"ciphertext":"x"}`)
	if resp.StatusCode != 400 || !strings.Contains(body, "e.p.trust.crypto") {
		t.Fatalf("router error: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, h, "GET", "/didcomm", "", "", ""); resp.StatusCode != 405 {
		t.Fatalf("GET on the endpoint: %d", resp.StatusCode)
	}
}

// TestEndpointTrailingSlash: POST /didcomm/ is the endpoint too (some
// wallets add the slash), with the same answers; nothing below it is.
func TestEndpointTrailingSlash(t *testing.T) {
	rcv := &fakeReceiver{}
	h := NewHandler(Config{Receiver: rcv, Public: fakePublic{}})
	resp, _ := do(t, h, "POST", "/didcomm/", agent.MediaTypeEncrypted, "", `{"ciphertext":"slash"}`)
	if resp.StatusCode != 202 || string(rcv.got) != `{"ciphertext":"slash"}` {
		t.Fatalf("POST /didcomm/: %d, receiver got %q", resp.StatusCode, rcv.got)
	}
	rcv.reply = &agent.Reply{Payload: []byte(`{"r":2}`), MediaType: agent.MediaTypeEncrypted}
	if resp, body := do(t, h, "POST", "/didcomm/", agent.MediaTypePlain, "", `{}`); resp.StatusCode != 200 || body != `{"r":2}` {
		t.Fatalf("return-route reply on /didcomm/: %d %q", resp.StatusCode, body)
	}
	rcv.got, rcv.reply = nil, nil
	if resp, body := do(t, h, "POST", "/didcomm/", "application/json", "", `{}`); resp.StatusCode != 415 || !strings.Contains(body, `"reason"`) {
		t.Fatalf("wrong media type on /didcomm/: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/didcomm/x", "/didcomm//"} {
		if resp, _ := do(t, h, "POST", path, agent.MediaTypeEncrypted, "", `{"ciphertext":"x"}`); resp.StatusCode != 404 {
			t.Errorf("POST %s: %d, want 404", path, resp.StatusCode)
		}
	}
	if rcv.got != nil {
		t.Fatal("a refused request reached the router")
	}
	if resp, _ := do(t, h, "GET", "/didcomm/", "", "", ""); resp.StatusCode != 405 {
		t.Fatalf("GET /didcomm/ without WebSockets: %d", resp.StatusCode)
	}
}

func TestAdminNeedsToken(t *testing.T) {
	h := NewHandler(Config{Receiver: &fakeReceiver{}, Public: fakePublic{}, Features: []Feature{NewAdminAPI(fakeAdmin{})}, AdminToken: "0123456789abcdef0123"})
	if resp, _ := do(t, h, "GET", "/admin/outbox", "", "", ""); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	if resp, _ := do(t, h, "GET", "/admin/outbox", "", "0123456789abcdef0124", ""); resp.StatusCode != 401 {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	resp, body := do(t, h, "GET", "/admin/outbox", "", "0123456789abcdef0123", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"pending": 3`) {
		t.Fatalf("outbox: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, h, "POST", "/admin/deadletters/x/retry", "", "0123456789abcdef0123", ""); resp.StatusCode != 404 {
		t.Fatalf("retry of unknown dead letter: %d", resp.StatusCode)
	}
	if resp, _ := do(t, h, "POST", "/admin/ping", "application/json", "0123456789abcdef0123", `{}`); resp.StatusCode != 400 {
		t.Fatalf("ping without to: %d", resp.StatusCode)
	}
	// A wrong method is refused for want of a token before anything else.
	if resp, _ := do(t, h, "GET", "/admin/ping", "", "", ""); resp.StatusCode != 401 {
		t.Fatalf("GET /admin/ping without token: %d", resp.StatusCode)
	}
	if resp, _ := do(t, h, "GET", "/admin/ping", "", "0123456789abcdef0123", ""); resp.StatusCode != 404 {
		t.Fatalf("GET /admin/ping: %d", resp.StatusCode)
	}
	if resp, _ := do(t, h, "GET", "/admin/nothing", "", "0123456789abcdef0123", ""); resp.StatusCode != 404 {
		t.Fatalf("unknown admin path: %d", resp.StatusCode)
	}
	// An empty configured token never authorises anything.
	h = NewHandler(Config{Receiver: &fakeReceiver{}, Public: fakePublic{}, Features: []Feature{NewAdminAPI(fakeAdmin{})}})
	if resp, _ := do(t, h, "GET", "/admin/outbox", "", "", ""); resp.StatusCode != 401 {
		t.Fatalf("empty token config: %d", resp.StatusCode)
	}
}

func TestSenderClassifiesFailures(t *testing.T) {
	status := 202
	var gotCT string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotCT = r.Header.Get("Content-Type")
		w.WriteHeader(status)
		io.WriteString(w, "reason text")
	}))
	defer srv.Close()
	s := NewSender("agentd-test", netguard.Policy{AllowPrivate: true})
	ctx := context.Background()
	if err := s.Deliver(ctx, srv.URL, agent.MediaTypeEncrypted, []byte("{}")); err != nil || gotCT != agent.MediaTypeEncrypted {
		t.Fatalf("2xx: %v, content type %q", err, gotCT)
	}
	var perm *agent.PermanentError
	for _, tc := range []struct {
		status    int
		permanent bool
	}{{400, true}, {404, true}, {413, true}, {408, false}, {429, false}, {500, false}, {503, false}} {
		status = tc.status
		err := s.Deliver(ctx, srv.URL, agent.MediaTypeEncrypted, []byte("{}"))
		if err == nil || errors.As(err, &perm) != tc.permanent || !strings.Contains(err.Error(), "reason text") {
			t.Fatalf("status %d: %v (permanent %v)", tc.status, err, tc.permanent)
		}
	}
	// A connection failure is retried.
	srv.Close()
	err := s.Deliver(ctx, srv.URL, agent.MediaTypeEncrypted, []byte("{}"))
	if err == nil || errors.As(err, &perm) {
		t.Fatalf("connection refused should be a retryable error: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	time.Sleep(2 * time.Millisecond)
	if err := s.Deliver(cctx, "http://127.0.0.1:1/", agent.MediaTypeEncrypted, nil); err == nil {
		t.Fatal("expired context delivered")
	}
}

// The default sender refuses loopback and private endpoints at once, as a
// permanent failure with a reason, and the server never sees the request.
func TestSenderRefusesPrivateAddresses(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	s := NewSender("agentd-test", netguard.Policy{})
	var perm *agent.PermanentError
	for _, ep := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), "http://10.1.2.3:9/x", "http://[::1]:9/", "http://169.254.169.254/latest/meta-data"} {
		err := s.Deliver(context.Background(), ep, agent.MediaTypeEncrypted, []byte("{}"))
		if !errors.As(err, &perm) || !errors.Is(err, netguard.ErrPrivate) || !strings.Contains(err.Error(), "outbox.allow_private") {
			t.Errorf("%s: %v, want a permanent refusal naming outbox.allow_private", ep, err)
		}
	}
	if hits != 0 {
		t.Errorf("the loopback server got %d requests", hits)
	}
}
