package keys_test

import (
	"context"
	"errors"
	"testing"

	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/store/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.TestKeyStore(t, func(t *testing.T) keys.Store { return &keys.MemoryStore{} })
}

// NewMemoryStore holds the keys it is given, and PrivateKey answers as Get.
func TestNewMemoryStore(t *testing.T) {
	ctx := context.Background()
	k, err := keys.Generate(keys.Ed25519, "did:example:alice#key-1")
	if err != nil {
		t.Fatal(err)
	}
	s := keys.NewMemoryStore(k)
	if got, err := s.PrivateKey(ctx, k.ID); err != nil || !got.PublicKey.Equal(k.PublicKey) {
		t.Fatalf("PrivateKey = %v, %v", got, err)
	}
	if _, err := s.PrivateKey(ctx, "did:example:alice#key-2"); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("PrivateKey(unknown) err = %v, want keys.ErrNotFound", err)
	}
	if l, err := s.List(ctx); err != nil || len(l) != 1 || l[0].ID != k.ID {
		t.Fatalf("List = %v, %v", l, err)
	}
}
