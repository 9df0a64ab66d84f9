package http

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
)

// budget allows n messages per key, then refuses with a 7s wait.
type budget struct {
	mu   sync.Mutex
	n    int
	used map[string]int
}

func (b *budget) Allow(key string) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used == nil {
		b.used = map[string]int{}
	}
	if b.used[key] >= b.n {
		return false, 7 * time.Second
	}
	b.used[key]++
	return true, 0
}

// Over the client's budget, the endpoint answers 429 with Retry-After and
// the rate-limit code, and the message never reaches the router.
func TestEndpointRateLimitsClients(t *testing.T) {
	rcv := &fakeReceiver{}
	var limited []string
	h := NewHandler(Config{Receiver: rcv, Public: fakePublic{}, ClientLimit: &budget{n: 2},
		OnRateLimited: func(by string) { limited = append(limited, by) }})
	for i := 0; i < 2; i++ {
		if resp, body := do(t, h, "POST", "/didcomm", agent.MediaTypePlain, "", `{"a":1}`); resp.StatusCode != 202 {
			t.Fatalf("message %d: %d %s", i, resp.StatusCode, body)
		}
	}
	rcv.got = nil
	resp, body := do(t, h, "POST", "/didcomm", agent.MediaTypePlain, "", `{"a":2}`)
	var e ErrorBody
	json.Unmarshal([]byte(body), &e)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" || e.Error != agent.CodeRateLimited {
		t.Fatalf("over the budget: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if rcv.got != nil {
		t.Error("a rate-limited message reached the router")
	}
	if len(limited) != 1 || limited[0] != "client" {
		t.Errorf("OnRateLimited calls %v", limited)
	}
	// Another address has its own budget.
	req := httptest.NewRequest("POST", "/didcomm", strings.NewReader(`{"a":3}`))
	req.Header.Set("Content-Type", agent.MediaTypePlain)
	req.RemoteAddr = "192.0.2.7:4444"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 202 {
		t.Errorf("another client: %d", rec.Code)
	}
}

// The router's refusals map onto 429 and 503, with Retry-After.
func TestRefusalStatusesWithRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		code   string
		status int
	}{{agent.CodeRateLimited, 429}, {agent.CodeOutboxFull, 503}} {
		e := agent.Errorf(tc.code, "later")
		e.RetryAfter = 1500 * time.Millisecond
		h := NewHandler(Config{Receiver: &fakeReceiver{err: e}, Public: fakePublic{}})
		resp, body := do(t, h, "POST", "/didcomm", agent.MediaTypePlain, "", `{"a":1}`)
		if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != "2" || !strings.Contains(body, tc.code) {
			t.Errorf("%s: %d Retry-After %q %s", tc.code, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
}

// On a WebSocket, each message takes a token; one over the budget is
// answered with a problem report and not handed to the router.
func TestWebSocketRateLimitsClients(t *testing.T) {
	rcv := &sessionReceiver{}
	srv := httptest.NewServer(NewHandler(Config{Receiver: rcv, Public: fakePublic{}, WebSocket: &WebSocketConfig{}, ClientLimit: &budget{n: 1}}))
	t.Cleanup(srv.Close)
	c := dial(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/didcomm")
	write(t, c, `{"id":"1","type":"ping","body":{}}`)
	if v := readFrame(t, c); v["type"] != "pong" {
		t.Fatalf("reply %v", v)
	}
	write(t, c, `{"id":"2","type":"ping","body":{}}`)
	v := readFrame(t, c)
	body, _ := v["body"].(map[string]any)
	if v["type"] != agent.ProblemReportType || body["code"] != agent.CodeRateLimited {
		t.Fatalf("over the budget: %v", v)
	}
}
