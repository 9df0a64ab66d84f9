package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// anvilYAML is the configuration of a verifier reading a local anvil chain
// (the README's example).
const anvilYAML = `
iden3:
  verifier_did: did:iden3:polygon:amoy:xCRp75DgAdS63W65fmXHz6p9DwdonuRU9e46DifhX
  resolvers:
    - chain: polygon
      network: amoy
      rpc_url: http://127.0.0.1:8545
      state_contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3"
      chain_id: 31337
  schemas:
    allow: [https://raw.githubusercontent.com/iden3/claim-schema-vocab/]
  webhook:
    url: https://ops.example/hooks/iden3
`

func TestIden3Config(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agentd.yaml")
	os.WriteFile(file, []byte(anvilYAML), 0o600)
	c, err := Load([]string{"--config", file}, env(map[string]string{"AGENTD_IDEN3_WEBHOOK_SECRET": "0123456789abcdef0123"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Iden3.Resolvers[0]
	if !c.Iden3.Enabled() || r.Chain != "polygon" || r.Network != "amoy" || r.ChainID != 31337 || r.RPCURL != "http://127.0.0.1:8545" ||
		c.Iden3.Webhook.Secret != "0123456789abcdef0123" || c.Iden3.RPCTimeout <= 0 {
		t.Fatalf("iden3 %+v", c.Iden3)
	}
	// Without the secret the webhook is refused.
	if _, err := Load([]string{"--config", file}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "iden3.webhook") {
		t.Fatalf("webhook without secret: %v", err)
	}
	if Default().Iden3.Enabled() {
		t.Fatal("iden3 must be off by default")
	}
}

func TestIden3ConfigErrors(t *testing.T) {
	ok := func() Config {
		c := Default()
		c.Iden3.VerifierDID = "did:iden3:polygon:amoy:xCRp75DgAdS63W65fmXHz6p9DwdonuRU9e46DifhX"
		c.Iden3.Resolvers = []Iden3Resolver{{Chain: "polygon", Network: "amoy", RPCURL: "http://127.0.0.1:8545",
			StateContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3", ChainID: 31337}}
		return c
	}
	if err := ok().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mut  func(*Config)
		want string
	}{
		"rpc url":      {func(c *Config) { c.Iden3.Resolvers[0].RPCURL = "127.0.0.1:8545" }, "rpc_url"},
		"contract":     {func(c *Config) { c.Iden3.Resolvers[0].StateContract = "0x12" }, "state_contract"},
		"no did":       {func(c *Config) { c.Iden3.VerifierDID = "" }, "no verifier DID"},
		"duplicate":    {func(c *Config) { c.Iden3.Resolvers = append(c.Iden3.Resolvers, c.Iden3.Resolvers[0]) }, "second resolver"},
		"flag":         {func(c *Config) { c.Iden3.Resolvers[0].NetworkFlag = 300 }, "network_flag"},
		"flag no id":   {func(c *Config) { c.Iden3.Resolvers[0].NetworkFlag, c.Iden3.Resolvers[0].ChainID = 0x19, 0 }, "chain_id"},
		"allow":        {func(c *Config) { c.Iden3.Schemas.Allow = []string{"raw.githubusercontent.com"} }, "schemas.allow"},
		"short secret": {func(c *Config) { c.Iden3.Webhook = Iden3Webhook{URL: "https://x.example/h", Secret: "short"} }, "at least 16"},
	} {
		c := ok()
		tc.mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
