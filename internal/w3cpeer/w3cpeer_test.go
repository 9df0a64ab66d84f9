package w3cpeer

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/w3cvc"
)

type party struct {
	DID    string
	Signer w3cvc.Signer
}

func newParty(t *testing.T) party {
	t.Helper()
	k, err := keys.Generate(keys.Ed25519, "")
	if err != nil {
		t.Fatal(err)
	}
	d := did.KeyDID(k.PublicKey)
	k.ID = d + "#" + k.PublicKey.Multikey()
	return party{DID: d, Signer: w3cvc.KeySigner(d, k)}
}

func verifier() *w3cvc.Verifier {
	return w3cvc.NewVerifier(w3cvc.VerifierConfig{Resolver: did.NewDefaultRegistry(nil, nil)})
}

func credential(t *testing.T, iss, holder party, ldp bool, claims map[string]any) *w3cvc.Credential {
	t.Helper()
	subj := map[string]any{"id": holder.DID}
	for k, v := range claims {
		subj[k] = v
	}
	vc := map[string]any{
		"@context":          []any{w3cvc.ContextV1, map[string]any{"@vocab": "https://example.org/vocab#"}},
		"id":                "urn:uuid:" + strings.ReplaceAll(t.Name(), "/", "-"),
		"type":              []any{"VerifiableCredential", "InteropCredential"},
		"credentialSubject": subj,
	}
	issue := w3cvc.IssueJWT
	if ldp {
		issue = w3cvc.IssueLDP
	}
	raw, err := issue(vc, iss.Signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := w3cvc.ParseCredential(raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDidJwtVcVerifiesOurJWTs: did-jwt-vc accepts our VC-JWTs and VP-JWTs
// (did:key, EdDSA) and refuses a wrong challenge and a tampered JWT.
func TestDidJwtVcVerifiesOurJWTs(t *testing.T) {
	peer := Start(t)
	iss, holder := newParty(t), newParty(t)
	c := credential(t, iss, holder, false, map[string]any{"name": "Alice"})
	got, err := peer.VerifyCredential(string(c.Raw))
	if err != nil || got != iss.DID {
		t.Fatalf("did-jwt-vc on our VC: issuer %q, %v", got, err)
	}
	vp, err := w3cvc.Present([]*w3cvc.Credential{c}, holder.Signer, w3cvc.FormatJWTVP, "nonce-7", "verifier.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	h, n, err := peer.VerifyPresentation(string(vp), "nonce-7", "verifier.example")
	if err != nil || h != holder.DID || n != 1 {
		t.Fatalf("did-jwt-vc on our VP: holder %q, %d credentials, %v", h, n, err)
	}
	if _, _, err := peer.VerifyPresentation(string(vp), "nonce-8", "verifier.example"); err == nil {
		t.Fatal("did-jwt-vc accepted our VP with another challenge")
	}
	parts := strings.Split(string(c.Raw), ".")
	parts[2] = strings.Repeat("A", len(parts[2]))
	if _, err := peer.VerifyCredential(strings.Join(parts, ".")); err == nil {
		t.Fatal("did-jwt-vc accepted a broken signature")
	}
}

// TestWeVerifyDidJwtVc: our verifier accepts did-jwt-vc's VC-JWTs and
// VP-JWTs and refuses expired ones and wrong challenges.
func TestWeVerifyDidJwtVc(t *testing.T) {
	peer := Start(t)
	v := verifier()
	jwt, issuer, err := peer.Issue("did:example:alice", map[string]any{"name": "Alice", "age": 30}, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.VerifyCredential(context.Background(), []byte(jwt))
	if err != nil {
		t.Fatalf("our verifier on did-jwt-vc's VC: %v", err)
	}
	if c.Issuer != issuer || c.Subject != "did:example:alice" || c.Document["credentialSubject"].(map[string]any)["age"] != float64(30) {
		t.Fatalf("credential %+v", c)
	}
	expired, _, err := peer.Issue("did:example:alice", map[string]any{"name": "Alice"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyCredential(context.Background(), []byte(expired)); w3cvc.ReasonOf(err) != w3cvc.ReasonExpired {
		t.Fatalf("expired did-jwt-vc VC: %v", err)
	}
	vp, holder, err := peer.Present([]string{jwt}, "nonce-9", "verifier.example")
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.VerifyPresentation(context.Background(), []byte(vp), w3cvc.PresentationCheck{Challenge: "nonce-9", Domain: "verifier.example"})
	if err != nil {
		t.Fatalf("our verifier on did-jwt-vc's VP: %v", err)
	}
	if p.Holder != holder || len(p.Credentials) != 1 || p.Credentials[0].Issuer != issuer {
		t.Fatalf("presentation %+v", p)
	}
	_, err = v.VerifyPresentation(context.Background(), []byte(vp), w3cvc.PresentationCheck{Challenge: "nonce-10"})
	if w3cvc.ReasonOf(err) != w3cvc.ReasonChallenge {
		t.Fatalf("wrong challenge: %v", err)
	}
}

func sp(s string) *string { return &s }

// negotiation asks for an adult (age >= 18, integer) with a name starting
// with A, and a licence in {B, C}; pick says one of the two suffices.
func negotiation(pick bool) w3cvc.Negotiation {
	paths := func(name string) []string {
		return []string{"$.credentialSubject." + name, "$.vc.credentialSubject." + name}
	}
	n := w3cvc.Negotiation{AttributeGroups: []w3cvc.AttributeGroup{
		{Referent: "person", Attributes: []w3cvc.Attribute{
			{AttributePaths: paths("age"), ValueRestrictions: &w3cvc.ValueRestrictions{DataFormat: sp("INTEGER"), GreaterThanOrEqual: sp("18")}},
			{AttributePaths: paths("name"), ValueRestrictions: &w3cvc.ValueRestrictions{DataFormat: sp("STRING"), Pattern: sp("^A")}},
		}},
		{Referent: "licence", Attributes: []w3cvc.Attribute{
			{AttributePaths: paths("licence"), ValueRestrictions: &w3cvc.ValueRestrictions{InSet: []string{"B", "C"}}},
		}},
	}}
	if pick {
		n.SubmissionRequirementJSONs = []string{`{"rule":"pick","count":1,"from_nested":[{"rule":"all","from":"person"},{"rule":"all","from":"licence"}]}`}
	}
	return n
}

// TestPEXAgrees: for our definitions (from DefinitionFromNegotiation) and
// several wallets, @sphereon/pex finds the required credentials present
// exactly when Match and BuildSubmission do, and accepts the submissions
// of our presentations exactly when EvaluateSubmission does.
func TestPEXAgrees(t *testing.T) {
	peer := Start(t)
	iss, holder := newParty(t), newParty(t)
	v := verifier()
	alice := credential(t, iss, holder, false, map[string]any{"age": 30, "name": "Ann"})
	minor := credential(t, iss, holder, true, map[string]any{"age": 12, "name": "Abe"})
	bob := credential(t, iss, holder, true, map[string]any{"age": 40, "name": "Bob"})
	licB := credential(t, iss, holder, true, map[string]any{"licence": "B"})
	licA := credential(t, iss, holder, false, map[string]any{"licence": "A"})
	wallets := map[string][]*w3cvc.Credential{
		"alice+licB": {alice, licB},
		"alice+licA": {alice, licA},
		"minor+bob":  {minor, bob},
		"licB":       {licB},
		"all":        {minor, bob, licA, alice, licB},
		"empty":      {},
	}
	for _, pick := range []bool{false, true} {
		def, err := w3cvc.DefinitionFromNegotiation(negotiation(pick))
		if err != nil {
			t.Fatal(err)
		}
		defJSON := json.RawMessage(mustJSON(t, def))
		for name, wallet := range wallets {
			matches := w3cvc.Match(def, wallet)
			chosen := map[string]*w3cvc.Credential{}
			for id, idx := range matches {
				if len(idx) > 0 && (!pick || len(chosen) == 0) {
					chosen[id] = wallet[idx[0]]
				}
			}
			creds, sub, ourErr := w3cvc.BuildSubmission(def, chosen)
			if pick && ourErr != nil && len(chosen) == 1 {
				t.Fatalf("%s: %v", name, ourErr)
			}
			raws := make([]any, len(wallet))
			for i, c := range wallet {
				raws[i] = rawValue(t, c)
			}
			ev, err := peer.EvaluateCredentials(defJSON, raws)
			if err != nil {
				t.Fatalf("pex on %s: %v", name, err)
			}
			pexOK := ev.AreRequiredCredentialsPresent != "error"
			if pexOK != (ourErr == nil) {
				t.Fatalf("pick=%v wallet %s: pex says %s %v, we say %v (matches %v)", pick, name, ev.AreRequiredCredentialsPresent, ev.Errors, ourErr, matches)
			}
			if ourErr != nil {
				continue
			}
			// Our presentation's submission, judged by both.
			for _, format := range []string{w3cvc.FormatJWTVP, w3cvc.FormatLDPVP} {
				if format == w3cvc.FormatLDPVP && hasJWT(creds) {
					continue
				}
				vp, err := w3cvc.Present(creds, holder.Signer, format, "c", "", sub)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := v.VerifyPresentation(context.Background(), vp, w3cvc.PresentationCheck{Challenge: "c", Definition: def}); err != nil {
					t.Fatalf("pick=%v %s %s: our verifier: %v", pick, name, format, err)
				}
				ev, err := peer.EvaluatePresentation(defJSON, rawPresentation(t, vp))
				if err != nil {
					t.Fatalf("pex on our %s: %v", format, err)
				}
				if ev.AreRequiredCredentialsPresent == "error" {
					t.Fatalf("pick=%v %s: pex refuses our %s submission: %v", pick, name, format, ev.Errors)
				}
			}
		}
	}
	// A submission both refuse: the minor's credential for "person".
	def, err := w3cvc.DefinitionFromNegotiation(negotiation(false))
	if err != nil {
		t.Fatal(err)
	}
	sub := &w3cvc.Submission{ID: "s1", DefinitionID: def.ID, DescriptorMap: []w3cvc.Descriptor{
		{ID: "person", Format: w3cvc.FormatLDPVC, Path: "$.verifiableCredential[0]"},
		{ID: "licence", Format: w3cvc.FormatLDPVC, Path: "$.verifiableCredential[1]"},
	}}
	vp, err := w3cvc.Present([]*w3cvc.Credential{minor, licB}, holder.Signer, w3cvc.FormatLDPVP, "c", "", sub)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyPresentation(context.Background(), vp, w3cvc.PresentationCheck{Challenge: "c", Definition: def})
	if w3cvc.ReasonOf(err) != w3cvc.ReasonSubmission {
		t.Fatalf("our verifier on the minor's submission: %v", err)
	}
	ev, err := peer.EvaluatePresentation(json.RawMessage(mustJSON(t, def)), rawPresentation(t, vp))
	if err != nil {
		t.Fatal(err)
	}
	if ev.AreRequiredCredentialsPresent != "error" {
		t.Fatalf("pex accepts the minor's submission: %+v", ev)
	}
}

func hasJWT(cs []*w3cvc.Credential) bool {
	for _, c := range cs {
		if c.Format == w3cvc.FormatJWTVC {
			return true
		}
	}
	return false
}

// rawValue is a credential as pex takes it: a JWT string or a JSON object.
func rawValue(t *testing.T, c *w3cvc.Credential) any {
	if c.Format == w3cvc.FormatJWTVC {
		return string(c.Raw)
	}
	return json.RawMessage(c.Raw)
}

func rawPresentation(t *testing.T, vp []byte) any {
	if len(vp) > 0 && vp[0] == '{' {
		return json.RawMessage(vp)
	}
	return string(vp)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
