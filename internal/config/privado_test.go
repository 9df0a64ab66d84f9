package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestPrivadoDefaultsExampleAndOverrides(t *testing.T) {
	c, err := Load([]string{"--config", "../../configs/agentd.example.yaml"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d := Default().Privado; c.Privado != d {
		t.Errorf("the example's privado section differs from the defaults:\n%+v\n%+v", c.Privado, d)
	}
	c, err = Load([]string{"--privado-consent-ttl", "2h"}, env(map[string]string{"AGENTD_PRIVADO": "true",
		"AGENTD_PRIVADO_BASE_URL": "https://id.example"}), io.Discard)
	if err != nil || c.Privado.ConsentTTL != 2*time.Hour || !c.Privado.Enabled || c.Privado.BaseURL != "https://id.example" {
		t.Fatalf("overrides: %+v %v", c.Privado, err)
	}
	for _, bad := range [][]string{{"--privado-consent-ttl", "10s"}, {"--privado-base-url", "ftp://x"}, {"--privado-mail-template", "/does/not/exist"}} {
		if _, err := Load(bad, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "privado.") {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
