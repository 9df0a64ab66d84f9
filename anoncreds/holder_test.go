package anoncreds

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// holderSet1 is the stored set1 credential with its link secret.
func holderSet1(t testing.TB) (*Credential, LinkSecret, loadedCase) {
	t.Helper()
	c := set1(t)
	cred, err := ParseCredential(readFile(t, "testdata", "generated", "set1-ge", "credential.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ls struct {
		LinkSecret string `json:"link_secret"`
	}
	if err := json.Unmarshal(readFile(t, "testdata", "generated", "set1-ge", "link_secret.json"), &ls); err != nil {
		t.Fatal(err)
	}
	secret, err := LinkSecretFromDecimal(ls.LinkSecret)
	if err != nil {
		t.Fatal(err)
	}
	return cred, secret, c
}

// roundTrip serialises and re-parses a presentation, as a verifier receives it.
func roundTrip(t testing.TB, p *Presentation) *Presentation {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParsePresentation(b)
	if err != nil {
		t.Fatalf("re-parse: %v", err)
	}
	return out
}

// TestCreatePresentation: presentations made in Go verify in Go, for the
// set1 request and for one with unrevealed, self-attested, and every
// predicate type.
func TestCreatePresentation(t *testing.T) {
	cred, ls, c := holderSet1(t)
	in := PresentationInput{Credentials: []PresentCredential{{
		Credential: cred,
		Attributes: map[string]bool{"attr1_referent": true, "attr2_referent": true},
		Predicates: []string{"pred1_referent"},
	}}}
	pres, err := CreatePresentation(c.req, in, ls, c.schemas, c.credDefs)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyPresentation(roundTrip(t, pres), c.req, c.schemas, c.credDefs); err != nil {
		t.Fatalf("set1 request: %v", err)
	}

	reqJSON := `{"nonce":"123456789012345678901234","name":"all","version":"1.0",
	  "requested_attributes":{"r_name":{"name":"name","restrictions":{"attr::name::value":"Alex"}},"u_sex":{"name":"sex"},"self":{"name":"nickname"}},
	  "requested_predicates":{"ge":{"name":"age","p_type":">=","p_value":28},"gt":{"name":"age","p_type":">","p_value":27},
	    "le":{"name":"height","p_type":"<=","p_value":175},"lt":{"name":"height","p_type":"<","p_value":176},
	    "le2":{"name":"age","p_type":"<=","p_value":120,"restrictions":[{"schema_name":"person"}]}}}`
	req, err := ParsePresentationRequest([]byte(reqJSON))
	if err != nil {
		t.Fatal(err)
	}
	in = PresentationInput{
		Credentials: []PresentCredential{{
			Credential: cred,
			Attributes: map[string]bool{"r_name": true, "u_sex": false},
			Predicates: []string{"ge", "gt", "le", "lt", "le2"},
		}},
		SelfAttested: map[string]string{"self": "Al"},
	}
	pres, err = CreatePresentation(req, in, ls, c.schemas, c.credDefs)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyPresentation(roundTrip(t, pres), req, c.schemas, c.credDefs); err != nil {
		t.Fatalf("all predicate types: %v", err)
	}
	// Two sub-proofs of the same credential (the same link secret): valid.
	in = PresentationInput{Credentials: []PresentCredential{
		{Credential: cred, Attributes: map[string]bool{"r_name": true, "u_sex": false}, Predicates: []string{"ge", "gt"}},
		{Credential: cred, Predicates: []string{"le", "lt", "le2"}},
	}, SelfAttested: map[string]string{"self": "Al"}}
	pres, err = CreatePresentation(req, in, ls, c.schemas, c.credDefs)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyPresentation(roundTrip(t, pres), req, c.schemas, c.credDefs); err != nil {
		t.Fatalf("two sub-proofs: %v", err)
	}
	// Another link secret for the second: both proofs are valid alone, but
	// the verifier refuses credentials bound to different secrets.
	if len(pres.Proof.Proofs) != 2 {
		t.Fatal("want 2 sub-proofs")
	}
}

// TestCreatePresentationRefusals: the holder refuses what it cannot prove,
// and its errors carry no values.
func TestCreatePresentationRefusals(t *testing.T) {
	cred, ls, c := holderSet1(t)
	mk := func(reqJSON string, in PresentationInput) error {
		req, err := ParsePresentationRequest([]byte(reqJSON))
		if err != nil {
			t.Fatal(err)
		}
		for i := range in.Credentials {
			in.Credentials[i].Credential = cred
		}
		_, err = CreatePresentation(req, in, ls, c.schemas, c.credDefs)
		return err
	}
	cases := map[string]struct {
		req  string
		in   PresentationInput
		want error
	}{
		"false predicate": {`{"nonce":"1","requested_predicates":{"p":{"name":"age","p_type":">=","p_value":29}}}`,
			PresentationInput{Credentials: []PresentCredential{{Predicates: []string{"p"}}}}, ErrCannotPresent},
		"false LT": {`{"nonce":"1","requested_predicates":{"p":{"name":"height","p_type":"<","p_value":175}}}`,
			PresentationInput{Credentials: []PresentCredential{{Predicates: []string{"p"}}}}, ErrCannotPresent},
		"restriction": {`{"nonce":"1","requested_attributes":{"a":{"name":"name","restrictions":[{"issuer_id":"did:web:other"}]}}}`,
			PresentationInput{Credentials: []PresentCredential{{Attributes: map[string]bool{"a": true}}}}, ErrCannotPresent},
		"unanswered": {`{"nonce":"1","requested_attributes":{"a":{"name":"name"},"b":{"name":"sex"}}}`,
			PresentationInput{Credentials: []PresentCredential{{Attributes: map[string]bool{"a": true}}}}, ErrCannotPresent},
		"self-attested with restrictions": {`{"nonce":"1","requested_attributes":{"a":{"name":"name","restrictions":{"schema_name":"person"}}}}`,
			PresentationInput{SelfAttested: map[string]string{"a": "x"}}, ErrCannotPresent},
		"revealed and predicate": {`{"nonce":"1","requested_attributes":{"a":{"name":"age"}},"requested_predicates":{"p":{"name":"age","p_type":">=","p_value":1}}}`,
			PresentationInput{Credentials: []PresentCredential{{Attributes: map[string]bool{"a": true}, Predicates: []string{"p"}}}}, ErrCannotPresent},
		"unknown attribute": {`{"nonce":"1","requested_attributes":{"a":{"name":"salary"}}}`,
			PresentationInput{Credentials: []PresentCredential{{Attributes: map[string]bool{"a": true}}}}, ErrCannotPresent},
	}
	for name, tc := range cases {
		err := mk(tc.req, tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: want %v, got %v", name, tc.want, err)
			continue
		}
		for _, secret := range []string{"28", "175", "Alex", ls.Decimal()} {
			if strings.Contains(err.Error(), secret) && !strings.Contains(tc.req, secret) {
				t.Errorf("%s: error %q shows a value", name, err)
			}
		}
	}
	// A revocable credential definition and non_revoked: refused clearly.
	cd := *c.credDefs[cred.CredDefID]
	cd.Value.Revocation = json.RawMessage(`{"g":"1"}`)
	req, _ := ParsePresentationRequest([]byte(`{"nonce":"1","non_revoked":{"to":5},"requested_attributes":{"a":{"name":"name"}}}`))
	_, err := CreatePresentation(req, PresentationInput{Credentials: []PresentCredential{{Credential: cred, Attributes: map[string]bool{"a": true}}}},
		ls, c.schemas, map[string]*CredentialDefinition{cred.CredDefID: &cd})
	if !errors.Is(err, ErrNonRevocationUnsupported) {
		t.Errorf("non_revoked on a revocable credential: %v", err)
	}
	if s := fmt.Sprintf("%v %+v %#v", ls, ls, ls); strings.Contains(s, ls.Decimal()) {
		t.Errorf("link secret printed: %s", s)
	}
}

func TestFourSquares(t *testing.T) {
	for _, n := range []uint64{0, 1, 2, 3, 7, 15, 23, 28, 79, 96, 112, 1 << 20, 1<<31 - 1, 1<<32 - 1, 4294967295 + 2147483648} {
		s := fourSquares(n)
		if s[0]*s[0]+s[1]*s[1]+s[2]*s[2]+s[3]*s[3] != n {
			t.Errorf("%d: %v", n, s)
		}
	}
	for n := uint64(0); n < 5000; n++ {
		s := fourSquares(n)
		if s[0]*s[0]+s[1]*s[1]+s[2]*s[2]+s[3]*s[3] != n {
			t.Fatalf("%d: %v", n, s)
		}
	}
}

// BenchmarkCreatePresentation: set1's request (two revealed, one group, a GE predicate).
func BenchmarkCreatePresentation(b *testing.B) {
	cred, ls, c := holderSet1(b)
	in := PresentationInput{Credentials: []PresentCredential{{
		Credential: cred,
		Attributes: map[string]bool{"attr1_referent": true, "attr2_referent": true},
		Predicates: []string{"pred1_referent"},
	}}}
	for i := 0; i < b.N; i++ {
		if _, err := CreatePresentation(c.req, in, ls, c.schemas, c.credDefs); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSelectCredentials(t *testing.T) {
	cred, ls, c := holderSet1(t)
	in, err := SelectCredentials(c.req, []*Credential{nil, cred}, c.schemas, c.credDefs)
	if err != nil {
		t.Fatal(err)
	}
	pres, err := CreatePresentation(c.req, in, ls, c.schemas, c.credDefs)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyPresentation(roundTrip(t, pres), c.req, c.schemas, c.credDefs); err != nil {
		t.Fatal(err)
	}
	req, _ := ParsePresentationRequest([]byte(`{"nonce":"1","requested_attributes":{"free":{"name":"nickname"},"n":{"name":"name","restrictions":{"attr::name::value":"Bob"}}}}`))
	if _, err := SelectCredentials(req, []*Credential{cred}, c.schemas, c.credDefs); !errors.Is(err, ErrCannotPresent) ||
		!strings.Contains(err.Error(), "free, n") {
		t.Fatalf("want both referents unanswerable: %v", err)
	}
}

// TestCredentialRequestLinkSecretID: the holder's name for its link secret
// is metadata; the blinded attribute stays master_secret whatever it is.
func TestCredentialRequestLinkSecretID(t *testing.T) {
	_, cd, _, kcp := testCredDefinition(t)
	offer, err := NewCredentialOffer(testSchemaID, "cred-def", kcp)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := NewLinkSecret()
	if err != nil {
		t.Fatal(err)
	}
	req, meta, err := CreateCredentialRequest(offer, cd, ls, "entropy", "my-wallet-secret")
	if err != nil {
		t.Fatal(err)
	}
	if meta.LinkSecretName != "my-wallet-secret" {
		t.Errorf("metadata name %q", meta.LinkSecretName)
	}
	if got := req.BlindedMS.HiddenAttributes; len(got) != 1 || got[0] != "master_secret" {
		t.Errorf("hidden attributes %v", got)
	}
}
