package agent

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// TestAnonReplayKey: the key of an unauthenticated message is as it was
// built before, for ids short and long.
func TestAnonReplayKey(t *testing.T) {
	for _, id := range []string{"", "1", "6a8f7bd1-7b1c-4a1e-9f4e-2f1d5c8e9a01", strings.Repeat("x", 200)} {
		sum := sha256.Sum256([]byte("packed " + id))
		want := "\x00" + id + "\x00" + base64.RawURLEncoding.EncodeToString(sum[:])
		if got := anonReplayKey(id, &sum); got != want {
			t.Errorf("anonReplayKey(%q) = %q, want %q", id, got, want)
		}
	}
}

func BenchmarkAnonReplayKey(b *testing.B) {
	sum := sha256.Sum256([]byte("packed"))
	b.ReportAllocs()
	for b.Loop() {
		_ = anonReplayKey("6a8f7bd1-7b1c-4a1e-9f4e-2f1d5c8e9a01", &sum)
	}
}
