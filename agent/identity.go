package agent

import (
	"context"
	"fmt"
	"sync"

	"github.com/agentd/agentd/agent/keys"
)

// Identity is the set of DIDs the agent answers for, and the keys it holds for
// them. The first DID added is the primary one: the agent's public DID. It is
// safe for concurrent use.
type Identity struct {
	store keys.Store

	mu      sync.RWMutex
	primary string
	dids    map[string]bool
	cache   map[string]keys.PrivateKey
}

// NewIdentity returns an Identity whose private keys live in store.
func NewIdentity(store keys.Store) *Identity {
	return &Identity{store: store, dids: map[string]bool{}, cache: map[string]keys.PrivateKey{}}
}

// AddDID makes the agent answer for did; the first one added is the primary DID.
func (id *Identity) AddDID(did string) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.primary == "" {
		id.primary = did
	}
	id.dids[did] = true
}

// SetPrimary makes did, which the agent must already answer for (AddDID),
// the primary DID: the one outbound messages are sent from by default. An
// agent that is mediated makes its mediated DID primary, so that peers
// answer through its mediator.
func (id *Identity) SetPrimary(did string) error {
	id.mu.Lock()
	defer id.mu.Unlock()
	if !id.dids[did] {
		return fmt.Errorf("identity: %s is not one of the agent's DIDs", did)
	}
	id.primary = did
	return nil
}

// DID returns the primary DID.
func (id *Identity) DID() string {
	id.mu.RLock()
	defer id.mu.RUnlock()
	return id.primary
}

// Owns reports whether did is one of the agent's DIDs.
func (id *Identity) Owns(did string) bool {
	id.mu.RLock()
	defer id.mu.RUnlock()
	return id.dids[did]
}

// PrivateKey returns the agent's private key for kid. Decrypted keys are kept
// in memory so the store's decryption is paid once per key. It satisfies
// envelope.SecretResolver.
func (id *Identity) PrivateKey(ctx context.Context, kid string) (keys.PrivateKey, error) {
	id.mu.RLock()
	k, ok := id.cache[kid]
	id.mu.RUnlock()
	if ok {
		return k, nil
	}
	k, err := id.store.Get(ctx, kid)
	if err != nil {
		return keys.PrivateKey{}, err
	}
	if k.ID != kid {
		return keys.PrivateKey{}, fmt.Errorf("key store returned key %q for %q", k.ID, kid)
	}
	id.mu.Lock()
	id.cache[kid] = k
	id.mu.Unlock()
	return k, nil
}
