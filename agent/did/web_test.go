package did

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/agent/keys"
)

func TestWebURL(t *testing.T) {
	good := map[string]string{
		"did:web:example.com":                  "https://example.com/.well-known/did.json",
		"did:web:example.com:user:alice":       "https://example.com/user/alice/did.json",
		"did:web:localhost%3A8443":             "https://localhost:8443/.well-known/did.json",
		"did:web:localhost%3a8443:a:b":         "https://localhost:8443/a/b/did.json",
		"did:web:w3c-ccg.github.io:user:alice": "https://w3c-ccg.github.io/user/alice/did.json",
		"did:web:example.com:a%20b":            "https://example.com/a%20b/did.json",
		"did:web:127.0.0.1%3A1":                "https://127.0.0.1:1/.well-known/did.json",
	}
	for did, want := range good {
		got, err := WebURL(did)
		if err != nil || got != want {
			t.Errorf("WebURL(%s) = %s, %v; want %s", did, got, err, want)
		}
	}
	bad := []string{
		"did:web:",
		"did:web:example.com/path",
		"did:web:example.com#frag",
		"did:web:ex%2Fample.com",
		"did:web:user%40example.com",
		"did:web:example.com%3A",
		"did:web:example.com%3A99999",
		"did:web:example.com%3Ax",
		"did:web:-example.com",
		"did:web:example..com",
		"did:web:example.com:..:x",
		"did:web:example.com:a%2Fb",
		"did:web:example.com::x",
		"did:web:example.com:x:",
		"did:web:%zz",
		"did:key:example.com",
	}
	for _, did := range bad {
		if u, err := WebURL(did); !errors.Is(err, ErrInvalidDID) {
			t.Errorf("WebURL(%s) = %s, %v; want ErrInvalidDID", did, u, err)
		}
	}
}

func TestWebResolverHTTPS(t *testing.T) {
	x, _ := keys.Generate(keys.X25519, "")
	var hits atomic.Int32
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake below logs
	srv.StartTLS()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	root := "did:web:" + strings.Replace(host, ":", "%3A", 1)
	docFor := func(id string) string {
		return fmt.Sprintf(`{"@context":["https://www.w3.org/ns/did/v1","https://w3id.org/security/multikey/v1"],
			"id":%q,"verificationMethod":[{"id":"#x","type":"Multikey","controller":%q,"publicKeyMultibase":%q}],
			"keyAgreement":["#x"],
			"service":[{"id":"#dc","type":"DIDCommMessaging","serviceEndpoint":{"uri":"https://example.com/dc","accept":["didcomm/v2"]}}]}`,
			id, id, x.PublicKey.Multikey())
	}
	mux.HandleFunc("/.well-known/did.json", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/did+json")
		fmt.Fprint(w, docFor(root))
	})
	mux.HandleFunc("/user/alice/did.json", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, docFor(root+":user:alice"))
	})
	mux.HandleFunc("/wrong/did.json", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, docFor("did:web:evil.example"))
	})
	mux.HandleFunc("/big/did.json", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"id":"`+strings.Repeat("a", 5000)+`"}`)
	})
	mux.HandleFunc("/garbage/did.json", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<html>`)
	})
	mux.HandleFunc("/broken/did.json", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "oops", http.StatusInternalServerError)
	})
	mux.HandleFunc("/gone/did.json", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusGone)
	})
	mux.HandleFunc("/downgrade/did.json", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+host+"/.well-known/did.json", http.StatusFound)
	})
	mux.HandleFunc("/moved/did.json", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/user/alice/did.json", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/slow/did.json", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})

	ctx := context.Background()
	wr := &WebResolver{Client: srv.Client(), MaxBytes: 4096}
	doc, err := wr.Resolve(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if doc.ID != root || hits.Load() != 1 {
		t.Fatalf("doc %s, %d requests", doc.ID, hits.Load())
	}
	ka, err := doc.KeyAgreement()
	if err != nil || len(ka) != 1 || !ka[0].Equal(x.PublicKey) || ka[0].ID != root+"#x" {
		t.Errorf("KeyAgreement %v %v", ka, err)
	}
	if d, err := wr.Resolve(ctx, root+":user:alice"); err != nil || d.ID != root+":user:alice" {
		t.Errorf("path DID: %v", err)
	}

	for path, want := range map[string]error{
		"nothere":   ErrNotFound,
		"gone":      ErrNotFound,
		"wrong":     ErrInvalidDocument,
		"big":       ErrInvalidDocument,
		"garbage":   ErrInvalidDocument,
		"moved":     ErrInvalidDocument, // followed, but the document there is alice's
		"broken":    nil,
		"downgrade": nil,
	} {
		_, err := wr.Resolve(ctx, root+":"+path)
		if err == nil || (want != nil && !errors.Is(err, want)) {
			t.Errorf("%s: err = %v, want %v", path, err, want)
		}
	}

	quick := &WebResolver{Client: srv.Client(), Timeout: 100 * time.Millisecond}
	start := time.Now()
	if _, err := quick.Resolve(ctx, root+":slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow server: err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("timeout not applied")
	}

	// Without the test server's CA the TLS handshake fails: no plain-HTTP
	// fallback, no skipping verification.
	// (AllowPrivate: the test server is on loopback, which the default
	// client refuses before any TLS.)
	if _, err := (&WebResolver{AllowPrivate: true, Timeout: 5 * time.Second}).Resolve(ctx, root); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("resolved over TLS without trusting the test CA, or failed otherwise: %v", err)
	}
}
