package http

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParsePage(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  PageRequest
		ok    bool
	}{
		{"", PageRequest{Limit: 100}, true},
		{"?after=did:x&limit=5", PageRequest{After: "did:x", Limit: 5}, true},
		{"?limit=1000", PageRequest{Limit: 1000}, true},
		{"?limit=1001", PageRequest{}, false},
		{"?limit=0", PageRequest{}, false},
		{"?limit=ten", PageRequest{}, false},
	} {
		got, err := parsePage(httptest.NewRequest("GET", "/admin/x"+tc.query, nil))
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("%q: %+v %v", tc.query, got, err)
		}
		if err != nil && statusOf(err) != 400 {
			t.Errorf("%q: a bad limit answers %d", tc.query, statusOf(err))
		}
	}
}

func TestPageJSON(t *testing.T) {
	id := func(s string) string { return s }
	p := newPage("grants", []string{"a", "b"}, PageRequest{Limit: 2}, id)
	b, _ := json.Marshal(p)
	if string(b) != `{"grants":["a","b"],"next":"b"}` {
		t.Fatalf("full page: %s", b)
	}
	b, _ = json.Marshal(newPage("grants", []string{"a"}, PageRequest{Limit: 2}, id))
	if string(b) != `{"grants":["a"]}` {
		t.Fatalf("last page: %s", b)
	}
	b, _ = json.Marshal(newPage[string]("letters", nil, PageRequest{Limit: 2}, id))
	if string(b) != `{"letters":[]}` {
		t.Fatalf("empty page: %s", b)
	}
	var back Page[string]
	if err := json.Unmarshal([]byte(`{"grants":["a","b"],"next":"b"}`), &back); err != nil ||
		back.Key != "grants" || len(back.Items) != 2 || back.Next != "b" {
		t.Fatalf("decoded %+v %v", back, err)
	}
}

// TestDisabledFeature: a feature that is off says so under its prefix,
// behind the token; other unknown admin paths are plain 404s.
func TestDisabledFeature(t *testing.T) {
	h := NewHandler(Config{Receiver: &fakeReceiver{}, Public: fakePublic{}, AdminToken: testToken,
		Features: []Feature{NewAdminAPI(fakeAdmin{}), MediationDisabled()}})
	resp, body := do(t, h, "GET", "/admin/mediation/queue", "", testToken, "")
	if resp.StatusCode != 404 || !strings.Contains(body, "not enabled") {
		t.Fatalf("disabled mediator: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, h, "GET", "/admin/mediation/queue", "", "", ""); resp.StatusCode != 401 {
		t.Fatalf("disabled mediator without token: %d", resp.StatusCode)
	}
	resp, body = do(t, h, "GET", "/admin/nothing", "", testToken, "")
	if resp.StatusCode != 404 || !strings.Contains(body, "no admin endpoint") {
		t.Fatalf("unknown path: %d %s", resp.StatusCode, body)
	}
	// Without any admin feature there is no admin API at all.
	h = NewHandler(Config{Receiver: &fakeReceiver{}, Public: fakePublic{}, AdminToken: testToken})
	if resp, _ := do(t, h, "GET", "/admin/openapi.json", "", testToken, ""); resp.StatusCode != 404 {
		t.Fatalf("no admin features: %d", resp.StatusCode)
	}
}
