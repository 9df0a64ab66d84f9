package did

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Defaults of CacheOptions.
const (
	DefaultCacheTTL        = 5 * time.Minute
	DefaultCacheMaxEntries = 1024
	// DefaultNegativeTTL is how long a failed resolution is remembered.
	DefaultNegativeTTL = time.Minute
	// DefaultResolveTimeout bounds one resolution by the inner resolver.
	DefaultResolveTimeout = 5 * time.Second
	// DefaultMaxConcurrent caps the resolutions of mutable DIDs in progress.
	DefaultMaxConcurrent = 32
	// DefaultQueueWait is how long a resolution waits for a free slot.
	DefaultQueueWait = 500 * time.Millisecond
)

// ErrBusy is returned (wrapped) when MaxConcurrent resolutions are already in
// progress and none finished within QueueWait: a temporary condition of this
// agent, not a property of the DID, so it is not cached.
var ErrBusy = errors.New("too many DID resolutions in progress; try again later")

// CacheOptions configures a Cache.
type CacheOptions struct {
	// TTL is how long documents of mutable methods (did:web) are kept
	// (DefaultCacheTTL if zero or negative).
	TTL time.Duration
	// MaxEntries bounds the number of documents kept, and separately the
	// number of failures remembered; the least recently used goes first
	// (DefaultCacheMaxEntries if zero or negative).
	MaxEntries int
	// Immutable reports whether a DID's document can never change, so that
	// it is kept until evicted for room. Nil means did:peer and did:key,
	// whose documents are derived from the DID itself. Immutable DIDs are
	// resolved locally: their failures are not remembered and they do not
	// count against MaxConcurrent.
	Immutable func(did string) bool
	// NegativeTTL is how long a failed resolution of a mutable DID (not
	// found, an invalid document, a timeout, a refused address) is
	// remembered and answered from memory, so that a sender naming a bad
	// did:web cannot make the agent fetch it again and again
	// (DefaultNegativeTTL if zero; negative: failures are not remembered).
	NegativeTTL time.Duration
	// Timeout bounds one resolution by the inner resolver
	// (DefaultResolveTimeout if zero or negative). The resolution runs on a
	// context detached from the callers': a caller that gives up does not
	// cancel it for the others waiting on it.
	Timeout time.Duration
	// MaxConcurrent caps the resolutions of mutable DIDs in progress at once
	// (DefaultMaxConcurrent if zero; negative: no cap). Over the cap a
	// resolution waits up to QueueWait for a slot, then fails with ErrBusy.
	MaxConcurrent int
	// QueueWait is how long a resolution waits for a slot under
	// MaxConcurrent (DefaultQueueWait if zero or negative).
	QueueWait time.Duration
	// Now is the clock (time.Now if nil); tests set it.
	Now func() time.Time
}

// Cache is a Resolver that remembers the documents another Resolver
// returns, and for a while the failures of mutable DIDs (NegativeTTL).
// Concurrent resolutions of the same DID share one call to the inner
// resolver: later callers wait for the one in flight, each until its own
// context ends, while the shared call runs under Timeout whatever the
// callers do. At most MaxConcurrent calls for mutable DIDs run at once.
// Each caller gets its own copy of the document, which it may modify. It is
// safe for concurrent use.
type Cache struct {
	inner Resolver
	opts  CacheOptions
	slots chan struct{} // nil: no cap

	mu       sync.Mutex
	docs     lru // of *Doc
	failures lru // of error
	inflight map[string]*flight
}

type flight struct {
	done chan struct{}
	doc  *Doc
	err  error
}

// NewCache returns a Cache in front of inner.
func NewCache(inner Resolver, opts CacheOptions) *Cache {
	if opts.TTL <= 0 {
		opts.TTL = DefaultCacheTTL
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultCacheMaxEntries
	}
	if opts.Immutable == nil {
		opts.Immutable = func(did string) bool {
			return strings.HasPrefix(did, "did:peer:") || strings.HasPrefix(did, "did:key:")
		}
	}
	if opts.NegativeTTL == 0 {
		opts.NegativeTTL = DefaultNegativeTTL
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultResolveTimeout
	}
	if opts.MaxConcurrent == 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.QueueWait <= 0 {
		opts.QueueWait = DefaultQueueWait
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Cache{
		inner:    inner,
		opts:     opts,
		docs:     newLRU(opts.MaxEntries),
		failures: newLRU(opts.MaxEntries),
		inflight: map[string]*flight{},
	}
	if opts.MaxConcurrent > 0 {
		c.slots = make(chan struct{}, opts.MaxConcurrent)
	}
	return c
}

// Resolve returns the cached document of did, or the remembered failure, or
// resolves it with the inner resolver (joining a resolution already in
// flight) and caches the outcome. When ctx ends first, Resolve returns its
// error; the resolution goes on for the others.
func (c *Cache) Resolve(ctx context.Context, did string) (*Doc, error) {
	c.mu.Lock()
	now := c.opts.Now()
	if v, ok := c.docs.get(did, now); ok {
		c.mu.Unlock()
		return v.(*Doc).Clone(), nil
	}
	if v, ok := c.failures.get(did, now); ok {
		c.mu.Unlock()
		return nil, v.(error)
	}
	f, ok := c.inflight[did]
	if !ok {
		f = &flight{done: make(chan struct{})}
		c.inflight[did] = f
		go c.run(context.WithoutCancel(ctx), did, f)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	return f.doc.Clone(), nil
}

// run resolves did for everyone waiting on f, under the cap and the timeout.
func (c *Cache) run(ctx context.Context, did string, f *flight) {
	remember := false
	defer func() {
		if p := recover(); p != nil {
			f.doc, f.err, remember = nil, fmt.Errorf("did: resolver panicked: %v", p), false
		}
		c.mu.Lock()
		delete(c.inflight, did)
		now := c.opts.Now()
		switch {
		case f.err == nil:
			var expires time.Time
			if !c.opts.Immutable(did) {
				expires = now.Add(c.opts.TTL)
			}
			c.docs.put(did, f.doc, expires)
			c.failures.remove(did)
		case remember:
			c.failures.put(did, f.err, now.Add(c.opts.NegativeTTL))
		}
		c.mu.Unlock()
		close(f.done)
	}()
	mutable := !c.opts.Immutable(did)
	if mutable && c.slots != nil {
		t := time.NewTimer(c.opts.QueueWait)
		select {
		case c.slots <- struct{}{}:
			t.Stop()
			defer func() { <-c.slots }()
		case <-t.C:
			f.err = fmt.Errorf("did: resolving %.120s: %w (limit %d)", did, ErrBusy, c.opts.MaxConcurrent)
			return
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	doc, err := c.inner.Resolve(ctx, did)
	if err == nil && doc == nil {
		err = errors.New("did: resolver returned no document")
	}
	if err != nil {
		f.err = err
		remember = mutable && c.opts.NegativeTTL > 0 && !errors.Is(err, ErrBusy)
		return
	}
	f.doc = doc.Clone()
}

// Invalidate drops the cached document of did, and a remembered failure,
// if any.
func (c *Cache) Invalidate(did string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.docs.remove(did)
	c.failures.remove(did)
}

// Len returns the number of cached documents (expired ones included until
// they are looked up or evicted), not counting remembered failures.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.docs.list.Len()
}

// lru is a bounded map with expiry, least recently used first out. Its
// user holds the lock.
type lru struct {
	max     int
	entries map[string]*list.Element
	list    *list.List // of *lruEntry, most recently used first
}

type lruEntry struct {
	key     string
	value   any
	expires time.Time // zero: never
}

func newLRU(max int) lru {
	return lru{max: max, entries: map[string]*list.Element{}, list: list.New()}
}

// get returns a live entry, dropping an expired one.
func (l *lru) get(key string, now time.Time) (any, bool) {
	el, ok := l.entries[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*lruEntry)
	if !e.expires.IsZero() && !now.Before(e.expires) {
		l.list.Remove(el)
		delete(l.entries, key)
		return nil, false
	}
	l.list.MoveToFront(el)
	return e.value, true
}

// put stores value until expires (zero: no expiry), evicting the least
// recently used entries.
func (l *lru) put(key string, value any, expires time.Time) {
	e := &lruEntry{key: key, value: value, expires: expires}
	if el, ok := l.entries[key]; ok {
		el.Value = e
		l.list.MoveToFront(el)
		return
	}
	l.entries[key] = l.list.PushFront(e)
	for l.list.Len() > l.max {
		last := l.list.Back()
		l.list.Remove(last)
		delete(l.entries, last.Value.(*lruEntry).key)
	}
}

func (l *lru) remove(key string) {
	if el, ok := l.entries[key]; ok {
		l.list.Remove(el)
		delete(l.entries, key)
	}
}
