package did

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/netguard"
)

// slowDIDWebServer is a did:web host that counts connections and requests
// and answers each request after delay (never, if delay is negative).
type slowDIDWebServer struct {
	srv           *httptest.Server
	root          string // did:web of the server's root document
	conns, reqs   atomic.Int32
	delay         atomic.Int64
	trustTheCerts *tls.Config
}

func newSlowDIDWebServer(t *testing.T) *slowDIDWebServer {
	s := &slowDIDWebServer{}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reqs.Add(1)
		d := time.Duration(s.delay.Load())
		if d < 0 {
			<-r.Context().Done()
			return
		}
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		id := s.root
		if p := strings.TrimSuffix(r.URL.Path, "/did.json"); p != "/.well-known" {
			id += strings.ReplaceAll(p, "/", ":")
		}
		fmt.Fprintf(w, `{"id":%q}`, id)
	}))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(s.srv.Certificate())
	s.trustTheCerts = &tls.Config{RootCAs: pool}
	s.root = "did:web:" + strings.Replace(strings.TrimPrefix(s.srv.URL, "https://"), ":", "%3A", 1)
	return s
}

// resolveInParallel resolves did n times at once and returns the errors and
// how long after the start each call returned.
func resolveInParallel(r Resolver, did string, n int) ([]error, []time.Duration) {
	errs, took := make([]error, n), make([]time.Duration, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc, err := r.Resolve(context.Background(), did)
			if err == nil && doc.ID != did {
				err = fmt.Errorf("got the document of %s", doc.ID)
			}
			errs[i], took[i] = err, time.Since(start)
		}()
	}
	wg.Wait()
	return errs, took
}

// TestDIDWebResolutionSteeredBySender reproduces issue 9, part 2: five
// parallel resolutions of one did:web whose host is slow used to open five
// connections and be answered after 10, 20, 30, 40 and 50 s.
func TestDIDWebResolutionSteeredBySender(t *testing.T) {
	s := newSlowDIDWebServer(t)
	const timeout = 400 * time.Millisecond
	web := &WebResolver{AllowPrivate: true, Timeout: timeout, tlsConfig: s.trustTheCerts}
	c := NewCache(NewDefaultRegistry(nil, web), CacheOptions{Timeout: timeout})

	// A host that never answers: one connection, one request, and every
	// caller answered together when the one resolution times out.
	s.delay.Store(-1)
	errs, took := resolveInParallel(c, s.root, 5)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("call %d resolved a document the server never sent", i)
		}
		if took[i] > timeout+time.Second {
			t.Errorf("call %d answered after %v, want about the timeout %v", i, took[i], timeout)
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 parallel resolutions of one DID, want 1", n)
	}
	if n := s.reqs.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}

	// The failure is remembered: asking again does not connect.
	start := time.Now()
	if _, err := c.Resolve(context.Background(), s.root); err == nil {
		t.Fatal("second resolution succeeded")
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("remembered failure took %v", d)
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("a remembered failure connected again (%d connections)", n)
	}

	// A slow host that answers within the timeout: one request serves all.
	s.delay.Store(int64(200 * time.Millisecond))
	bob := s.root + ":user:bob"
	reqs := s.reqs.Load()
	errs, _ = resolveInParallel(c, bob, 5)
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if n := s.reqs.Load() - reqs; n != 1 {
		t.Errorf("%d requests for 5 parallel resolutions, want 1", n)
	}

	// Without AllowPrivate, the loopback host is refused before connecting,
	// by address and by a name that resolves to it.
	conns := s.conns.Load()
	guarded := NewCache(NewDefaultRegistry(nil, &WebResolver{Timeout: timeout, tlsConfig: s.trustTheCerts}), CacheOptions{})
	localhost := strings.Replace(s.root, "127.0.0.1", "localhost", 1)
	for _, id := range []string{s.root, localhost} {
		_, err := guarded.Resolve(context.Background(), id)
		if !errors.Is(err, netguard.ErrPrivate) {
			t.Errorf("%s: err = %v, want netguard.ErrPrivate", id, err)
		}
	}
	if n := s.conns.Load(); n != conns {
		t.Errorf("the guarded resolver connected to loopback (%d connections)", n-conns)
	}
}

func TestCacheRemembersFailures(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	fail := true
	inner := &countingResolver{fn: func(_ context.Context, did string) (*Doc, error) {
		if fail {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, did)
		}
		return &Doc{ID: did}, nil
	}}
	c := NewCache(inner, CacheOptions{NegativeTTL: time.Minute, Now: clock.Now})
	for i := 0; i < 3; i++ {
		if _, err := c.Resolve(ctx, "did:web:gone.example"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("call %d: %v, want ErrNotFound", i, err)
		}
	}
	if n := inner.calls.Load(); n != 1 {
		t.Fatalf("%d inner calls, want 1: the failure is remembered", n)
	}
	fail = false
	clock.Advance(59 * time.Second)
	if _, err := c.Resolve(ctx, "did:web:gone.example"); err == nil {
		t.Fatal("failure forgotten before NegativeTTL")
	}
	clock.Advance(2 * time.Second)
	if _, err := c.Resolve(ctx, "did:web:gone.example"); err != nil {
		t.Fatalf("after NegativeTTL: %v", err)
	}
	if n := inner.calls.Load(); n != 2 {
		t.Errorf("%d inner calls, want 2", n)
	}

	// Negative NegativeTTL: failures are not remembered.
	fail = true
	off := NewCache(inner, CacheOptions{NegativeTTL: -1})
	before := inner.calls.Load()
	off.Resolve(ctx, "did:web:x.example")
	off.Resolve(ctx, "did:web:x.example")
	if n := inner.calls.Load() - before; n != 2 {
		t.Errorf("NegativeTTL < 0: %d inner calls, want 2", n)
	}
}

func TestCacheCapsConcurrentResolutions(t *testing.T) {
	release := make(chan struct{})
	var running, most atomic.Int32
	inner := &countingResolver{fn: func(ctx context.Context, did string) (*Doc, error) {
		if !strings.HasPrefix(did, "did:web:") {
			return &Doc{ID: did}, nil
		}
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		return &Doc{ID: did}, nil
	}}
	c := NewCache(inner, CacheOptions{MaxConcurrent: 2, QueueWait: 100 * time.Millisecond, Timeout: 10 * time.Second})
	ctx := context.Background()
	results := make(chan error, 2)
	for _, id := range []string{"did:web:a.example", "did:web:b.example"} {
		go func() {
			_, err := c.Resolve(ctx, id)
			results <- err
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); inner.calls.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the first two resolutions did not start")
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	_, err := c.Resolve(ctx, "did:web:c.example")
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "limit 2") {
		t.Fatalf("third resolution over the cap: %v, want ErrBusy naming the limit", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("refused after %v, want after the queue wait of 100ms", d)
	}
	if n := inner.calls.Load(); n != 2 {
		t.Errorf("the refused resolution reached the resolver (%d calls)", n)
	}
	// DIDs resolved locally do not count against the cap.
	if _, err := c.Resolve(ctx, "did:key:z6Mk"); err != nil {
		t.Errorf("did:key under a full cap: %v", err)
	}
	close(release)
	for i := 0; i < 2; i++ {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	if m := most.Load(); m > 2 {
		t.Errorf("%d did:web resolutions at once, over the cap of 2", m)
	}
	// ErrBusy is not remembered: the DID resolves once there is room.
	if _, err := c.Resolve(ctx, "did:web:c.example"); err != nil {
		t.Errorf("after the cap cleared: %v", err)
	}
}
