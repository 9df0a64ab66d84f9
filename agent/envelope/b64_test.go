package envelope

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// checkB64 fails when b64Decode and b64.Decode differ on src: output,
// length or error.
func checkB64(t *testing.T, src []byte) {
	t.Helper()
	n := b64.DecodedLen(len(src))
	got, want := make([]byte, n), make([]byte, n)
	gn, gerr := b64Decode(got, src)
	wn, werr := b64.Decode(want, src)
	if gn != wn || fmt.Sprint(gerr) != fmt.Sprint(werr) || (werr == nil && !bytes.Equal(got[:gn], want[:wn])) {
		t.Fatalf("b64Decode(%q) = %d, %v, %x; b64.Decode %d, %v, %x", src, gn, gerr, got[:gn], wn, werr, want[:wn])
	}
}

func TestB64Decode(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := range 40 {
		for range 40 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			enc := appendB64(nil, b)
			checkB64(t, enc)
			if len(enc) == 0 {
				continue
			}
			// One character changed to every byte value, at one place.
			p := r.IntN(len(enc))
			for c := range 256 {
				m := bytes.Clone(enc)
				m[p] = byte(c)
				checkB64(t, m)
			}
		}
	}
	for _, s := range []string{"", "A", "AA", "AB", "AAA", "AAB", "AAAA", "AA==", "AAA=", "AA\nAA", "AAAA\r\n", "\n", "A+/A", "____", "-_-_-"} {
		checkB64(t, []byte(s))
	}
}

func FuzzB64Decode(f *testing.F) {
	for _, s := range []string{"", "AA", "AAB", "AAAA", "AA==", "AA\nAA", "eyJhbGciOiJFQ0RILUVTK0EyNTZLVyJ9"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) { checkB64(t, src) })
}

// BenchmarkB64DecodeCiphertext: 3 KiB of base64url, as the ciphertext of
// a forward, with b64Decode and with encoding/base64.
func BenchmarkB64DecodeCiphertext(b *testing.B) {
	src := appendB64(nil, bytes.Repeat([]byte{0x5a, 0xa5, 0x3c}, 1024))
	dst := make([]byte, b64.DecodedLen(len(src)))
	b.Run("b64Decode", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if _, err := b64Decode(dst, src); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-base64", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if _, err := b64.Decode(dst, src); err != nil {
				b.Fatal(err)
			}
		}
	})
}
