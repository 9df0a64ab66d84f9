package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercentKeepsHeadroomWithinBounds(t *testing.T) {
	c := Config{Headroom: 64 << 20, MinPercent: 100, MaxPercent: 400}
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 400},
		{8 << 20, 400},   // 64 MiB would be 800%: capped
		{32 << 20, 200},  // 64 MiB of headroom over 32 MiB
		{64 << 20, 100},  // the ratio reaches the floor
		{512 << 20, 100}, // a big heap gets Go's usual ratio
	} {
		if got := c.Percent(tc.live); got != tc.want {
			t.Errorf("live %d MiB: GOGC %d, want %d", tc.live>>20, got, tc.want)
		}
	}
}

// TestTunerFollowsTheLiveHeap: once a collection sees a live heap bigger
// than the headroom, GOGC comes down; once it is freed, GOGC goes back up.
func TestTunerFollowsTheLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tu := Start(Config{Headroom: 16 << 20, MinPercent: 50, MaxPercent: 400})
	defer tu.Stop()
	if got := debug.SetGCPercent(400); got != 400 {
		t.Fatalf("GOGC %d after Start, want 400", got)
	}

	big := make([][]byte, 64)
	for i := range big {
		big[i] = make([]byte, 1<<20) // 64 MiB live
	}
	waitPercent(t, tu, 50)
	runtime.KeepAlive(big)
	big = nil
	waitPercent(t, tu, 400)
	if got := debug.SetGCPercent(400); got != 400 {
		t.Fatalf("the runtime's GOGC is %d, the tuner says 400", got)
	}
}

func waitPercent(t *testing.T, tu *Tuner, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tu.Percent() != want {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC stayed %d, want %d", tu.Percent(), want)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
