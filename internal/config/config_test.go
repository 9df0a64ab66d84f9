package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./data" || c.HTTP.Addr != "127.0.0.1:8080" || c.HTTP.MaxBodyBytes != 1<<20 {
		t.Fatalf("defaults: %+v", c)
	}
	if got := c.Endpoint(); got != "http://127.0.0.1:8080/didcomm" {
		t.Fatalf("derived endpoint %q", got)
	}
}

func TestPrecedenceFileEnvFlag(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "agentd.yaml")
	os.WriteFile(file, []byte("data_dir: /from/file\nhttp:\n  addr: 0.0.0.0:9000\n  public_url: https://file.example/didcomm\noutbox:\n  max_attempts: 7\n"), 0o600)
	c, err := Load([]string{"--config", file, "--http-addr", "127.0.0.1:9100"},
		env(map[string]string{"AGENTD_DATA_DIR": "/from/env", "AGENTD_HTTP_ADDR": "127.0.0.1:9200"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/from/env" {
		t.Errorf("env should override file: data_dir=%q", c.DataDir)
	}
	if c.HTTP.Addr != "127.0.0.1:9100" {
		t.Errorf("flag should override env: addr=%q", c.HTTP.Addr)
	}
	if c.HTTP.PublicURL != "https://file.example/didcomm" || c.Outbox.MaxAttempts != 7 {
		t.Errorf("file values lost: %+v", c)
	}
	if c.Endpoint() != "https://file.example/didcomm" {
		t.Errorf("public_url must win over the derived endpoint")
	}
	// AGENTD_CONFIG names the file too.
	c, err = Load(nil, env(map[string]string{"AGENTD_CONFIG": file}), io.Discard)
	if err != nil || c.DataDir != "/from/file" {
		t.Fatalf("AGENTD_CONFIG not used: %v %q", err, c.DataDir)
	}
}

func TestEndpointFromWildcardAddr(t *testing.T) {
	c := Default()
	c.HTTP.Addr = "0.0.0.0:9000"
	if got := c.Endpoint(); got != "http://127.0.0.1:9000/didcomm" {
		t.Fatalf("endpoint %q", got)
	}
}

func TestValidationMessages(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml string
		args       []string
		env        map[string]string
		want       string
	}{
		{name: "bad addr", args: []string{"--http-addr", "nope"}, want: "http.addr"},
		{name: "bad url", args: []string{"--public-url", "ftp://x"}, want: "http.public_url"},
		{name: "small body", args: []string{"--max-body-bytes", "10"}, want: "http.max_body_bytes"},
		{name: "bad level", env: map[string]string{"AGENTD_LOG_LEVEL": "loud"}, want: "log.level"},
		{name: "unknown key", yaml: "htp:\n  addr: x\n", want: "htp"},
		{name: "bad duration", yaml: "outbox:\n  base_delay: soon\n", want: "line 2"},
		{name: "bad env duration", env: map[string]string{"AGENTD_OUTBOX_BASE_DELAY": "soon"}, want: "AGENTD_OUTBOX_BASE_DELAY"},
		{name: "short token", env: map[string]string{"AGENTD_ADMIN_TOKEN": "short"}, want: "admin.token"},
		{name: "two key sources", env: map[string]string{"AGENTD_KEY_PASSPHRASE": "pw", "AGENTD_KEY_FILE": "/k"}, want: "keys"},
		{name: "bad curve", yaml: "did:\n  key_agreement: [Ed448]\n", want: "did.key_agreement"},
		{name: "bad proxy", yaml: "http:\n  trusted_proxies: [\"10.0.0.0/33\"]\n", want: "http.trusted_proxies"},
		{name: "public pprof", args: []string{"--pprof-addr", "0.0.0.0:6060"}, want: "admin.pprof_addr"},
		{name: "bad pprof", env: map[string]string{"AGENTD_PPROF_ADDR": "6060"}, want: "admin.pprof_addr"},
		{name: "stray argument", args: []string{"serve"}, want: "unexpected argument"},
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

func TestExampleConfigIsValidAndComplete(t *testing.T) {
	c, err := Load([]string{"--config", "../../configs/agentd.example.yaml"}, env(nil), io.Discard)
	if err != nil {
		t.Fatalf("the example config does not load: %v", err)
	}
	d := Default()
	if c.HTTP.Addr != d.HTTP.Addr || c.Outbox.MaxDelay != time.Hour || c.Replay.Window != d.Replay.Window {
		t.Fatalf("the example config's values differ from the defaults it claims: %+v", c)
	}
}

func TestWebSocketEndpoint(t *testing.T) {
	c := Default()
	if got := c.WebSocketEndpoint(); got != "ws://127.0.0.1:8080/didcomm" {
		t.Fatalf("default: %q", got)
	}
	c.HTTP.PublicURL = "https://agent.example/didcomm"
	if got := c.WebSocketEndpoint(); got != "wss://agent.example/didcomm" {
		t.Fatalf("https public_url: %q", got)
	}
	c, err := Load([]string{"--publish-websocket-service", "false"}, env(nil), io.Discard)
	if err != nil || c.HTTP.PublishWebSocketService || c.WebSocketEndpoint() != "" {
		t.Fatalf("switched off by flag: %v %+v", err, c.HTTP)
	}
	c, err = Load(nil, env(map[string]string{"AGENTD_PUBLISH_WEBSOCKET_SERVICE": "no"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "AGENTD_PUBLISH_WEBSOCKET_SERVICE") {
		t.Fatalf("bad boolean in the environment: %v", err)
	}
}
