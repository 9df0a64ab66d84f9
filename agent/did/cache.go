package did

import (
	"container/list"
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// Defaults of CacheOptions.
const (
	DefaultCacheTTL        = 5 * time.Minute
	DefaultCacheMaxEntries = 1024
)

// CacheOptions configures a Cache.
type CacheOptions struct {
	// TTL is how long documents of mutable methods (did:web) are kept
	// (DefaultCacheTTL if zero or negative).
	TTL time.Duration
	// MaxEntries bounds the number of documents kept; the least recently
	// used goes first (DefaultCacheMaxEntries if zero or negative).
	MaxEntries int
	// Immutable reports whether a DID's document can never change, so that
	// it is kept until evicted for room. Nil means did:peer and did:key,
	// whose documents are derived from the DID itself.
	Immutable func(did string) bool
	// Now is the clock (time.Now if nil); tests set it.
	Now func() time.Time
}

// Cache is a Resolver that remembers the documents another Resolver
// returns. Errors are not cached. Concurrent resolutions of the same DID
// share one call to the inner resolver. Each caller gets its own copy of the
// document, which it may modify. It is safe for concurrent use.
type Cache struct {
	inner Resolver
	opts  CacheOptions

	mu       sync.Mutex
	entries  map[string]*list.Element
	lru      *list.List // of *cacheEntry, most recently used first
	inflight map[string]*flight
}

type cacheEntry struct {
	did     string
	doc     *Doc
	expires time.Time // zero: never
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cache{
		inner:    inner,
		opts:     opts,
		entries:  map[string]*list.Element{},
		lru:      list.New(),
		inflight: map[string]*flight{},
	}
}

// Resolve returns the cached document of did, or resolves it with the inner
// resolver and caches it.
func (c *Cache) Resolve(ctx context.Context, did string) (*Doc, error) {
	for {
		c.mu.Lock()
		if doc, ok := c.get(did); ok {
			c.mu.Unlock()
			return doc.Clone(), nil
		}
		if f, ok := c.inflight[did]; ok {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if f.err != nil {
				// The leading caller's context ended: try again with ours.
				if isContextErr(f.err) && ctx.Err() == nil {
					continue
				}
				return nil, f.err
			}
			return f.doc.Clone(), nil
		}
		f := &flight{done: make(chan struct{})}
		c.inflight[did] = f
		c.mu.Unlock()
		c.lead(ctx, did, f)
		if f.err != nil {
			return nil, f.err
		}
		return f.doc.Clone(), nil
	}
}

// lead resolves did for everyone waiting on f.
func (c *Cache) lead(ctx context.Context, did string, f *flight) {
	f.err = errors.New("did: resolver panicked")
	defer func() {
		c.mu.Lock()
		delete(c.inflight, did)
		if f.err == nil {
			c.put(did, f.doc)
		}
		c.mu.Unlock()
		close(f.done)
	}()
	doc, err := c.inner.Resolve(ctx, did)
	if err == nil && doc == nil {
		err = errors.New("did: resolver returned no document")
	}
	if err != nil {
		f.doc, f.err = nil, err
		return
	}
	f.doc, f.err = doc.Clone(), nil
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// get returns a live entry, dropping an expired one. c.mu is held.
func (c *Cache) get(did string) (*Doc, bool) {
	el, ok := c.entries[did]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !e.expires.IsZero() && !c.opts.Now().Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, did)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return e.doc, true
}

// put stores doc, evicting the least recently used entries. c.mu is held.
func (c *Cache) put(did string, doc *Doc) {
	e := &cacheEntry{did: did, doc: doc}
	if !c.opts.Immutable(did) {
		e.expires = c.opts.Now().Add(c.opts.TTL)
	}
	if el, ok := c.entries[did]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[did] = c.lru.PushFront(e)
	for c.lru.Len() > c.opts.MaxEntries {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).did)
	}
}

// Invalidate drops the cached document of did, if any.
func (c *Cache) Invalidate(did string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[did]; ok {
		c.lru.Remove(el)
		delete(c.entries, did)
	}
}

// Len returns the number of cached documents (expired ones included until
// they are looked up or evicted).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
