package anoncreds

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

const (
	testIssuerID = "did:web:issuer.example"
	testSchemaID = "did:web:issuer.example/anoncreds/schema/person/1.0"
	testCredDef  = "did:web:issuer.example/anoncreds/creddef/person/go"
)

// testKey is the stored TEST issuer key (testdata/issuer): its primes only,
// to skip safe-prime generation; every test draws fresh S, Z and R.
func testKey(t testing.TB) *CredentialDefinitionPrivate {
	t.Helper()
	k, err := ParseCredentialDefinitionPrivate(readFile(t, "testdata", "issuer", "test_key_cred_def_private.json"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func personSchema(t testing.TB) *Schema {
	t.Helper()
	s, err := NewSchema(testIssuerID, "person", "1.0", []string{"name", "age", "sex", "height"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testCredDefinition makes a credential definition on the test key.
func testCredDefinition(t testing.TB) (*Schema, *CredentialDefinition, *CredentialDefinitionPrivate, *KeyCorrectnessProof) {
	t.Helper()
	s := personSchema(t)
	cd, priv, kcp, err := NewCredentialDefinitionContext(context.Background(), testIssuerID, testSchemaID, s, "go", CredentialDefinitionConfig{Primes: testKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s, cd, priv, kcp
}

var personValues = map[string]string{"name": "Alex", "age": "28", "sex": "F", "height": "-7"}

// issueAndPresent runs the whole flow with the Go holder: offer, request
// (the holder checks the key-correctness proof), issuance, processing (the
// holder checks the signature-correctness proof), a presentation with a
// revealed value and predicates, verified in Go.
func issueAndPresent(t testing.TB, s *Schema, cd *CredentialDefinition, priv *CredentialDefinitionPrivate, kcp *KeyCorrectnessProof, credDefID string) {
	t.Helper()
	offer, err := NewCredentialOffer(testSchemaID, credDefID, kcp)
	if err != nil {
		t.Fatal(err)
	}
	offer = jsonRoundTrip(t, offer)
	ls, err := NewLinkSecret()
	if err != nil {
		t.Fatal(err)
	}
	req, meta, err := CreateCredentialRequest(offer, cd, ls, "holder-entropy", "master_secret")
	if err != nil {
		t.Fatalf("holder refuses the offer: %v", err)
	}
	issued, err := IssueCredential(cd, priv, offer, jsonRoundTrip(t, req), personValues)
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	b, _ := json.Marshal(issued)
	parsed, err := ParseCredential(b)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := ProcessCredential(parsed, meta, ls, cd)
	if err != nil {
		t.Fatalf("holder refuses the credential: %v", err)
	}
	pr, err := ParsePresentationRequest([]byte(`{"nonce":"1234567890","name":"p","version":"1.0",
	  "requested_attributes":{"n":{"name":"name","restrictions":{"cred_def_id":"` + credDefID + `"}},"s":{"name":"sex"}},
	  "requested_predicates":{"a":{"name":"age","p_type":">=","p_value":18},"h":{"name":"height","p_type":"<","p_value":0}}}`))
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string]*Schema{testSchemaID: s}
	cds := map[string]*CredentialDefinition{credDefID: cd}
	pres, err := CreatePresentation(pr, PresentationInput{Credentials: []PresentCredential{{Credential: cred,
		Attributes: map[string]bool{"n": true, "s": false}, Predicates: []string{"a", "h"}}}}, ls, schemas, cds)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyPresentation(roundTrip(t, pres), pr, schemas, cds); err != nil {
		t.Fatalf("presentation of the Go-issued credential: %v", err)
	}
}

func jsonRoundTrip[T any](t testing.TB, v *T) *T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIssueGoHolder: a definition on the test key; the Go holder accepts
// its key-correctness proof and the credential, and presents it.
func TestIssueGoHolder(t *testing.T) {
	s, cd, priv, kcp := testCredDefinition(t)
	if cd.Value.Primary.N.BitLen() != 2048 || len(cd.Value.Primary.R) != 5 || cd.Type != "CL" || cd.SchemaID != testSchemaID || cd.IssuerID != testIssuerID || cd.Tag != "go" {
		t.Fatalf("credential definition: %d-bit n, %d keys", cd.Value.Primary.N.BitLen(), len(cd.Value.Primary.R))
	}
	if err := kcp.Verify(cd); err != nil {
		t.Fatalf("key correctness proof: %v", err)
	}
	issueAndPresent(t, s, cd, priv, kcp, testCredDef)
}

// TestIssueWithAnoncredsRsKey: Go signs with the key anoncreds-rs made
// (set1-ge: its private key JSON and its definition), the Go holder
// accepts the credential.
func TestIssueWithAnoncredsRsKey(t *testing.T) {
	c := set1(t)
	priv, err := ParseCredentialDefinitionPrivate(readFile(t, "testdata", "generated", "set1-ge", "cred_def_private.json"))
	if err != nil {
		t.Fatal(err)
	}
	var kcp KeyCorrectnessProof
	if err := json.Unmarshal(readFile(t, "testdata", "generated", "set1-ge", "key_correctness_proof.json"), &kcp); err != nil {
		t.Fatal(err)
	}
	var credDefID string
	for id := range c.credDefs {
		credDefID = id
	}
	cd := c.credDefs[credDefID]
	if priv.Modulus().Cmp(&cd.Value.Primary.N.Int) != 0 {
		t.Fatal("anoncreds-rs private key does not match its definition")
	}
	var schema *Schema
	for _, s := range c.schemas {
		schema = s
	}
	offer, err := NewCredentialOffer(cd.SchemaID, credDefID, &kcp)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := NewLinkSecret()
	req, meta, err := CreateCredentialRequest(offer, cd, ls, "e", "master_secret")
	if err != nil {
		t.Fatal(err)
	}
	issued, err := IssueCredential(cd, priv, offer, req, personValues)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ProcessCredential(issued, meta, ls, cd); err != nil {
		t.Fatalf("process: %v", err)
	}
	_ = schema
}

// TestIssueRefusals: tampered requests, another offer's nonce, another
// definition, a non-residue blinded secret, wrong values, a mismatched key.
func TestIssueRefusals(t *testing.T) {
	_, cd, priv, kcp := testCredDefinition(t)
	offer, err := NewCredentialOffer(testSchemaID, testCredDef, kcp)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := NewLinkSecret()
	req, _, err := CreateCredentialRequest(offer, cd, ls, "holder", "master_secret")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := IssueCredential(cd, priv, offer, req, personValues); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	n := &cd.Value.Primary.N.Int
	mutate := func(f func(r *CredentialRequest)) *CredentialRequest {
		r := jsonRoundTrip(t, req)
		f(r)
		return r
	}
	add1 := func(b *BigInt) { b.Int.Add(&b.Int, bigOne) }
	other, err := NewCredentialOffer(testSchemaID, testCredDef, kcp) // another nonce
	if err != nil {
		t.Fatal(err)
	}
	otherDef := *offer
	otherDef.CredDefID = "did:web:issuer.example/other"
	cases := map[string]struct {
		offer *CredentialOffer
		req   *CredentialRequest
		want  error
	}{
		"c + 1":            {offer, mutate(func(r *CredentialRequest) { add1(r.BlindedMSCorrectnessProof.C) }), ErrInvalidRequest},
		"v_dash_cap + 1":   {offer, mutate(func(r *CredentialRequest) { add1(r.BlindedMSCorrectnessProof.VDashCap) }), ErrInvalidRequest},
		"m_cap + 1":        {offer, mutate(func(r *CredentialRequest) { add1(r.BlindedMSCorrectnessProof.MCaps["master_secret"]) }), ErrInvalidRequest},
		"U·S":              {offer, mutate(func(r *CredentialRequest) { u := &r.BlindedMS.U.Int; u.Mul(u, &cd.Value.Primary.S.Int).Mod(u, n) }), ErrInvalidRequest},
		"U = 0":            {offer, mutate(func(r *CredentialRequest) { r.BlindedMS.U.Int.SetInt64(0) }), ErrInvalidRequest},
		"U = n":            {offer, mutate(func(r *CredentialRequest) { r.BlindedMS.U.Int.Set(n) }), ErrInvalidRequest},
		"other nonce":      {other, req, ErrInvalidRequest},
		"other cred def":   {&otherDef, req, ErrInvalidRequest},
		"request cred def": {offer, mutate(func(r *CredentialRequest) { r.CredDefID = "x" }), ErrInvalidRequest},
		"no entropy":       {offer, mutate(func(r *CredentialRequest) { r.Entropy = "" }), ErrInvalidRequest},
		"extra hidden": {offer, mutate(func(r *CredentialRequest) {
			r.BlindedMS.HiddenAttributes = append(r.BlindedMS.HiddenAttributes, "name")
		}), ErrInvalidRequest},
		"committed": {offer, mutate(func(r *CredentialRequest) {
			r.BlindedMS.CommittedAttributes = map[string]*BigInt{"name": {Int: *big.NewInt(4)}}
		}), ErrInvalidRequest},
		"revocation part": {offer, mutate(func(r *CredentialRequest) { r.BlindedMS.UR = json.RawMessage(`"1 2"`) }), ErrNonRevocationUnsupported},
	}
	for name, tc := range cases {
		_, err := IssueCredential(cd, priv, tc.offer, tc.req, personValues)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: want %v, got %v", name, tc.want, err)
		}
	}
	// A blinded secret that is not a quadratic residue (-U) but whose proof
	// verifies (it does when the challenge is even): refused by the
	// residue check alone.
	for i := 0; ; i++ {
		bad := forgeNonResidueRequest(t, cd, offer, ls)
		if bad == nil {
			if i > 64 {
				t.Fatal("no even challenge in 64 tries")
			}
			continue
		}
		if _, err := IssueCredential(cd, priv, offer, bad, personValues); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "quadratic residue") {
			t.Fatalf("non-residue blinded secret: %v", err)
		}
		break
	}
	// Values: every attribute, no other, each once.
	for name, vals := range map[string]map[string]string{
		"missing":   {"name": "Alex", "age": "28", "sex": "F"},
		"extra":     {"name": "Alex", "age": "28", "sex": "F", "height": "1", "salary": "9"},
		"twice":     {"name": "Alex", "Name": "Al", "age": "28", "sex": "F", "height": "1"},
		"link":      {"name": "Alex", "age": "28", "sex": "F", "height": "1", "master_secret": "1"},
		"empty map": {},
	} {
		if _, err := IssueCredential(cd, priv, offer, req, vals); !errors.Is(err, ErrMalformed) {
			t.Errorf("values %s: %v", name, err)
		}
	}
	// Canonical names: "Na me" is name.
	if _, err := IssueCredential(cd, priv, offer, req, map[string]string{"Na me": "Alex", "AGE": "28", "sex": "F", "height": "1"}); err != nil {
		t.Errorf("canonical names: %v", err)
	}
	// Another key.
	other2 := &CredentialDefinitionPrivate{pPrime: priv.qPrime, qPrime: priv.pPrime}
	other2.pPrime = new(big.Int).Add(priv.pPrime, big.NewInt(2))
	if _, err := IssueCredential(cd, other2, offer, req, personValues); err == nil {
		t.Error("mismatched private key accepted")
	}
	// Revocable definition.
	rcd := *cd
	rcd.Value.Revocation = json.RawMessage(`{"g":"1"}`)
	if _, err := IssueCredential(&rcd, priv, offer, req, personValues); !errors.Is(err, ErrNonRevocationUnsupported) {
		t.Errorf("revocable definition: %v", err)
	}
}

// forgeNonResidueRequest makes a request whose U = -(S^v' R^ms) is not a
// quadratic residue, with a proof computed as for a residue: it verifies
// when the challenge is even (U^-c then equals (S^v' R^ms)^-c). nil when
// the challenge drawn is odd.
func forgeNonResidueRequest(t testing.TB, cd *CredentialDefinition, offer *CredentialOffer, ls LinkSecret) *CredentialRequest {
	k := &cd.Value.Primary
	n := &k.N.Int
	vPrime, _ := randBits(largeVPrime)
	u, _ := expProductSecret(n, &k.S.Int, vPrime, &k.R[linkSecretName].Int, ls.v)
	u.Sub(n, u)
	vTilde, _ := randBits(largeVPrimeTilde)
	mTilde, _ := randBits(largeMTilde)
	uTilde, _ := expProductSecret(n, &k.S.Int, vTilde, &k.R[linkSecretName].Int, mTilde)
	nonce, _ := parseDecimal(offer.Nonce)
	h := sha256.New()
	h.Write(u.Bytes())
	h.Write(uTilde.Bytes())
	h.Write(nonce.Bytes())
	c := new(big.Int).SetBytes(h.Sum(nil))
	if c.Bit(0) == 1 {
		return nil
	}
	resp := func(s, tl *big.Int) *BigInt {
		v := new(big.Int).Mul(c, s)
		return &BigInt{Int: *v.Add(v, tl)}
	}
	return &CredentialRequest{Entropy: "x", CredDefID: offer.CredDefID,
		BlindedMS: BlindedSecrets{U: &BigInt{Int: *u}, HiddenAttributes: []string{linkSecretName}, CommittedAttributes: map[string]*BigInt{}},
		BlindedMSCorrectnessProof: BlindedSecretsCorrectnessProof{C: &BigInt{Int: *c}, VDashCap: resp(vPrime, vTilde),
			MCaps: map[string]*BigInt{linkSecretName: resp(ls.v, mTilde)}, RCaps: map[string]*BigInt{}},
		Nonce: "5"}
}

// TestCredentialJSONForm: the issued credential has anoncreds-rs's members,
// with explicit nulls for the revocation parts.
func TestCredentialJSONForm(t *testing.T) {
	_, cd, priv, kcp := testCredDefinition(t)
	offer, _ := NewCredentialOffer(testSchemaID, testCredDef, kcp)
	ls, _ := NewLinkSecret()
	req, _, err := CreateCredentialRequest(offer, cd, ls, "h", "master_secret")
	if err != nil {
		t.Fatal(err)
	}
	cred, err := IssueCredential(cd, priv, offer, req, personValues)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cred)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"rev_reg_id", "rev_reg", "witness"} {
		if string(m[k]) != "null" {
			t.Errorf("%s = %s, want null", k, m[k])
		}
	}
	var sig struct {
		P map[string]json.RawMessage `json:"p_credential"`
		R json.RawMessage            `json:"r_credential"`
	}
	_ = json.Unmarshal(m["signature"], &sig)
	if string(sig.R) != "null" || len(sig.P) != 4 || sig.P["m_2"] == nil || sig.P["a"] == nil || sig.P["e"] == nil || sig.P["v"] == nil {
		t.Errorf("signature: %s", m["signature"])
	}
	var scp map[string]json.RawMessage
	_ = json.Unmarshal(m["signature_correctness_proof"], &scp)
	if len(scp) != 2 || scp["se"] == nil || scp["c"] == nil {
		t.Errorf("signature_correctness_proof: %s", m["signature_correctness_proof"])
	}
	if cred.Values["height"].Encoded != "-7" || cred.Values["name"].Encoded != EncodeValue("Alex") {
		t.Errorf("values: %+v", cred.Values)
	}
	e := &cred.Signature.PCredential.E.Int
	if e.BitLen() != 597 || new(big.Int).Rsh(e, 119).Cmp(new(big.Int).Lsh(bigOne, 596-119)) != 0 || !e.ProbablyPrime(10) {
		t.Errorf("e not a prime in [2^596, 2^596+2^119)")
	}
	if cred.Signature.PCredential.V.BitLen() != 2724 {
		t.Errorf("v'' has %d bits", cred.Signature.PCredential.V.BitLen())
	}
	if cred.Signature.PCredential.M2.Cmp(credentialContext("h")) != 0 {
		t.Error("m2 is not the credential context of the entropy")
	}
	// The key correctness proof and the definition in anoncreds-rs's form.
	kb, _ := json.Marshal(kcp)
	if !strings.HasPrefix(string(kb), `{"c":"`) || !strings.Contains(string(kb), `"xr_cap":[["age","`) || !strings.Contains(string(kb), `["master_secret","`) {
		t.Errorf("key correctness proof: %.200s", kb)
	}
	cb, _ := json.Marshal(cd)
	for _, k := range []string{`"schemaId":`, `"type":"CL"`, `"tag":"go"`, `"issuerId":`, `"primary":{"n":"`, `"rctxt":"`, `"master_secret":"`} {
		if !strings.Contains(string(cb), k) {
			t.Errorf("credential definition lacks %s", k)
		}
	}
	if strings.Contains(string(cb), "revocation") {
		t.Error("credential definition has a revocation member")
	}
}

// TestCredentialDefinitionPrivateRedacted: fmt never shows the key; JSON
// round-trips.
func TestCredentialDefinitionPrivateRedacted(t *testing.T) {
	k := testKey(t)
	secret := k.pPrime.String()[:40]
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %d", k, k, k, k, k), fmt.Sprintf("%v", *k), fmt.Sprintf("%+v", struct{ K *CredentialDefinitionPrivate }{k})} {
		if strings.Contains(s, secret) || strings.Contains(s, k.qPrime.String()[:40]) {
			t.Errorf("key printed: %.100s", s)
		}
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParseCredentialDefinitionPrivate(b)
	if err != nil || k2.pPrime.Cmp(k.pPrime) != 0 || k2.qPrime.Cmp(k.qPrime) != 0 {
		t.Fatalf("round trip: %v", err)
	}
	for name, bad := range map[string]string{
		"even":       `{"value":{"p_key":{"p":"` + new(big.Int).Add(k.pPrime, bigOne).String() + `","q":"` + k.qPrime.String() + `"}}}`,
		"small":      `{"value":{"p_key":{"p":"7","q":"11"}}}`,
		"missing":    `{"value":{"p_key":{"p":"` + k.pPrime.String() + `"}}}`,
		"revocation": `{"value":{"p_key":{"p":"` + k.pPrime.String() + `","q":"` + k.qPrime.String() + `"},"r_key":{"x":"1","sk":"2"}}}`,
	} {
		_, err := ParseCredentialDefinitionPrivate([]byte(bad))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error shows the key", name)
		}
	}
}

func TestNewSchema(t *testing.T) {
	attrs := func(n int) []string {
		var a []string
		for i := 0; i < n; i++ {
			a = append(a, fmt.Sprintf("attr%d", i))
		}
		return a
	}
	if _, err := NewSchema(testIssuerID, "s", "1.0", attrs(125)); err != nil {
		t.Fatalf("125 attributes: %v", err)
	}
	for name, tc := range map[string]struct {
		issuer, name, version string
		attrs                 []string
	}{
		"none":          {testIssuerID, "s", "1.0", nil},
		"126":           {testIssuerID, "s", "1.0", attrs(126)},
		"duplicate":     {testIssuerID, "s", "1.0", []string{"First Name", "firstname"}},
		"master_secret": {testIssuerID, "s", "1.0", []string{"a", "Master_Secret"}},
		"blank":         {testIssuerID, "s", "1.0", []string{"a", "  "}},
		"no issuer":     {"", "s", "1.0", []string{"a"}},
		"no name":       {testIssuerID, "", "1.0", []string{"a"}},
		"no version":    {testIssuerID, "s", "", []string{"a"}},
		"control":       {testIssuerID, "s\n", "1.0", []string{"a"}},
	} {
		if _, err := NewSchema(tc.issuer, tc.name, tc.version, tc.attrs); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	in := []string{"b", "a"}
	s, err := NewSchema(testIssuerID, "s", "1.0", in)
	if err != nil {
		t.Fatal(err)
	}
	in[0] = "changed"
	if s.AttrNames[0] != "b" {
		t.Error("attribute names not copied")
	}
	b, _ := json.Marshal(s)
	if string(b) != `{"name":"s","version":"1.0","attrNames":["b","a"],"issuerId":"did:web:issuer.example"}` {
		t.Errorf("schema JSON %s", b)
	}
	if _, _, _, err := NewCredentialDefinitionContext(context.Background(), testIssuerID, testSchemaID, s, "t", CredentialDefinitionConfig{SupportRevocation: true}); !errors.Is(err, ErrNonRevocationUnsupported) {
		t.Errorf("revocation: %v", err)
	}
}

// TestNewCredentialDefinitionFreshKey generates a real key (two 1024-bit
// safe primes, on every core) and issues with it; it logs the time.
func TestNewCredentialDefinitionFreshKey(t *testing.T) {
	s := personSchema(t)
	start := time.Now()
	cd, priv, kcp, err := NewCredentialDefinition(testIssuerID, testSchemaID, s, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("NewCredentialDefinition (fresh 2048-bit key, %d attributes, %d workers): %v", len(s.AttrNames), parallelism(), d)
	p, q := new(big.Int).Lsh(priv.pPrime, 1), new(big.Int).Lsh(priv.qPrime, 1)
	p.Add(p, bigOne)
	q.Add(q, bigOne)
	if p.BitLen() != 1024 || q.BitLen() != 1024 || !p.ProbablyPrime(20) || !q.ProbablyPrime(20) || !priv.pPrime.ProbablyPrime(20) || !priv.qPrime.ProbablyPrime(20) ||
		new(big.Int).Mul(p, q).Cmp(&cd.Value.Primary.N.Int) != 0 || cd.Value.Primary.N.BitLen() != 2048 {
		t.Fatal("the key is not two 1024-bit safe primes whose product is n")
	}
	if err := kcp.Verify(cd); err != nil {
		t.Fatal(err)
	}
	issueAndPresent(t, s, cd, priv, kcp, testCredDef)
}

// TestSignatureCorrectnessTamper: the holder refuses a credential whose
// signature or proof was changed.
func TestSignatureCorrectnessTamper(t *testing.T) {
	_, cd, priv, kcp := testCredDefinition(t)
	offer, _ := NewCredentialOffer(testSchemaID, testCredDef, kcp)
	ls, _ := NewLinkSecret()
	req, meta, _ := CreateCredentialRequest(offer, cd, ls, "h", "master_secret")
	cred, err := IssueCredential(cd, priv, offer, req, personValues)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ProcessCredential(cred, meta, ls, cd); err != nil {
		t.Fatal(err)
	}
	bad := jsonRoundTrip(t, cred)
	bad.Signature.PCredential.A.Int.Add(&bad.Signature.PCredential.A.Int, bigOne)
	if _, err := ProcessCredential(bad, meta, ls, cd); !errors.Is(err, ErrCorrectnessProof) {
		t.Errorf("A+1: %v", err)
	}
	bad = jsonRoundTrip(t, cred)
	bad.SignatureCorrectnessProof = json.RawMessage(strings.Replace(string(bad.SignatureCorrectnessProof), `"se":"`, `"se":"1`, 1))
	if _, err := ProcessCredential(bad, meta, ls, cd); !errors.Is(err, ErrCorrectnessProof) {
		t.Errorf("se tampered: %v", err)
	}
	bad = jsonRoundTrip(t, cred)
	bad.Values["age"] = AttributeValue{Raw: "29", Encoded: "29"}
	if _, err := ProcessCredential(bad, meta, ls, cd); !errors.Is(err, ErrCorrectnessProof) {
		t.Errorf("value changed: %v", err)
	}
}

// BenchmarkIssueCredential: IssueCredential on the test key (request check,
// signature and its correctness proof), four attributes.
func BenchmarkIssueCredential(b *testing.B) {
	_, cd, priv, kcp := testCredDefinition(b)
	offer, _ := NewCredentialOffer(testSchemaID, testCredDef, kcp)
	ls, _ := NewLinkSecret()
	req, _, err := CreateCredentialRequest(offer, cd, ls, "h", "master_secret")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := IssueCredential(cd, priv, offer, req, personValues); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewCredentialDefinition: a fresh key (safe primes on every core),
// four attributes. Slow and variable: run with -benchtime=5x.
func BenchmarkNewCredentialDefinition(b *testing.B) {
	s := personSchema(b)
	for i := 0; i < b.N; i++ {
		if _, _, _, err := NewCredentialDefinition(testIssuerID, testSchemaID, s, "b"); err != nil {
			b.Fatal(err)
		}
	}
}
