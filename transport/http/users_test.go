package http

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
)

// fakeSignup records what the routes hand it and answers err when set.
type fakeSignup struct {
	name, email, ip, token string
	keys                   UserKeys
	err                    error
}

func (f *fakeSignup) RequestSignup(_ context.Context, name, email, ip string) (SignupReceipt, error) {
	f.name, f.email, f.ip = name, email, ip
	return SignupReceipt{ID: "r1", ExpiresAt: time.Unix(1, 0)}, f.err
}
func (f *fakeSignup) SignupConfirmation(_ context.Context, token string) (SignupConfirmation, error) {
	f.token = token
	return SignupConfirmation{Name: "<Eve>", Email: "eve@example.org", Action: "create"}, f.err
}
func (f *fakeSignup) ConfirmSignup(_ context.Context, token string) (SignupConfirmed, error) {
	f.token = token
	return SignupConfirmed{Action: "created", User: User{Email: "eve@example.org"}}, f.err
}
func (f *fakeSignup) SignupStatus(context.Context, string, time.Duration) (SignupStatus, error) {
	return SignupStatus{}, f.err
}
func (f *fakeSignup) UploadUserKeys(_ context.Context, _, token string, k UserKeys) (User, error) {
	f.token, f.keys = token, k
	return User{}, f.err
}

func usersServer(f *fakeSignup) *Routes {
	_, _, rs := newServer(Config{Receiver: &fakeReceiver{}, Public: fakePublic{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Features: []Feature{NewUsersAPI(f, nil)}})
	return rs
}

func TestUsersRoutes(t *testing.T) {
	f := &fakeSignup{}
	h, _, _ := newServer(Config{Receiver: &fakeReceiver{}, Public: fakePublic{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Features: []Feature{NewUsersAPI(f, nil)}})
	resp, body := do(t, h, "POST", UsersRequestsPath, "application/json", "", `{"name":"Eve","email":"eve@example.org"}`)
	if resp.StatusCode != 202 || f.name != "Eve" || f.ip == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("request: %d %s %+v", resp.StatusCode, body, f)
	}
	for _, c := range []struct{ ct, body, want string }{
		{"application/json", `{"name":"Eve","email":"e@x.org","role":"admin"}`, "role: unknown field"},
		{"application/json", `{"name":["Eve"]}`, "name: must be a string"},
		{"application/json", ``, "body: empty"},
		{"text/plain", `{}`, "body: the content type must be application/json"},
		{"application/json", `{"name":"` + strings.Repeat("x", maxUsersBody) + `"}`, "body: larger than"},
	} {
		f.name = ""
		resp, body := do(t, h, "POST", UsersRequestsPath, c.ct, "", c.body)
		if resp.StatusCode/100 != 4 || !strings.Contains(body, c.want) || f.name != "" {
			t.Errorf("%.40s: %d %s", c.body, resp.StatusCode, body)
		}
	}
	// The page escapes what it shows and holds the token in its form.
	resp, body = do(t, h, "GET", UsersConfirmPath+"?token=tok", "", "", "")
	if resp.StatusCode != 200 || !strings.Contains(body, "&lt;Eve&gt;") || !strings.Contains(body, `name="token" value="tok"`) ||
		resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("page: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	// The form's POST answers a page, an API client's JSON.
	if resp, body := do(t, h, "POST", UsersConfirmPath, "application/x-www-form-urlencoded", "", "token=tok2"); resp.StatusCode != 200 ||
		f.token != "tok2" || !strings.Contains(body, "Account confirmed") {
		t.Fatalf("form POST: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, h, "POST", UsersConfirmPath+"?token=tok3", "", "", ""); resp.StatusCode != 200 || f.token != "tok3" ||
		!strings.Contains(body, `"action": "created"`) {
		t.Fatalf("API POST: %d %s", resp.StatusCode, body)
	}
	// An internal error shows no detail.
	f.err = agent.Wrap(agent.CodeMe, errors.New("disk /secret/path broken"), "store failed")
	if resp, body := do(t, h, "GET", UsersConfirmPath+"?token=tok", "", "", ""); resp.StatusCode != 500 || strings.Contains(body, "secret") ||
		!strings.Contains(body, "Something went wrong") {
		t.Fatalf("internal error page: %d %s", resp.StatusCode, body)
	}
	f.err = nil
	// The key upload needs the bearer token.
	if resp, body := do(t, h, "PUT", "/v1/users/u1/keys", "application/json", "", `{}`); resp.StatusCode != 403 || !strings.Contains(body, "token:") {
		t.Fatalf("keys without token: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, h, "PUT", "/v1/users/u1/keys", "application/json", "upload", `{"ethereum_address":"0x1","pubkeys":{"eddsa_public_key":"k"}}`); resp.StatusCode != 200 ||
		f.token != "upload" || f.keys.Pubkeys.EdDSA != "k" {
		t.Fatalf("keys: %d %s %+v", resp.StatusCode, body, f)
	}
	if resp, _ := do(t, h, "GET", UsersRequestsPath+"/r1?wait=forever", "", "", ""); resp.StatusCode != 400 {
		t.Fatalf("bad wait: %d", resp.StatusCode)
	}
	// Public routes only: no admin route without an admin service.
	if rs := usersServer(f); len(rs.adminRoutes()) != 0 {
		t.Fatal("admin routes without an admin service")
	}
}
