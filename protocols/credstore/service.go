package credstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
	"github.com/agentd/agentd/internal/netguard"
	"github.com/agentd/agentd/protocols/internal/listing"
	"github.com/agentd/agentd/w3cvc"
)

// Sealer seals secrets at rest (seal.Key, the store's Sealer).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Config is what a Service needs.
type Config struct {
	Store  agent.Store
	Sealer Sealer
	// IssuerDID returns the agent's DID, the issuer id of the schemas and
	// credential definitions it creates.
	IssuerDID func() string
	// Dir, when set, is a directory of AnonCreds objects (*.json, see
	// ParseObject), read once by New.
	Dir string
	// Web enables resolving ids that are https URLs or did:web DID URLs.
	Web bool
	// WebClient makes those requests; nil means a client that connects
	// only to public addresses (unless WebAllowPrivate), without proxy.
	WebClient       *http.Client
	WebAllowPrivate bool
	// WebTimeout bounds one fetch (default 5 s), WebMaxBytes an object's
	// size (default 1 MiB), WebCacheTTL how long a fetched object is kept
	// (default 1 h).
	WebTimeout  time.Duration
	WebMaxBytes int64
	WebCacheTTL time.Duration
	// CredDefOptions are handed to anoncreds.NewCredentialDefinitionContext
	// (tests reuse stored primes; the zero value draws fresh safe primes).
	CredDefOptions anoncreds.CredentialDefinitionConfig
	Now            func() time.Time
	Logger         *slog.Logger
}

// Service is the credential store. It implements aip.Credentials.
type Service struct {
	cfg Config
	log *slog.Logger
	// files are the objects of Config.Dir, by id.
	files map[string]Object

	mu  sync.Mutex
	web map[string]webEntry
}

var _ aip.Credentials = (*Service)(nil)

// New returns a Service, reading Config.Dir when set.
func New(cfg Config) (*Service, error) {
	if cfg.Store.Records == nil || cfg.Store.Committer == nil {
		return nil, errors.New("credstore: a store is required")
	}
	if cfg.Sealer == nil {
		return nil, errors.New("credstore: a sealer is required (link secret and private keys are sealed at rest)")
	}
	if cfg.IssuerDID == nil {
		return nil, errors.New("credstore: IssuerDID is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.WebTimeout <= 0 {
		cfg.WebTimeout = 5 * time.Second
	}
	if cfg.WebMaxBytes <= 0 {
		cfg.WebMaxBytes = 1 << 20
	}
	if cfg.WebCacheTTL <= 0 {
		cfg.WebCacheTTL = time.Hour
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("component", "credstore"), web: map[string]webEntry{}}
	if cfg.Dir != "" {
		files, err := readDir(cfg.Dir)
		if err != nil {
			return nil, err
		}
		s.files = files
	}
	if cfg.Web && cfg.WebClient == nil {
		s.cfg.WebClient = netguard.Policy{AllowPrivate: cfg.WebAllowPrivate}.Client(cfg.WebTimeout)
	}
	return s, nil
}

// Put stages a new held credential in w: c.Format says which. A W3C
// credential is c.CredentialJSON (the JSON-LD document or the compact JWT),
// parsed (not verified: the caller has) for its format, issuer and types;
// raw is nil. An AnonCreds credential is raw, the processed credential
// JSON; its attributes, schema and credential definition are taken from it.
// c.ID and c.Created are set when empty.
func (s *Service) Put(w *agent.Work, c *aip.Credential, raw []byte) error {
	rec := heldRecord{Credential: *c}
	switch c.Format {
	case aip.FormatW3C:
		if c.CredentialJSON == "" {
			return agent.Errorf(agent.CodeMsg, "credential: a W3C credential needs its JSON")
		}
		vc, err := w3cvc.ParseCredential([]byte(c.CredentialJSON))
		if err != nil {
			return agent.Wrap(agent.CodeMsg, err, "credential: not a W3C credential: "+w3cvc.ReasonOf(err))
		}
		rec.W3CFormat, rec.Issuer, rec.Types = vc.Format, vc.Issuer, vc.Types
		rec.Attributes, rec.CredDefID, rec.SchemaID = nil, "", ""
	case aip.FormatAnoncreds:
		ac, err := anoncreds.ParseCredential(raw)
		if err != nil {
			return agent.Wrap(agent.CodeMsg, err, "credential: not an AnonCreds credential")
		}
		rec.CredDefID, rec.SchemaID, rec.Raw = ac.CredDefID, ac.SchemaID, json.RawMessage(raw)
		rec.Attributes = attributesOf(ac)
		rec.CredentialJSON, rec.W3CFormat = "", ""
	default:
		return agent.Errorf(agent.CodeMsg, "credential: unknown format %q", c.Format)
	}
	if rec.ID == "" {
		rec.ID = agent.NewID()
	}
	if rec.Created.IsZero() {
		rec.Created = s.cfg.Now().UTC()
	}
	key := listing.Key(rec.Created, rec.ID)
	w.Put(KindCredNewest, key, nil)
	w.Put(KindCredByFormat, listing.Prefix(string(rec.Format))+key, nil)
	if rec.CredDefID != "" {
		w.Put(KindCredByDef, listing.Prefix(rec.CredDefID)+key, nil)
	}
	if err := w.PutJSON(KindCredential, rec.ID, &rec); err != nil {
		return err
	}
	c.ID, c.Created = rec.ID, rec.Created
	c.W3CFormat, c.Attributes, c.CredDefID, c.SchemaID = rec.W3CFormat, rec.Attributes, rec.CredDefID, rec.SchemaID
	return nil
}

// attributesOf lists an AnonCreds credential's raw values, by name.
func attributesOf(c *anoncreds.Credential) []aip.Attribute {
	out := make([]aip.Attribute, 0, len(c.Values))
	for name, v := range c.Values {
		out = append(out, aip.Attribute{Name: name, Value: v.Raw})
	}
	slices.SortFunc(out, func(a, b aip.Attribute) int { return cmpString(a.Name, b.Name) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Credential returns a held credential, or an error wrapping agent.ErrNotFound.
func (s *Service) Credential(ctx context.Context, id string) (*aip.Credential, error) {
	rec, err := s.held(ctx, id)
	if err != nil {
		return nil, err
	}
	return &rec.Credential, nil
}

func (s *Service) held(ctx context.Context, id string) (*heldRecord, error) {
	var rec heldRecord
	if err := readJSON(ctx, s.cfg.Store.Records, KindCredential, id, &rec); err != nil {
		if isNotFound(err) {
			return nil, notFound("credential", id)
		}
		return nil, err
	}
	return &rec, nil
}

// Raw returns the AnonCreds credential JSON of a held AnonCreds credential.
func (s *Service) Raw(ctx context.Context, id string) ([]byte, error) {
	rec, err := s.held(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.Format != aip.FormatAnoncreds {
		return nil, agent.Errorf(agent.CodeMsg, "credential %s is not an AnonCreds credential", clip(id, 60))
	}
	return rec.Raw, nil
}

// Credentials lists held credentials newest first. Formats and CredDefIDs
// are each "any of", and AND-ed: a credential definition filter selects
// AnonCreds credentials only.
func (s *Service) Credentials(ctx context.Context, p aip.Page, f aip.CredentialFilter) ([]*aip.Credential, string, error) {
	kind, prefixes := KindCredNewest, []string(nil)
	switch {
	case len(f.CredDefIDs) > 0:
		if len(f.Formats) > 0 && !slices.Contains(f.Formats, aip.FormatAnoncreds) {
			return []*aip.Credential{}, "", nil
		}
		kind = KindCredByDef
		for _, d := range f.CredDefIDs {
			prefixes = append(prefixes, listing.Prefix(d))
		}
	case len(f.Formats) > 0:
		kind = KindCredByFormat
		for _, fm := range f.Formats {
			if fm != aip.FormatAnoncreds && fm != aip.FormatW3C {
				return nil, "", agent.Errorf(agent.CodeMsg, "filter.formats: unknown format %q", fm)
			}
			prefixes = append(prefixes, listing.Prefix(string(fm)))
		}
	}
	ids, next, err := listing.Page(ctx, s.cfg.Store.Records, kind, prefixes, p.NextToken, p.Clamp())
	if err != nil {
		return nil, "", err
	}
	out := make([]*aip.Credential, 0, len(ids))
	for _, id := range ids {
		rec, err := s.held(ctx, id)
		if isNotFound(err) {
			continue // deleted between the index read and this one
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, &rec.Credential)
	}
	return out, next, nil
}

// Each calls fn with the held credentials of format f, newest first, until
// fn returns false, reading the by-format index.
func (s *Service) Each(ctx context.Context, f aip.CredentialFormat, fn func(c *aip.Credential) bool) error {
	token := ""
	for {
		ids, next, err := listing.Page(ctx, s.cfg.Store.Records, KindCredByFormat, []string{listing.Prefix(string(f))}, token, aip.MaxLimit)
		if err != nil {
			return err
		}
		for _, id := range ids {
			rec, err := s.held(ctx, id)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			if !fn(&rec.Credential) {
				return nil
			}
		}
		if next == "" {
			return nil
		}
		token = next
	}
}

// DeleteCredential deletes a held credential and its index entries.
func (s *Service) DeleteCredential(ctx context.Context, id string) error {
	return s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		var rec heldRecord
		if err := getJSON(ctx, w, KindCredential, id, &rec); err != nil {
			if isNotFound(err) {
				return notFound("credential", id)
			}
			return err
		}
		key := listing.Key(rec.Created, rec.ID)
		w.Delete(KindCredNewest, key)
		w.Delete(KindCredByFormat, listing.Prefix(string(rec.Format))+key)
		if rec.CredDefID != "" {
			w.Delete(KindCredByDef, listing.Prefix(rec.CredDefID)+key)
		}
		w.Delete(KindCredential, id)
		return nil
	})
}

// linkSecretID is the id of the one link secret record.
const linkSecretID = "default"

// LinkSecret returns the holder's link secret, creating and sealing it on
// first use (once: concurrent first uses agree on one).
func (s *Service) LinkSecret(ctx context.Context) (anoncreds.LinkSecret, error) {
	var ls anoncreds.LinkSecret
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		var rec linkSecretRecord
		err := getJSON(ctx, w, KindLinkSecret, linkSecretID, &rec)
		if err == nil {
			plain, err := s.cfg.Sealer.Open(rec.Sealed, linkSecretAAD)
			if err != nil {
				return fmt.Errorf("credstore: the link secret cannot be unsealed (wrong master key?)")
			}
			ls, err = anoncreds.LinkSecretFromDecimal(string(plain))
			return err
		}
		if !isNotFound(err) {
			return err
		}
		if ls, err = anoncreds.NewLinkSecret(); err != nil {
			return err
		}
		sealed, err := s.cfg.Sealer.Seal([]byte(ls.Decimal()), linkSecretAAD)
		if err != nil {
			return fmt.Errorf("credstore: sealing the link secret: %w", err)
		}
		return w.PutJSON(KindLinkSecret, linkSecretID, linkSecretRecord{Sealed: sealed, Created: s.cfg.Now().UTC()})
	})
	return ls, err
}
