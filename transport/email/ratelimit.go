package email

import (
	"sync"
	"time"
)

// rateLimiter is a token bucket per client (IP address): each mail
// transaction, and each failed AUTH, takes a token; tokens come back at
// perMinute a minute up to burst.
type rateLimiter struct {
	perMinute float64
	burst     float64
	now       func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the limiter's memory; past it, full buckets are forgotten.
const maxBuckets = 10000

func newRateLimiter(perMinute float64, burst int, now func() time.Time) *rateLimiter {
	if burst < 1 {
		burst = 1
	}
	return &rateLimiter{perMinute: perMinute, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// allow takes a token for client and reports whether there was one. A nil
// limiter or a zero rate allows everything.
func (l *rateLimiter) allow(client string) bool {
	if l == nil || l.perMinute <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[client]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[client] = b
	}
	b.tokens += now.Sub(b.last).Minutes() * l.perMinute
	if b.tokens > l.burst {
		b.tokens = l.burst
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune forgets clients whose bucket has refilled (they are as good as new),
// and if that is not enough, any half of them. l.mu is held.
func (l *rateLimiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Minutes()*l.perMinute >= l.burst {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < maxBuckets/2 {
			break
		}
		delete(l.buckets, k)
	}
}
