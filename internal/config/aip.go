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
	)
	secretEnv = append(secretEnv,
		option{"", "AGENTD_AIP_WEBHOOK_SECRET", "HMAC secret of the events webhook (aip.webhook_secret_file)", str(func(c *Config) *string { return &c.AIP.WebhookSecret })},
	)
}
