package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/agentd/agentd/agent/keys"
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

// keyAAD is the additional data a private key is sealed with (the same as
// the bbolt store's).
func keyAAD(c keys.Curve, kid string) []byte {
	return []byte("agentd/key/v1\x00" + string(c) + "\x00" + kid)
}

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
	check, err := keys.FromPrivate(key.Curve, kid, key.D)
	if err != nil {
		return fmt.Errorf("postgres: key %q: %w", kid, err)
	}
	if !check.PublicKey.Equal(key.PublicKey) {
		return fmt.Errorf("postgres: key %q: public key does not match the private key", kid)
	}
	pub, err := json.Marshal(check.PublicKey.JWK())
	if err != nil {
		return err
	}
	sealed, err := s.db.key.Seal(key.D, keyAAD(key.Curve, kid))
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
	oldPub, err := parsePub(kid, old)
	if err != nil {
		return err
	}
	if oldPub.Equal(check.PublicKey) {
		return nil
	}
	return fmt.Errorf("postgres: key %q: a different key is stored under this id: %w", kid, ErrExists)
}

func parsePub(kid string, v []byte) (keys.PublicKey, error) {
	var j keys.JWK
	if err := json.Unmarshal(v, &j); err != nil {
		return keys.PublicKey{}, fmt.Errorf("postgres: public key %q: %w", kid, err)
	}
	pk, err := j.PublicKey(kid)
	if err != nil {
		return keys.PublicKey{}, fmt.Errorf("postgres: public key %q: %w", kid, err)
	}
	return pk, nil
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
	pub, err := parsePub(kid, pubV)
	if err != nil {
		return keys.PrivateKey{}, err
	}
	d, err := s.db.key.Open(sealed, keyAAD(pub.Curve, kid))
	if err != nil {
		return keys.PrivateKey{}, fmt.Errorf("postgres: key %q: cannot unseal (database corrupted or tampered with): %w", kid, err)
	}
	defer clear(d)
	priv, err := keys.FromPrivate(pub.Curve, kid, d)
	if err != nil {
		return keys.PrivateKey{}, fmt.Errorf("postgres: key %q: %w", kid, err)
	}
	if !priv.PublicKey.Equal(pub) {
		return keys.PrivateKey{}, fmt.Errorf("postgres: key %q: stored public key does not match the private key (database corrupted or tampered with)", kid)
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
		pk, err := parsePub(kid, v)
		if err != nil {
			return nil, err
		}
		out = append(out, pk)
	}
	return out, rows.Err()
}
