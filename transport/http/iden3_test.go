package http

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/ratelimit"
)

// iden3Fake records what the iden3 routes hand to the service.
type iden3Fake struct {
	fullFake
	session, mediaType, token string
	err                       error
}

func (f *iden3Fake) Iden3Answer(_ context.Context, id string, token []byte) (Iden3Session, error) {
	f.session, f.token = id, string(token)
	return Iden3Session{ID: id, State: "verified"}, f.err
}

func (f *iden3Fake) Iden3Receive(_ context.Context, mt string, body []byte) (Iden3Session, error) {
	f.mediaType, f.token = mt, string(body)
	return Iden3Session{ID: "s1", State: "verified"}, f.err
}

func TestIden3Callback(t *testing.T) {
	f := &iden3Fake{}
	h := NewHandler(Config{Receiver: &fakeReceiver{}, Public: fakePublic{}, Features: []Feature{NewIden3API(f, nil)}})
	// Whatever the content type (Privado ID wallets send text/plain), the body is the token.
	for _, ct := range []string{"text/plain", "application/iden3-zkp-json", ""} {
		resp, body := do(t, h, "POST", "/iden3/callback?session=abc", ct, "", "eyJ.tok.en")
		if resp.StatusCode != 200 || f.session != "abc" || f.token != "eyJ.tok.en" || !strings.Contains(body, `"verified"`) {
			t.Fatalf("%q: %d %s (%+v)", ct, resp.StatusCode, body, f)
		}
	}
	if resp, _ := do(t, h, "POST", "/iden3/callback", "text/plain", "", "x"); resp.StatusCode != 400 {
		t.Fatalf("no session: %d", resp.StatusCode)
	}
	// Refusals keep their status and reason; an unreachable chain is a 503 to retry.
	for _, tc := range []struct {
		err    error
		status int
	}{
		{agent.Errorf("e.p.trust.crypto.iden3", "response refused: bad proof"), 400},
		{agent.Errorf(agent.CodeConflict, "already answered"), 409},
		{agent.Errorf(agent.CodeGone, "expired"), 410},
		{agent.Errorf(agent.CodeNotFound, "session x not found"), 404},
		{&agent.Error{Code: agent.CodeBusy, Comment: "chain polygon:amoy could not be read", RetryAfter: 30 * time.Second}, 503},
	} {
		f.err = tc.err
		resp, body := do(t, h, "POST", "/iden3/callback?session=abc", "text/plain", "", "tok")
		if resp.StatusCode != tc.status || !strings.Contains(body, agent.ErrorComment(tc.err)) {
			t.Errorf("%v: %d %s", tc.err, resp.StatusCode, body)
		}
		if tc.status == 503 && resp.Header.Get("Retry-After") != "30" {
			t.Errorf("503 without Retry-After: %v", resp.Header)
		}
	}
}

func TestIden3OnDIDCommEndpoint(t *testing.T) {
	f := &iden3Fake{}
	rcv := &fakeReceiver{}
	h := NewHandler(Config{Receiver: rcv, Public: fakePublic{}, EndpointPath: "/didcomm", Features: []Feature{NewIden3API(f, nil)}})
	for _, mt := range Iden3MediaTypes {
		resp, body := do(t, h, "POST", "/didcomm", mt, "", "eyJ.tok.en")
		if resp.StatusCode != 200 || f.mediaType != mt || f.token != "eyJ.tok.en" || rcv.got != nil {
			t.Fatalf("%s: %d %s", mt, resp.StatusCode, body)
		}
	}
	// Without the verifier they are refused as before.
	h = NewHandler(Config{Receiver: rcv, Public: fakePublic{}, EndpointPath: "/didcomm"})
	if resp, _ := do(t, h, "POST", "/didcomm", "application/iden3-zkp-json", "", "x"); resp.StatusCode != 415 {
		t.Fatalf("without iden3: %d", resp.StatusCode)
	}
}

func TestSecondsJSON(t *testing.T) {
	for in, want := range map[string]Seconds{`"15m"`: "15m", `900`: "900s", `"1h30m"`: "1h30m"} {
		var s Seconds
		if err := json.Unmarshal([]byte(in), &s); err != nil || s != want {
			t.Errorf("%s: %q %v", in, s, err)
		}
	}
	for _, in := range []string{`1.5`, `-3`, `true`, `{}`} {
		var s Seconds
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("%s accepted as %q", in, s)
		}
	}
}

// TestIden3CallbackRateLimit: answers over a client's budget are refused
// with 429 and Retry-After before anything is verified.
func TestIden3CallbackRateLimit(t *testing.T) {
	f := &iden3Fake{}
	h := NewHandler(Config{Receiver: &fakeReceiver{}, Public: fakePublic{},
		Features: []Feature{NewIden3API(f, ratelimit.New(1, 2, 100))}})
	for i := range 2 {
		if resp, _ := do(t, h, "POST", "/iden3/callback?session=abc", "text/plain", "", "tok"+strconv.Itoa(i)); resp.StatusCode != 200 {
			t.Fatalf("answer %d within the burst: %d", i, resp.StatusCode)
		}
	}
	resp, body := do(t, h, "POST", "/iden3/callback?session=abc", "text/plain", "", "tok-over")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "too many answers") {
		t.Fatalf("over the limit: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if f.token == "tok-over" {
		t.Fatal("an answer over the limit reached the verifier")
	}
}
