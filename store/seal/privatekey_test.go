package seal

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

// TestPrivateKeyRecord: a sealed key opens as itself, a secret is bound to
// its kid and curve, and a key whose halves disagree is refused.
func TestPrivateKeyRecord(t *testing.T) {
	raw := make([]byte, 32)
	rand.Read(raw)
	k, err := NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.Generate(keys.Ed25519, "did:example:a#k1")
	if err != nil {
		t.Fatal(err)
	}
	pubJWK, pub, sealed, err := k.SealPrivateKey(key)
	if err != nil || !pub.Equal(key.PublicKey) {
		t.Fatal(err)
	}
	got, err := k.OpenPrivateKey(key.ID, pubJWK, sealed)
	if err != nil || !got.PublicKey.Equal(key.PublicKey) || string(got.D) != string(key.D) {
		t.Fatalf("open: %v", err)
	}
	if _, err := k.OpenPrivateKey("did:example:a#k2", pubJWK, sealed); err == nil || !strings.Contains(err.Error(), "cannot unseal") {
		t.Fatalf("a secret opened under another kid: %v", err)
	}
	other, _ := keys.Generate(keys.Ed25519, key.ID)
	otherJWK, _, _, _ := k.SealPrivateKey(other)
	if _, err := k.OpenPrivateKey(key.ID, otherJWK, sealed); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("a secret opened with another public key: %v", err)
	}
	mixed := key
	mixed.PublicKey = other.PublicKey
	if _, _, _, err := k.SealPrivateKey(mixed); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("mismatched halves sealed: %v", err)
	}
}
