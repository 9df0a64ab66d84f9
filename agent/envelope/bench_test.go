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

// forwardPlaintext returns a Routing 2.0 forward, as a sender packs it for a
// mediator, whose attachment carries a stand-in encrypted message of size
// bytes (a JWE object in data.json).
func forwardPlaintext(size int) []byte {
	next := "did:peer:2.Ez6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc.Vz6MkqRYqQiSgvZQdnBytw86Qbs2ZWUkGv22od935YF4s8M7V"
	inner := `{"protected":"eyJ0eXAiOiJhcHBsaWNhdGlvbi9kaWRjb21tLWVuY3J5cHRlZCtqc29uIiwiYWxnIjoiRUNESC0xUFUrQTI1NktXIn0","recipients":[{"header":{"kid":"` +
		next + `#key-1"},"encrypted_key":"AAAA"}],"iv":"f1","ciphertext":"` + strings.Repeat("A", max(size-260, 0)) + `","tag":"AAAA"}`
	return []byte(`{"id":"6a8f7bd1-7b1c-4a1e-9f4e-2f1d5c8e9a01","type":"https://didcomm.org/routing/2.0/forward","body":{"next":"` + next +
		`"},"attachments":[{"id":"0b6f3e2a-8c4d-4f5e-a1b2-c3d4e5f6a7b8","media_type":"application/didcomm-encrypted+json","data":{"json":` + inner + `}}]}`)
}

// BenchmarkUnpackForward: one Unpack of an anoncrypted forward (X25519,
// XC20P) whose attachment is a 2 KiB encrypted message, the work a mediator
// does per forward before routing it: one X25519 agreement.
func BenchmarkUnpackForward(b *testing.B) {
	_, bob, opts, _ := benchSetup(b)
	plain := forwardPlaintext(2048)
	jwe, err := PackAnoncrypt(plain, []keys.PublicKey{bob.PublicKey}, XC20P)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		pt, _, err := Unpack(ctx, jwe, opts)
		if err != nil || !bytes.Equal(pt, plain) {
			b.Fatal(err)
		}
	}
}

// BenchmarkParsePlaintextForward: the plaintext check alone on the forward
// above.
func BenchmarkParsePlaintextForward(b *testing.B) {
	plain := forwardPlaintext(2048)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parsePlaintext(plain); err != nil {
			b.Fatal(err)
		}
	}
}

// forwardJWE returns the anoncrypted (XC20P) forward of BenchmarkUnpackForward
// and the options that open it.
func forwardJWE(b *testing.B) ([]byte, UnpackOptions) {
	_, bob, opts, _ := benchSetup(b)
	jwe, err := PackAnoncrypt(forwardPlaintext(2048), []keys.PublicKey{bob.PublicKey}, XC20P)
	if err != nil {
		b.Fatal(err)
	}
	return jwe, opts
}

// BenchmarkScanEnvelopeForward: the top-level scan of the JWE of
// BenchmarkUnpackForward (mostly its 3 KiB ciphertext string).
func BenchmarkScanEnvelopeForward(b *testing.B) {
	jwe, _ := forwardJWE(b)
	b.SetBytes(int64(len(jwe)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := scanEnvelope(jwe); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseJWEForward: scanning and parsing that JWE (header,
// recipients, base64 of iv, ciphertext and tag), no cryptography.
func BenchmarkParseJWEForward(b *testing.B) {
	jwe, _ := forwardJWE(b)
	b.ReportAllocs()
	for b.Loop() {
		env, err := scanEnvelope(jwe)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parseJWE(env); err != nil {
			b.Fatal(err)
		}
	}
}
