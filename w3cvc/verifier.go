package w3cvc

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/agentd/agentd/agent/did"
)

// DefaultStatusCacheTTL is how long a fetched status list is reused when
// VerifierConfig.StatusCacheTTL is zero.
const DefaultStatusCacheTTL = 5 * time.Minute

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Resolver resolves issuers' and holders' DIDs (did:key, did:web,
	// did:peer...). Required.
	Resolver did.Resolver
	// HTTPClient fetches status list credentials; nil means a client with a
	// 10 s timeout.
	HTTPClient *http.Client
	// StatusCacheTTL is how long a fetched status list is reused: zero
	// means DefaultStatusCacheTTL, negative means no caching.
	StatusCacheTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives debug records (status list fetches); nil means none.
	Logger *slog.Logger
}

// Verifier verifies credentials and presentations. It is safe for
// concurrent use.
type Verifier struct {
	cfg VerifierConfig

	mu     sync.Mutex
	status map[string]*statusList
}

// NewVerifier returns a Verifier with cfg, filling its defaults.
func NewVerifier(cfg VerifierConfig) *Verifier {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.StatusCacheTTL == 0 {
		cfg.StatusCacheTTL = DefaultStatusCacheTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Verifier{cfg: cfg, status: map[string]*statusList{}}
}

// checkValidity refuses a validity period the clock is outside of.
func (v *Verifier) checkValidity(what string, from, until time.Time) error {
	t := v.cfg.Now()
	if !from.IsZero() && t.Before(from) {
		return newErr(ReasonExpired, what+" is not valid before "+from.UTC().Format(time.RFC3339))
	}
	if !until.IsZero() && !t.Before(until) {
		return newErr(ReasonExpired, what+" expired at "+until.UTC().Format(time.RFC3339))
	}
	return nil
}

// maxClockSkew is the tolerance on "not before" times of presentations and
// proofs, for signers whose clock is slightly ahead.
const maxClockSkew = time.Minute

func unixOrZero(f float64) time.Time {
	if f == 0 {
		return time.Time{}
	}
	return time.Unix(int64(f), 0)
}
