package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProveControlSettings(t *testing.T) {
	d := Default().ProveControl
	if !d.Verifier.Enabled || d.Verifier.ChallengeTTL != 24*time.Hour || d.Verifier.MaxAttempts != 5 || d.DNSServer != "" ||
		d.SMS.BaseURL != "https://api.twilio.com" || d.Discord.BaseURL != "https://discord.com/api/v10" {
		t.Fatalf("defaults %+v", d)
	}
	// The example config documents the defaults.
	c, err := Load([]string{"--config", "../../configs/agentd.example.yaml"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.ProveControl.Verifier.ChallengeTTL != d.Verifier.ChallengeTTL || c.ProveControl.Verifier.CredentialValidity != d.Verifier.CredentialValidity ||
		c.ProveControl.Verifier.Retention != d.Verifier.Retention || c.ProveControl.SMS.BaseURL != d.SMS.BaseURL {
		t.Fatalf("the example differs from the defaults: %+v", c.ProveControl)
	}

	// --dns-server, its environment variable and its config key, in that order of precedence.
	dir := t.TempDir()
	file := filepath.Join(dir, "a.yaml")
	os.WriteFile(file, []byte("provecontrol:\n  dns_server: 127.0.0.1:5301\n  verifier:\n    challenge_ttl: 1h\n    types: [Email, Domain]\n"), 0o600)
	c, err = Load([]string{"--config", file}, env(nil), io.Discard)
	if err != nil || c.ProveControl.DNSServer != "127.0.0.1:5301" || c.ProveControl.Verifier.ChallengeTTL != time.Hour {
		t.Fatalf("file: %v %+v", err, c.ProveControl)
	}
	c, _ = Load([]string{"--config", file}, env(map[string]string{"AGENTD_DNS_SERVER": "127.0.0.1:5302"}), io.Discard)
	if c.ProveControl.DNSServer != "127.0.0.1:5302" {
		t.Fatalf("env: %q", c.ProveControl.DNSServer)
	}
	c, _ = Load([]string{"--config", file, "--dns-server", "[::1]:5303", "--verifier=false"}, env(map[string]string{"AGENTD_DNS_SERVER": "127.0.0.1:5302"}), io.Discard)
	if c.ProveControl.DNSServer != "[::1]:5303" || c.ProveControl.Verifier.Enabled {
		t.Fatalf("flag: %+v", c.ProveControl)
	}

	// Provider tokens come from the environment or a file, never from the YAML or a flag.
	os.WriteFile(file, []byte("provecontrol:\n  sms:\n    auth_token: inline\n"), 0o600)
	if _, err := Load([]string{"--config", file}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "auth_token") {
		t.Fatalf("an inline SMS token in the YAML: %v", err)
	}
	if _, err := Load([]string{"--sms-auth-token", "x"}, env(nil), io.Discard); err == nil {
		t.Fatal("a token flag exists")
	}
	c, err = Load([]string{"--config", writeYAML(t, "provecontrol:\n  sms:\n    account_sid: AC1\n    from: \"+15005550006\"\n")},
		env(map[string]string{"AGENTD_SMS_AUTH_TOKEN": "tok", "AGENTD_DISCORD_BOT_TOKEN": "bot"}), io.Discard)
	if err != nil || c.ProveControl.SMS.AuthToken != "tok" || c.ProveControl.Discord.BotToken != "bot" {
		t.Fatalf("tokens from the environment: %v", err)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"provecontrol:\n  dns_server: nope\n", "provecontrol.dns_server"},
		{"provecontrol:\n  verifier:\n    types: [Fax]\n", "provecontrol.verifier.types"},
		{"provecontrol:\n  verifier:\n    challenge_ttl: 1s\n", "challenge_ttl"},
		{"provecontrol:\n  verifier:\n    max_attempts: 0\n", "max_attempts"},
		{"provecontrol:\n  verifier:\n    link_base_url: ftp://x\n", "link_base_url"},
		{"provecontrol:\n  sms:\n    account_sid: AC1\n    from: \"+1\"\n", "AGENTD_SMS_AUTH_TOKEN"},
		{"provecontrol:\n  sms:\n    account_sid: AC1\n    auth_token_file: /x\n", "provecontrol.sms.from"},
		{"provecontrol:\n  discord:\n    bot_token_file: /x\n    base_url: \"\"\n", "provecontrol.discord.base_url"},
	} {
		if _, err := Load([]string{"--config", writeYAML(t, tc.yaml)}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error naming %s", tc.yaml, err, tc.want)
		}
	}
}

func writeYAML(t *testing.T, s string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
