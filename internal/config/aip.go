package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
)

// AIP configures the cloud-agent services of seed 004: connections,
// basic messages, held credentials, credential and proof exchanges, and
// their events. Engineers adding services add their keys here.
type AIP struct {
	// Enabled runs the services (default true).
	Enabled bool `yaml:"enabled"`
	// Label is the agent's name in its invitations and answers; empty: "agentd".
	Label string `yaml:"label"`
	// WebhookURL, when set, receives every change: POST
	// {webhook_url}/topics/{topic}, signed with WebhookSecret
	// (X-Agentd-Signature: sha256=<hex HMAC-SHA256 of the body>).
	WebhookURL string `yaml:"webhook_url"`
	// WebhookSecretFile holds the HMAC secret (its first line); the
	// secret may also come from env AGENTD_AIP_WEBHOOK_SECRET.
	WebhookSecretFile string `yaml:"webhook_secret_file"`
	// WebhookSecret is only taken from the environment.
	WebhookSecret string `yaml:"-"`
	// AnonCreds says where schemas and credential definitions of other
	// issuers are resolved from (besides the agent's own records and the
	// operator's imports).
	AnonCreds AIPAnonCreds `yaml:"anoncreds"`
	// FetchAllowPrivate lets the services' outbound fetches (AnonCreds
	// objects over https/did:web, W3C status list credentials) go to
	// loopback, private and link-local addresses (default false: public
	// addresses only).
	FetchAllowPrivate bool `yaml:"fetch_allow_private"`
}

// AIPAnonCreds is the aip.anoncreds section.
type AIPAnonCreds struct {
	// Dir, when set, is a directory of schema and credential definition
	// JSON files ({"id", "schema"} or {"id", "credentialDefinition"}),
	// read at start.
	Dir string `yaml:"dir"`
	// Web resolves ids that are https URLs or did:web DID URLs by fetching
	// them (default false).
	Web bool `yaml:"web"`
}

func defaultAIP() AIP { return AIP{Enabled: true, Label: "agentd"} }

func (c *Config) validateAIP() error {
	a := c.AIP
	if !a.Enabled {
		return nil
	}
	if len(a.Label) > 256 {
		return errors.New("aip.label: at most 256 bytes")
	}
	if a.AnonCreds.Dir != "" {
		if st, err := os.Stat(a.AnonCreds.Dir); err != nil {
			return fmt.Errorf("aip.anoncreds.dir: %w", err)
		} else if !st.IsDir() {
			return fmt.Errorf("aip.anoncreds.dir: %s is not a directory", a.AnonCreds.Dir)
		}
	}
	if a.WebhookURL == "" {
		return nil
	}
	u, err := url.Parse(a.WebhookURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("aip.webhook_url: %q is not an http(s) URL without query", a.WebhookURL)
	}
	if a.WebhookSecret == "" && a.WebhookSecretFile == "" {
		return errors.New("aip.webhook_url needs a secret: aip.webhook_secret_file or env AGENTD_AIP_WEBHOOK_SECRET")
	}
	if a.WebhookSecretFile != "" {
		if _, err := os.Stat(a.WebhookSecretFile); err != nil {
			return fmt.Errorf("aip.webhook_secret_file: %w", err)
		}
	}
	return nil
}

// The cloud-agent flags and environment variables.
func init() {
	options = append(options,
		option{"aip", "AGENTD_AIP", "run the cloud-agent services (connections, credentials, proofs): true or false (aip.enabled)", onOff(func(c *Config) *bool { return &c.AIP.Enabled })},
		option{"aip-label", "AGENTD_AIP_LABEL", "the agent's label in invitations (aip.label)", str(func(c *Config) *string { return &c.AIP.Label })},
		option{"aip-webhook-url", "AGENTD_AIP_WEBHOOK_URL", "base URL the cloud-agent events are posted under, /topics/{topic} (aip.webhook_url)", str(func(c *Config) *string { return &c.AIP.WebhookURL })},
		option{"aip-webhook-secret-file", "AGENTD_AIP_WEBHOOK_SECRET_FILE", "file of the HMAC secret of the events webhook (aip.webhook_secret_file)", str(func(c *Config) *string { return &c.AIP.WebhookSecretFile })},
		option{"aip-anoncreds-dir", "AGENTD_AIP_ANONCREDS_DIR", "directory of AnonCreds schema and credential definition JSON files (aip.anoncreds.dir)", str(func(c *Config) *string { return &c.AIP.AnonCreds.Dir })},
		option{"aip-anoncreds-web", "AGENTD_AIP_ANONCREDS_WEB", "resolve AnonCreds objects at https and did:web ids: true or false (aip.anoncreds.web)", boolean(func(c *Config) *bool { return &c.AIP.AnonCreds.Web })},
		option{"aip-fetch-allow-private", "AGENTD_AIP_FETCH_ALLOW_PRIVATE", "let AnonCreds object and status list fetches go to loopback and private addresses: true or false (aip.fetch_allow_private)", boolean(func(c *Config) *bool { return &c.AIP.FetchAllowPrivate })},
	)
	secretEnv = append(secretEnv,
		option{"", "AGENTD_AIP_WEBHOOK_SECRET", "HMAC secret of the events webhook (aip.webhook_secret_file)", str(func(c *Config) *string { return &c.AIP.WebhookSecret })},
	)
}
