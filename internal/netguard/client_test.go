package netguard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestClient: a loopback server is out of reach unless private addresses
// are allowed, and a redirect to plain http is refused.
func TestClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://"+r.Host+"/", http.StatusFound)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	if _, err := (Policy{}).Client(5 * time.Second).Get(srv.URL); err == nil {
		t.Fatal("a loopback address was reached without AllowPrivate")
	}
	c := Policy{AllowPrivate: true}.Client(5 * time.Second)
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := c.Get(srv.URL + "/redirect"); err == nil || !strings.Contains(err.Error(), "redirect refused") {
		t.Fatalf("redirect to http: %v", err)
	}
}
