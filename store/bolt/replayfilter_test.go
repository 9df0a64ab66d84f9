package bolt

import (
	"fmt"
	"testing"
	"time"
)

// Every key added is reported as possibly held until its day has passed,
// through segment growth and across days; keys never added are mostly
// reported absent.
func TestReplayFilter(t *testing.T) {
	f := newReplayFilter()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	type entry struct {
		key string
		exp time.Time
	}
	var added []entry
	n := 3*bloomMinKeys + 100 // past the first segment of a day and its next
	for i := range n {
		exp := now.Add(time.Duration(i%9) * 24 * time.Hour) // nine days
		if i%1000 == 0 {
			exp = now.Add(400 * 24 * time.Hour) // a far expiry
		}
		e := entry{fmt.Sprintf("key-%d", i), exp}
		f.add([]byte(e.key), timeBits(e.exp), now)
		added = append(added, e)
	}
	nowBits := timeBits(now)
	for _, e := range added {
		if !f.mayHold([]byte(e.key), nowBits) {
			t.Fatalf("%s (expires %s) reported absent", e.key, e.exp)
		}
	}
	fp := 0
	const probes = 20000
	for i := range probes {
		if f.mayHold(fmt.Appendf(nil, "absent-%d", i), nowBits) {
			fp++
		}
	}
	if fp > probes/100 {
		t.Fatalf("%d of %d absent keys reported held", fp, probes)
	}

	// Three days on: the keys of the first three days have expired and
	// are no longer looked at; the others still are.
	later := now.Add(3 * 24 * time.Hour)
	laterBits := timeBits(later)
	held := 0
	for _, e := range added {
		may := f.mayHold([]byte(e.key), laterBits)
		if !e.exp.Before(later) && !may {
			t.Fatalf("%s (expires %s) reported absent at %s", e.key, e.exp, later)
		}
		if e.exp.Before(later.Add(-24*time.Hour)) && may {
			held++
		}
	}
	if held > n/100 {
		t.Fatalf("%d keys of days past reported held", held)
	}
	// A new day added then drops the days long past, not the others.
	f.add([]byte("new"), timeBits(later.Add(10*24*time.Hour)), later)
	for _, d := range f.days {
		if d.day < floorDiv(later.UnixNano(), dayNanos)-keepPastDays {
			t.Fatalf("day %d kept at %s", d.day, later)
		}
	}
	for _, e := range added {
		if !e.exp.Before(later) && !f.mayHold([]byte(e.key), laterBits) {
			t.Fatalf("%s reported absent after the drop", e.key)
		}
	}
}

func BenchmarkReplayFilterMiss(b *testing.B) {
	f := newReplayFilter()
	now := time.Now()
	for i := range 200000 {
		f.add(fmt.Appendf(nil, "key-%d", i), timeBits(now.Add(7*24*time.Hour)), now)
	}
	key := []byte("\x00an-id\x00AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	nowBits := timeBits(now)
	for b.Loop() {
		f.mayHold(key, nowBits)
	}
}
