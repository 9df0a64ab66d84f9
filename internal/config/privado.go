package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"
)

// Privado configures the proof-request service for exchanges (seed 000).
// It runs when Enabled, user accounts run, the agent sends mail and the
// iden3 verifier is configured.
type Privado struct {
	Enabled bool `yaml:"enabled"`
	// ConsentTTL is how long a consent link works (it decides once, and
	// reads the user's interactions until it expires).
	ConsentTTL time.Duration `yaml:"consent_ttl"`
	// ProofTTL is how long the wallet has to answer after consent.
	ProofTTL time.Duration `yaml:"proof_ttl"`
	// MailTemplate is the file of the consent mail's template; empty: the
	// built-in English one.
	MailTemplate string `yaml:"mail_template"`
	// BaseURL is the public base URL of the consent links; empty: the
	// origin of http.public_url.
	BaseURL string `yaml:"base_url"`
	// AgentName names the service in the mails; empty: BaseURL.
	AgentName string `yaml:"agent_name"`
	// AllowHTTPCallbacks allows plain http callback URLs to any host
	// (without it: https, or http to a loopback host).
	AllowHTTPCallbacks bool `yaml:"allow_http_callbacks"`
	// AllowPrivateCallbacks allows callback hosts on loopback, private and
	// link-local addresses (the delivery also needs outbox.allow_private).
	AllowPrivateCallbacks bool `yaml:"allow_private_callbacks"`
	// CallbackCAFile, when set, is a PEM file of the CAs the callbacks
	// trust instead of the system's.
	CallbackCAFile string `yaml:"callback_ca_file"`
	// Chain is the iden3 chain of the requests ("blockchain:network");
	// empty: the first of iden3.resolvers.
	Chain string `yaml:"chain"`
	// MaxAttempts is how many refused answers of the wallet fail an
	// interaction (Failed, and the exchange is called back).
	MaxAttempts int `yaml:"max_attempts"`
	// SweepInterval is how often undecided interactions past their
	// consent expiry are recorded as expired.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// RequestRate and RequestBurst bound the proof requests one exchange
	// may make an hour (each mails a user); 0: no limit.
	RequestRate  int `yaml:"request_rate"`
	RequestBurst int `yaml:"request_burst"`
}

func defaultPrivado() Privado {
	return Privado{ConsentTTL: 24 * time.Hour, ProofTTL: time.Hour, MaxAttempts: 5, SweepInterval: time.Minute,
		RequestRate: 1000, RequestBurst: 100}
}

func (c *Config) validatePrivado() error {
	p := c.Privado
	switch {
	case p.ConsentTTL < time.Minute || p.ConsentTTL > 30*24*time.Hour:
		return errors.New("privado.consent_ttl: must be between 1m and 720h")
	case p.ProofTTL < time.Minute || p.ProofTTL > 7*24*time.Hour:
		return errors.New("privado.proof_ttl: must be between 1m and 168h")
	case p.MaxAttempts < 1 || p.MaxAttempts > 100:
		return errors.New("privado.max_attempts: must be between 1 and 100")
	case p.SweepInterval < time.Second:
		return errors.New("privado.sweep_interval: must be at least 1s")
	case p.RequestRate < 0 || p.RequestBurst < 0 || (p.RequestRate > 0 && p.RequestBurst < 1):
		return errors.New("privado: request_rate must not be negative (0: no limit) and request_burst at least 1 with a rate")
	}
	if p.BaseURL != "" {
		u, err := url.Parse(p.BaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("privado.base_url: %q is not an http(s) URL", p.BaseURL)
		}
	}
	for name, f := range map[string]string{"privado.mail_template": p.MailTemplate, "privado.callback_ca_file": p.CallbackCAFile} {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return nil
}

// The proof-request flags and environment variables.
func init() {
	options = append(options,
		option{"privado", "AGENTD_PRIVADO", "serve the proof-request service for exchanges (needs users, email and iden3): true or false (privado.enabled)", onOff(func(c *Config) *bool { return &c.Privado.Enabled })},
		option{"privado-consent-ttl", "AGENTD_PRIVADO_CONSENT_TTL", "how long a consent link works (privado.consent_ttl)", dur(func(c *Config) *time.Duration { return &c.Privado.ConsentTTL })},
		option{"privado-mail-template", "AGENTD_PRIVADO_MAIL_TEMPLATE", "file of the consent mail template; empty: the built-in one (privado.mail_template)", str(func(c *Config) *string { return &c.Privado.MailTemplate })},
		option{"privado-base-url", "AGENTD_PRIVADO_BASE_URL", "public base URL of the consent links (privado.base_url)", str(func(c *Config) *string { return &c.Privado.BaseURL })},
	)
}
