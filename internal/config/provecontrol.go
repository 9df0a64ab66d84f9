package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"
)

// ProveControl configures the Prove Control protocol: the verifier role,
// the DNS server for Domain verification and the SMS and Discord channels.
// The user role needs no settings.
type ProveControl struct {
	Verifier Verifier `yaml:"verifier"`
	// DNSServer is the HOST:PORT of the DNS server asked for the TXT records
	// of Domain verification; empty: the system resolver.
	DNSServer string     `yaml:"dns_server"`
	SMS       SMS        `yaml:"sms"`
	Discord   DiscordBot `yaml:"discord"`
}

// Verifier configures the verifier role of Prove Control.
type Verifier struct {
	Enabled bool `yaml:"enabled"`
	// Name is how the verifier introduces itself in SMS, Discord messages
	// and letters.
	Name string `yaml:"name"`
	// Types restricts the offered verification types; empty: every type
	// whose channel is configured.
	Types                []string      `yaml:"types"`
	ChallengeTTL         time.Duration `yaml:"challenge_ttl"`
	MaxAttempts          int           `yaml:"max_attempts"`
	CredentialValidity   time.Duration `yaml:"credential_validity"`
	MaxPendingPerUser    int           `yaml:"max_pending_per_user"`
	MaxPendingPerSubject int           `yaml:"max_pending_per_subject"`
	// LinkBaseURL is the public base of one-time links; empty: the origin
	// of http.public_url (or of the derived endpoint).
	LinkBaseURL     string        `yaml:"link_base_url"`
	AllowPrivateIPs bool          `yaml:"allow_private_ips"`
	Retention       time.Duration `yaml:"retention"`
	// Letters offers Address verification: letters are queued for the
	// operator to print and mail.
	Letters bool `yaml:"letters"`
}

// SMS configures the SMS provider (the Twilio Messages API shape). It is
// enabled when AccountSID is set.
type SMS struct {
	BaseURL    string `yaml:"base_url"`
	AccountSID string `yaml:"account_sid"`
	From       string `yaml:"from"`
	// AuthToken is secret: only from env AGENTD_SMS_AUTH_TOKEN or AuthTokenFile.
	AuthToken     string `yaml:"-"`
	AuthTokenFile string `yaml:"auth_token_file"`
}

// DiscordBot configures the Discord bot that sends direct messages. It is
// enabled when a bot token is given.
type DiscordBot struct {
	BaseURL string `yaml:"base_url"`
	// BotToken is secret: only from env AGENTD_DISCORD_BOT_TOKEN or BotTokenFile.
	BotToken     string `yaml:"-"`
	BotTokenFile string `yaml:"bot_token_file"`
}

func defaultProveControl() ProveControl {
	return ProveControl{
		Verifier: Verifier{
			Enabled: true, Name: "agentd", ChallengeTTL: 24 * time.Hour, MaxAttempts: 5,
			CredentialValidity: 365 * 24 * time.Hour, MaxPendingPerUser: 10, MaxPendingPerSubject: 3,
			Retention: 30 * 24 * time.Hour,
		},
		SMS:     SMS{BaseURL: "https://api.twilio.com"},
		Discord: DiscordBot{BaseURL: "https://discord.com/api/v10"},
	}
}

// onOff sets a boolean setting from "true" or "false".
func onOff(p func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not true or false: %q", v)
		}
		*p(c) = b
		return nil
	}
}

// The Prove Control flags and environment variables, added to the others.
func init() {
	options = append(options,
		option{"dns-server", "AGENTD_DNS_SERVER", "DNS server HOST:PORT for the TXT lookups of Domain verification; empty: the system resolver (provecontrol.dns_server)", str(func(c *Config) *string { return &c.ProveControl.DNSServer })},
		option{"verifier", "AGENTD_VERIFIER", "act as a Prove Control verifier: true or false (provecontrol.verifier.enabled)", onOff(func(c *Config) *bool { return &c.ProveControl.Verifier.Enabled })},
		option{"challenge-ttl", "AGENTD_CHALLENGE_TTL", "how long a Prove Control challenge can be proved (provecontrol.verifier.challenge_ttl)", dur(func(c *Config) *time.Duration { return &c.ProveControl.Verifier.ChallengeTTL })},
		option{"challenge-attempts", "AGENTD_CHALLENGE_ATTEMPTS", "wrong proofs that fail a challenge (provecontrol.verifier.max_attempts)", num(func(c *Config) *int { return &c.ProveControl.Verifier.MaxAttempts })},
		option{"link-base-url", "AGENTD_LINK_BASE_URL", "public base URL of one-time challenge links (provecontrol.verifier.link_base_url)", str(func(c *Config) *string { return &c.ProveControl.Verifier.LinkBaseURL })},
		option{"sms-base-url", "AGENTD_SMS_BASE_URL", "SMS provider API root, Twilio Messages API shape (provecontrol.sms.base_url)", str(func(c *Config) *string { return &c.ProveControl.SMS.BaseURL })},
		option{"discord-base-url", "AGENTD_DISCORD_BASE_URL", "Discord bot API root (provecontrol.discord.base_url)", str(func(c *Config) *string { return &c.ProveControl.Discord.BaseURL })},
	)
	secretEnv = append(secretEnv,
		option{"", "AGENTD_SMS_AUTH_TOKEN", "SMS provider auth token (provecontrol.sms.auth_token_file)", str(func(c *Config) *string { return &c.ProveControl.SMS.AuthToken })},
		option{"", "AGENTD_DISCORD_BOT_TOKEN", "Discord bot token (provecontrol.discord.bot_token_file)", str(func(c *Config) *string { return &c.ProveControl.Discord.BotToken })},
	)
}

// verificationTypes are the names provecontrol.verifier.types takes.
var verificationTypes = map[string]bool{"Email": true, "Domain": true, "DID": true, "Discord": true, "Tel": true, "IP": true, "Address": true}

// validateProveControl checks the provecontrol section.
func (c Config) validateProveControl() error {
	p := c.ProveControl
	v := p.Verifier
	if p.DNSServer != "" {
		if _, port, err := net.SplitHostPort(p.DNSServer); err != nil || port == "" {
			return fmt.Errorf("provecontrol.dns_server: %q is not HOST:PORT", p.DNSServer)
		}
	}
	for _, t := range v.Types {
		if !verificationTypes[t] {
			return fmt.Errorf("provecontrol.verifier.types: %q is not one of Email, Domain, DID, Discord, Tel, IP, Address", t)
		}
	}
	switch {
	case v.ChallengeTTL < time.Minute || v.ChallengeTTL > 30*24*time.Hour:
		return errors.New("provecontrol.verifier.challenge_ttl: must be between 1m and 720h")
	case v.MaxAttempts < 1:
		return errors.New("provecontrol.verifier.max_attempts: must be at least 1")
	case v.CredentialValidity < time.Hour:
		return errors.New("provecontrol.verifier.credential_validity: must be at least 1h")
	case v.MaxPendingPerUser < 1 || v.MaxPendingPerSubject < 1:
		return errors.New("provecontrol.verifier.max_pending_per_user and max_pending_per_subject: must be at least 1")
	case v.Retention < time.Hour:
		return errors.New("provecontrol.verifier.retention: must be at least 1h")
	}
	if err := checkBaseURL(v.LinkBaseURL); err != nil {
		return fmt.Errorf("provecontrol.verifier.link_base_url: %w", err)
	}
	if p.SMS.AccountSID != "" {
		if err := checkBaseURL(p.SMS.BaseURL); err != nil || p.SMS.BaseURL == "" {
			return fmt.Errorf("provecontrol.sms.base_url: %q is not an absolute http(s) URL", p.SMS.BaseURL)
		}
		if p.SMS.From == "" {
			return errors.New("provecontrol.sms.from: the sender number is required with provecontrol.sms.account_sid")
		}
		if p.SMS.AuthToken == "" && p.SMS.AuthTokenFile == "" {
			return errors.New("provecontrol.sms: set the auth token in env AGENTD_SMS_AUTH_TOKEN or provecontrol.sms.auth_token_file")
		}
	}
	if p.Discord.BotToken != "" || p.Discord.BotTokenFile != "" {
		if err := checkBaseURL(p.Discord.BaseURL); err != nil || p.Discord.BaseURL == "" {
			return fmt.Errorf("provecontrol.discord.base_url: %q is not an absolute http(s) URL", p.Discord.BaseURL)
		}
	}
	return nil
}

// checkBaseURL accepts "" or an absolute http(s) URL without query or fragment.
func checkBaseURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute http(s) URL without query", s)
	}
	return nil
}
