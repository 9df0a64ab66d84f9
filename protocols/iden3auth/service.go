package iden3auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/iden3/go-circuits/v2"
	auth "github.com/iden3/go-iden3-auth/v2"
	"github.com/iden3/go-iden3-auth/v2/loaders"
	"github.com/iden3/go-iden3-auth/v2/pubsignals"
	"github.com/iden3/iden3comm/v2/packers"
	"github.com/iden3/iden3comm/v2/protocol"
	"github.com/piprate/json-gold/ld"
)

// Config configures a Service.
type Config struct {
	// Store holds the sessions and commits their changes.
	Store agent.Store
	// Chains are the chains the verifier reads, each with its verifier
	// DID; the first is the default of Create.
	Chains []Chain
	// Resolvers are the state resolvers by "blockchain:network"
	// (NewResolvers builds the production ones from Chains).
	Resolvers map[string]pubsignals.StateResolver
	// Documents loads JSON-LD schemas (schemas.Loader); nothing else is
	// ever fetched.
	Documents ld.DocumentLoader
	// PublicBaseURL is where wallets reach agentd (scheme://host[:port]):
	// the base of the callback URL and of request_uri.
	PublicBaseURL string
	// DefaultExpiry is a session's lifetime when Create gives none
	// (default 1h); MaxExpiry the longest allowed (default 30 days).
	DefaultExpiry, MaxExpiry time.Duration
	// ProofAge is the oldest credential proof accepted (its timestamp
	// signal); 0: the library's 24h.
	ProofAge time.Duration
	// StateTransitionDelay is how long a replaced issuer non-revocation
	// state stays acceptable; 0: the library's 1h.
	StateTransitionDelay time.Duration
	// Retention is how long a final session is kept after its last
	// change (Sweep deletes it then); 0 keeps sessions.
	Retention time.Duration
	// MaxConcurrent bounds the verifications running at once (each takes
	// a core for tens of milliseconds); an answer that finds no slot
	// within a few seconds is refused with agent.CodeBusy. Default
	// 2×GOMAXPROCS.
	MaxConcurrent int
	// WebhookEndpoint, when set, is the outbox endpoint every verdict is
	// posted to (a webhook+https:// URI served by transport/http.Webhook).
	WebhookEndpoint string
	// Now and NewID are the clock and the session-id generator (tests
	// inject them); defaults time.Now and a random UUID.
	Now   func() time.Time
	NewID func() string
	// Observe, when set, is told the result of every answer (verified,
	// refused, chain-unavailable, busy, not-answerable) and how long it
	// took (metrics).
	Observe func(result string, elapsed time.Duration)
	// Logger gets the verdicts (no tokens, no secrets).
	Logger *slog.Logger
}

// Service is the verifier: it creates sessions, serves their requests and
// verifies the answers.
type Service struct {
	cfg      Config
	hooks    []VerdictHook
	slots    chan struct{}
	verifier *auth.Verifier
	chains   map[string]Chain
	opts     []pubsignals.VerifyOpt
}

// Limits of what Create takes.
const (
	MaxScopes       = 10
	MaxReasonLen    = 500
	MaxMessageLen   = 1000
	MaxTokenBytes   = 1 << 20
	replayKeyPrefix = "iden3-response:"
	replayKeep      = 30 * 24 * time.Hour
)

// New builds the service and its go-iden3-auth verifier (verification
// keys: the library's embedded ones).
func New(cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = newUUID
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Observe == nil {
		cfg.Observe = func(string, time.Duration) {}
	}
	if cfg.DefaultExpiry <= 0 {
		cfg.DefaultExpiry = time.Hour
	}
	if cfg.MaxExpiry <= 0 {
		cfg.MaxExpiry = 30 * 24 * time.Hour
	}
	if cfg.Documents == nil {
		return nil, errors.New("iden3: a document loader is required (no schema is ever fetched otherwise)")
	}
	if len(cfg.Chains) == 0 {
		return nil, errors.New("iden3: at least one chain (iden3.resolvers) is required")
	}
	u, err := url.Parse(cfg.PublicBaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("iden3: public base URL %q is not an absolute http(s) URL", cfg.PublicBaseURL)
	}
	cfg.PublicBaseURL = strings.TrimRight(cfg.PublicBaseURL, "/")
	chains := map[string]Chain{}
	for _, c := range cfg.Chains {
		if err := checkVerifierDID(c.Key(), c.VerifierDID); err != nil {
			return nil, err
		}
		if _, ok := cfg.Resolvers[c.Key()]; !ok {
			return nil, fmt.Errorf("iden3: no state resolver for %s", c.Key())
		}
		chains[c.Key()] = c
	}
	v, err := auth.NewVerifier(loaders.NewEmbeddedKeyLoader(), cfg.Resolvers,
		auth.WithDocumentLoader(cfg.Documents), auth.WithDIDResolver(pkhResolver))
	if err != nil {
		return nil, fmt.Errorf("iden3: verifier: %w", err)
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 2 * runtime.GOMAXPROCS(0)
	}
	s := &Service{cfg: cfg, verifier: v, chains: chains, slots: make(chan struct{}, cfg.MaxConcurrent)}
	if cfg.ProofAge > 0 {
		s.opts = append(s.opts, pubsignals.WithAcceptedProofGenerationDelay(cfg.ProofAge))
	}
	if cfg.StateTransitionDelay > 0 {
		s.opts = append(s.opts, pubsignals.WithAcceptedStateTransitionDelay(cfg.StateTransitionDelay))
	}
	return s, nil
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Chains lists the configured chains' keys, the default first.
func (s *Service) Chains() []string {
	out := make([]string, 0, len(s.cfg.Chains))
	for _, c := range s.cfg.Chains {
		out = append(out, c.Key())
	}
	return out
}

// RequestURI is where the wallet fetches the request of session id.
func (s *Service) RequestURI(id string) string {
	return s.cfg.PublicBaseURL + "/iden3/requests/" + url.PathEscape(id)
}

// CallbackURL is where the wallet posts its answer to session id.
func (s *Service) CallbackURL(id string) string {
	return s.cfg.PublicBaseURL + "/iden3/callback?session=" + url.QueryEscape(id)
}

// DeepLink is the iden3comm:// link of session id, by request_uri.
func (s *Service) DeepLink(id string) string {
	return "iden3comm://?request_uri=" + url.QueryEscape(s.RequestURI(id))
}

// InlineLink is the iden3comm:// link that carries the request itself
// (i_m: the request JSON in base64, percent-encoded), for wallets that
// cannot reach request_uri.
func InlineLink(request []byte) string {
	return "iden3comm://?i_m=" + url.QueryEscape(base64.StdEncoding.EncodeToString(request))
}

// CreateRequest is what the operator asks for.
type CreateRequest struct {
	// Reason is shown to the user by the wallet.
	Reason string
	// Scope are the proofs asked for (iden3 query language).
	Scope []protocol.ZeroKnowledgeProofRequest
	// Message, when set, must come back in the response (bound into the
	// authV2 proof through the JWZ message hash).
	Message string
	// ExpiresIn is the session's lifetime; 0: the default.
	ExpiresIn time.Duration
	// Chain is the "blockchain:network" whose verifier DID asks; empty:
	// the first configured chain.
	Chain string
	// MaxRefusals, when above 0, fails the session (state failed, with
	// its hooks and webhook) at its MaxRefusals-th refused answer; 0
	// refuses answers without counting them.
	MaxRefusals int
}

// Create validates req and stores a new pending session.
func (s *Service) Create(ctx context.Context, req CreateRequest) (Session, error) {
	var sess Session
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) (err error) {
		sess, err = s.CreateIn(ctx, w, req)
		return err
	})
	if err != nil {
		return Session{}, err
	}
	s.cfg.Logger.Info("iden3: session created", "session", sess.ID, "chain", sess.Chain, "scopes", len(req.Scope), "expires", sess.Expires)
	return sess, nil
}

// CreateIn is Create inside the caller's unit of work: the session is
// stored if and only if w commits (a service that creates a session as
// part of a decision of its own commits both together).
func (s *Service) CreateIn(ctx context.Context, w *agent.Work, req CreateRequest) (Session, error) {
	chainKey := req.Chain
	if chainKey == "" {
		chainKey = s.cfg.Chains[0].Key()
	}
	chain, ok := s.chains[chainKey]
	if !ok {
		return Session{}, agent.Errorf(agent.CodeMsg, "chain %q is not configured (configured: %s)", clip(chainKey, 60), strings.Join(s.Chains(), ", "))
	}
	if len(req.Reason) > MaxReasonLen {
		return Session{}, agent.Errorf(agent.CodeMsg, "reason is longer than %d bytes", MaxReasonLen)
	}
	if len(req.Message) > MaxMessageLen {
		return Session{}, agent.Errorf(agent.CodeMsg, "message is longer than %d bytes", MaxMessageLen)
	}
	exp := req.ExpiresIn
	if exp == 0 {
		exp = s.cfg.DefaultExpiry
	}
	if exp < time.Minute || exp > s.cfg.MaxExpiry {
		return Session{}, agent.Errorf(agent.CodeMsg, "expires_in must be between 1m and %s", s.cfg.MaxExpiry)
	}
	if err := ValidateScope(req.Scope); err != nil {
		return Session{}, err
	}
	now := s.cfg.Now()
	id := s.cfg.NewID()
	created, expires := now.Unix(), now.Add(exp).Unix()
	msg := protocol.AuthorizationRequestMessage{
		ID: id, ThreadID: id, Typ: packers.MediaTypePlainMessage, Type: protocol.AuthorizationRequestMessageType,
		From: chain.VerifierDID, CreatedTime: &created, ExpiresTime: &expires,
		Body: protocol.AuthorizationRequestMessageBody{
			CallbackURL: s.CallbackURL(id), Reason: req.Reason, Message: req.Message, Scope: req.Scope,
		},
	}
	if err := auth.ValidateAuthRequest(msg); err != nil {
		return Session{}, agent.Wrap(agent.CodeMsg, err, "scope: "+clip(err.Error(), 200))
	}
	if req.MaxRefusals < 0 || req.MaxRefusals > 1000 {
		return Session{}, agent.Errorf(agent.CodeMsg, "max_refusals must be between 0 and 1000")
	}
	sess := Session{ID: id, Chain: chainKey, Request: msg, State: StatePending, MaxRefusals: req.MaxRefusals,
		Created: now, Expires: now.Add(exp).Truncate(time.Second), Updated: now}
	if _, err := w.Get(ctx, KindSession, id); err == nil {
		return Session{}, agent.Errorf(agent.CodeConflict, "session %s exists already", id)
	} else if !errors.Is(err, agent.ErrNotFound) {
		return Session{}, err
	}
	if err := w.PutJSON(KindSession, id, &sess); err != nil {
		return Session{}, err
	}
	return sess, nil
}

// ValidateScope checks the scope of a request: 1..MaxScopes entries, ids
// unique and in 1..2^32-1, circuits the verifier knows, and each query with
// context, type and allowedIssuers.
func ValidateScope(scope []protocol.ZeroKnowledgeProofRequest) error {
	if len(scope) == 0 || len(scope) > MaxScopes {
		return agent.Errorf(agent.CodeMsg, "scope must have 1 to %d entries", MaxScopes)
	}
	seen := map[uint32]bool{}
	for i, sc := range scope {
		if sc.ExtendedID != nil || sc.ID == 0 {
			return agent.Errorf(agent.CodeMsg, "scope[%d].id must be an integer between 1 and 4294967295", i)
		}
		if seen[sc.ID] {
			return agent.Errorf(agent.CodeMsg, "scope[%d].id %d is used twice", i, sc.ID)
		}
		seen[sc.ID] = true
		if !KnownCircuit(sc.CircuitID) {
			return agent.Errorf(agent.CodeMsg, "scope[%d].circuitId %q is not a circuit the verifier checks", i, clip(sc.CircuitID, 60))
		}
		q := sc.Query
		if s, _ := q["context"].(string); s == "" {
			return agent.Errorf(agent.CodeMsg, "scope[%d].query.context is required", i)
		}
		if s, _ := q["type"].(string); s == "" {
			return agent.Errorf(agent.CodeMsg, "scope[%d].query.type is required", i)
		}
		issuers, _ := q["allowedIssuers"].([]any)
		if len(issuers) == 0 {
			if ss, ok := q["allowedIssuers"].([]string); !ok || len(ss) == 0 {
				return agent.Errorf(agent.CodeMsg, "scope[%d].query.allowedIssuers is required (a list of issuer DIDs, or [\"*\"])", i)
			}
		}
	}
	return nil
}

// KnownCircuit reports whether id is a credential-proof circuit
// go-iden3-auth verifies (not an auth circuit).
func KnownCircuit(id string) bool {
	if id == "" || strings.HasPrefix(id, "auth") {
		return false
	}
	_, err := pubsignals.GetVerifier(circuits.CircuitID(id))
	return err == nil
}

// Get returns session id as of now.
func (s *Service) Get(ctx context.Context, id string) (Session, error) {
	sess, err := s.load(ctx, id)
	if err != nil {
		return Session{}, err
	}
	return sess.View(s.cfg.Now()), nil
}

func (s *Service) load(ctx context.Context, id string) (Session, error) {
	var sess Session
	b, err := s.cfg.Store.Records.Get(ctx, KindSession, id)
	if errors.Is(err, agent.ErrNotFound) {
		return sess, notFound(id)
	}
	if err != nil {
		return sess, err
	}
	if err := json.Unmarshal(b, &sess); err != nil {
		return sess, fmt.Errorf("iden3: session %s is corrupt: %w", id, err)
	}
	return sess, nil
}

// List returns up to limit sessions after the id after, in id order; only
// those in state (their effective state) when state is set.
func (s *Service) List(ctx context.Context, state State, after string, limit int) ([]Session, error) {
	if state != "" && !state.Valid() {
		return nil, agent.Errorf(agent.CodeMsg, "state must be pending, verified, failed, cancelled or expired")
	}
	now := s.cfg.Now()
	out := []Session{}
	for len(out) < limit {
		recs, err := s.cfg.Store.Records.List(ctx, KindSession, after, 256)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			var sess Session
			if err := json.Unmarshal(r.Value, &sess); err != nil {
				return nil, fmt.Errorf("iden3: session %s is corrupt: %w", r.ID, err)
			}
			v := sess.View(now)
			if state == "" || v.State == state {
				out = append(out, v)
				if len(out) == limit {
					return out, nil
				}
			}
		}
		if len(recs) < 256 {
			break
		}
		after = recs[len(recs)-1].ID
	}
	return out, nil
}

// Cancel cancels a pending session: its request is no longer served and
// no answer is accepted.
func (s *Service) Cancel(ctx context.Context, id string) (Session, error) {
	now := s.cfg.Now()
	var out Session
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		var sess Session
		if err := getIn(ctx, w, id, &sess); err != nil {
			return err
		}
		if err := answerable(&sess, now); err != nil {
			return err
		}
		if err := sess.moveTo(StateCancelled, now, "cancelled by the operator"); err != nil {
			return err
		}
		if err := w.PutJSON(KindSession, id, &sess); err != nil {
			return err
		}
		out = sess
		return s.notify(ctx, w, &sess, now)
	})
	if err != nil {
		return Session{}, err
	}
	s.cfg.Logger.Info("iden3: session cancelled", "session", id)
	return out, nil
}

// RequestMessage returns the request of a pending session, as the JSON
// the wallet fetches by request_uri.
func (s *Service) RequestMessage(ctx context.Context, id string) ([]byte, error) {
	sess, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := answerable(&sess, s.cfg.Now()); err != nil {
		return nil, err
	}
	return json.Marshal(sess.Request)
}

// answerable refuses a session that takes no answer: final, or past its
// expiry.
func answerable(sess *Session, now time.Time) error {
	switch st := sess.Effective(now); st {
	case StatePending:
		return nil
	case StateVerified, StateFailed:
		return agent.Errorf(agent.CodeConflict, "session %s was already answered (%s)", sess.ID, st)
	default:
		return agent.Errorf(agent.CodeGone, "session %s is %s", sess.ID, st)
	}
}

// VerdictHook is told every verdict (verified, cancelled, expired) inside
// the unit of work that records it: what it writes or enqueues in w commits
// with the verdict, and an error it returns undoes both.
type VerdictHook func(ctx context.Context, w *agent.Work, sess *Session, now time.Time) error

// OnVerdict adds a hook run on every verdict, in the verdict's unit of
// work. Hooks are added before the service is used (not concurrently with
// Verify, Cancel or Sweep).
func (s *Service) OnVerdict(h VerdictHook) { s.hooks = append(s.hooks, h) }

// notify runs the verdict hooks and stages the webhook of a verdict in w,
// when a webhook is set.
func (s *Service) notify(ctx context.Context, w *agent.Work, sess *Session, now time.Time) error {
	for _, h := range s.hooks {
		if err := h(ctx, w, sess, now); err != nil {
			return err
		}
	}
	if s.cfg.WebhookEndpoint == "" {
		return nil
	}
	b, err := json.Marshal(WebhookEvent{Event: "iden3.session." + string(sess.State), Time: now, Session: *sess})
	if err != nil {
		return err
	}
	w.Enqueue(&agent.OutboundMessage{To: "webhook", Endpoint: s.cfg.WebhookEndpoint,
		MediaType: "application/json", MessageType: "iden3-webhook", Payload: b})
	return nil
}

// WebhookEvent is the JSON body posted to the operator's webhook on every
// verdict (verified, cancelled, expired).
type WebhookEvent struct {
	// Event is "iden3.session.<state>".
	Event   string    `json:"event"`
	Time    time.Time `json:"time"`
	Session Session   `json:"session"`
}

// store helpers

func getIn(ctx context.Context, w *agent.Work, id string, v *Session) error {
	b, err := w.Get(ctx, KindSession, id)
	if errors.Is(err, agent.ErrNotFound) {
		return notFound(id)
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("iden3: session %s is corrupt: %w", id, err)
	}
	return nil
}

func notFound(id string) error {
	return agent.Wrap(agent.CodeNotFound, agent.ErrNotFound, fmt.Sprintf("session %s not found", clip(id, 60)))
}

// clip shortens s to n bytes for error messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}
