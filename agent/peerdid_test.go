package agent_test

import (
	"context"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
)

// NewPeerDID creates the did:peer:2 the spec asks for, stores its private
// keys under the key ids of its document, and makes the identity answer for
// it (the first DID becoming the primary one).
func TestNewPeerDID(t *testing.T) {
	ctx := context.Background()
	ks := &keys.MemoryStore{}
	id := agent.NewIdentity(ks)
	own, err := id.NewPeerDID(ctx, agent.PeerDIDSpec{
		Agreement: []keys.Curve{keys.X25519, keys.P256},
		Services: []did.Service{agent.DIDCommService("#didcomm", "https://agent.example/didcomm"),
			agent.DIDCommService("#didcomm-1", "mailto:agent@example.org")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if id.DID() != own.DID || !id.Owns(own.DID) {
		t.Fatalf("identity: primary %s, want %s", id.DID(), own.DID)
	}
	if len(own.AgreementKIDs) != 2 || len(own.AuthenticationKIDs) != 1 {
		t.Fatalf("kids: %+v", own)
	}
	doc, err := did.ResolvePeer2(own.DID)
	if err != nil {
		t.Fatal(err)
	}
	ka, _ := doc.KeyAgreement()
	au, _ := doc.Authentication()
	for i, kid := range own.AgreementKIDs {
		k, err := id.PrivateKey(ctx, kid)
		if err != nil || !k.PublicKey.Equal(ka[i]) || k.Curve != []keys.Curve{keys.X25519, keys.P256}[i] {
			t.Fatalf("agreement key %s: %v %v", kid, k, err)
		}
	}
	if k, err := id.PrivateKey(ctx, own.AuthenticationKIDs[0]); err != nil || !k.PublicKey.Equal(au[0]) || k.Curve != keys.Ed25519 {
		t.Fatalf("authentication key: %v %v", k, err)
	}
	svcs := doc.DIDCommServices()
	if len(svcs) != 2 || svcs[0].ServiceEndpoint.URI != "https://agent.example/didcomm" || svcs[1].ServiceEndpoint.URI != "mailto:agent@example.org" {
		t.Fatalf("services: %+v", svcs)
	}

	// A routing DID: one X25519 key, no authentication key; not primary.
	routing, err := id.NewPeerDID(ctx, agent.PeerDIDSpec{NoAuthentication: true,
		Services: []did.Service{agent.DIDCommService("#didcomm", "https://agent.example/didcomm")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(routing.AgreementKIDs) != 1 || len(routing.AuthenticationKIDs) != 0 || id.DID() != own.DID || !id.Owns(routing.DID) {
		t.Fatalf("routing DID: %+v, primary %s", routing, id.DID())
	}

	// A mediated DID: the routing key in its service.
	mediated, err := id.NewPeerDID(ctx, agent.PeerDIDSpec{
		Services: []did.Service{agent.DIDCommService("#didcomm", "https://mediator.example", routing.AgreementKIDs[0])}})
	if err != nil {
		t.Fatal(err)
	}
	mdoc, _ := did.ResolvePeer2(mediated.DID)
	if s := mdoc.DIDCommServices(); len(s) != 1 || len(s[0].ServiceEndpoint.RoutingKeys) != 1 || s[0].ServiceEndpoint.RoutingKeys[0] != routing.AgreementKIDs[0] {
		t.Fatalf("mediated DID services: %+v", s)
	}
}

// DIDCommService gives an empty, not a nil, routing key list, so that DIDs
// created before and after it was introduced are built the same.
func TestDIDCommServiceRoutingKeysNotNil(t *testing.T) {
	s := agent.DIDCommService("#didcomm", "https://a.example")
	if s.ServiceEndpoint.RoutingKeys == nil || len(s.ServiceEndpoint.RoutingKeys) != 0 || s.Type != did.ServiceTypeDIDCommMessaging ||
		len(s.ServiceEndpoint.Accept) != 1 || s.ServiceEndpoint.Accept[0] != "didcomm/v2" {
		t.Fatalf("%+v", s)
	}
}
