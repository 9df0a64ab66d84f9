package envelope

import (
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"strings"
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

// TestNoControl checks noControl against the byte-by-byte rule: every byte
// value at every position of buffers of the lengths around its word and
// four-word steps.
func TestNoControl(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 40, 63, 64, 65, 100} {
		for _, fill := range []byte{'A', 0x20, 0x7f, 0x80, 0xff} {
			for p := range n {
				for c := range 256 {
					b := make([]byte, n)
					for i := range b {
						b[i] = fill
					}
					b[p] = byte(c)
					if got, want := noControl(b), c >= 0x20; got != want {
						t.Fatalf("noControl(%q) = %v, want %v", b, got, want)
					}
				}
			}
		}
	}
}

// TestStrFastPath checks the scanner's strings where the fast path (the
// first quote, no backslash or control byte before it) and the byte loop
// meet.
func TestStrFastPath(t *testing.T) {
	for _, tc := range []struct {
		in      string
		escaped bool
		end     int // -1: error
	}{
		{`""`, false, 2},
		{`"abc"x`, false, 5},
		{`"a\"b"`, true, 6},
		{`"a\\"`, true, 5},
		{`"a\\\"b"`, true, 8},
		{`"a` + "\x1f" + `"`, false, -1},
		{`"abc`, false, -1},
		{`"ab\`, false, -1},
		{`"` + strings.Repeat("A", 40) + `\u00e9"`, true, 48},
		{`"` + strings.Repeat("A", 40) + "\x00" + `"`, false, -1},
	} {
		s := &scanner{data: []byte(tc.in)}
		escaped, err := s.str()
		if tc.end < 0 {
			if err == nil {
				t.Errorf("str(%q) = nil error", tc.in)
			}
			continue
		}
		if err != nil || escaped != tc.escaped || s.i != tc.end {
			t.Errorf("str(%q) = %v, %v, end %d; want %v, nil, %d", tc.in, escaped, err, s.i, tc.escaped, tc.end)
		}
	}
}

// TestSkipStr: on valid JSON strings (quotes, backslashes and control
// characters escaped as encoding/json writes them, and \u escapes), the
// skip ends where the checking scan ends.
func TestSkipStr(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	parts := []string{`\\`, `\"`, `"`, `\`, "a", "é", "\x01", "\n", `\u0022`, strings.Repeat("b", 40)}
	for range 20000 {
		var sb strings.Builder
		for range r.IntN(8) {
			sb.WriteString(parts[r.IntN(len(parts))])
		}
		enc, err := json.Marshal(sb.String())
		if err != nil {
			t.Fatal(err)
		}
		data := append(enc, `,"x"]`...)
		a, b := &scanner{data: data}, &scanner{data: data, valid: true}
		_, errA := a.str()
		errB := b.skipStr()
		if errA != nil || errB != nil || a.i != b.i || a.i != len(enc) {
			t.Fatalf("%s: str ends at %d (%v), skipStr at %d (%v), want %d", data, a.i, errA, b.i, errB, len(enc))
		}
	}
}
