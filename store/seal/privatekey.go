package seal

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentd/agentd/agent/keys"
)

// How every store keeps a private key: the public key as a plain JWK (so
// that listing needs no decryption) beside the secret (keys.PrivateKey.D)
// sealed under the master key with the key's curve and kid as additional
// data, so that a sealed secret copied to another record does not open.
// The stores share this format, so a key moves between them unchanged.

// ErrKeyMismatch is returned for a private key whose public half is not the
// one stored or given with it.
var ErrKeyMismatch = errors.New("public key does not match the private key")

// keyAAD is the additional data a private key is sealed with. The curve name
// never contains a NUL, so the encoding is unambiguous.
func keyAAD(c keys.Curve, kid string) []byte {
	return []byte("agentd/key/v1\x00" + string(c) + "\x00" + kid)
}

// SealPrivateKey checks that key's public half matches its secret and
// returns what a store keeps: the public JWK, the public key, and the
// sealed secret.
func (k Key) SealPrivateKey(key keys.PrivateKey) (publicJWK []byte, pub keys.PublicKey, sealed []byte, err error) {
	check, err := keys.FromPrivate(key.Curve, key.ID, key.D)
	if err != nil {
		return nil, keys.PublicKey{}, nil, err
	}
	if !check.PublicKey.Equal(key.PublicKey) {
		return nil, keys.PublicKey{}, nil, ErrKeyMismatch
	}
	publicJWK, err = json.Marshal(check.PublicKey.JWK())
	if err != nil {
		return nil, keys.PublicKey{}, nil, err
	}
	sealed, err = k.Seal(key.D, keyAAD(key.Curve, key.ID))
	if err != nil {
		return nil, keys.PublicKey{}, nil, err
	}
	return publicJWK, check.PublicKey, sealed, nil
}

// ParsePublicJWK reads a stored public JWK as the key kid.
func ParsePublicJWK(kid string, v []byte) (keys.PublicKey, error) {
	var j keys.JWK
	if err := json.Unmarshal(v, &j); err != nil {
		return keys.PublicKey{}, fmt.Errorf("public key %q: %w", kid, err)
	}
	pk, err := j.PublicKey(kid)
	if err != nil {
		return keys.PublicKey{}, fmt.Errorf("public key %q: %w", kid, err)
	}
	return pk, nil
}

// OpenPrivateKey returns the key pair kid from its stored public JWK and
// sealed secret. A secret that does not open, or does not match its public
// key, is reported as corruption.
func (k Key) OpenPrivateKey(kid string, publicJWK, sealed []byte) (keys.PrivateKey, error) {
	pub, err := ParsePublicJWK(kid, publicJWK)
	if err != nil {
		return keys.PrivateKey{}, err
	}
	d, err := k.Open(sealed, keyAAD(pub.Curve, kid))
	if err != nil {
		return keys.PrivateKey{}, fmt.Errorf("key %q: cannot unseal (database corrupted or tampered with): %w", kid, err)
	}
	defer clear(d)
	priv, err := keys.FromPrivate(pub.Curve, kid, d)
	if err != nil {
		return keys.PrivateKey{}, fmt.Errorf("key %q: %w", kid, err)
	}
	if !priv.PublicKey.Equal(pub) {
		return keys.PrivateKey{}, fmt.Errorf("key %q: stored public key does not match the private key (database corrupted or tampered with)", kid)
	}
	return priv, nil
}
