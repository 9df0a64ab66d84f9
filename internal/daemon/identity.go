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
	"github.com/agentd/agentd/internal/config"
)

// identityRecord is the agent's persisted identity: its current DID, the
// DIDs it had before (still answered, so peers that know an old DID keep
// working) and the key ids of the current one.
type identityRecord struct {
	DID          string   `json:"did"`
	Endpoint     string   `json:"endpoint"`
	WebSocket    string   `json:"websocket,omitempty"`
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
// start, and makes id answer for it and for its previous DIDs (the current
// one first, so that it is the primary DID). A changed endpoint, WebSocket
// endpoint, mail address or key agreement curves give a new DID; the old
// ones are kept as previous DIDs. A WebSocket endpoint (websocket, the
// endpoint's ws(s) URL; empty: none) adds a DIDCommMessaging service with
// that uri, and a mail address (email) one with the uri mailto:email. A DID
// created before the WebSocket service existed therefore gives way to a new
// one with it on the first start that publishes it, and keeps being
// answered.
//
// Instances starting at once on one shared database both may create a DID:
// the record is saved only if it is still what was read, and the instance
// that loses reads the winner's.
func loadIdentity(ctx context.Context, store agent.Store, id *agent.Identity, endpoint, websocket, email string, curves []string, log *slog.Logger) (*identityRecord, error) {
	for attempt := 0; ; attempt++ {
		rec, err := loadIdentityOnce(ctx, store, id, endpoint, websocket, email, curves, log)
		if errors.Is(err, agent.ErrConflict) && attempt < 3 {
			continue
		}
		return rec, err
	}
}

func loadIdentityOnce(ctx context.Context, store agent.Store, id *agent.Identity, endpoint, websocket, email string, curves []string, log *slog.Logger) (*identityRecord, error) {
	records := store.Records
	var rec identityRecord
	raw, err := records.Get(ctx, recordKind, recordID)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, fmt.Errorf("identity record is corrupt: %w", err)
		}
		if rec.Endpoint == endpoint && rec.WebSocket == websocket && rec.Email == email && slices.Equal(rec.Curves, curves) {
			id.AddDID(rec.DID)
			addDIDs(id, rec.Previous)
			return &rec, nil
		}
		log.Warn("endpoint, WebSocket service, mail address or key agreement curves changed: creating a new DID; the old one stays answered",
			"old_did", rec.DID, "old_endpoint", rec.Endpoint, "new_endpoint", endpoint, "old_websocket", rec.WebSocket, "new_websocket", websocket,
			"old_email", rec.Email, "new_email", email)
	case errors.Is(err, agent.ErrNotFound):
	default:
		return nil, fmt.Errorf("reading identity: %w", err)
	}
	next, err := newIdentity(ctx, id, endpoint, websocket, email, curves)
	if err != nil {
		return nil, err
	}
	if rec.DID != "" {
		next.Previous = append([]string{rec.DID}, rec.Previous...)
	}
	addDIDs(id, next.Previous)
	b, _ := json.Marshal(next)
	if err := agent.PutIfUnchanged(ctx, store.Committer, records, recordKind, recordID, raw, b); err != nil {
		return nil, fmt.Errorf("saving identity: %w", err)
	}
	log.Info("created the agent's DID", "did", next.DID)
	return next, nil
}

// newIdentity creates the agent's own did:peer:2: one key agreement key per
// curve, an Ed25519 authentication key, and its DIDComm services: the
// http(s) endpoint first (what agents that pick the first service use),
// then the WebSocket and the mail ones when set.
func newIdentity(ctx context.Context, id *agent.Identity, endpoint, websocket, email string, curves []string) (*identityRecord, error) {
	spec := agent.PeerDIDSpec{Services: []did.Service{agent.DIDCommService("#didcomm", endpoint)}}
	for _, c := range curves {
		spec.Agreement = append(spec.Agreement, keys.Curve(c))
	}
	if websocket != "" {
		spec.Services = append(spec.Services, agent.DIDCommService(agent.WebSocketServiceID, websocket))
	}
	if email != "" {
		spec.Services = append(spec.Services, agent.DIDCommService("#didcomm-1", "mailto:"+email))
	}
	p, err := id.NewPeerDID(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &identityRecord{DID: p.DID, Endpoint: endpoint, WebSocket: websocket, Email: email, Curves: curves,
		AgreementKID: p.AgreementKIDs, AuthKID: p.AuthenticationKIDs}, nil
}

// addDIDs makes id answer for dids as well.
func addDIDs(id *agent.Identity, dids []string) {
	for _, d := range dids {
		id.AddDID(d)
	}
}

// newResolver builds the DID resolver: did:peer and did:key always, did:web
// when enabled (public addresses only unless did.web_allow_private), behind
// a cache that shares one resolution per DID, remembers failures for
// did.negative_cache_ttl and caps resolutions in progress.
func newResolver(cfg config.Config) did.Resolver {
	var web *did.WebResolver
	if cfg.DID.WebResolve {
		web = &did.WebResolver{Timeout: cfg.DID.WebTimeout, AllowPrivate: cfg.DID.WebAllowPrivate}
	}
	reg := did.NewDefaultRegistry(nil, web)
	if !cfg.DID.WebResolve {
		reg.Register("web", nil)
	}
	negative := cfg.DID.NegativeCacheTTL
	if negative == 0 {
		negative = -1 // config: 0 means failures are not remembered
	}
	return did.NewCache(reg, did.CacheOptions{TTL: cfg.DID.CacheTTL, MaxEntries: cfg.DID.CacheSize,
		NegativeTTL: negative, Timeout: cfg.DID.WebTimeout, MaxConcurrent: cfg.DID.MaxConcurrentResolutions})
}
