package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLimitsDefaultsAndExample(t *testing.T) {
	c, err := Load([]string{"--config", "../../configs/agentd.example.yaml"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if d.HTTP.MaxConnections != 1024 || d.HTTP.MaxConnectionsPerIP != 64 || d.HTTP.MaxWebSocketsPerIP != 16 ||
		d.SMTP.MaxSessions != 100 || d.SMTP.MaxSessionsPerIP != 10 ||
		d.DID.WebAllowPrivate || d.DID.WebTimeout != 5*time.Second || d.DID.NegativeCacheTTL != time.Minute ||
		d.DID.MaxConcurrentResolutions != 32 {
		t.Errorf("defaults: %+v %+v %+v", d.HTTP, d.SMTP, d.DID)
	}
	if c.HTTP.MaxConnections != d.HTTP.MaxConnections || c.HTTP.MaxConnectionsPerIP != d.HTTP.MaxConnectionsPerIP ||
		c.HTTP.MaxWebSocketsPerIP != d.HTTP.MaxWebSocketsPerIP ||
		c.SMTP.MaxSessions != d.SMTP.MaxSessions || c.SMTP.MaxSessionsPerIP != d.SMTP.MaxSessionsPerIP ||
		c.DID.WebAllowPrivate != d.DID.WebAllowPrivate || c.DID.WebTimeout != d.DID.WebTimeout ||
		c.DID.NegativeCacheTTL != d.DID.NegativeCacheTTL || c.DID.MaxConcurrentResolutions != d.DID.MaxConcurrentResolutions {
		t.Errorf("the example's limits differ from the defaults: %+v %+v %+v", c.HTTP, c.SMTP, c.DID)
	}
}

func TestLimitsFromEnvAndFlags(t *testing.T) {
	c, err := Load([]string{"--http-max-connections-per-ip", "5", "--smtp-max-sessions", "7"}, env(map[string]string{
		"AGENTD_HTTP_MAX_CONNECTIONS":       "50",
		"AGENTD_HTTP_MAX_WEBSOCKETS_PER_IP": "3",
		"AGENTD_SMTP_MAX_SESSIONS_PER_IP":   "2",
		"AGENTD_DID_WEB_ALLOW_PRIVATE":      "true",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.MaxConnections != 50 || c.HTTP.MaxConnectionsPerIP != 5 || c.HTTP.MaxWebSocketsPerIP != 3 ||
		c.SMTP.MaxSessions != 7 || c.SMTP.MaxSessionsPerIP != 2 || !c.DID.WebAllowPrivate {
		t.Errorf("got %+v %+v %+v", c.HTTP, c.SMTP, c.DID)
	}
}

func TestLimitsValidation(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{name: "negative connections", yaml: "http:\n  max_connections: -1\n", want: "http.max_connections:"},
		{name: "per ip over total", yaml: "http:\n  max_connections: 10\n  max_connections_per_ip: 11\n", want: "http.max_connections_per_ip"},
		{name: "negative websockets", env: map[string]string{"AGENTD_HTTP_MAX_WEBSOCKETS_PER_IP": "-2"}, want: "http.max_websockets_per_ip"},
		{name: "bad number", env: map[string]string{"AGENTD_SMTP_MAX_SESSIONS": "many"}, want: "AGENTD_SMTP_MAX_SESSIONS"},
		{name: "sessions per ip over total", yaml: "smtp:\n  max_sessions: 2\n  max_sessions_per_ip: 3\n", want: "smtp.max_sessions_per_ip"},
		{name: "bad bool", env: map[string]string{"AGENTD_DID_WEB_ALLOW_PRIVATE": "maybe"}, want: "AGENTD_DID_WEB_ALLOW_PRIVATE"},
		{name: "zero web timeout", yaml: "did:\n  web_timeout: 0s\n", want: "did.web_timeout"},
		{name: "negative ttl", yaml: "did:\n  negative_cache_ttl: -1s\n", want: "did.negative_cache_ttl"},
		{name: "no resolutions", yaml: "did:\n  max_concurrent_resolutions: 0\n", want: "did.max_concurrent_resolutions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			if tc.yaml != "" {
				f := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
				os.WriteFile(f, []byte(tc.yaml), 0o600)
				args = []string{"--config", f}
			}
			_, err := Load(args, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}
