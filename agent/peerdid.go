package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
)

// PeerDIDSpec describes a did:peer:2 for Identity.NewPeerDID to create.
type PeerDIDSpec struct {
	// Agreement lists the curves of its key agreement keys, in order; one
	// X25519 key when empty.
	Agreement []keys.Curve
	// NoAuthentication leaves out the Ed25519 authentication key, for a DID
	// that only ever decrypts (a mediator's routing DID).
	NoAuthentication bool
	// Services are its services, in order (see DIDCommService).
	Services []did.Service
}

// PeerDID is a did:peer:2 created by Identity.NewPeerDID, with the key ids
// its private keys are stored under.
type PeerDID struct {
	DID string
	// AgreementKIDs are the key agreement key ids, in the order of
	// PeerDIDSpec.Agreement.
	AgreementKIDs []string
	// AuthenticationKIDs is the authentication key id, unless
	// PeerDIDSpec.NoAuthentication.
	AuthenticationKIDs []string
}

// WebSocketServiceID is the id of the DIDCommMessaging service whose uri is
// the ws(s) URL of the agent's endpoint, which the agent's own DIDs and its
// routing DID publish beside the http(s) one ("#didcomm").
const WebSocketServiceID = "#didcomm-ws"

// DIDCommService returns a DIDCommMessaging service accepting didcomm/v2 at
// uri, through the mediators whose routing keys are given: the service the
// agent's own DIDs publish. id is its fragment, e.g. "#didcomm".
func DIDCommService(id, uri string, routingKeys ...string) did.Service {
	if routingKeys == nil {
		routingKeys = []string{}
	}
	return did.Service{ID: id, Type: did.ServiceTypeDIDCommMessaging, ServiceEndpoint: did.ServiceEndpoint{
		URI: uri, Accept: []string{"didcomm/v2"}, RoutingKeys: routingKeys,
	}}
}

// NewPeerDID creates a did:peer:2 the agent owns: it generates the keys the
// spec asks for, stores each private key in the key store under the key id
// its public key has in the DID's document, and adds the DID to the
// identity (the first DID added becomes the primary one).
func (id *Identity) NewPeerDID(ctx context.Context, spec PeerDIDSpec) (PeerDID, error) {
	curves := spec.Agreement
	if len(curves) == 0 {
		curves = []keys.Curve{keys.X25519}
	}
	var agreement, auth []keys.PrivateKey
	for _, c := range curves {
		k, err := keys.Generate(c, "")
		if err != nil {
			return PeerDID{}, err
		}
		agreement = append(agreement, k)
	}
	if !spec.NoAuthentication {
		k, err := keys.Generate(keys.Ed25519, "")
		if err != nil {
			return PeerDID{}, err
		}
		auth = append(auth, k)
	}
	public := func(ks []keys.PrivateKey) []keys.PublicKey {
		var out []keys.PublicKey
		for _, k := range ks {
			out = append(out, k.PublicKey)
		}
		return out
	}
	d, err := did.NewPeer2(public(agreement), public(auth), spec.Services)
	if err != nil {
		return PeerDID{}, fmt.Errorf("creating did:peer:2: %w", err)
	}
	doc, err := did.ResolvePeer2(d)
	if err != nil {
		return PeerDID{}, fmt.Errorf("resolving our own did:peer:2: %w", err)
	}
	ka, err := doc.KeyAgreement()
	if err != nil {
		return PeerDID{}, err
	}
	au, err := doc.Authentication()
	if err != nil {
		return PeerDID{}, err
	}
	out := PeerDID{DID: d}
	if out.AgreementKIDs, err = id.storeAs(ctx, agreement, ka); err != nil {
		return PeerDID{}, err
	}
	if out.AuthenticationKIDs, err = id.storeAs(ctx, auth, au); err != nil {
		return PeerDID{}, err
	}
	id.AddDID(d)
	return out, nil
}

// storeAs gives each private key the kid its public key has among refs (the
// DID document's keys) and stores it, returning the kids.
func (id *Identity) storeAs(ctx context.Context, privs []keys.PrivateKey, refs []keys.PublicKey) ([]string, error) {
	var kids []string
	for _, k := range privs {
		found := false
		for _, p := range refs {
			if p.Equal(k.PublicKey) {
				k.ID, found = p.ID, true
				break
			}
		}
		if !found {
			return nil, errors.New("key missing from our own DID document")
		}
		if err := id.store.Put(ctx, k); err != nil {
			return nil, fmt.Errorf("storing key: %w", err)
		}
		kids = append(kids, k.ID)
	}
	return kids, nil
}
