package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Iden3 configures agentd as an iden3comm verifier (protocols/iden3auth):
// the chains whose State contract it reads, the schemas it may load, the
// webhook of verdicts. It is enabled when at least one resolver is set.
type Iden3 struct {
	// VerifierDID is the DID requests come from on every chain without a
	// did of its own.
	VerifierDID string `yaml:"verifier_did"`
	// Resolvers are the chains; the first is the default of new requests.
	Resolvers []Iden3Resolver `yaml:"resolvers"`
	// RPCTimeout bounds every state read (eth_call).
	RPCTimeout time.Duration `yaml:"rpc_timeout"`
	// PublicBaseURL is the base of the URLs wallets use (request_uri,
	// callbackUrl); empty: the origin of http.public_url (or of the
	// derived endpoint).
	PublicBaseURL string `yaml:"public_base_url"`
	// DefaultExpiry and MaxExpiry bound a session's lifetime.
	DefaultExpiry time.Duration `yaml:"default_expiry"`
	MaxExpiry     time.Duration `yaml:"max_expiry"`
	// Retention is how long finished sessions are kept; 0 keeps them.
	Retention time.Duration `yaml:"retention"`
	// ProofMaxAge is the oldest credential proof accepted; 0: 24h.
	ProofMaxAge time.Duration `yaml:"proof_max_age"`
	// StateTransitionDelay is how long a replaced issuer non-revocation
	// state is still accepted; 0: 1h.
	StateTransitionDelay time.Duration `yaml:"state_transition_delay"`
	// AnswerRate and AnswerBurst bound the answers one client IP may post
	// to the callback a minute: each costs a proof verification (about
	// 20 ms of CPU). 0: no limit.
	AnswerRate  int          `yaml:"answer_rate"`
	AnswerBurst int          `yaml:"answer_burst"`
	Schemas     Iden3Schemas `yaml:"schemas"`
	Webhook     Iden3Webhook `yaml:"webhook"`
}

// Iden3Resolver is one chain: {chain, network, rpc_url, state_contract,
// chain_id}, with an optional verifier did, and method + network_flag to
// register a chain go-iden3-core does not know.
type Iden3Resolver struct {
	Chain         string `yaml:"chain"`
	Network       string `yaml:"network"`
	RPCURL        string `yaml:"rpc_url"`
	StateContract string `yaml:"state_contract"`
	ChainID       int    `yaml:"chain_id"`
	DID           string `yaml:"did"`
	Method        string `yaml:"method"`
	NetworkFlag   int    `yaml:"network_flag"`
}

// Iden3Schemas configures the JSON-LD document loader.
type Iden3Schemas struct {
	// Dir is the on-disk cache; empty: <data_dir>/iden3/schemas.
	Dir string `yaml:"dir"`
	// Allow are the URL prefixes that may be fetched (and then cached);
	// anything else must be preloaded (agentctl iden3 schema load).
	Allow   []string      `yaml:"allow"`
	Timeout time.Duration `yaml:"timeout"`
}

// Iden3Webhook is where every verdict is posted, HMAC-signed.
type Iden3Webhook struct {
	URL string `yaml:"url"`
	// Secret signs the body (X-Agentd-Signature: sha256=<hex HMAC>); it
	// may also come from env AGENTD_IDEN3_WEBHOOK_SECRET or SecretFile.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
}

// Enabled reports whether the verifier is configured.
func (i Iden3) Enabled() bool { return len(i.Resolvers) > 0 }

func defaultIden3() Iden3 {
	return Iden3{RPCTimeout: 10 * time.Second, DefaultExpiry: time.Hour, MaxExpiry: 30 * 24 * time.Hour, Retention: 30 * 24 * time.Hour,
		AnswerRate: 60, AnswerBurst: 20, Schemas: Iden3Schemas{Timeout: 10 * time.Second}}
}

func init() {
	options = append(options,
		option{"iden3-public-base-url", "AGENTD_IDEN3_PUBLIC_BASE_URL", "public base URL of iden3 request_uri and callback URLs (iden3.public_base_url)", str(func(c *Config) *string { return &c.Iden3.PublicBaseURL })},
		option{"iden3-webhook-url", "AGENTD_IDEN3_WEBHOOK_URL", "URL every iden3 verdict is posted to (iden3.webhook.url)", str(func(c *Config) *string { return &c.Iden3.Webhook.URL })},
	)
	secretEnv = append(secretEnv,
		option{"", "AGENTD_IDEN3_WEBHOOK_SECRET", "HMAC secret of the iden3 webhook (iden3.webhook.secret_file)", str(func(c *Config) *string { return &c.Iden3.Webhook.Secret })},
	)
}

var (
	hexAddress = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)
	chainName  = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
)

// validateIden3 checks the iden3 section.
func (c Config) validateIden3() error {
	i := c.Iden3
	if !i.Enabled() {
		return nil
	}
	seen := map[string]bool{}
	for n, r := range i.Resolvers {
		key := fmt.Sprintf("iden3.resolvers[%d]", n)
		if !chainName.MatchString(r.Chain) || !chainName.MatchString(r.Network) {
			return fmt.Errorf("%s: chain and network are required, lower-case names such as polygon and amoy", key)
		}
		if seen[r.Chain+":"+r.Network] {
			return fmt.Errorf("%s: a second resolver for %s:%s", key, r.Chain, r.Network)
		}
		seen[r.Chain+":"+r.Network] = true
		u, err := url.Parse(r.RPCURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("%s.rpc_url: %q is not an http(s) or ws(s) URL", key, r.RPCURL)
		}
		if !hexAddress.MatchString(r.StateContract) {
			return fmt.Errorf("%s.state_contract: %q is not a 0x-prefixed 20-byte address", key, r.StateContract)
		}
		if r.ChainID < 0 {
			return fmt.Errorf("%s.chain_id: must not be negative", key)
		}
		if r.NetworkFlag < 0 || r.NetworkFlag > 255 {
			return fmt.Errorf("%s.network_flag: must be a byte (0..255)", key)
		}
		if r.NetworkFlag != 0 && r.ChainID == 0 {
			return fmt.Errorf("%s: network_flag registers a new chain and needs its chain_id", key)
		}
		if r.DID == "" && i.VerifierDID == "" {
			return fmt.Errorf("%s: no verifier DID: set iden3.verifier_did or the resolver's did", key)
		}
		for _, d := range []string{r.DID, i.VerifierDID} {
			if d != "" && !strings.HasPrefix(d, "did:") {
				return fmt.Errorf("%s: verifier DID %q is not a DID", key, d)
			}
		}
	}
	switch {
	case i.RPCTimeout < 100*time.Millisecond || i.RPCTimeout > 2*time.Minute:
		return errors.New("iden3.rpc_timeout: must be between 100ms and 2m")
	case i.DefaultExpiry < time.Minute || i.MaxExpiry < i.DefaultExpiry:
		return errors.New("iden3: default_expiry must be at least 1m and max_expiry at least default_expiry")
	case i.Retention < 0:
		return errors.New("iden3.retention: must not be negative (0: keep sessions)")
	case i.AnswerRate < 0 || i.AnswerBurst < 0 || (i.AnswerRate > 0 && i.AnswerBurst < 1):
		return errors.New("iden3: answer_rate must not be negative (0: no limit) and answer_burst at least 1 with a rate")
	case i.ProofMaxAge < 0 || i.StateTransitionDelay < 0:
		return errors.New("iden3: proof_max_age and state_transition_delay must not be negative (0: the library's defaults)")
	case i.Schemas.Timeout <= 0:
		return errors.New("iden3.schemas.timeout: must be positive")
	}
	if err := checkBaseURL(i.PublicBaseURL); err != nil {
		return fmt.Errorf("iden3.public_base_url: %w", err)
	}
	for _, p := range i.Schemas.Allow {
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("iden3.schemas.allow: %q is not an http(s) URL prefix", p)
		}
	}
	if w := i.Webhook; w.URL != "" {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("iden3.webhook.url: %q is not an absolute http(s) URL", w.URL)
		}
		if w.Secret == "" && w.SecretFile == "" {
			return errors.New("iden3.webhook: set the HMAC secret (iden3.webhook.secret, secret_file or env AGENTD_IDEN3_WEBHOOK_SECRET)")
		}
		if w.Secret != "" && len(w.Secret) < 16 {
			return errors.New("iden3.webhook.secret: must be at least 16 characters")
		}
	}
	return nil
}
