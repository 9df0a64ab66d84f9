package w3cvc

import (
	"github.com/agentd/agentd/agent/keys"
)

// Signer signs credentials and presentations for a DID.
type Signer interface {
	// DID is the signer's DID (the issuer or holder).
	DID() string
	// KeyID is the full DID URL of the signing key (DID#fragment).
	KeyID() string
	// Algorithm is the JWS algorithm: EdDSA, ES256, ES256K...
	Algorithm() string
	// Sign signs msg; ECDSA signatures are in the JOSE R||S form.
	Sign(msg []byte) ([]byte, error)
}

// KeySigner returns a Signer for did over the agent key k, whose ID must be
// the DID URL of its verification method (a relative "#key-1" is made
// absolute against did).
func KeySigner(did string, k keys.PrivateKey) Signer {
	kid := k.ID
	if len(kid) > 0 && kid[0] == '#' {
		kid = did + kid
	}
	return keySigner{did: did, kid: kid, k: k}
}

type keySigner struct {
	did, kid string
	k        keys.PrivateKey
}

func (s keySigner) DID() string                     { return s.did }
func (s keySigner) KeyID() string                   { return s.kid }
func (s keySigner) Algorithm() string               { return s.k.Curve.JWSAlg() }
func (s keySigner) Sign(msg []byte) ([]byte, error) { return s.k.Sign(msg) }
