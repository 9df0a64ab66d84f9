package envelope

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestPlain8 checks the eight-byte skip of the string scanner against the
// byte-by-byte rule: every byte value at every position, and random words.
func TestPlain8(t *testing.T) {
	special := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }
	check := func(w [8]byte) {
		want := true
		for _, c := range w {
			want = want && !special(c)
		}
		if got := plain8(binary.LittleEndian.Uint64(w[:])); got != want {
			t.Fatalf("plain8(%q) = %v, want %v", w[:], got, want)
		}
	}
	for _, fill := range []byte{'A', 0x20, 0x7f, 0x80, 0xff, '#', '[', ']'} {
		for p := range 8 {
			for c := range 256 {
				var w [8]byte
				for i := range w {
					w[i] = fill
				}
				w[p] = byte(c)
				check(w)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		check(w)
	}
}
