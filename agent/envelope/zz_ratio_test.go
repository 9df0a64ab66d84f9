package envelope

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"testing"
	"time"

	"github.com/agentd/agentd/agent/keys"
)

func TestZZRatio(t *testing.T) {
	b := &testing.B{}
	alice, bob, opts, plain := benchSetup(b)
	rcpt := []keys.PublicKey{bob.PublicKey}
	ctx := context.Background()
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	peer, _ := ecdh.X25519().GenerateKey(rand.Reader)
	pub := peer.PublicKey()
	minOf := func(n int, f func()) time.Duration {
		best := time.Hour
		for k := 0; k < 200; k++ {
			s := time.Now()
			for i := 0; i < n; i++ {
				f()
			}
			if d := time.Since(s) / time.Duration(n); d < best {
				best = d
			}
		}
		return best
	}
	x := minOf(20, func() { priv.ECDH(pub) })
	auth := minOf(4, func() {
		jwe, _ := PackAuthcrypt(plain, alice, rcpt)
		pt, _, err := Unpack(ctx, jwe, opts)
		if err != nil || !bytes.Equal(pt, plain) {
			t.Fatal(err)
		}
	})
	anon := minOf(4, func() {
		jwe, _ := PackAnoncrypt(plain, rcpt, XC20P)
		pt, _, err := Unpack(ctx, jwe, opts)
		if err != nil || !bytes.Equal(pt, plain) {
			t.Fatal(err)
		}
	})
	t.Logf("x25519 %v auth %v (%.2fx of 5) anon %v (%.2fx of 3)", x, auth, float64(auth)/float64(5*x), anon, float64(anon)/float64(3*x))
}
