package config

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMediatorDefaultsAndExample(t *testing.T) {
	c, err := Load([]string{"--config", "../../configs/agentd.example.yaml"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got, want := c.Mediator, Default().Mediator
	if len(got.AllowList) == 0 && len(want.AllowList) == 0 {
		got.AllowList, want.AllowList = nil, nil // [] in the file, nil by default
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the example's mediator section differs from the defaults:\n%+v\n%+v", c.Mediator, Default().Mediator)
	}
	if !reflect.DeepEqual(c.MediationClient, Default().MediationClient) {
		t.Errorf("the example's mediation_client section differs from the defaults")
	}
	d := Default().Mediator
	if d.Enabled || d.Policy != "open" || d.MessageTTL != 14*24*time.Hour {
		t.Errorf("defaults %+v", d)
	}
}

func TestMediatorSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "m.yaml")
	os.WriteFile(file, []byte("mediator:\n  enabled: true\n  policy: allow-list\n  allow_list: [did:example:alice]\n  quota_messages: 5\n  relay: true\nmediation_client:\n  version: \"2.0\"\n"), 0o600)
	c, err := Load([]string{"--config", file}, env(map[string]string{"AGENTD_MEDIATOR_INVITATION": "https://m.example/?_oob=e30"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Mediator.Enabled || c.Mediator.Policy != "allow-list" || c.Mediator.QuotaMessages != 5 || !c.Mediator.Relay ||
		c.MediationClient.Version != "2.0" || c.MediationClient.Invitation != "https://m.example/?_oob=e30" {
		t.Fatalf("settings %+v %+v", c.Mediator, c.MediationClient)
	}
	c, err = Load([]string{"--mediator", "true", "--mediator-policy", "invitation"}, env(nil), io.Discard)
	if err != nil || !c.Mediator.Enabled || c.Mediator.Policy != "invitation" {
		t.Fatalf("flags: %v %+v", err, c.Mediator)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--mediator", "maybe"}, nil, "--mediator"},
		{[]string{"--mediator-policy", "everyone"}, nil, "mediator.policy"},
		{[]string{"--mediator", "true", "--mediator-policy", "allow-list"}, nil, "mediator.allow_list"},
		{nil, map[string]string{"AGENTD_MEDIATOR": "yes please"}, "AGENTD_MEDIATOR"},
	} {
		_, err := Load(tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want one naming %s", tc.args, tc.env, err, tc.want)
		}
	}
	for yaml, want := range map[string]string{
		"mediator:\n  message_ttl: 1s\n":          "mediator.message_ttl",
		"mediator:\n  max_message_bytes: 10\n":    "mediator.max_message_bytes",
		"mediator:\n  max_attachments: 0\n":       "mediator.max_attachments",
		"mediator:\n  allow_list: [alice]\n":      "mediator.allow_list",
		"mediation_client:\n  version: \"1.0\"\n": "mediation_client.version",
		"mediator:\n  quota_bytes: -1\n":          "quota",
	} {
		f := filepath.Join(t.TempDir(), "bad.yaml")
		os.WriteFile(f, []byte(yaml), 0o600)
		if _, err := Load([]string{"--config", f}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one naming %s", yaml, err, want)
		}
	}
}
