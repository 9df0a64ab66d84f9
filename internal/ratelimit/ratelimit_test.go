package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func fakeClock(l *Limiter) *time.Time {
	t := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return t }
	return &t
}

func TestBurstThenRefill(t *testing.T) {
	l := New(60, 3, 0) // one a second, bursts of 3
	now := fakeClock(l)
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("event %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != time.Second {
		t.Fatalf("over the burst: Allow = %v, %v; want false, 1s", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("another key is limited by the first one's use")
	}
	*now = now.Add(time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Error("a second later, a token should be back")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("only one token comes back a second")
	}
	*now = now.Add(time.Hour)
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("after a long pause, event %d refused: the bucket refills up to the burst", i+1)
		}
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("the bucket refilled beyond the burst")
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	l := New(1, 1, 0) // one a minute
	fakeClock(l)
	l.Allow("a")
	if ok, wait := l.Allow("a"); ok || wait != time.Minute {
		t.Errorf("Allow = %v, %v; want false, 1m", ok, wait)
	}
}

func TestDisabled(t *testing.T) {
	var nilLimiter *Limiter
	for _, l := range []*Limiter{New(0, 1, 0), nilLimiter} {
		for i := 0; i < 1000; i++ {
			if ok, _ := l.Allow("a"); !ok {
				t.Fatal("a disabled limiter refused")
			}
		}
	}
}

func TestBoundedMemory(t *testing.T) {
	l := New(60, 1, 100)
	fakeClock(l)
	l.Allow("old")
	for i := 0; i < 10_000; i++ {
		l.Allow(fmt.Sprint("k", i))
	}
	if n := l.Len(); n != 100 {
		t.Fatalf("Len = %d, want 100", n)
	}
	// The recently used keys are remembered, and still limited.
	if ok, _ := l.Allow("k9999"); ok {
		t.Error("a recent key's empty bucket was forgotten")
	}
}
