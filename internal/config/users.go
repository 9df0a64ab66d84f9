package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"
)

// Users configures user accounts (sign-up and claim by a mailed one-time
// link, the users' public keys). They run when Enabled and the agent
// sends mail (email.address).
type Users struct {
	Enabled bool `yaml:"enabled"`
	// ConfirmTTL is how long a confirmation link works.
	ConfirmTTL time.Duration `yaml:"confirm_ttl"`
	// KeyUploadTTL is how long a key-upload token works.
	KeyUploadTTL time.Duration `yaml:"key_upload_ttl"`
	// MailTemplate is the file of the confirmation mail's template (text
	// and HTML parts); empty: the built-in English one.
	MailTemplate string `yaml:"mail_template"`
	// BaseURL is the public base URL of the confirmation links; empty: the
	// origin of http.public_url (or of the derived endpoint).
	BaseURL string `yaml:"base_url"`
	// AgentName names the agent in the mails; empty: BaseURL.
	AgentName string `yaml:"agent_name"`
	// MaxNameLength bounds a user's name, in characters.
	MaxNameLength int `yaml:"max_name_length"`
	// AddressRate and AddressBurst limit sign-up requests per mail
	// address (requests an hour, burst); IPRate and IPBurst per client IP.
	// A rate of 0 is no limit.
	AddressRate  int `yaml:"address_rate"`
	AddressBurst int `yaml:"address_burst"`
	IPRate       int `yaml:"ip_rate"`
	IPBurst      int `yaml:"ip_burst"`
	// Retention is how long sign-up requests are kept after they expired.
	Retention time.Duration `yaml:"retention"`
}

func defaultUsers() Users {
	return Users{Enabled: true, ConfirmTTL: 15 * time.Minute, KeyUploadTTL: 15 * time.Minute, MaxNameLength: 100,
		AddressRate: 5, AddressBurst: 3, IPRate: 30, IPBurst: 10, Retention: 7 * 24 * time.Hour}
}

func (c *Config) validateUsers() error {
	u := c.Users
	switch {
	case u.ConfirmTTL < time.Minute || u.ConfirmTTL > 7*24*time.Hour:
		return errors.New("users.confirm_ttl: must be between 1m and 168h")
	case u.KeyUploadTTL < time.Minute || u.KeyUploadTTL > 7*24*time.Hour:
		return errors.New("users.key_upload_ttl: must be between 1m and 168h")
	case u.MaxNameLength < 1 || u.MaxNameLength > 1000:
		return errors.New("users.max_name_length: must be between 1 and 1000")
	case u.AddressRate < 0 || u.IPRate < 0 || u.AddressBurst < 0 || u.IPBurst < 0:
		return errors.New("users: rates and bursts must not be negative")
	case u.Retention < 0:
		return errors.New("users.retention: must not be negative")
	}
	if u.BaseURL != "" {
		p, err := url.Parse(u.BaseURL)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return fmt.Errorf("users.base_url: %q is not an http(s) URL", u.BaseURL)
		}
	}
	if u.MailTemplate != "" {
		if _, err := os.Stat(u.MailTemplate); err != nil {
			return fmt.Errorf("users.mail_template: %w", err)
		}
	}
	return nil
}

// The user-account flags and environment variables, added to the others.
func init() {
	options = append(options,
		option{"users", "AGENTD_USERS", "serve user accounts (sign-up by mailed link) when the agent sends mail: true or false (users.enabled)", onOff(func(c *Config) *bool { return &c.Users.Enabled })},
		option{"users-confirm-ttl", "AGENTD_USERS_CONFIRM_TTL", "how long a sign-up confirmation link works (users.confirm_ttl)", dur(func(c *Config) *time.Duration { return &c.Users.ConfirmTTL })},
		option{"users-mail-template", "AGENTD_USERS_MAIL_TEMPLATE", "file of the sign-up mail template; empty: the built-in one (users.mail_template)", str(func(c *Config) *string { return &c.Users.MailTemplate })},
		option{"users-base-url", "AGENTD_USERS_BASE_URL", "public base URL of the sign-up confirmation links (users.base_url)", str(func(c *Config) *string { return &c.Users.BaseURL })},
	)
}
