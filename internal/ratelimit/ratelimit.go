// Package ratelimit is a token-bucket rate limiter by key (a client
// address, a sender DID) whose memory is bounded: it holds at most
// MaxKeys buckets and forgets the least recently used one when it needs
// room, and a bucket left alone long enough to be full again is the same as
// no bucket. It implements agent.Limiter.
package ratelimit

import (
	"container/list"
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys is the number of keys a Limiter remembers when MaxKeys is 0.
const DefaultMaxKeys = 100_000

// Limiter allows Rate events per second per key, with bursts of up to
// Burst. The zero Rate disables it: Allow always allows. Safe for
// concurrent use; a nil *Limiter allows everything.
type Limiter struct {
	rate    float64 // tokens per second
	burst   float64
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	buckets map[string]*list.Element
	lru     *list.List // front: most recently used
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time
}

// New returns a Limiter of perMinute events a minute per key with bursts of
// burst (at least 1), remembering at most maxKeys keys (0: DefaultMaxKeys).
// perMinute 0 returns a Limiter that allows everything.
func New(perMinute, burst, maxKeys int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Limiter{rate: float64(perMinute) / 60, burst: float64(burst), maxKeys: maxKeys, now: time.Now,
		buckets: map[string]*list.Element{}, lru: list.New()}
}

// NewPer returns a Limiter of n events per period per key with bursts of
// burst (at least 1), for limits slower than one a minute (3 an hour).
// n 0 returns a Limiter that allows everything.
func NewPer(n int, per time.Duration, burst, maxKeys int) *Limiter {
	l := New(n, burst, maxKeys)
	if per > 0 {
		l.rate = float64(n) / per.Seconds()
	}
	return l
}

// Allow takes a token from key's bucket. It reports whether there was one,
// and when not, how long until there is (at least a second, rounded up to
// whole seconds, for a Retry-After header).
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil || l.rate <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if e, ok := l.buckets[key]; ok {
		l.lru.MoveToFront(e)
		b = e.Value.(*bucket)
		b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
		b.at = now
	} else {
		// At capacity, forget the least recently used key: the one
		// idle longest, whose bucket is the likeliest to be full again
		// (as good as none).
		for l.lru.Len() >= l.maxKeys {
			e := l.lru.Back()
			l.lru.Remove(e)
			delete(l.buckets, e.Value.(*bucket).key)
		}
		b = &bucket{key: key, tokens: l.burst, at: now}
		l.buckets[key] = l.lru.PushFront(b)
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	secs := math.Ceil((1 - b.tokens) / l.rate)
	return false, time.Duration(max(1, secs)) * time.Second
}

// Len returns the number of keys remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
