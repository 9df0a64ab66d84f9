package anoncredsoracle

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/anoncreds"
	"github.com/agentd/agentd/internal/nodepeer"
)

const goCredDefID = "did:web:issuer.example/anoncreds/creddef/person/go"

// goIssuer is a credential definition made in Go, with its JSON forms.
type goIssuer struct {
	schema                      *anoncreds.Schema
	cd                          *anoncreds.CredentialDefinition
	priv                        *anoncreds.CredentialDefinitionPrivate
	kcp                         *anoncreds.KeyCorrectnessProof
	schemaJSON, cdJSON, kcpJSON json.RawMessage
	privJSON                    json.RawMessage
}

// newGoIssuer makes a Go credential definition for the person schema: on
// the stored TEST key's primes (anoncreds/testdata/issuer) with fresh bases,
// or, fresh, on a newly generated key.
func newGoIssuer(t testing.TB, fresh bool) *goIssuer {
	t.Helper()
	s, err := anoncreds.NewSchema("did:web:issuer.example", "person", "1.0", []string{"name", "age", "sex", "height"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := anoncreds.CredentialDefinitionConfig{}
	if !fresh {
		root, err := nodepeer.ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(root, "anoncreds", "testdata", "issuer", "test_key_cred_def_private.json"))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Primes, err = anoncreds.ParseCredentialDefinitionPrivate(b); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	cd, priv, kcp, err := anoncreds.NewCredentialDefinitionContext(context.Background(), "did:web:issuer.example", schemaID, s, "go", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if fresh {
		t.Logf("fresh Go credential definition (two 1024-bit safe primes): %v", time.Since(start))
	}
	g := &goIssuer{schema: s, cd: cd, priv: priv, kcp: kcp}
	g.schemaJSON, _ = json.Marshal(s)
	g.cdJSON, _ = json.Marshal(cd)
	g.kcpJSON, _ = json.Marshal(kcp)
	if g.privJSON, err = json.Marshal(priv); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *goIssuer) offer(t testing.TB) (*anoncreds.CredentialOffer, json.RawMessage) {
	t.Helper()
	offer, err := anoncreds.NewCredentialOffer(schemaID, goCredDefID, g.kcp)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(offer)
	return offer, b
}

func (g *goIssuer) registry() (map[string]json.RawMessage, map[string]json.RawMessage) {
	return map[string]json.RawMessage{schemaID: g.schemaJSON}, map[string]json.RawMessage{goCredDefID: g.cdJSON}
}

// oracleHolderFlow: anoncreds-rs's holder requests (checking the Go key
// correctness proof), Go issues, anoncreds-rs processes (checking the Go
// signature correctness proof) and presents; Go and anoncreds-rs verify.
func oracleHolderFlow(t *testing.T, o *Oracle, g *goIssuer, values map[string]string) {
	t.Helper()
	offer, offerJSON := g.offer(t)
	handle, reqJSON, err := o.Request(g.cdJSON, offerJSON, "oracle-holder")
	if err != nil {
		t.Fatalf("anoncreds-rs refuses the Go offer (key correctness proof): %v", err)
	}
	req, err := anoncreds.ParseCredentialRequest(reqJSON)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cred, err := anoncreds.IssueCredential(g.cd, g.priv, offer, req, values)
	if err != nil {
		t.Fatalf("Go refuses anoncreds-rs's request: %v", err)
	}
	t.Logf("Go IssueCredential: %v", time.Since(start))
	credJSON, _ := json.Marshal(cred)
	if _, err := o.Process(handle, credJSON, g.cdJSON); err != nil {
		t.Fatalf("anoncreds-rs refuses the Go credential (signature correctness proof): %v", err)
	}
	presReqJSON, _ := json.Marshal(map[string]any{"nonce": nonce(t), "name": "go-issued", "version": "1.0",
		"requested_attributes": map[string]any{
			"n": map[string]any{"name": "name", "restrictions": []any{map[string]any{"cred_def_id": goCredDefID}}},
			"g": map[string]any{"names": []string{"sex"}, "restrictions": []any{map[string]any{"schema_id": schemaID}}},
		},
		"requested_predicates": map[string]any{
			"adult": map[string]any{"name": "age", "p_type": ">=", "p_value": 18},
			"h":     map[string]any{"name": "height", "p_type": "<", "p_value": 200},
		}})
	schemas, cds := g.registry()
	presJSON, err := o.PresentWith(handle, presReqJSON, schemas, cds)
	if err != nil {
		t.Fatalf("anoncreds-rs cannot present the Go credential: %v", err)
	}
	pres, err := anoncreds.ParsePresentation(presJSON)
	if err != nil {
		t.Fatal(err)
	}
	presReq, err := anoncreds.ParsePresentationRequest(presReqJSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := anoncreds.VerifyPresentation(pres, presReq, map[string]*anoncreds.Schema{schemaID: g.schema},
		map[string]*anoncreds.CredentialDefinition{goCredDefID: g.cd}); err != nil {
		t.Fatalf("Go does not verify anoncreds-rs's presentation of the Go credential: %v", err)
	}
	if ok, err := o.VerifyWith(presJSON, presReqJSON, schemas, cds); err != nil || !ok {
		t.Fatalf("anoncreds-rs does not verify its presentation of the Go credential: %v %v", ok, err)
	}
	if ok, _ := o.VerifyWith([]byte(strings.Replace(string(presJSON), `"c_hash":"`, `"c_hash":"1`, 1)), presReqJSON, schemas, cds); ok {
		t.Fatal("tampered presentation verifies in anoncreds-rs")
	}
}

var oracleValues = map[string]string{"name": "Zoë Ω", "age": "42", "sex": "F", "height": "168"}

// TestGoIssuerOracleHolder: a Go credential definition (TEST key primes,
// fresh bases) and Go issuance, with anoncreds-rs as the holder and second
// verifier; then anoncreds-rs's checks are shown to bite (tampered Go
// credential refused by processCredential) and Go's request checks
// (tampered or replayed anoncreds-rs requests, wrong values refused).
func TestGoIssuerOracleHolder(t *testing.T) {
	g := newGoIssuer(t, false)
	o := StartHolder(t)
	oracleHolderFlow(t, o, g, oracleValues)

	// anoncreds-rs's processCredential refuses a tampered Go credential.
	offer, offerJSON := g.offer(t)
	handle, reqJSON, err := o.Request(g.cdJSON, offerJSON, "oracle-holder")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := anoncreds.ParseCredentialRequest(reqJSON)
	cred, err := anoncreds.IssueCredential(g.cd, g.priv, offer, req, oracleValues)
	if err != nil {
		t.Fatal(err)
	}
	a := cred.Signature.PCredential.A.String()
	credJSON, _ := json.Marshal(cred)
	a1 := new(big.Int)
	a1.SetString(a, 10)
	bad := strings.Replace(string(credJSON), `"a":"`+a+`"`, `"a":"`+a1.Add(a1, big.NewInt(1)).String()+`"`, 1)
	if bad == string(credJSON) {
		t.Fatal("tamper changed nothing")
	}
	if _, err := o.Process(handle, []byte(bad), g.cdJSON); err == nil {
		t.Fatal("anoncreds-rs processed a Go credential with A+1")
	}
	// A key correctness proof with a changed response: anoncreds-rs refuses the offer.
	badOffer := strings.Replace(string(offerJSON), `"xz_cap":"`, `"xz_cap":"1`, 1)
	if _, _, err := o.Request(g.cdJSON, []byte(badOffer), "x"); err == nil {
		t.Fatal("anoncreds-rs accepted a tampered key correctness proof")
	}

	// Go refuses anoncreds-rs requests that are tampered or made for
	// another offer (nonce), and values that do not match the schema.
	otherOffer, _ := g.offer(t)
	tampered, _ := anoncreds.ParseCredentialRequest(reqJSON)
	tampered.BlindedMSCorrectnessProof.VDashCap.Add(&tampered.BlindedMSCorrectnessProof.VDashCap.Int, big.NewInt(1))
	for name, tc := range map[string]struct {
		offer *anoncreds.CredentialOffer
		req   *anoncreds.CredentialRequest
	}{
		"v_dash_cap + 1": {offer, tampered},
		"other nonce":    {otherOffer, req},
	} {
		if _, err := anoncreds.IssueCredential(g.cd, g.priv, tc.offer, tc.req, oracleValues); !errors.Is(err, anoncreds.ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, v := range map[string]map[string]string{
		"missing": {"name": "A", "age": "1", "sex": "F"},
		"extra":   {"name": "A", "age": "1", "sex": "F", "height": "2", "eyes": "blue"},
	} {
		if _, err := anoncreds.IssueCredential(g.cd, g.priv, offer, req, v); !errors.Is(err, anoncreds.ErrMalformed) {
			t.Errorf("values %s: %v", name, err)
		}
	}
}

// TestGoIssuerFreshKeyOracle: the same with a freshly generated Go key
// (safe primes on every core): anoncreds-rs accepts its key correctness
// proof and the credential signed with it.
func TestGoIssuerFreshKeyOracle(t *testing.T) {
	g := newGoIssuer(t, true)
	o := StartHolder(t)
	oracleHolderFlow(t, o, g, map[string]string{"name": "Fresh", "age": "18", "sex": "X", "height": "-3"})
}

// TestOracleIssuesWithGoKey: anoncreds-rs issues with the Go-made key (the
// private key in the JSON form Go writes): its own holder accepts the
// Go key correctness proof and the credential, and the presentation
// verifies in Go and anoncreds-rs.
func TestOracleIssuesWithGoKey(t *testing.T) {
	g := newGoIssuer(t, false)
	o := Start(t, Issuer{SchemaID: schemaID, CredDefID: goCredDefID, Schema: g.schemaJSON, CredDef: g.cdJSON,
		CredDefPrivate: g.privJSON, KeyCorrectnessProof: g.kcpJSON})
	values := map[string]string{"name": "Rs", "age": "30", "sex": "M", "height": "180"}
	h, _, d, err := o.Issue(values)
	if err != nil {
		t.Fatalf("anoncreds-rs cannot issue with the Go key: %v", err)
	}
	t.Logf("anoncreds-rs WASM offer + request + createCredential + processCredential on the Go key: %v", d)
	reqJSON, _ := json.Marshal(map[string]any{"nonce": nonce(t), "name": "rs", "version": "1.0",
		"requested_attributes": map[string]any{"n": map[string]any{"name": "name"}},
		"requested_predicates": map[string]any{"p": map[string]any{"name": "age", "p_type": ">", "p_value": 29}}})
	presJSON, _, err := o.Present(h, reqJSON)
	if err != nil {
		t.Fatal(err)
	}
	pres, _ := anoncreds.ParsePresentation(presJSON)
	pr, _ := anoncreds.ParsePresentationRequest(reqJSON)
	if err := anoncreds.VerifyPresentation(pres, pr, map[string]*anoncreds.Schema{schemaID: g.schema},
		map[string]*anoncreds.CredentialDefinition{goCredDefID: g.cd}); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := o.Verify(presJSON, reqJSON); err != nil || !ok {
		t.Fatalf("anoncreds-rs: %v %v", ok, err)
	}
}
