package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Mediator configures agentd as a DIDComm mediator: Coordinate Mediation 2.0
// and 3.0, Routing 2.0 and Pickup 3.0 with live delivery over WebSocket.
type Mediator struct {
	// Enabled turns the mediator on.
	Enabled bool `yaml:"enabled"`
	// Policy says who is granted mediation: open, allow-list or invitation.
	Policy string `yaml:"policy"`
	// AllowList holds the DIDs granted under the allow-list policy.
	AllowList []string `yaml:"allow_list"`
	// Relay passes forwards for DIDs that are not recipients of this
	// mediator on to their endpoints, instead of refusing them.
	Relay bool `yaml:"relay"`
	// MaxMessageBytes bounds one forwarded message.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxAttachments bounds the messages one forward carries.
	MaxAttachments int `yaml:"max_attachments"`
	// QuotaMessages and QuotaBytes bound what waits for one recipient DID
	// (0: no limit).
	QuotaMessages int   `yaml:"quota_messages"`
	QuotaBytes    int64 `yaml:"quota_bytes"`
	// MessageTTL is how long an undelivered message is kept.
	MessageTTL time.Duration `yaml:"message_ttl"`
	// SweepInterval is how often expired messages are removed.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// MaxRecipients bounds the DIDs one client may register.
	MaxRecipients int `yaml:"max_recipients"`
	// MaxDelivery bounds the messages of one delivery.
	MaxDelivery int `yaml:"max_delivery"`
	// InvitationTTL is how long a mediation invitation stays good.
	InvitationTTL time.Duration `yaml:"invitation_ttl"`
	// LivePingInterval and LivePingTimeout are the WebSocket keepalive.
	LivePingInterval time.Duration `yaml:"live_ping_interval"`
	LivePingTimeout  time.Duration `yaml:"live_ping_timeout"`
}

// MediationClient configures agentd to use a mediator: it requests
// mediation, publishes a did:peer:2 routed through the mediator and picks up
// its messages.
type MediationClient struct {
	// Invitation is the mediator's Out-of-Band invitation (URL or JSON);
	// empty: no mediator.
	Invitation string `yaml:"invitation"`
	// Version is the Coordinate Mediation version to speak: "3.0" or "2.0".
	Version string `yaml:"version"`
	// PollInterval is how often messages are fetched over HTTP when a
	// WebSocket to the mediator cannot be kept open.
	PollInterval time.Duration `yaml:"poll_interval"`
}

func defaultMediator() Mediator {
	return Mediator{Policy: "open", MaxMessageBytes: 512 << 10, MaxAttachments: 10, QuotaMessages: 10000, QuotaBytes: 100 << 20,
		MessageTTL: 14 * 24 * time.Hour, SweepInterval: time.Minute, MaxRecipients: 1000, MaxDelivery: 100,
		InvitationTTL: 7 * 24 * time.Hour, LivePingInterval: 30 * time.Second, LivePingTimeout: 10 * time.Second}
}

func defaultMediationClient() MediationClient {
	return MediationClient{Version: "3.0", PollInterval: 10 * time.Second}
}

// mediatorOptions are the flags and environment variables of the mediator.
var mediatorOptions = []option{
	{"mediator", "AGENTD_MEDIATOR", "act as a mediator: true or false (mediator.enabled)", boolean(func(c *Config) *bool { return &c.Mediator.Enabled })},
	{"mediator-policy", "AGENTD_MEDIATOR_POLICY", "who is granted mediation: open, allow-list or invitation (mediator.policy)", str(func(c *Config) *string { return &c.Mediator.Policy })},
	{"mediator-invitation", "AGENTD_MEDIATOR_INVITATION", "Out-of-Band invitation URL of a mediator to use (mediation_client.invitation)", str(func(c *Config) *string { return &c.MediationClient.Invitation })},
}

func boolean(p func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not true or false: %q", v)
		}
		*p(c) = b
		return nil
	}
}

// validateMediator checks the mediator and mediation_client sections.
func (c Config) validateMediator() error {
	m := c.Mediator
	switch m.Policy {
	case "open", "allow-list", "invitation":
	default:
		return fmt.Errorf("mediator.policy: %q is not open, allow-list or invitation", m.Policy)
	}
	for _, d := range m.AllowList {
		if !strings.HasPrefix(d, "did:") {
			return fmt.Errorf("mediator.allow_list: %q is not a DID", d)
		}
	}
	if m.Enabled && m.Policy == "allow-list" && len(m.AllowList) == 0 {
		return errors.New("mediator.allow_list: the allow-list policy needs at least one DID")
	}
	switch {
	case m.MaxMessageBytes < 1024:
		return fmt.Errorf("mediator.max_message_bytes: %d is below the minimum of 1024", m.MaxMessageBytes)
	case m.MaxAttachments < 1 || m.MaxAttachments > 1000:
		return fmt.Errorf("mediator.max_attachments: %d is not between 1 and 1000", m.MaxAttachments)
	case m.QuotaMessages < 0 || m.QuotaBytes < 0:
		return errors.New("mediator: quota_messages and quota_bytes must not be negative (0: no limit)")
	case m.MessageTTL < time.Minute:
		return errors.New("mediator.message_ttl: must be at least 1m")
	case m.SweepInterval < time.Second:
		return errors.New("mediator.sweep_interval: must be at least 1s")
	case m.MaxRecipients < 1:
		return errors.New("mediator.max_recipients: must be at least 1")
	case m.MaxDelivery < 1:
		return errors.New("mediator.max_delivery: must be at least 1")
	case m.InvitationTTL < time.Minute:
		return errors.New("mediator.invitation_ttl: must be at least 1m")
	case m.LivePingInterval < 100*time.Millisecond || m.LivePingTimeout < 100*time.Millisecond:
		return errors.New("mediator: live_ping_interval and live_ping_timeout must be at least 100ms")
	}
	mc := c.MediationClient
	if mc.Version != "2.0" && mc.Version != "3.0" {
		return fmt.Errorf("mediation_client.version: %q is not 2.0 or 3.0", mc.Version)
	}
	if mc.PollInterval < 100*time.Millisecond {
		return errors.New("mediation_client.poll_interval: must be at least 100ms")
	}
	return nil
}

func init() { options = append(options, mediatorOptions...) }
