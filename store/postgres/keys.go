package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/store/seal"
)

// KeyStore keeps the agent's private keys, implementing keys.Store. Get it
// from DB.Keys, which needs a master key.
//
// As in the bbolt store, each secret (keys.PrivateKey.D) is sealed with
// AES-256-GCM under the master key, bound to the key's curve and kid as
// additional data, and the public key is stored beside it as a plain JWK.
// Put is durable on return. Every instance sharing the database needs the
// same master key.
type KeyStore struct{ db *DB }

var _ keys.Store = (*KeyStore)(nil)

// Put stores a key pair under key.ID. It checks that the public key matches
// the secret. Putting the same key pair again is a no-op; putting a
// different key under a kid in use fails with an error wrapping ErrExists.
func (s *KeyStore) Put(ctx context.Context, key keys.PrivateKey) error {
	kid := key.ID
	if err := checkID("key id", kid); err != nil {
		return err
	}
	if err := checkText("key id", kid); err != nil {
		return err
	}
	pub, check, sealed, err := s.db.key.SealPrivateKey(key)
	if err != nil {
		return fmt.Errorf("postgres: key %q: %w", kid, err)
	}
	tag, err := s.db.pool.Exec(ctx, `INSERT INTO agentd_keys (kid, public_jwk, sealed) VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING`,
		kid, pub, sealed)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var old []byte
	if err := s.db.pool.QueryRow(ctx, `SELECT public_jwk FROM agentd_keys WHERE kid = $1`, kid).Scan(&old); err != nil {
		return err
	}
	oldPub, err := seal.ParsePublicJWK(kid, old)
	if err != nil {
		return err
	}
	if oldPub.Equal(check) {
		return nil
	}
	return fmt.Errorf("postgres: key %q: a different key is stored under this id: %w", kid, ErrExists)
}

// Get returns the key pair stored under kid, or an error wrapping
// keys.ErrNotFound. A sealed secret that does not open, or that does not
// match its public key, is reported as corruption.
func (s *KeyStore) Get(ctx context.Context, kid string) (keys.PrivateKey, error) {
	var pubV, sealed []byte
	err := s.db.pool.QueryRow(ctx, `SELECT public_jwk, sealed FROM agentd_keys WHERE kid = $1`, kid).Scan(&pubV, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return keys.PrivateKey{}, fmt.Errorf("postgres: key %q: %w", kid, keys.ErrNotFound)
	}
	if err != nil {
		return keys.PrivateKey{}, err
	}
	priv, err := s.db.key.OpenPrivateKey(kid, pubV, sealed)
	if err != nil {
		return keys.PrivateKey{}, fmt.Errorf("postgres: %w", err)
	}
	return priv, nil
}

// List returns the public halves of all stored keys in kid order. It does
// not touch the sealed secrets.
func (s *KeyStore) List(ctx context.Context) ([]keys.PublicKey, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT kid, public_jwk FROM agentd_keys ORDER BY kid COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []keys.PublicKey
	for rows.Next() {
		var kid string
		var v []byte
		if err := rows.Scan(&kid, &v); err != nil {
			return nil, err
		}
		pk, err := seal.ParsePublicJWK(kid, v)
		if err != nil {
			return nil, err
		}
		out = append(out, pk)
	}
	return out, rows.Err()
}
