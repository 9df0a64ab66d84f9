package privado

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/iden3auth"
)

// Paths of the links the service makes (the seed's).
const (
	// ConsentPath: GET shows the consent page, POST decides; the token is
	// the query parameter "token".
	ConsentPath = "/v1/users/consent/"
	// InteractionsPath lists a user's interactions by token.
	InteractionsPath = "/v1/interactions/"
)

// Defaults of Config.
const (
	DefaultConsentTTL = 24 * time.Hour
	DefaultProofTTL   = time.Hour
	// DefaultMaxAttempts is the default of Config.MaxAttempts.
	DefaultMaxAttempts = 5
	// MaxNameLength bounds an exchange's name.
	MaxNameLength = 100
)

// User is what the service needs of a user account.
type User struct {
	ID, Email, Name, Reference string
}

// Users finds the user account an exchange names: by its id, or by the
// reference registered for it. A missing or disabled account is an error
// with agent.CodeNotFound.
type Users interface {
	LookupUser(ctx context.Context, ref string) (User, error)
	// UserByEmail finds the (not disabled) account of a mail address.
	UserByEmail(ctx context.Context, email string) (User, error)
}

// Limiter is a rate limiter by key (internal/ratelimit.Limiter).
type Limiter interface {
	Allow(key string) (bool, time.Duration)
}

// Verifier is the part of the iden3 verifier (iden3auth.Service) the
// service uses.
type Verifier interface {
	CreateIn(ctx context.Context, w *agent.Work, req iden3auth.CreateRequest) (iden3auth.Session, error)
	Recheck(ctx context.Context, id string, token []byte) (*iden3auth.Result, error)
	RequestURI(id string) string
	DeepLink(id string) string
	OnVerdict(h iden3auth.VerdictHook)
}

// Sealer seals the exchanges' HMAC secrets at rest (seal.Key).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Config configures a Service.
type Config struct {
	// Store holds the records and queues the mails and callbacks.
	Store agent.Store
	// Users finds user accounts; Verifier makes and checks the iden3
	// requests; Sealer seals the HMAC secrets.
	Users    Users
	Verifier Verifier
	Sealer   Sealer
	// BaseURL is the service's public base URL (links in the mails).
	BaseURL string
	// MailFrom is the sender address of the mails; AgentName names the
	// service in them (BaseURL by default).
	MailFrom, AgentName string
	// Template is the consent mail; DefaultTemplate when nil.
	Template *Template
	// ConsentTTL is how long a consent link works (24h); ProofTTL how
	// long the wallet has to answer after consent (1h).
	ConsentTTL, ProofTTL time.Duration
	// Callbacks is the callback URL policy.
	Callbacks CallbackPolicy
	// MaxAttempts is how many refused answers of the wallet fail an
	// interaction (5).
	MaxAttempts int
	// LoginLimit limits the login links mailed per address; nil: no limit.
	LoginLimit Limiter
	// RequestLimit limits the proof requests per exchange (each mails a
	// user); nil: no limit.
	RequestLimit Limiter
	// Chain is the iden3 chain ("blockchain:network") of the requests;
	// empty: the verifier's default.
	Chain string
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger logs what happens, never a token, key or secret.
	Logger *slog.Logger
}

// Service runs exchanges and interactions. It is safe for concurrent use.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New returns a Service and registers its verdict hook with the verifier.
func New(cfg Config) (*Service, error) {
	if cfg.Store.Records == nil || cfg.Store.Committer == nil {
		return nil, errors.New("privado: no store")
	}
	if cfg.Users == nil || cfg.Verifier == nil || cfg.Sealer == nil {
		return nil, errors.New("privado: user accounts, the iden3 verifier and a sealing key are required")
	}
	if cfg.BaseURL == "" || cfg.MailFrom == "" {
		return nil, errors.New("privado: the public base URL and the mail sender address are required")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.AgentName == "" {
		cfg.AgentName = cfg.BaseURL
	}
	if cfg.Template == nil {
		t, err := ParseTemplate("")
		if err != nil {
			return nil, err
		}
		cfg.Template = t
	}
	if cfg.ConsentTTL <= 0 {
		cfg.ConsentTTL = DefaultConsentTTL
	}
	if cfg.ProofTTL <= 0 {
		cfg.ProofTTL = DefaultProofTTL
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Service{cfg: cfg, log: log}
	cfg.Verifier.OnVerdict(s.onVerdict)
	return s, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// Errors.
var (
	// ErrUnauthorized: no API key, or not one of an active exchange (401).
	ErrUnauthorized = agent.Errorf(agent.CodeForbidden+".unauthorized", "send the exchange's API key as Authorization: Bearer <key> or x-api-key")
	// ErrTokenGone: the consent token is unknown or expired (410).
	ErrTokenGone     = agent.Errorf(agent.CodeGone, "this link or token is not valid: it has expired or never existed")
	errNoExchange    = agent.Errorf(agent.CodeNotFound, "exchange not found")
	errNoInteraction = agent.Errorf(agent.CodeNotFound, "interaction not found")
)

// ExchangeRequest is what an operator registers.
type ExchangeRequest struct {
	Name              string
	CallbackAllowList []string
	ProofTemplate     map[string]any
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > MaxNameLength {
		return "", agent.Errorf(agent.CodeMsg, "name: required, at most %d characters", MaxNameLength)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", agent.Errorf(agent.CodeMsg, "name: only printable characters")
		}
	}
	return name, nil
}

func secretAAD(id string) []byte { return []byte("privado-exchange:" + id) }

// CreateExchange registers an exchange and returns its credentials, the
// only time they are shown.
func (s *Service) CreateExchange(ctx context.Context, req ExchangeRequest) (Credentials, error) {
	name, err := checkName(req.Name)
	if err != nil {
		return Credentials{}, err
	}
	allow, err := CheckAllowList(req.CallbackAllowList)
	if err != nil {
		return Credentials{}, err
	}
	if req.ProofTemplate != nil {
		if err := CheckQuery(req.ProofTemplate); err != nil {
			return Credentials{}, agent.Errorf(agent.CodeMsg, "proof_template: %s", strings.TrimPrefix(agent.ErrorComment(err), "query"))
		}
	}
	now := s.now()
	ex := Exchange{ID: newExchangeID(), Name: name, CallbackAllowList: allow, ProofTemplate: req.ProofTemplate,
		State: ExchangeActive, Created: now, Updated: now, KeysRotated: now}
	creds, err := s.newKeys(&ex)
	if err != nil {
		return Credentials{}, err
	}
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		if err := w.PutJSON(KindAPIKey, ex.KeyHash, &keyIndex{ExchangeID: ex.ID}); err != nil {
			return err
		}
		return w.PutJSON(KindExchange, ex.ID, &ex)
	})
	if err != nil {
		return Credentials{}, err
	}
	s.log.InfoContext(ctx, "privado: exchange registered", "exchange", ex.ID, "name", ex.Name)
	return creds, nil
}

// newKeys gives ex a fresh API key and HMAC secret.
func (s *Service) newKeys(ex *Exchange) (Credentials, error) {
	key, secret := newSecret(), newSecret()
	sealed, err := s.cfg.Sealer.Seal([]byte(secret), secretAAD(ex.ID))
	if err != nil {
		return Credentials{}, fmt.Errorf("privado: sealing the secret: %w", err)
	}
	ex.KeyHash, ex.SealedSecret = hashKey(key), sealed
	return Credentials{ID: ex.ID, APIKey: key, HMACSecret: secret}, nil
}

func (s *Service) loadExchange(ctx context.Context, id string) (*Exchange, error) {
	if !validHexID(id) {
		return nil, errNoExchange
	}
	b, err := s.cfg.Store.Records.Get(ctx, KindExchange, id)
	if isNotFound(err) {
		return nil, errNoExchange
	}
	if err != nil {
		return nil, err
	}
	var ex Exchange
	if err := json.Unmarshal(b, &ex); err != nil {
		return nil, fmt.Errorf("privado: exchange %s is corrupt: %w", id, err)
	}
	return &ex, nil
}

// Exchange describes exchange id.
func (s *Service) Exchange(ctx context.Context, id string) (ExchangeView, error) {
	ex, err := s.loadExchange(ctx, id)
	if err != nil {
		return ExchangeView{}, err
	}
	return ex.view(), nil
}

// Exchanges lists exchanges in id order after the id after.
func (s *Service) Exchanges(ctx context.Context, after string, limit int) ([]ExchangeView, error) {
	recs, err := s.cfg.Store.Records.List(ctx, KindExchange, after, limit)
	if err != nil {
		return nil, err
	}
	out := []ExchangeView{}
	for _, r := range recs {
		var ex Exchange
		if json.Unmarshal(r.Value, &ex) == nil {
			out = append(out, ex.view())
		}
	}
	return out, nil
}

// updateExchange changes exchange id in one unit of work.
func (s *Service) updateExchange(ctx context.Context, id string, fn func(w *agent.Work, ex *Exchange) error) (*Exchange, error) {
	if !validHexID(id) {
		return nil, errNoExchange
	}
	var out Exchange
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		var ex Exchange
		if err := getIn(ctx, w, KindExchange, id, &ex); isNotFound(err) {
			return errNoExchange
		} else if err != nil {
			return err
		}
		if err := fn(w, &ex); err != nil {
			return err
		}
		ex.Updated = s.now()
		out = ex
		return w.PutJSON(KindExchange, id, &ex)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateKeys gives exchange id a new API key and HMAC secret (shown once);
// the old key stops working at once, and callbacks not yet delivered are
// signed with the new secret.
func (s *Service) RotateKeys(ctx context.Context, id string) (Credentials, error) {
	var creds Credentials
	_, err := s.updateExchange(ctx, id, func(w *agent.Work, ex *Exchange) error {
		if ex.State != ExchangeActive {
			return agent.Errorf(agent.CodeConflict, "exchange %s is disabled", id)
		}
		w.Delete(KindAPIKey, ex.KeyHash)
		c, err := s.newKeys(ex)
		if err != nil {
			return err
		}
		creds, ex.KeysRotated = c, s.now()
		return w.PutJSON(KindAPIKey, ex.KeyHash, &keyIndex{ExchangeID: ex.ID})
	})
	if err != nil {
		return Credentials{}, err
	}
	s.log.InfoContext(ctx, "privado: exchange keys rotated", "exchange", id)
	return creds, nil
}

// DisableExchange disables exchange id (final): its key no longer works.
func (s *Service) DisableExchange(ctx context.Context, id string) (ExchangeView, error) {
	ex, err := s.updateExchange(ctx, id, func(w *agent.Work, ex *Exchange) error {
		if ex.State == ExchangeDisabled {
			return nil
		}
		ex.State = ExchangeDisabled
		w.Delete(KindAPIKey, ex.KeyHash)
		return nil
	})
	if err != nil {
		return ExchangeView{}, err
	}
	s.log.InfoContext(ctx, "privado: exchange disabled", "exchange", id)
	return ex.view(), nil
}

// Authenticate returns the active exchange whose API key this is.
func (s *Service) Authenticate(ctx context.Context, apiKey string) (ExchangeView, error) {
	if !validSecret(apiKey) {
		return ExchangeView{}, ErrUnauthorized
	}
	b, err := s.cfg.Store.Records.Get(ctx, KindAPIKey, hashKey(apiKey))
	if isNotFound(err) {
		return ExchangeView{}, ErrUnauthorized
	}
	if err != nil {
		return ExchangeView{}, err
	}
	var ix keyIndex
	if err := json.Unmarshal(b, &ix); err != nil {
		return ExchangeView{}, err
	}
	ex, err := s.loadExchange(ctx, ix.ExchangeID)
	if err != nil || ex.State != ExchangeActive || ex.KeyHash != hashKey(apiKey) {
		return ExchangeView{}, ErrUnauthorized
	}
	return ex.view(), nil
}

// Secret opens exchange id's HMAC secret (for signing its callbacks).
func (s *Service) Secret(ctx context.Context, id string) ([]byte, error) {
	ex, err := s.loadExchange(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.cfg.Sealer.Open(ex.SealedSecret, secretAAD(ex.ID))
}
