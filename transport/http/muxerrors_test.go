package http

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMuxAnswersAreJSON: the answers no route writes (unknown path, wrong
// method, path cleaning) are JSON error bodies like every other error, on
// public and admin routes, and never redirects.
func TestMuxAnswersAreJSON(t *testing.T) {
	h := NewHandler(Config{Receiver: &fakeReceiver{}, Public: fakePublic{}, Features: []Feature{NewAdminAPI(fakeAdmin{})}, AdminToken: testToken})
	for _, tc := range []struct {
		method, path, token string
		status              int
		code, allow         string
	}{
		{"GET", "/nope", "", 404, "e.p.req.not-found", ""},
		{"GET", "/didcomm", "", 405, "method-not-allowed", "POST"},
		{"DELETE", "/healthz", "", 405, "method-not-allowed", "GET"},
		{"POST", "/didcomm/../didcomm", "", 404, "e.p.req.not-found", ""},
		{"POST", "//didcomm", "", 404, "e.p.req.not-found", ""},
		{"GET", "/admin", "", 404, "e.p.req.not-found", ""},
		{"GET", "/admin/nope", testToken, 404, "e.p.req.not-found", ""},
		{"GET", "/admin/nope", "", 401, "unauthorized", ""},
	} {
		resp, body := do(t, h, tc.method, tc.path, "", tc.token, "")
		var eb ErrorBody
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal([]byte(body), &eb) != nil || eb.Error != tc.code || eb.Reason == "" {
			t.Errorf("%s %s: %d %s %q, want %d JSON with %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status, tc.code)
		}
		if resp.Header.Get("Location") != "" {
			t.Errorf("%s %s: a redirect to %s", tc.method, tc.path, resp.Header.Get("Location"))
		}
		if tc.allow != "" && !strings.Contains(resp.Header.Get("Allow"), tc.allow) {
			t.Errorf("%s %s: Allow %q, want %s", tc.method, tc.path, resp.Header.Get("Allow"), tc.allow)
		}
	}
}

// TestBearerSchemeCaseInsensitive: the admin token is taken whatever the
// case of the scheme (RFC 7235), and only with the right token.
func TestBearerSchemeCaseInsensitive(t *testing.T) {
	h := NewHandler(Config{Receiver: &fakeReceiver{}, Public: fakePublic{}, Features: []Feature{NewAdminAPI(fakeAdmin{})}, AdminToken: testToken})
	for auth, want := range map[string]int{
		"bearer " + testToken:       200,
		"BEARER " + testToken:       200,
		"Bearer " + testToken:       200,
		"bearer  " + testToken:      200,
		"bearer " + testToken + "x": 401,
		"Basic " + testToken:        401,
		"bearer":                    401,
		testToken:                   401,
	} {
		req := httptest.NewRequest("GET", "/admin/outbox", nil)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Authorization %q: %d, want %d", auth, rec.Code, want)
		}
	}
}
