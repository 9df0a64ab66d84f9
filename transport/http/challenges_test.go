package http

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent"
)

type links struct{ fullFake }

func (links) FetchLink(_ context.Context, token string) ([]byte, string, error) {
	switch token {
	case "unknown":
		return nil, "", agent.Errorf(agent.CodeNotFound, "no such link")
	case "used":
		return nil, "", agent.Errorf(agent.CodeGone, "the link was used already or has expired")
	}
	return []byte(`{"ciphertext":"c"}`), agent.MediaTypeEncrypted, nil
}

func TestChallengeLinks(t *testing.T) {
	h := NewHandler(Config{Receiver: &fakeReceiver{}, Features: []Feature{NewChallengeLinks(links{})}})
	get := func(token, accept string) (int, string, string) {
		req := httptest.NewRequest("GET", ChallengeLinkPath+token, nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()
	}
	for _, tc := range []struct {
		token, accept string
		status        int
		body          string
	}{
		{"good", agent.MediaTypeEncrypted, 200, "ciphertext"},
		{"good", "text/html", 200, "Verification link"},
		{"unknown", agent.MediaTypeEncrypted, 404, `"e.p.req.not-found"`},
		{"used", agent.MediaTypeEncrypted, 410, `"e.p.req.gone"`},
	} {
		status, _, body := get(tc.token, tc.accept)
		if status != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s (%s): %d %s", tc.token, tc.accept, status, body)
		}
	}
	// The well-known path takes only encrypted messages.
	if resp, _ := do(t, h, "POST", ChallengeWellKnownPath, "application/json", "", `{}`); resp.StatusCode != 415 {
		t.Fatalf("plain JSON challenge: %d", resp.StatusCode)
	}
	if resp, _ := do(t, h, "POST", ChallengeWellKnownPath, agent.MediaTypeEncrypted, "", `{}`); resp.StatusCode != 202 {
		t.Fatalf("challenge: %d", resp.StatusCode)
	}
	// Without an admin feature, no admin API.
	if resp, _ := do(t, h, "GET", "/admin/openapi.json", "", "", ""); resp.StatusCode != 404 {
		t.Fatalf("admin without admin features: %d", resp.StatusCode)
	}
}
