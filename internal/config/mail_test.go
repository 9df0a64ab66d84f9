package config

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMailDefaultsAreOff(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.Addr != "" || c.Email.Address != "" || c.Email.Relay.Addr != "" {
		t.Fatalf("mail must be off by default: %+v %+v", c.SMTP, c.Email)
	}
	if c.SMTP.MaxMessageBytes != 2<<20 || c.SMTP.RateLimit != 60 || c.Email.Relay.StartTLS != "opportunistic" {
		t.Fatalf("mail defaults: %+v %+v", c.SMTP, c.Email)
	}
}

func TestMailFlagsEnvAndFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agentd.yaml")
	os.WriteFile(file, []byte(`smtp:
  addr: 127.0.0.1:2600
  domains: [file.test]
  auth: {username: wallet, password_file: /run/pw, allow_insecure: true}
email:
  address: agent@file.test
  relay: {addr: "relay.file.test:587", starttls: required, username: agent, password_file: /run/relay}
`), 0o600)
	c, err := Load([]string{"--config", file, "--smtp-domains", "a.test, b.test", "--email-address", "bot@a.test"},
		env(map[string]string{"AGENTD_SMTP_ADDR": "127.0.0.1:2700", "AGENTD_SMTP_RELAY": "relay.env.test:25",
			"AGENTD_SMTP_DOMAINS": "env.test", "AGENTD_SMTP_AUTH_PASSWORD": "", "AGENTD_SMTP_RELAY_PASSWORD": ""}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.Addr != "127.0.0.1:2700" || c.Email.Relay.Addr != "relay.env.test:25" {
		t.Errorf("env must override the file: %q %q", c.SMTP.Addr, c.Email.Relay.Addr)
	}
	if !slices.Equal(c.SMTP.Domains, []string{"a.test", "b.test"}) || c.Email.Address != "bot@a.test" {
		t.Errorf("flags must override env and file: %v %q", c.SMTP.Domains, c.Email.Address)
	}
	if c.SMTP.Auth.Username != "wallet" || c.Email.Relay.StartTLS != "required" || c.Email.Relay.PasswordFile != "/run/relay" {
		t.Errorf("file values lost: %+v %+v", c.SMTP.Auth, c.Email.Relay)
	}
	// Passwords come from the environment (never from flags).
	c, err = Load([]string{"--config", file}, env(map[string]string{"AGENTD_SMTP_RELAY_PASSWORD": "x"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "email.relay: set password or password_file, not both") {
		t.Fatalf("env password beside the file's password_file: %v", err)
	}
}

func TestMailValidationMessages(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml string
		args       []string
		env        map[string]string
		want       string
	}{
		{name: "listener without domains", args: []string{"--smtp-addr", "127.0.0.1:2525"}, want: "smtp.domains: the SMTP listener"},
		{name: "bad listener addr", args: []string{"--smtp-addr", "2525", "--smtp-domains", "a.test"}, want: "smtp.addr"},
		{name: "bad hostname", yaml: "smtp:\n  hostname: mx_1\n", want: "smtp.hostname"},
		{name: "bad domain", args: []string{"--smtp-domains", "a test"}, want: "smtp.domains: \"a test\" is not a domain name"},
		{name: "bad address", args: []string{"--email-address", "Agent <a@b.test>"}, want: "email.address"},
		{name: "address without domain", env: map[string]string{"AGENTD_EMAIL_ADDRESS": "agent"}, want: "email.address"},
		{name: "bad relay", args: []string{"--email-address", "a@b.test", "--smtp-relay", "relay"}, want: "email.relay.addr"},
		{name: "relay without address", args: []string{"--smtp-relay", "relay.test:25"}, want: "outbound mail needs email.address"},
		{name: "bad starttls", yaml: "email:\n  relay:\n    starttls: sometimes\n", want: "email.relay.starttls"},
		{name: "cert without key", yaml: "smtp:\n  tls_cert_file: /c.pem\n", want: "tls_key_file"},
		{name: "require_tls without cert", yaml: "smtp:\n  require_tls: true\n", want: "smtp.require_tls"},
		{name: "auth without password", yaml: "smtp:\n  auth:\n    username: u\n    allow_insecure: true\n", want: "AGENTD_SMTP_AUTH_PASSWORD"},
		{name: "auth in the clear", yaml: "smtp:\n  auth:\n    username: u\n", env: map[string]string{"AGENTD_SMTP_AUTH_PASSWORD": "p"}, want: "in the clear"},
		{name: "required auth without user", yaml: "smtp:\n  auth:\n    required: true\n", want: "smtp.auth.required"},
		{name: "small messages", yaml: "smtp:\n  max_message_bytes: 10\n", want: "smtp.max_message_bytes"},
		{name: "negative rate", yaml: "smtp:\n  rate_limit: -1\n", want: "smtp.rate_limit"},
		{name: "relay user without password", yaml: "email:\n  address: a@b.test\n  relay:\n    addr: r.test:587\n    username: u\n", want: "AGENTD_SMTP_RELAY_PASSWORD"},
		{name: "unknown mail key", yaml: "smtp:\n  domain: a.test\n", want: "domain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.yaml != "" {
				f := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
				os.WriteFile(f, []byte(tc.yaml), 0o600)
				args = append([]string{"--config", f}, args...)
			}
			_, err := Load(args, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestExampleConfigMail(t *testing.T) {
	c, err := Load([]string{"--config", "../../configs/agentd.example.yaml"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.SMTP.Addr != "127.0.0.1:2525" || c.Email.Address == "" || len(c.SMTP.Domains) == 0 {
		t.Fatalf("the example should show a loopback listener on 127.0.0.1:2525 with a domain and an address: %+v %+v", c.SMTP, c.Email)
	}
	if c.SMTP.MaxMessageBytes != d.SMTP.MaxMessageBytes || c.SMTP.RateLimit != d.SMTP.RateLimit ||
		c.SMTP.Timeout != d.SMTP.Timeout || c.Email.Relay.StartTLS != d.Email.Relay.StartTLS {
		t.Fatalf("the example's mail values differ from the defaults it claims: %+v %+v", c.SMTP, c.Email)
	}
}
