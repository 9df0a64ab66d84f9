package bolt

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/store/seal"
)

// KeyStore keeps the agent's private keys, implementing keys.Store. Get it
// from DB.Keys, which needs a master key.
//
// Each private key's secret (keys.PrivateKey.D) is sealed with AES-256-GCM
// under the master key with a fresh random nonce, and bound to the key's
// curve and kid as additional authenticated data, so a sealed secret copied
// to another record does not open. The public key is stored beside it as a
// plain JWK, so List needs no decryption. Put is durable on return.
type KeyStore struct{ db *DB }

var _ keys.Store = (*KeyStore)(nil)

// Put stores a key pair under key.ID. It checks that the public key matches
// the secret. Putting the same key pair again is a no-op; putting a different
// key under a kid already in use fails with an error wrapping ErrExists, so a
// private key is never silently overwritten.
func (s *KeyStore) Put(ctx context.Context, key keys.PrivateKey) error {
	kid := key.ID
	if err := checkID("key id", kid); err != nil {
		return err
	}
	pub, check, sealed, err := s.db.key.SealPrivateKey(key)
	if err != nil {
		return fmt.Errorf("bolt: key %q: %w", kid, err)
	}
	return s.db.write(ctx, func(tx *bbolt.Tx) error {
		kb := tx.Bucket(bKeys)
		pubs, privs := kb.Bucket(bPub), kb.Bucket(bPriv)
		if old := pubs.Get([]byte(kid)); old != nil {
			oldPub, err := seal.ParsePublicJWK(kid, old)
			if err != nil {
				return err
			}
			if oldPub.Equal(check) {
				return nil
			}
			return fmt.Errorf("bolt: key %q: a different key is stored under this id: %w", kid, ErrExists)
		}
		if err := pubs.Put([]byte(kid), pub); err != nil {
			return err
		}
		return privs.Put([]byte(kid), sealed)
	})
}

// Get returns the key pair stored under kid, or an error wrapping
// keys.ErrNotFound. A sealed secret that does not open, or that does not match
// its stored public key, is reported as corruption.
func (s *KeyStore) Get(ctx context.Context, kid string) (keys.PrivateKey, error) {
	var pubV, sealed []byte
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		kb := tx.Bucket(bKeys)
		pubV, sealed = clone(kb.Bucket(bPub).Get([]byte(kid))), clone(kb.Bucket(bPriv).Get([]byte(kid)))
		return nil
	})
	if err != nil {
		return keys.PrivateKey{}, err
	}
	if pubV == nil || sealed == nil {
		return keys.PrivateKey{}, fmt.Errorf("bolt: key %q: %w", kid, keys.ErrNotFound)
	}
	priv, err := s.db.key.OpenPrivateKey(kid, pubV, sealed)
	if err != nil {
		return keys.PrivateKey{}, fmt.Errorf("bolt: %w", err)
	}
	return priv, nil
}

// List returns the public halves of all stored keys in kid order. It does not
// touch the sealed secrets.
func (s *KeyStore) List(ctx context.Context) ([]keys.PublicKey, error) {
	var out []keys.PublicKey
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bKeys).Bucket(bPub).ForEach(func(k, v []byte) error {
			pk, err := seal.ParsePublicJWK(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, pk)
			return nil
		})
	})
	return out, err
}
