package did

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/agent/keys"
)

func TestParseDID(t *testing.T) {
	good := map[string][2]string{
		"did:key:z6Mk":             {"key", "z6Mk"},
		"did:web:example.com:a:b":  {"web", "example.com:a:b"},
		"did:web:localhost%3A8443": {"web", "localhost%3A8443"},
		"did:peer:2.Ez6LS.SeyJ0-_": {"peer", "2.Ez6LS.SeyJ0-_"},
		"did:example2:a":           {"example2", "a"},
	}
	for did, want := range good {
		m, id, err := ParseDID(did)
		if err != nil || m != want[0] || id != want[1] {
			t.Errorf("ParseDID(%s) = %s %s %v", did, m, id, err)
		}
	}
	for _, did := range []string{
		"", "did:", "did:key", "did:key:", "did::x", "did:Key:x", "did:k-y:x", "dod:key:x",
		"did:key:x:", "did:key:x#frag", "did:key:x?q", "did:key:x/p", "did:key:a b", "did:key:%4", "did:key:%zz", "did:key:é",
	} {
		if _, _, err := ParseDID(did); !errors.Is(err, ErrInvalidDID) {
			t.Errorf("ParseDID(%q): err = %v", did, err)
		}
	}
	if d, rest := SplitDIDURL("did:web:a:b/path?q=1#k"); d != "did:web:a:b" || rest != "/path?q=1#k" {
		t.Errorf("SplitDIDURL = %s %s", d, rest)
	}
	if d, rest := SplitDIDURL("did:key:z"); d != "did:key:z" || rest != "" {
		t.Errorf("SplitDIDURL = %s %s", d, rest)
	}
}

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	reg := NewDefaultRegistry(nil, nil)
	if got := strings.Join(reg.Methods(), ","); got != "key,peer,web" {
		t.Errorf("Methods = %s", got)
	}
	x, _ := keys.Generate(keys.X25519, "")
	ed, _ := keys.Generate(keys.Ed25519, "")
	p2, _ := NewPeer2([]keys.PublicKey{x.PublicKey}, []keys.PublicKey{ed.PublicKey}, nil)
	for _, did := range []string{KeyDID(ed.PublicKey), p2} {
		doc, err := reg.Resolve(ctx, did)
		if err != nil || doc.ID != did {
			t.Errorf("Resolve(%s): %v", did, err)
		}
	}
	_, err := reg.Resolve(ctx, "did:ion:abc")
	if !errors.Is(err, ErrUnsupportedMethod) || !strings.Contains(err.Error(), "did:ion") {
		t.Errorf("unknown method: %v", err)
	}
	if _, err := reg.Resolve(ctx, "not-a-did"); !errors.Is(err, ErrInvalidDID) {
		t.Errorf("not a DID: %v", err)
	}
	reg.Register("web", nil)
	if _, err := reg.Resolve(ctx, "did:web:example.com"); !errors.Is(err, ErrUnsupportedMethod) {
		t.Errorf("removed method: %v", err)
	}
	reg.Register("example", ResolverFunc(func(_ context.Context, did string) (*Doc, error) {
		return &Doc{ID: did}, nil
	}))
	if doc, err := reg.Resolve(ctx, "did:example:1"); err != nil || doc.ID != "did:example:1" {
		t.Errorf("custom method: %v", err)
	}
	if _, err := NewRegistry().Resolve(ctx, "did:key:z6Mk"); !errors.Is(err, ErrUnsupportedMethod) || !strings.Contains(err.Error(), "no methods") {
		t.Errorf("empty registry: %v", err)
	}
}

// countingResolver counts calls and serves documents from a function.
type countingResolver struct {
	calls atomic.Int32
	fn    func(ctx context.Context, did string) (*Doc, error)
}

func (c *countingResolver) Resolve(ctx context.Context, did string) (*Doc, error) {
	c.calls.Add(1)
	if c.fn != nil {
		return c.fn(ctx, did)
	}
	return &Doc{ID: did, AlsoKnownAs: []string{"x"}}, nil
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func TestCacheHitsAndTTL(t *testing.T) {
	ctx := context.Background()
	inner := &countingResolver{}
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	c := NewCache(inner, CacheOptions{TTL: time.Minute, Now: clock.Now})

	for _, did := range []string{"did:web:example.com", "did:peer:2.Ex", "did:key:z6Mk"} {
		d1, err := c.Resolve(ctx, did)
		if err != nil {
			t.Fatal(err)
		}
		d1.AlsoKnownAs[0] = "modified by caller"
		d2, err := c.Resolve(ctx, did)
		if err != nil {
			t.Fatal(err)
		}
		if d2.AlsoKnownAs[0] != "x" {
			t.Errorf("%s: a caller's change reached the cache", did)
		}
	}
	if n := inner.calls.Load(); n != 3 {
		t.Fatalf("%d inner calls, want 3 (second resolves are hits)", n)
	}
	clock.Advance(59 * time.Second)
	c.Resolve(ctx, "did:web:example.com")
	if n := inner.calls.Load(); n != 3 {
		t.Fatalf("entry expired before its TTL (%d calls)", n)
	}
	clock.Advance(2 * time.Second)
	c.Resolve(ctx, "did:web:example.com")
	c.Resolve(ctx, "did:peer:2.Ex")
	c.Resolve(ctx, "did:key:z6Mk")
	if n := inner.calls.Load(); n != 4 {
		t.Fatalf("%d inner calls, want 4: did:web refetched after TTL, peer and key kept", n)
	}
	clock.Advance(1000 * time.Hour)
	c.Resolve(ctx, "did:peer:2.Ex")
	if n := inner.calls.Load(); n != 4 {
		t.Errorf("immutable did:peer expired")
	}
	c.Invalidate("did:peer:2.Ex")
	c.Resolve(ctx, "did:peer:2.Ex")
	if n := inner.calls.Load(); n != 5 {
		t.Errorf("Invalidate did not drop the entry")
	}
}

func TestCacheErrorsNotCached(t *testing.T) {
	ctx := context.Background()
	fail := true
	inner := &countingResolver{fn: func(_ context.Context, did string) (*Doc, error) {
		if fail {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, did)
		}
		return &Doc{ID: did}, nil
	}}
	c := NewCache(inner, CacheOptions{})
	if _, err := c.Resolve(ctx, "did:peer:3zQm"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	fail = false
	if _, err := c.Resolve(ctx, "did:peer:3zQm"); err != nil {
		t.Fatalf("error was cached: %v", err)
	}
	if n := inner.calls.Load(); n != 2 {
		t.Errorf("%d calls", n)
	}
	// A resolver returning (nil, nil) is an error, not a cached nil.
	bad := NewCache(ResolverFunc(func(context.Context, string) (*Doc, error) { return nil, nil }), CacheOptions{})
	if _, err := bad.Resolve(ctx, "did:key:z"); err == nil {
		t.Error("nil document accepted")
	}
}

func TestCacheBounded(t *testing.T) {
	ctx := context.Background()
	inner := &countingResolver{}
	c := NewCache(inner, CacheOptions{MaxEntries: 2})
	c.Resolve(ctx, "did:key:a")
	c.Resolve(ctx, "did:key:b")
	c.Resolve(ctx, "did:key:a") // a is now the most recently used
	c.Resolve(ctx, "did:key:c") // evicts b
	if c.Len() != 2 {
		t.Fatalf("Len = %d", c.Len())
	}
	before := inner.calls.Load()
	c.Resolve(ctx, "did:key:a")
	c.Resolve(ctx, "did:key:c")
	if inner.calls.Load() != before {
		t.Error("recently used entries were evicted")
	}
	c.Resolve(ctx, "did:key:b")
	if inner.calls.Load() != before+1 {
		t.Error("least recently used entry was kept")
	}
}

func TestCacheConcurrentSharesOneCall(t *testing.T) {
	release := make(chan struct{})
	inner := &countingResolver{fn: func(_ context.Context, did string) (*Doc, error) {
		<-release
		return &Doc{ID: did}, nil
	}}
	c := NewCache(inner, CacheOptions{})
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc, err := c.Resolve(context.Background(), "did:web:example.com")
			if err == nil && doc.ID != "did:web:example.com" {
				err = fmt.Errorf("wrong doc %s", doc.ID)
			}
			errs <- err
		}()
	}
	// Let the goroutines pile up on the in-flight call.
	for deadline := time.Now().Add(5 * time.Second); inner.calls.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := inner.calls.Load(); got != 1 {
		t.Errorf("%d inner calls for %d concurrent resolves, want 1", got, n)
	}
}

func TestCacheLeaderCancelled(t *testing.T) {
	// The caller that started a resolution gives up: the shared resolution
	// goes on (its context is detached) and the others get its result.
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	inner := &countingResolver{fn: func(ctx context.Context, did string) (*Doc, error) {
		once.Do(func() { close(started) })
		select {
		case <-release:
			return &Doc{ID: did}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}
	c := NewCache(inner, CacheOptions{})
	lctx, cancel := context.WithCancel(context.Background())
	leader := make(chan error)
	go func() {
		_, err := c.Resolve(lctx, "did:web:example.com")
		leader <- err
	}()
	<-started
	done := make(chan error)
	go func() {
		_, err := c.Resolve(context.Background(), "did:web:example.com")
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-leader; !errors.Is(err, context.Canceled) {
		t.Errorf("leader: %v, want its own cancellation", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("waiter got the leader's cancellation: %v", err)
	}
	if n := inner.calls.Load(); n != 1 {
		t.Errorf("%d inner calls, want 1", n)
	}
	// A waiter whose own context ends stops waiting.
	block, entered := make(chan struct{}), make(chan struct{})
	slow := NewCache(ResolverFunc(func(ctx context.Context, did string) (*Doc, error) {
		close(entered)
		<-block
		return &Doc{ID: did}, nil
	}), CacheOptions{})
	go slow.Resolve(context.Background(), "did:key:z")
	<-entered
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer wcancel()
	if _, err := slow.Resolve(wctx, "did:key:z"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiter: %v", err)
	}
	close(block)
}

// envelopeKeyResolver is the method set of envelope.KeyResolver
// (agent/envelope/envelope.go), which this package must not import.
type envelopeKeyResolver interface {
	PublicKey(ctx context.Context, kid string) (keys.PublicKey, error)
}

var _ envelopeKeyResolver = (*KeyResolver)(nil)

func TestKeyResolver(t *testing.T) {
	ctx := context.Background()
	var v peer4Vector
	readVector(t, "peer4.json", &v)
	peer := NewPeerResolver()
	reg := NewDefaultRegistry(peer, nil)
	kr := NewKeyResolver(NewCache(reg, CacheOptions{}))

	x, _ := keys.Generate(keys.X25519, "")
	ed, _ := keys.Generate(keys.Ed25519, "")
	p2, _ := NewPeer2([]keys.PublicKey{x.PublicKey}, []keys.PublicKey{ed.PublicKey}, nil)
	k, err := kr.PublicKey(ctx, p2+"#key-1")
	if err != nil || !k.Equal(x.PublicKey) || k.ID != p2+"#key-1" {
		t.Errorf("peer:2 key-1: %+v %v", k, err)
	}
	edDID := KeyDID(ed.PublicKey)
	xk, _ := ed.PublicKey.ToX25519()
	k, err = kr.PublicKey(ctx, edDID+"#"+xk.Multikey())
	if err != nil || !k.Equal(xk) {
		t.Errorf("did:key agreement key: %v", err)
	}

	// Missing key, unknown short form: keys.ErrNotFound.
	if _, err := kr.PublicKey(ctx, p2+"#key-9"); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("missing key: %v", err)
	}
	_, err = kr.PublicKey(ctx, v.Short+"#6LSqPZfn")
	if !errors.Is(err, keys.ErrNotFound) || !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown short form: %v", err)
	}
	// Once the long form is known, the short form key resolves.
	if err := peer.Remember(ctx, v.Long); err != nil {
		t.Fatal(err)
	}
	if k, err := kr.PublicKey(ctx, v.Short+"#6LSqPZfn"); err != nil || k.Curve != keys.X25519 {
		t.Errorf("short form key after Remember: %v", err)
	}

	// Not DID URLs with fragments; unsupported methods.
	for _, kid := range []string{"#key-1", p2, p2 + "#", "did:ion:x#k"} {
		_, err := kr.PublicKey(ctx, kid)
		if err == nil || errors.Is(err, keys.ErrNotFound) {
			t.Errorf("%.40s: err = %v", kid, err)
		}
	}
	if _, err := kr.PublicKey(ctx, "did:ion:x#k"); !errors.Is(err, ErrUnsupportedMethod) {
		t.Errorf("unsupported method: %v", err)
	}
}

// End to end: a did:web document fetched over HTTPS through the cache and the
// key resolver.
func TestKeyResolverDIDWeb(t *testing.T) {
	x, _ := keys.Generate(keys.P256, "")
	var hits atomic.Int32
	var did string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		j := x.PublicKey.JWK()
		doc := &Doc{Context: []any{ContextDIDv1, ContextJWS2020}, ID: did,
			VerificationMethod: []VerificationMethod{{ID: "#k1", Type: TypeJSONWebKey2020, Controller: did, PublicKeyJwk: &j}},
			KeyAgreementRefs:   []VerificationRef{{Ref: "#k1"}}}
		w.Write(mustJSON(t, doc))
	}))
	defer srv.Close()
	did = "did:web:" + strings.Replace(strings.TrimPrefix(srv.URL, "https://"), ":", "%3A", 1)
	kr := NewKeyResolver(NewCache(NewDefaultRegistry(nil, &WebResolver{Client: srv.Client()}), CacheOptions{}))
	for i := 0; i < 3; i++ {
		k, err := kr.PublicKey(context.Background(), did+"#k1")
		if err != nil || !k.Equal(x.PublicKey) || k.ID != did+"#k1" {
			t.Fatalf("%+v %v", k, err)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("%d fetches, want 1", hits.Load())
	}
}
