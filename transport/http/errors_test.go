package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent"
)

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
	}{
		{agent.Errorf(agent.CodeMsg, "x"), 400},
		{agent.Errorf("e.p.msg.provecontrol.subject", "x"), 400},
		{agent.Errorf(agent.CodeTrustCrypto, "x"), 400},
		{agent.Errorf(agent.CodeTooLarge, "x"), 413},
		{agent.Errorf(agent.CodeMediaType, "x"), 415},
		{agent.Errorf(agent.CodeMeResStorage, "x"), 507},
		{agent.Errorf(agent.CodeMe, "x"), 500},
		{agent.Wrap("e.p.me.db", errors.New("disk"), "x"), 500},
		{errors.New("anything that is not an *agent.Error"), 500},
		{agent.Errorf(agent.CodeNotFound, "x"), 404},
		{agent.Errorf(agent.CodeNotFound+".letter", "x"), 404},
		{agent.ErrNotFound, 404},
		{fmt.Errorf("record: %w", agent.ErrNotFound), 404},
		{agent.Errorf(agent.CodeGone, "x"), 410},
		{agent.Errorf(agent.CodeForbidden, "x"), 403},
		{agent.Errorf(agent.CodeConflict, "x"), 409},
		{agent.Errorf(agent.CodeMsgReplay, "x"), 409},
		{agent.Errorf(agent.CodeBusy, "x"), 503},
		{agent.Errorf("e.p.req.time.provecontrol.expired", "x"), 400},
		// Prefixes match whole segments only.
		{agent.Errorf("e.p.meta", "x"), 400},
		// An explained error wins over the store miss it wraps.
		{agent.Wrap(agent.CodeMe, agent.ErrNotFound, "x"), 500},
	} {
		if got := statusOf(tc.err); got != tc.status {
			t.Errorf("statusOf(%v) = %d, want %d", tc.err, got, tc.status)
		}
	}
}

// capture returns a logger writing JSON lines into the returned buffer.
func capture() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, nil)), &buf
}

// boom is a feature whose routes fail in the ways a handler can.
type boom struct{}

func (boom) Routes(r *Routes) {
	r.Public("GET /boom", "boom", func(w http.ResponseWriter, r *http.Request) { panic("public kaboom") })
	r.Admin("GET /admin/boom", Op{Summary: "panics", Response: OutboxResponse{}},
		func(w http.ResponseWriter, r *http.Request) { panic(fmt.Errorf("admin kaboom")) })
	r.Admin("GET /admin/fail", Op{Summary: "fails", Response: OutboxResponse{}},
		func(w http.ResponseWriter, r *http.Request) {
			fail(w, r, agent.Wrap(agent.CodeMe, fmt.Errorf("bolt: %w", errors.New("page 42 corrupt")), "database unavailable"))
		})
	r.Admin("GET /admin/bare", Op{Summary: "fails", Response: OutboxResponse{}},
		func(w http.ResponseWriter, r *http.Request) {
			fail(w, r, errors.New("dial tcp 10.0.0.1:5432: secret-ish detail"))
		})
}

const testToken = "0123456789abcdef0123"

func TestPanicsAreRecoveredAndLogged(t *testing.T) {
	log, buf := capture()
	h := NewHandler(Config{Receiver: &fakeReceiver{}, Public: fakePublic{}, AdminToken: testToken, Logger: log,
		Features: []Feature{boom{}}})
	for _, path := range []string{"/boom", "/admin/boom"} {
		buf.Reset()
		resp, body := do(t, h, "GET", path, "", testToken, "")
		if resp.StatusCode != 500 || !strings.Contains(body, `"e.p.me"`) || strings.Contains(body, "kaboom") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		logged := buf.String()
		if !strings.Contains(logged, "handler panicked") || !strings.Contains(logged, "kaboom") ||
			!strings.Contains(logged, "runtime/debug.Stack") || !strings.Contains(logged, resp.Header.Get("X-Request-Id")) {
			t.Fatalf("%s: the log does not hold the panic, its stack and the request id:\n%s", path, logged)
		}
		if strings.Contains(logged, testToken) {
			t.Fatal("the admin token was logged")
		}
	}
	// The server goes on serving.
	if resp, _ := do(t, h, "GET", "/healthz", "", "", ""); resp.StatusCode != 200 {
		t.Fatalf("after a panic: %d", resp.StatusCode)
	}
}

func TestInternalErrorsAreLoggedWithTheirCause(t *testing.T) {
	log, buf := capture()
	h := NewHandler(Config{Receiver: &fakeReceiver{}, Public: fakePublic{}, AdminToken: testToken, Logger: log,
		Features: []Feature{boom{}}})
	resp, body := do(t, h, "GET", "/admin/fail", "", testToken, "")
	if resp.StatusCode != 500 || !strings.Contains(body, "database unavailable") || strings.Contains(body, "page 42") {
		t.Fatalf("internal error answer: %d %s", resp.StatusCode, body)
	}
	logged := buf.String()
	for _, want := range []string{`"level":"ERROR"`, "page 42 corrupt", `"path":"/admin/fail"`, `"method":"GET"`,
		`"request_id":"` + resp.Header.Get("X-Request-Id") + `"`} {
		if !strings.Contains(logged, want) {
			t.Fatalf("log lacks %s:\n%s", want, logged)
		}
	}
	// An error that is not an *agent.Error: the peer gets "internal error" only.
	buf.Reset()
	resp, body = do(t, h, "GET", "/admin/bare", "", testToken, "")
	if resp.StatusCode != 500 || strings.Contains(body, "secret-ish") || !strings.Contains(buf.String(), "secret-ish") {
		t.Fatalf("bare error: %d %s, log %s", resp.StatusCode, body, buf.String())
	}
	// A client error is not logged as an internal one.
	buf.Reset()
	rcv := &fakeReceiver{err: agent.Errorf(agent.CodeTrustCrypto, "decryption failed")}
	h = NewHandler(Config{Receiver: rcv, Logger: log})
	if resp, _ := do(t, h, "POST", "/didcomm", agent.MediaTypeEncrypted, "", `{"ciphertext":"x"}`); resp.StatusCode != 400 || buf.Len() != 0 {
		t.Fatalf("client error: %d, log %q", resp.StatusCode, buf.String())
	}
	// Nor is a router failure's request body ever logged.
	buf.Reset()
	rcv.err = errors.New("store down")
	if resp, _ := do(t, h, "POST", "/didcomm", agent.MediaTypeEncrypted, "", `{"ciphertext":"SECRET-BODY"}`); resp.StatusCode != 500 ||
		!strings.Contains(buf.String(), "store down") || strings.Contains(buf.String(), "SECRET-BODY") {
		t.Fatalf("router failure: %d, log %q", resp.StatusCode, buf.String())
	}
}

func TestRequestIDFromClient(t *testing.T) {
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "/x", nil)
	req.Header.Set("X-Request-Id", "abc-123\n\"evil")
	if got := requestID(req); got != "abc-123evil" {
		t.Fatalf("request id %q", got)
	}
}
