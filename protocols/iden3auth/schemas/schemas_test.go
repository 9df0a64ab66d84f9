package schemas

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoaderNeverFetchesWhatIsNotAllowed(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(`{"@context":{"a":"https://example.org/a"}}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	l, err := New(dir, []string{srv.URL + "/allowed/"}, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.LoadDocument(srv.URL + "/other/schema.jsonld")
	if err == nil || !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), srv.URL+"/other/schema.jsonld") || hits.Load() != 0 {
		t.Fatalf("not allowed: %v (hits %d)", err, hits.Load())
	}
	// An allowed prefix is fetched once, then cached on disk.
	u := srv.URL + "/allowed/schema.jsonld"
	d, err := l.LoadDocument(u)
	if err != nil || d.DocumentURL != u || hits.Load() != 1 {
		t.Fatalf("allowed: %v %+v (hits %d)", err, d, hits.Load())
	}
	if _, err := l.LoadDocument(u); err != nil || hits.Load() != 1 {
		t.Fatalf("second load fetched again: %v (hits %d)", err, hits.Load())
	}
	// A new loader over the same directory, with nothing allowed, reads the cache.
	l2, _ := New(dir, nil, time.Second, nil)
	if _, err := l2.LoadDocument(u); err != nil || hits.Load() != 1 {
		t.Fatalf("cache on disk: %v (hits %d)", err, hits.Load())
	}
}

func TestLoaderStore(t *testing.T) {
	l, _ := New(t.TempDir(), nil, time.Second, nil)
	const u = "https://schemas.example/kyc.jsonld"
	if err := l.Store(u, []byte("not json")); err == nil {
		t.Fatal("stored a non-JSON document")
	}
	if _, err := l.LoadDocument(u); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("a refused store left something: %v", err)
	}
	if err := l.Store(u, []byte(`{"@context":{"v":1}}`)); err != nil {
		t.Fatal(err)
	}
	d, err := l.LoadDocument(u)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := d.Document.(map[string]any); m["@context"] == nil {
		t.Fatalf("document %#v", d.Document)
	}
	// Storing again replaces the document, also in memory.
	l.Store(u, []byte(`{"@context":{"v":2}}`))
	d, _ = l.LoadDocument(u)
	if m, _ := d.Document.(map[string]any)["@context"].(map[string]any); m["v"] != float64(2) {
		t.Fatalf("not replaced: %#v", d.Document)
	}
	if _, err := New(t.TempDir(), []string{"ftp://x/"}, time.Second, nil); err == nil {
		t.Fatal("accepted a non-http prefix")
	}
}
