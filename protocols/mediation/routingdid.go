package mediation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
)

// RoutingRecord is the mediator's routing DID: a did:peer:2 with one X25519
// key agreement key and the agent's DIDComm endpoint (and its WebSocket
// URL, when published), given to clients in mediate-grant. Forwards are
// anoncrypted to its key. A new endpoint or WebSocket URL gives a new
// routing DID; the old ones stay answered, so that DIDs routed through them
// keep working.
type RoutingRecord struct {
	DID       string   `json:"did"`
	KID       string   `json:"kid"`
	Endpoint  string   `json:"endpoint"`
	WebSocket string   `json:"websocket,omitempty"`
	Previous  []string `json:"previous,omitempty"`
}

// Where the RoutingRecord is kept in agent.Records.
const (
	RoutingRecordKind = "agent"
	RoutingRecordID   = "routing-did"
)

// RoutingIdentity is the part of agent.Identity LoadRoutingDID uses.
type RoutingIdentity interface {
	AddDID(did string)
	NewPeerDID(ctx context.Context, spec agent.PeerDIDSpec) (agent.PeerDID, error)
}

// LoadRoutingDID returns the routing DID for endpoint and websocket (the
// endpoint's ws(s) URL, published as a second DIDCommMessaging service;
// empty: none), creating it on first start and again when either changed,
// and makes id answer for it and for the previous ones.
func LoadRoutingDID(ctx context.Context, records agent.Records, id RoutingIdentity, endpoint, websocket string) (*RoutingRecord, error) {
	return LoadRoutingDIDIn(ctx, agent.Store{Records: records}, id, endpoint, websocket)
}

// LoadRoutingDIDIn is LoadRoutingDID saving through store's committer
// only if the record is still what it read, so that instances starting at
// once on one shared database agree on one routing DID: the one that loses
// reads the winner's.
func LoadRoutingDIDIn(ctx context.Context, store agent.Store, id RoutingIdentity, endpoint, websocket string) (*RoutingRecord, error) {
	for attempt := 0; ; attempt++ {
		rec, err := loadRoutingDID(ctx, store, id, endpoint, websocket)
		if errors.Is(err, agent.ErrConflict) && attempt < 3 {
			continue
		}
		return rec, err
	}
}

func loadRoutingDID(ctx context.Context, store agent.Store, id RoutingIdentity, endpoint, websocket string) (*RoutingRecord, error) {
	records := store.Records
	var rec RoutingRecord
	raw, err := records.Get(ctx, RoutingRecordKind, RoutingRecordID)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, fmt.Errorf("routing DID record is corrupt: %w", err)
		}
		if rec.Endpoint == endpoint && rec.WebSocket == websocket {
			id.AddDID(rec.DID)
			for _, p := range rec.Previous {
				id.AddDID(p)
			}
			return &rec, nil
		}
	case errors.Is(err, agent.ErrNotFound):
	default:
		return nil, err
	}
	services := []did.Service{agent.DIDCommService("#didcomm", endpoint)}
	if websocket != "" {
		services = append(services, agent.DIDCommService(agent.WebSocketServiceID, websocket))
	}
	p, err := id.NewPeerDID(ctx, agent.PeerDIDSpec{
		Agreement: []keys.Curve{keys.X25519}, NoAuthentication: true, Services: services,
	})
	if err != nil {
		return nil, err
	}
	if len(p.AgreementKIDs) != 1 {
		return nil, errors.New("routing DID has no key agreement key")
	}
	next := &RoutingRecord{DID: p.DID, KID: p.AgreementKIDs[0], Endpoint: endpoint, WebSocket: websocket}
	if rec.DID != "" {
		next.Previous = append([]string{rec.DID}, rec.Previous...)
	}
	for _, d := range next.Previous {
		id.AddDID(d)
	}
	b, _ := json.Marshal(next)
	if err := agent.PutIfUnchanged(ctx, store.Committer, records, RoutingRecordKind, RoutingRecordID, raw, b); err != nil {
		return nil, err
	}
	return next, nil
}
