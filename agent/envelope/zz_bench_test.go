package envelope

import (
	"strings"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

func BenchmarkZZParseJWE(b *testing.B) {
	alice, _ := keys.Generate(keys.X25519, "did:example:alice#key-x25519-1")
	bob, _ := keys.Generate(keys.X25519, "did:example:bob#key-x25519-1")
	body := `{"content":"` + strings.Repeat("x", 1024-len(`{"content":""}`)) + `"}`
	plain := message("did:example:alice", body)
	jwe, _ := PackAuthcrypt(plain, alice, []keys.PublicKey{bob.PublicKey})
	b.ReportAllocs()
	for b.Loop() {
		e, _ := scanEnvelope(jwe)
		parseJWE(e)
	}
}

func BenchmarkZZSeal(b *testing.B) {
	key := make([]byte, 64)
	iv := make([]byte, 16)
	pt := make([]byte, 1100)
	aad := make([]byte, 400)
	b.ReportAllocs()
	for b.Loop() {
		cbcHMACSeal(key, iv, pt, aad)
	}
}

func BenchmarkZZTag(b *testing.B) {
	key := make([]byte, 64)
	iv := make([]byte, 16)
	pt := make([]byte, 1104)
	aad := make([]byte, 400)
	b.ReportAllocs()
	for b.Loop() {
		var s [64]byte
		cbcHMACSum(&s, key[:32], iv, pt, aad)
	}
}
