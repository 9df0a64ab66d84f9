package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
)

// identityRecord is the agent's persisted identity: its current DID, the
// DIDs it had before (still answered, so peers that know an old DID keep
// working) and the key ids of the current one.
type identityRecord struct {
	DID          string   `json:"did"`
	Endpoint     string   `json:"endpoint"`
	Email        string   `json:"email,omitempty"`
	Curves       []string `json:"curves"`
	AgreementKID []string `json:"agreementKids"`
	AuthKID      []string `json:"authKids"`
	Previous     []string `json:"previous,omitempty"`
}

const (
	recordKind = "agent"
	recordID   = "identity"
)

// loadIdentity returns the agent's did:peer:2 identity, creating it on first
// start. A changed endpoint, mail address or key agreement curves give a new
// DID; the old ones are kept as previous DIDs. A mail address (email) adds a
// second DIDCommMessaging service with the uri mailto:email.
func loadIdentity(ctx context.Context, records agent.Records, ks keys.Store, endpoint, email string, curves []string, log *slog.Logger) (*identityRecord, error) {
	var rec identityRecord
	raw, err := records.Get(ctx, recordKind, recordID)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, fmt.Errorf("identity record is corrupt: %w", err)
		}
		if rec.Endpoint == endpoint && rec.Email == email && slices.Equal(rec.Curves, curves) {
			return &rec, nil
		}
		log.Warn("endpoint, mail address or key agreement curves changed: creating a new DID; the old one stays answered",
			"old_did", rec.DID, "old_endpoint", rec.Endpoint, "new_endpoint", endpoint, "old_email", rec.Email, "new_email", email)
	case errors.Is(err, agent.ErrNotFound):
	default:
		return nil, fmt.Errorf("reading identity: %w", err)
	}
	next, err := newIdentity(ctx, ks, endpoint, email, curves)
	if err != nil {
		return nil, err
	}
	if rec.DID != "" {
		next.Previous = append([]string{rec.DID}, rec.Previous...)
	}
	b, _ := json.Marshal(next)
	if err := records.Put(ctx, recordKind, recordID, b); err != nil {
		return nil, fmt.Errorf("saving identity: %w", err)
	}
	log.Info("created the agent's DID", "did", next.DID)
	return next, nil
}

// newIdentity generates the keys, derives the did:peer:2 and stores the
// private keys under their final DID URLs.
func newIdentity(ctx context.Context, ks keys.Store, endpoint, email string, curves []string) (*identityRecord, error) {
	var agreement []keys.PrivateKey
	for _, c := range curves {
		k, err := keys.Generate(keys.Curve(c), "")
		if err != nil {
			return nil, err
		}
		agreement = append(agreement, k)
	}
	auth, err := keys.Generate(keys.Ed25519, "")
	if err != nil {
		return nil, err
	}
	var agreementPub []keys.PublicKey
	for _, k := range agreement {
		agreementPub = append(agreementPub, k.PublicKey)
	}
	svc := did.Service{ID: "#didcomm", Type: did.ServiceTypeDIDCommMessaging, ServiceEndpoint: did.ServiceEndpoint{
		URI: endpoint, Accept: []string{"didcomm/v2"}, RoutingKeys: []string{},
	}}
	services := []did.Service{svc}
	if email != "" {
		services = append(services, did.Service{ID: "#didcomm-1", Type: did.ServiceTypeDIDCommMessaging, ServiceEndpoint: did.ServiceEndpoint{
			URI: "mailto:" + email, Accept: []string{"didcomm/v2"}, RoutingKeys: []string{},
		}})
	}
	id, err := did.NewPeer2(agreementPub, []keys.PublicKey{auth.PublicKey}, services)
	if err != nil {
		return nil, fmt.Errorf("creating did:peer:2: %w", err)
	}
	doc, err := did.ResolvePeer2(id)
	if err != nil {
		return nil, fmt.Errorf("resolving our own did:peer:2: %w", err)
	}
	rec := &identityRecord{DID: id, Endpoint: endpoint, Email: email, Curves: curves}
	// Give each private key the kid its public key has in the resolved document.
	assign := func(priv keys.PrivateKey, refs []keys.PublicKey) (keys.PrivateKey, error) {
		for _, p := range refs {
			if p.Equal(priv.PublicKey) {
				priv.ID = p.ID
				return priv, nil
			}
		}
		return priv, errors.New("key missing from our own DID document")
	}
	ka, err := doc.KeyAgreement()
	if err != nil {
		return nil, err
	}
	au, err := doc.Authentication()
	if err != nil {
		return nil, err
	}
	for _, k := range agreement {
		k, err := assign(k, ka)
		if err != nil {
			return nil, err
		}
		if err := ks.Put(ctx, k); err != nil {
			return nil, fmt.Errorf("storing key: %w", err)
		}
		rec.AgreementKID = append(rec.AgreementKID, k.ID)
	}
	a, err := assign(auth, au)
	if err != nil {
		return nil, err
	}
	if err := ks.Put(ctx, a); err != nil {
		return nil, fmt.Errorf("storing key: %w", err)
	}
	rec.AuthKID = []string{a.ID}
	return rec, nil
}
