package http

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agentd/agentd/agent"
)

func TestWebhookSignsAndDelivers(t *testing.T) {
	var got []byte
	var sig, ct string
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		sig, ct = r.Header.Get(SignatureHeader), r.Header.Get("Content-Type")
		w.WriteHeader(status)
	}))
	defer srv.Close()
	h := NewWebhook(srv.URL+"/hook", "0123456789abcdef", "agentd/test")
	body := []byte(`{"event":"iden3.session.verified"}`)
	if err := h.Deliver(context.Background(), h.Endpoint(), "application/json", body); err != nil {
		t.Fatal(err)
	}
	// The signature is HMAC-SHA256 of the body under the secret.
	m := hmac.New(sha256.New, []byte("0123456789abcdef"))
	m.Write(body)
	if string(got) != string(body) || ct != "application/json" || sig != "sha256="+hex.EncodeToString(m.Sum(nil)) {
		t.Fatalf("got %q sig %q ct %q", got, sig, ct)
	}
	if Sign([]byte("another secret!!"), body) == sig {
		t.Fatal("the signature does not depend on the secret")
	}
	status = http.StatusBadRequest
	var perm *agent.PermanentError
	if err := h.Deliver(context.Background(), h.Endpoint(), "application/json", body); !errors.As(err, &perm) {
		t.Fatalf("4xx: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := h.Deliver(context.Background(), h.Endpoint(), "application/json", body); err == nil || errors.As(err, &perm) {
		t.Fatalf("5xx must be retried: %v", err)
	}
	// Only the configured URL is served.
	if err := h.Deliver(context.Background(), WebhookScheme+"https://elsewhere.example/", "application/json", body); !errors.As(err, &perm) {
		t.Fatalf("other URL: %v", err)
	}
}

func TestWebhookTreeServesPathsBelowItsBase(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
	}))
	defer srv.Close()
	tree := NewWebhookTree(srv.URL+"/hooks/", "secret-secret-secret", "")
	plain := NewWebhook(srv.URL+"/iden3", "other-secret-other", "")
	var ws Webhooks
	ws.Add(plain)
	ws.Add(tree)
	body := []byte(`{}`)
	for _, ep := range []string{tree.Endpoint() + "/topics/basic_message", plain.Endpoint()} {
		if err := ws.Deliver(context.Background(), ep, "application/json", body); err != nil {
			t.Fatalf("%s: %v", ep, err)
		}
	}
	if len(paths) != 2 || paths[0] != "/hooks/topics/basic_message" || paths[1] != "/iden3" {
		t.Fatalf("paths %v", paths)
	}
	var perm *agent.PermanentError
	for _, ep := range []string{plain.Endpoint() + "/sub", tree.Endpoint() + "/../x", WebhookScheme + srv.URL + "/hooksx/a", WebhookScheme + "https://elsewhere.example/hooks/a"} {
		if err := ws.Deliver(context.Background(), ep, "application/json", body); !errors.As(err, &perm) {
			t.Errorf("%s: %v", ep, err)
		}
	}
	if len(paths) != 2 {
		t.Fatalf("delivered to %v", paths)
	}
}
