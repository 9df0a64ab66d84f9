package issuecredential

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/protocols/credstore"
	"github.com/agentd/agentd/protocols/internal/listing"
	"github.com/agentd/agentd/w3cvc"
)

// ConnectionLookup finds connections (connections.Service implements it).
type ConnectionLookup interface {
	// ConnectionOf returns the connection of an inbound message's
	// authenticated sender DID, inside its unit of work; an error wrapping
	// agent.ErrNotFound when the sender has none.
	ConnectionOf(ctx context.Context, w *agent.Work, did string) (*aip.Connection, error)
	// Connection returns a connection by id.
	Connection(ctx context.Context, id string) (*aip.Connection, error)
}

// Publisher stages an event about a changed record in w (aipevents.Publisher).
type Publisher interface {
	Publish(w *agent.Work, topic string, record any) error
}

// Messenger packs a message for the outbox, for the caller's unit of work
// (agent.Messenger).
type Messenger interface {
	Outbound(ctx context.Context, msg agent.Message) ([]*agent.OutboundMessage, error)
}

// CredentialVerifier verifies a W3C credential's signature and validity
// (*w3cvc.Verifier).
type CredentialVerifier interface {
	VerifyCredential(ctx context.Context, raw []byte) (*w3cvc.Credential, error)
}

// Sealer seals secrets at rest (seal.Key).
type Sealer = credstore.Sealer

// Config is what a Service needs.
type Config struct {
	Store       agent.Store
	Messenger   Messenger
	Connections ConnectionLookup
	Credentials *credstore.Service
	Events      Publisher
	Sealer      Sealer
	// Verifier verifies the W3C credentials the agent receives.
	Verifier CredentialVerifier
	// Signer returns the signer of the W3C credentials the agent issues
	// (w3cvc.KeySigner over the agent's DID key); nil: the agent does not
	// issue W3C credentials.
	Signer func(ctx context.Context) (w3cvc.Signer, error)
	Now    func() time.Time
	Logger *slog.Logger
}

// Service runs Issue Credential 3.0 in both roles. It implements
// aip.CredentialExchanges.
type Service struct {
	cfg Config
	log *slog.Logger
}

var _ aip.CredentialExchanges = (*Service)(nil)

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store.Records == nil || cfg.Store.Committer == nil || cfg.Messenger == nil || cfg.Connections == nil ||
		cfg.Credentials == nil || cfg.Sealer == nil || cfg.Verifier == nil {
		return nil, errors.New("issuecredential: store, messenger, connections, credential store, sealer and verifier are required")
	}
	if cfg.Events == nil {
		cfg.Events = nopEvents{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("protocol", PIURI)}, nil
}

type nopEvents struct{}

func (nopEvents) Publish(*agent.Work, string, any) error { return nil }

// Protocol describes Issue Credential 3.0 for the router.
func (s *Service) Protocol() agent.Protocol {
	return agent.Protocol{PIURI: PIURI, Roles: []string{"issuer", "holder"}, Handler: s}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// CredentialExchange returns an exchange.
func (s *Service) CredentialExchange(ctx context.Context, id string) (*aip.CredentialExchange, error) {
	e, err := load(ctx, s.cfg.Store.New(), id)
	if err != nil {
		return nil, err
	}
	return e.view(), nil
}

// CredentialExchanges lists exchanges newest first. States and
// ConnectionIDs are "any of"; the fields are AND-ed; every combination is
// read through its own index.
func (s *Service) CredentialExchanges(ctx context.Context, p aip.Page, f aip.CredentialExchangeFilter) ([]*aip.CredentialExchange, string, error) {
	combo := ""
	prefixes := []string{""}
	cross := func(vals []string) {
		var out []string
		for _, p := range prefixes {
			for _, v := range vals {
				out = append(out, p+listing.Prefix(v))
			}
		}
		prefixes = out
	}
	if f.Role != "" {
		if f.Role != aip.CredExIssuer && f.Role != aip.CredExHolder {
			return nil, "", agent.Errorf(agent.CodeMsg, "filter.role: unknown role %q", f.Role)
		}
		combo += "r"
		cross([]string{string(f.Role)})
	}
	if len(f.States) > 0 {
		combo += "s"
		var v []string
		for _, st := range f.States {
			v = append(v, string(st))
		}
		cross(v)
	}
	if len(f.ConnectionIDs) > 0 {
		combo += "c"
		cross(f.ConnectionIDs)
	}
	if len(prefixes) > 256 {
		return nil, "", agent.Errorf(agent.CodeMsg, "filter: too many combinations of states and connections (at most 256)")
	}
	ids, next, err := listing.Page(ctx, s.cfg.Store.Records, KindIndex+combo, prefixes, p.NextToken, p.Clamp())
	if err != nil {
		return nil, "", err
	}
	out := make([]*aip.CredentialExchange, 0, len(ids))
	w := s.cfg.Store.New()
	for _, id := range ids {
		e, err := load(ctx, w, id)
		if errors.Is(err, agent.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, e.view())
	}
	return out, next, nil
}
