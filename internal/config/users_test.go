package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestUsersDefaultsExampleAndOverrides(t *testing.T) {
	c, err := Load([]string{"--config", "../../configs/agentd.example.yaml"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := Default().Users
	if d.ConfirmTTL != 15*time.Minute || !d.Enabled || d.MailTemplate != "" || d.MaxNameLength != 100 {
		t.Errorf("defaults: %+v", d)
	}
	if c.Users != d {
		t.Errorf("the example's users section differs from the defaults: %+v", c.Users)
	}
	c, err = Load([]string{"--users-confirm-ttl", "30m"}, env(map[string]string{"AGENTD_USERS": "false",
		"AGENTD_USERS_BASE_URL": "https://id.example"}), io.Discard)
	if err != nil || c.Users.ConfirmTTL != 30*time.Minute || c.Users.Enabled || c.Users.BaseURL != "https://id.example" {
		t.Fatalf("overrides: %+v %v", c.Users, err)
	}
	for _, bad := range []struct{ args []string }{
		{[]string{"--users-confirm-ttl", "10s"}},
		{[]string{"--users-base-url", "ftp://x"}},
		{[]string{"--users-mail-template", "/does/not/exist"}},
	} {
		if _, err := Load(bad.args, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "users.") {
			t.Errorf("%v: %v", bad.args, err)
		}
	}
}
