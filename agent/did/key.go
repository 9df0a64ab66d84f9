package did

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/agentd/agentd/agent/keys"
)

// KeyDID returns the did:key of a public key: "did:key:" followed by the
// key's multikey (multicodec-prefixed, compressed for the EC curves,
// base58btc).
func KeyDID(pub keys.PublicKey) string {
	return "did:key:" + pub.Multikey()
}

// KeyMethodResolver resolves did:key DIDs (Ed25519, X25519, P-256, P-384,
// P-521, secp256k1). It needs no state or network; the zero value is ready.
type KeyMethodResolver struct{}

// Resolve resolves a did:key; see ResolveKey.
func (KeyMethodResolver) Resolve(_ context.Context, did string) (*Doc, error) {
	return ResolveKey(did)
}

// ResolveKey builds the document of a did:key as the did:key specification
// does, with Multikey verification methods whose ids are
// "<did>#<multikey>":
//   - Ed25519: the key in authentication, assertionMethod,
//     capabilityInvocation and capabilityDelegation, and its X25519 form
//     (the birational map) as a second method in keyAgreement;
//   - X25519: the key in keyAgreement only;
//   - P-256, P-384, P-521, secp256k1: the key in all five relationships.
//
// Use Doc.WithVerificationMethodType for the JsonWebKey2020 or 2018/2020
// suite renderings. Errors wrap ErrInvalidDID.
func ResolveKey(did string) (*Doc, error) {
	method, id, err := ParseDID(did)
	if err != nil {
		return nil, err
	}
	if method != "key" {
		return nil, fmt.Errorf("%w: %.80q is not a did:key", ErrInvalidDID, did)
	}
	return keyDoc("did:key", did, id)
}

// keyDoc builds a did:key style document for did, whose key is the multikey
// mk; method names the method in errors (did:key, did:peer:0).
func keyDoc(method, did, mk string) (*Doc, error) {
	if strings.Contains(mk, ":") {
		return nil, fmt.Errorf("%w: %s takes one multikey, got %.80q", ErrInvalidDID, method, mk)
	}
	k, err := keys.ParseMultikey(mk, did+"#"+mk)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidDID, method, err)
	}
	if k.Multikey() != mk {
		// Uncompressed EC points and other non-canonical encodings: the DID
		// must be the canonical form, or the same key would have two DIDs.
		return nil, fmt.Errorf("%w: %s: key is not in canonical multikey form", ErrInvalidDID, method)
	}
	vm := VerificationMethod{ID: k.ID, Type: TypeMultikey, Controller: did, PublicKeyMultibase: mk}
	ref := []VerificationRef{{Ref: vm.ID}}
	doc := &Doc{Context: []any{ContextDIDv1, ContextMultikey}, ID: did, VerificationMethod: []VerificationMethod{vm}}
	switch k.Curve {
	case keys.X25519:
		doc.KeyAgreementRefs = ref
	case keys.Ed25519:
		doc.AuthenticationRefs, doc.AssertionMethodRefs = ref, ref
		doc.CapabilityInvocationRefs, doc.CapabilityDelegationRefs = ref, ref
		x, err := k.ToX25519()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidDID, method, err)
		}
		xmk := x.Multikey()
		xvm := VerificationMethod{ID: did + "#" + xmk, Type: TypeMultikey, Controller: did, PublicKeyMultibase: xmk}
		doc.VerificationMethod = append(doc.VerificationMethod, xvm)
		doc.KeyAgreementRefs = []VerificationRef{{Ref: xvm.ID}}
	case keys.P256, keys.P384, keys.P521, keys.Secp256k1:
		doc.AuthenticationRefs, doc.AssertionMethodRefs = ref, ref
		doc.CapabilityInvocationRefs, doc.CapabilityDelegationRefs = ref, ref
		doc.KeyAgreementRefs = ref
	default:
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidDID, method, errors.New("unsupported key type"))
	}
	// The relationships share the ref slice; give each its own so that
	// callers can modify one without the others.
	for _, r := range doc.relationships() {
		*r.refs = cloneRefs(*r.refs)
	}
	return doc, nil
}
