package keys

import (
	"context"
	"sort"
	"sync"
)

// MemoryStore is an in-memory Store, for tests and tools. Its zero value is
// ready to use. It keeps the keys in the clear, for the life of the process;
// Put replaces a key already held under the same ID.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]PrivateKey
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns a MemoryStore holding ks.
func NewMemoryStore(ks ...PrivateKey) *MemoryStore {
	s := &MemoryStore{m: make(map[string]PrivateKey, len(ks))}
	for _, k := range ks {
		s.m[k.ID] = k
	}
	return s
}

// Put keeps key under key.ID.
func (s *MemoryStore) Put(_ context.Context, key PrivateKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]PrivateKey{}
	}
	s.m[key.ID] = key
	return nil
}

// Get returns the key kept under kid, or ErrNotFound.
func (s *MemoryStore) Get(_ context.Context, kid string) (PrivateKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.m[kid]
	if !ok {
		return PrivateKey{}, ErrNotFound
	}
	return k, nil
}

// PrivateKey is Get. It lets a MemoryStore stand in for an agent's keys
// where a secret resolver is wanted (envelope.SecretResolver).
func (s *MemoryStore) PrivateKey(ctx context.Context, kid string) (PrivateKey, error) {
	return s.Get(ctx, kid)
}

// List returns the public keys of the keys kept, in order of ID.
func (s *MemoryStore) List(context.Context) ([]PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PublicKey, 0, len(s.m))
	for _, k := range s.m {
		out = append(out, k.PublicKey)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
