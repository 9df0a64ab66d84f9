package envelope

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

// benchSetup returns alice's and bob's X25519 keys, in-memory resolvers and a
// plaintext message with a 1 KiB body.
func benchSetup(b *testing.B) (alice, bob keys.PrivateKey, opts UnpackOptions, plain []byte) {
	var err error
	if alice, err = keys.Generate(keys.X25519, "did:example:alice#key-x25519-1"); err != nil {
		b.Fatal(err)
	}
	if bob, err = keys.Generate(keys.X25519, "did:example:bob#key-x25519-1"); err != nil {
		b.Fatal(err)
	}
	r := newTestResolver()
	r.add(alice.PublicKey, PurposeKeyAgreement)
	opts = UnpackOptions{Keys: r, Secrets: testSecrets{bob.ID: bob}}
	body := `{"content":"` + strings.Repeat("x", 1024-len(`{"content":""}`)) + `"}`
	plain = message("did:example:alice", body)
	return alice, bob, opts, plain
}

// BenchmarkAuthcryptPackUnpack: one authcrypt PackAuthcrypt + Unpack per op
// (X25519, A256CBC-HS512, one recipient, 1 KiB body): 5 X25519 operations
// (ephemeral key, Ze and Zs on each side).
func BenchmarkAuthcryptPackUnpack(b *testing.B) {
	alice, bob, opts, plain := benchSetup(b)
	rcpt := []keys.PublicKey{bob.PublicKey}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		jwe, err := PackAuthcrypt(plain, alice, rcpt)
		if err != nil {
			b.Fatal(err)
		}
		pt, _, err := Unpack(ctx, jwe, opts)
		if err != nil || !bytes.Equal(pt, plain) {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnoncryptPackUnpack: one PackAnoncrypt + Unpack per op (X25519,
// XC20P, one recipient, 1 KiB body): 3 X25519 operations.
func BenchmarkAnoncryptPackUnpack(b *testing.B) {
	_, bob, opts, plain := benchSetup(b)
	rcpt := []keys.PublicKey{bob.PublicKey}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		jwe, err := PackAnoncrypt(plain, rcpt, XC20P)
		if err != nil {
			b.Fatal(err)
		}
		pt, _, err := Unpack(ctx, jwe, opts)
		if err != nil || !bytes.Equal(pt, plain) {
			b.Fatal(err)
		}
	}
}

// BenchmarkX25519 is one X25519 scalar multiplication with a parsed private
// key: the unit the two benchmarks above are compared against.
func BenchmarkX25519(b *testing.B) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	peer, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pub := peer.PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := priv.ECDH(pub); err != nil {
			b.Fatal(err)
		}
	}
}
