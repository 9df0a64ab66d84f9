package config

import (
	"io"
	"strings"
	"testing"
)

func TestAIPDefaultsExampleAndOverrides(t *testing.T) {
	c, err := Load([]string{"--config", "../../configs/agentd.example.yaml"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d := Default().AIP; c.AIP != d || !d.Enabled {
		t.Errorf("the example's aip section differs from the defaults:\n%+v\n%+v", c.AIP, d)
	}
	c, err = Load([]string{"--aip-label", "Acme"}, env(map[string]string{"AGENTD_AIP_WEBHOOK_URL": "https://app.example/hooks",
		"AGENTD_AIP_WEBHOOK_SECRET": "s3cret"}), io.Discard)
	if err != nil || c.AIP.Label != "Acme" || c.AIP.WebhookURL != "https://app.example/hooks" || c.AIP.WebhookSecret != "s3cret" {
		t.Fatalf("overrides: %+v %v", c.AIP, err)
	}
	dir := t.TempDir()
	c, err = Load([]string{"--aip-anoncreds-dir", dir, "--aip-anoncreds-web", "true"}, env(map[string]string{"AGENTD_AIP_FETCH_ALLOW_PRIVATE": "true"}), io.Discard)
	if err != nil || c.AIP.AnonCreds.Dir != dir || !c.AIP.AnonCreds.Web || !c.AIP.FetchAllowPrivate {
		t.Fatalf("anoncreds and fetch overrides: %+v %v", c.AIP, err)
	}
	if d := Default().AIP; d.AnonCreds.Web || d.AnonCreds.Dir != "" || d.FetchAllowPrivate {
		t.Errorf("defaults fetch from the web or private addresses: %+v", d)
	}
	for _, bad := range [][]string{{"--aip-anoncreds-dir", "/does/not/exist"}, {"--aip-webhook-url", "ftp://x"}, {"--aip-webhook-url", "https://app.example/h"}, {"--aip-webhook-url", "https://a.example/h", "--aip-webhook-secret-file", "/does/not/exist"}} {
		if _, err := Load(bad, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "aip.") {
			t.Errorf("%v: %v", bad, err)
		}
	}
	if c, err := Load([]string{"--aip", "false"}, env(nil), io.Discard); err != nil || c.AIP.Enabled {
		t.Errorf("disable: %v", err)
	}
}
