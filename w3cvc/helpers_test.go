package w3cvc

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
)

// party is a DID with its signing key.
type party struct {
	DID    string
	Key    keys.PrivateKey
	Signer Signer // assertionMethod key
	Auth   Signer // authentication key (the same key for did:key)
}

// newKeyParty makes a did:key party on curve c.
func newKeyParty(t testing.TB, c keys.Curve) *party {
	t.Helper()
	k, err := keys.Generate(c, "")
	if err != nil {
		t.Fatal(err)
	}
	d := did.KeyDID(k.PublicKey)
	k.ID = d + "#" + k.PublicKey.Multikey()
	return &party{DID: d, Key: k, Signer: KeySigner(d, k), Auth: KeySigner(d, k)}
}

// newPeerParty makes a did:peer:2 party whose Ed25519 key serves assertion
// and authentication.
func newPeerParty(t testing.TB) *party {
	t.Helper()
	k, err := keys.Generate(keys.Ed25519, "")
	if err != nil {
		t.Fatal(err)
	}
	id, err := did.NewPeer2Keys([]did.PeerKey{
		{Purpose: did.PurposeAssertion, Key: k.PublicKey},
		{Purpose: did.PurposeAuthentication, Key: k.PublicKey},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := did.ResolvePeer2(id)
	if err != nil {
		t.Fatal(err)
	}
	am, err := doc.AssertionMethod()
	if err != nil || len(am) == 0 {
		t.Fatalf("did:peer:2 has no assertion key: %v", err)
	}
	au, err := doc.Authentication()
	if err != nil || len(au) == 0 {
		t.Fatalf("did:peer:2 has no authentication key: %v", err)
	}
	auth := k
	k.ID, auth.ID = am[0].ID, au[0].ID
	return &party{DID: id, Key: k, Signer: KeySigner(id, k), Auth: KeySigner(id, auth)}
}

func newTestVerifier(t testing.TB, cfg VerifierConfig) *Verifier {
	t.Helper()
	if cfg.Resolver == nil {
		cfg.Resolver = did.NewDefaultRegistry(nil, nil)
	}
	return NewVerifier(cfg)
}

// sampleVC is a VCDM 1.1 credential using the examples context.
func sampleVC(subject string) map[string]any {
	return map[string]any{
		"@context":     []any{ContextV1, ContextExamplesV1, map[string]any{"age": "https://example.org/examples#age"}},
		"id":           "urn:uuid:3978344f-8596-4c3a-a978-8fcaba3903c5",
		"type":         []any{"VerifiableCredential", "UniversityDegreeCredential"},
		"issuanceDate": "2024-01-01T00:00:00Z",
		"credentialSubject": map[string]any{
			"id":     subject,
			"degree": map[string]any{"type": "BachelorDegree", "name": "Bachelor of Science and Arts"},
			"age":    float64(34),
			"name":   "Alice",
		},
	}
}

func mustReason(t *testing.T, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want reason %q", reason)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *w3cvc.Error", err)
	}
	if e.Reason != reason {
		t.Fatalf("reason %q (%v), want %q", e.Reason, err, reason)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ctx() context.Context { return context.Background() }

// at returns a clock stopped at s (RFC 3339).
func at(s string) func() time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return func() time.Time { return t }
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
