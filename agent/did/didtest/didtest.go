// Package didtest makes DIDs with fresh keys, for tests.
package didtest

import (
	"testing"

	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
)

// Peer2 is a did:peer:2 made by NewPeer2, with the private keys behind it.
type Peer2 struct {
	// DID is the did:peer:2.
	DID string
	// Doc is its DID document, as did.ResolvePeer2 gives it.
	Doc *did.Doc
	// Agreement is the X25519 key agreement key, with its key ID in Doc.
	Agreement keys.PrivateKey
	// Authentication is the Ed25519 authentication key, with its key ID in
	// Doc.
	Authentication keys.PrivateKey
}

// NewPeer2 makes a did:peer:2 from a fresh X25519 key agreement key, a fresh
// Ed25519 authentication key and services, and gives the keys the IDs its
// document has for them. It fails the test on error.
func NewPeer2(t testing.TB, services ...did.Service) *Peer2 {
	t.Helper()
	x, err := keys.Generate(keys.X25519, "")
	if err != nil {
		t.Fatal(err)
	}
	e, err := keys.Generate(keys.Ed25519, "")
	if err != nil {
		t.Fatal(err)
	}
	id, err := did.NewPeer2([]keys.PublicKey{x.PublicKey}, []keys.PublicKey{e.PublicKey}, services)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := did.ResolvePeer2(id)
	if err != nil {
		t.Fatal(err)
	}
	ka, _ := doc.KeyAgreement()
	au, _ := doc.Authentication()
	x.ID, e.ID = ka[0].ID, au[0].ID
	return &Peer2{DID: id, Doc: doc, Agreement: x, Authentication: e}
}

// Keys returns the agreement and the authentication key, in that order.
func (p *Peer2) Keys() []keys.PrivateKey { return []keys.PrivateKey{p.Agreement, p.Authentication} }
