package mediation

import (
	"context"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/did/didtest"
	"github.com/agentd/agentd/agent/keys"
)

// TestGrantToChecksTheDID: the operator's grant refuses DIDs that are not
// well formed for their method (resolving did:key and did:peer offline),
// with e.p.msg, and records nothing for them.
func TestGrantToChecksTheDID(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, Config{Policy: PolicyAllowList})
	k, err := keys.Generate(keys.Ed25519, "")
	if err != nil {
		t.Fatal(err)
	}
	good := []string{didtest.NewPeer2(t).DID, did.KeyDID(k.PublicKey), "did:web:example.org", "did:web:example.org:users:alice", alice}
	for _, id := range good {
		if _, err := h.m.GrantTo(ctx, id); err != nil {
			t.Errorf("GrantTo(%.60s): %v", id, err)
		}
	}
	for _, id := range []string{
		"did:peer:2.Egarbage",
		"did:peer:2",
		"did:peer:9xyz",
		"did:peer:0zNotAKey",
		"did:key:z6MkNOPE",
		"did:key:garbage",
		"did:web:exa mple.org",
		"did:web:-bad-.example..org",
		"not-a-did",
		"did:",
		"did:example:" + strings.Repeat("a", 5000),
	} {
		_, err := h.m.GrantTo(ctx, id)
		if err == nil || agent.ErrorCode(err) != agent.CodeMsg || agent.ErrorComment(err) == "" {
			t.Errorf("GrantTo(%.40q): %v, want an e.p.msg refusal with a reason", id, err)
		}
		if g := h.m.Registry().Grant(id); g.State != "" {
			t.Errorf("GrantTo(%.40q) was refused but recorded %+v", id, g)
		}
	}
	if got := len(h.m.Registry().Grants("", 100)); got != len(good) {
		t.Errorf("%d grants recorded, want %d", got, len(good))
	}
}
