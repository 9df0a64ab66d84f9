package mediation

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/protocols/internal/fakes"
)

// The routing DID is kept until the endpoint or its WebSocket URL changes;
// then a new one is made and the old one stays answered.
func TestLoadRoutingDID(t *testing.T) {
	ctx := context.Background()
	records := new(fakes.Records)
	id := agent.NewIdentity(&keys.MemoryStore{})
	id.AddDID("did:example:own")
	a, err := LoadRoutingDID(ctx, records, id, "https://a.example/didcomm", "")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := did.ResolvePeer2(a.DID)
	if err != nil {
		t.Fatal(err)
	}
	ka, _ := doc.KeyAgreement()
	au, _ := doc.Authentication()
	svc := doc.DIDCommServices()
	if len(ka) != 1 || ka[0].ID != a.KID || ka[0].Curve != keys.X25519 || len(au) != 0 || len(svc) != 1 || svc[0].ServiceEndpoint.URI != "https://a.example/didcomm" {
		t.Fatalf("routing DID document: %+v", doc)
	}
	if _, err := id.PrivateKey(ctx, a.KID); err != nil || !id.Owns(a.DID) || id.DID() != "did:example:own" {
		t.Fatalf("identity: key %v, owns %v, primary %s", err, id.Owns(a.DID), id.DID())
	}

	again := agent.NewIdentity(&keys.MemoryStore{})
	b, err := LoadRoutingDID(ctx, records, again, "https://a.example/didcomm", "")
	if err != nil || b.DID != a.DID || !again.Owns(a.DID) {
		t.Fatalf("reloaded: %+v %v", b, err)
	}
	c, err := LoadRoutingDID(ctx, records, again, "https://b.example/didcomm", "")
	if err != nil || c.DID == a.DID || len(c.Previous) != 1 || c.Previous[0] != a.DID || !again.Owns(c.DID) || !again.Owns(a.DID) {
		t.Fatalf("new endpoint: %+v %v", c, err)
	}
	var stored RoutingRecord
	raw, _ := records.Get(ctx, "agent", "routing-did")
	if json.Unmarshal(raw, &stored) != nil || stored.DID != c.DID || stored.Endpoint != "https://b.example/didcomm" {
		t.Fatalf("stored %s", raw)
	}

	// Publishing the WebSocket URL: a new routing DID with both services,
	// the older ones still answered.
	third := agent.NewIdentity(&keys.MemoryStore{})
	w, err := LoadRoutingDID(ctx, records, third, "https://b.example/didcomm", "wss://b.example/didcomm")
	if err != nil || w.DID == c.DID || len(w.Previous) != 2 || w.Previous[0] != c.DID || !third.Owns(w.DID) || !third.Owns(c.DID) || !third.Owns(a.DID) {
		t.Fatalf("with the WebSocket service: %+v %v", w, err)
	}
	doc, err = did.ResolvePeer2(w.DID)
	if err != nil {
		t.Fatal(err)
	}
	svc = doc.DIDCommServices()
	if len(svc) != 2 || svc[0].ServiceEndpoint.URI != "https://b.example/didcomm" || svc[1].ServiceEndpoint.URI != "wss://b.example/didcomm" ||
		svc[1].ID != w.DID+agent.WebSocketServiceID || svc[1].ServiceEndpoint.Accept[0] != "didcomm/v2" {
		t.Fatalf("routing DID services %+v", svc)
	}
	if again, err := LoadRoutingDID(ctx, records, third, "https://b.example/didcomm", "wss://b.example/didcomm"); err != nil || again.DID != w.DID {
		t.Fatalf("reloaded with the WebSocket service: %+v %v", again, err)
	}
}

// NewClientLoop publishes a mediated DID registered with the same mediator
// for the same direct DID, and starts over (keeping the old DID answered)
// when either changed.
func TestNewClientLoopState(t *testing.T) {
	ctx := context.Background()
	records := new(fakes.Records)
	rec := ClientRecord{Invitation: "inv-1", MediatorDID: "did:example:mediator", ClientDID: "did:example:own",
		DID: "did:example:mediated", Registered: true, Previous: []string{"did:example:older"}}
	b, _ := json.Marshal(rec)
	records.Put(ctx, ClientRecordKind, ClientRecordID, b)

	cfg := func(id *agent.Identity, invitation string) ClientLoopConfig {
		return ClientLoopConfig{Client: Client{DID: "did:example:own", Mediator: "did:example:mediator"},
			InvitationID: invitation, Records: records, Identity: id}
	}
	id := agent.NewIdentity(&keys.MemoryStore{})
	id.AddDID("did:example:own")
	c, err := NewClientLoop(ctx, cfg(id, "inv-1"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MediatedDID() != "did:example:mediated" || id.DID() != "did:example:mediated" || !id.Owns("did:example:older") {
		t.Fatalf("same mediator: published %q, primary %s", c.MediatedDID(), id.DID())
	}

	id = agent.NewIdentity(&keys.MemoryStore{})
	id.AddDID("did:example:own")
	c, err = NewClientLoop(ctx, cfg(id, "inv-2"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MediatedDID() != "" || id.DID() != "did:example:own" || !id.Owns("did:example:mediated") {
		t.Fatalf("new invitation: published %q, primary %s", c.MediatedDID(), id.DID())
	}
	if c.rec.DID != "" || c.rec.Registered || len(c.rec.Previous) != 2 || c.rec.Previous[0] != "did:example:mediated" {
		t.Fatalf("new invitation: state %+v", c.rec)
	}
}
