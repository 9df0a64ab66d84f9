package graphql

import (
	"bytes"
	"encoding/json"
	"github.com/agentd/agentd/internal/metrics"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/agentd/agentd/aip"
	agenthttp "github.com/agentd/agentd/transport/http"
)

const (
	token    = "admin-token-0123456789abcdef"
	seedConn = "001fe530-3562-41d6-a631-3df9c7ae1f38"
	seedEx   = "44269eb7-0288-46ad-ab59-e646ad010202"
)

// TestDocumentedOperationsValidate: every operation of the seed and of the
// vendor's documentation pages, copied verbatim into testdata/operations
// (including the empty `format: { # INSERT ... }` placeholders), validates
// against the schema.
func TestDocumentedOperationsValidate(t *testing.T) {
	src, err := os.ReadFile("schema.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	schema, gerr := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphqls", Input: string(src)})
	if gerr != nil {
		t.Fatal(gerr)
	}
	files, _ := filepath.Glob("testdata/operations/*.graphql")
	if len(files) != 23 {
		t.Fatalf("%d documented operations, want 23", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, errs := gqlparser.LoadQuery(schema, string(b)); errs != nil {
			t.Errorf("%s: %v", filepath.Base(f), errs)
		}
	}
	// The check can fail: a misspelt field and a wrong argument are refused.
	for _, bad := range []string{
		`query { aipProofExchange(proofExId: "x") { id myRol } }`,
		`mutation { deleteAipProofExchange(proofExchangeId: "x") }`,
	} {
		if _, errs := gqlparser.LoadQuery(schema, bad); errs == nil {
			t.Errorf("%s validated", bad)
		}
	}
}

func operation(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/operations", name+".graphql"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lockedBuffer collects logs from handler goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// agentServer serves the API over the real HTTP server (admin checks
// included) on fake services.
func agentServer(t *testing.T, r *Resolver, logs io.Writer) *httptest.Server {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	log := slog.New(slog.NewTextHandler(logs, nil))
	api := New(Config{Resolver: r, AdminToken: token, Logger: log})
	// The daemon's metrics wrap every route's ResponseWriter, as in
	// production: streaming (SSE) must get through the wrapper.
	srv := httptest.NewServer(agenthttp.NewHandler(agenthttp.Config{AdminToken: token, Logger: log, Metrics: metrics.New(), Features: []agenthttp.Feature{api}}))
	t.Cleanup(srv.Close)
	return srv
}

// httptestServer serves api behind the real HTTP server.
func httptestServer(t *testing.T, api *API) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(agenthttp.NewHandler(agenthttp.Config{AdminToken: token, Features: []agenthttp.Feature{api}}))
	t.Cleanup(srv.Close)
	return srv
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type gqlResponse struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []gqlError                 `json:"errors"`
}

// post sends a JSON GraphQL request with the admin key and expects 200.
func post(t *testing.T, srv *httptest.Server, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", srv.URL+Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	var out gqlResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return out
}

func noErrors(t *testing.T, r gqlResponse) gqlResponse {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %+v", r.Errors)
	}
	return r
}

// errorCode returns the only error's extensions.code.
func errorCode(t *testing.T, r gqlResponse) string {
	t.Helper()
	if len(r.Errors) != 1 {
		t.Fatalf("want one error, got %+v (data %s)", r.Errors, r.Data)
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// jsonEqual compares got with the JSON text want, structurally.
func jsonEqual(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		gi, _ := json.MarshalIndent(g, "", " ")
		t.Errorf("%s:\n got %s\nwant %s", what, gi, want)
	}
}

// twoAgents is a verifier and a prover whose fake proof services are wired
// together: what the verifier sends arrives at the prover on the seed's
// connection id.
func twoAgents(t *testing.T) (verifier, prover *httptest.Server, vp, pp *fakeProofs) {
	pp = &fakeProofs{ids: []string{seedEx}}
	vp = &fakeProofs{peer: pp, peerConn: seedConn}
	return agentServer(t, &Resolver{ProofExchanges: vp}, nil), agentServer(t, &Resolver{ProofExchanges: pp}, nil), vp, pp
}

const sendAnoncreds = `mutation {
  sendAipProofRequest(connectionId: "conn-to-prover", request: {
    comment: "age check"
    format: { anoncreds: {
      name: "Proof of age", version: "1.0"
      attributeGroups: [
        { referent: "over18", attributeNames: ["age"],
          restrictions: { credDefId: "did:web:issuer.example:creddef:1",
            predicate: { operator: GREATER_THAN_OR_EQUAL, threshold: 18 },
            nonRevoked: { from: 1700000000, to: 1800000000 } } }
        { referent: "name", attributeNames: ["first_name", "last_name"],
          restrictions: [
            { schemaName: "ID", schemaVersion: "1.0", issuerId: "did:web:issuer.example",
              attributeNames: ["country"], attributeValues: [{ name: "country", value: "NZ" }] }
            { schemaId: "did:web:issuer.example:schema:2", schemaIssuerId: "did:web:other.example" }
          ] }
      ] } }
  }) { id myRole state connectionId createdTimestamp modifiedTimestamp }
}`

const sendW3C = `mutation {
  sendAipProofRequest(connectionId: "conn-to-prover", request: {
    format: { w3c: {
      challenge: "c-123", domain: "verifier.example"
      attributeGroups: [
        { referent: "dob", attributes: [
          { attributePaths: ["$.credentialSubject.birthDate", "$.vc.credentialSubject.birthDate"],
            valueRestrictions: { dataFormat: DATE, lessThanOrEqual: "2008-03-01" }, presentationType: PREDICATE } ] }
        { referent: "holder", attributes: [
          { attributePaths: ["$.credentialSubject.id"], isHolderSubject: true },
          { attributePaths: ["$.credentialSubject.degree.type"], valueRestrictions: { inSet: ["BachelorDegree", "MasterDegree"], pattern: "^[A-Z]" } } ] }
      ]
      submissionRequirementJsons: ["{\"name\":\"both\",\"rule\":\"all\",\"from\":\"A\"}"]
    } }
  }) { id myRole state }
}`

const wantAnoncredsRequest = `{"comment": "age check", "format": {"__typename": "AnoncredsProofRequest", "attributeGroups": [
  {"referent": "over18", "attributeNames": ["age"], "restrictions": [
    {"schemaId": null, "schemaIssuerId": null, "schemaName": null, "schemaVersion": null,
     "credDefId": "did:web:issuer.example:creddef:1", "issuerId": null, "attributeNames": null, "attributeValues": null,
     "nonRevoked": {"from": 1700000000, "to": 1800000000}, "predicate": {"operator": "GREATER_THAN_OR_EQUAL", "threshold": 18}}]},
  {"referent": "name", "attributeNames": ["first_name", "last_name"], "restrictions": [
    {"schemaId": null, "schemaIssuerId": null, "schemaName": "ID", "schemaVersion": "1.0",
     "credDefId": null, "issuerId": "did:web:issuer.example", "attributeNames": ["country"],
     "attributeValues": [{"name": "country", "value": "NZ"}], "nonRevoked": null, "predicate": null},
    {"schemaId": "did:web:issuer.example:schema:2", "schemaIssuerId": "did:web:other.example", "schemaName": null, "schemaVersion": null,
     "credDefId": null, "issuerId": null, "attributeNames": null, "attributeValues": null, "nonRevoked": null, "predicate": null}]}
]}}`

const noRestrictions = `"dataFormat": null, "pattern": null, "inSet": null, "notInSet": null, "equal": null, "notEqual": null,
  "minLength": null, "maxLength": null, "lessThan": null, "lessThanOrEqual": null, "greaterThan": null, "greaterThanOrEqual": null`

var wantW3CRequest = `{"comment": null, "format": {"__typename": "W3CProofNegotiation", "attributeGroups": [
  {"referent": "dob", "attributes": [{"attributePaths": ["$.credentialSubject.birthDate", "$.vc.credentialSubject.birthDate"],
    "valueRestrictions": {"dataFormat": "DATE", "pattern": null, "inSet": null, "notInSet": null, "equal": null, "notEqual": null,
      "minLength": null, "maxLength": null, "lessThan": null, "lessThanOrEqual": "2008-03-01", "greaterThan": null, "greaterThanOrEqual": null},
    "isHolderSubject": false, "presentationType": "PREDICATE"}]},
  {"referent": "holder", "attributes": [
    {"attributePaths": ["$.credentialSubject.id"], "valueRestrictions": null, "isHolderSubject": true, "presentationType": "VALUE"},
    {"attributePaths": ["$.credentialSubject.degree.type"], "valueRestrictions": {"dataFormat": null, "pattern": "^[A-Z]", "inSet": ["BachelorDegree", "MasterDegree"],
      "notInSet": null, "equal": null, "notEqual": null, "minLength": null, "maxLength": null, "lessThan": null, "lessThanOrEqual": null,
      "greaterThan": null, "greaterThanOrEqual": null}, "isHolderSubject": false, "presentationType": "VALUE"}]}],
  "submissionRequirementJsons": ["{\"name\":\"both\",\"rule\":\"all\",\"from\":\"A\"}"]}}`

var isoMillis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// TestProofRequestRoundTrip sends an AnonCreds request (a predicate, a
// single-object restrictions, non-revocation) and a W3C negotiation (a date
// predicate, holder binding, a submission requirement) and reads both back
// at the prover, field for field, through the seed's own aipProofExchanges
// query; then drives the prover side with the seed's other operations.
func TestProofRequestRoundTrip(t *testing.T) {
	verifier, prover, vp, pp := twoAgents(t)

	var sent struct {
		ID, MyRole, State, ConnectionID     string
		CreatedTimestamp, ModifiedTimestamp string
	}
	r := noErrors(t, post(t, verifier, sendAnoncreds, nil))
	json.Unmarshal(r.Data["sendAipProofRequest"], &sent)
	if sent.MyRole != "VERIFIER" || sent.State != "REQUEST" || sent.ConnectionID != "conn-to-prover" || !isoMillis.MatchString(sent.CreatedTimestamp) {
		t.Fatalf("sent: %+v", sent)
	}
	noErrors(t, post(t, verifier, sendW3C, nil))

	// The seed's query, verbatim, at the prover: newest first.
	r = noErrors(t, post(t, prover, operation(t, "seed_aipProofExchanges"), nil))
	var page struct {
		Items []struct {
			ID, MyRole, State, ConnectionID string
			Messages                        struct{ Request json.RawMessage }
		}
		NextToken *string
	}
	json.Unmarshal(r.Data["aipProofExchanges"], &page)
	if len(page.Items) != 2 || page.NextToken != nil {
		t.Fatalf("page: %s", r.Data["aipProofExchanges"])
	}
	if f := pp.lastFilter; f.Role != aip.ProofExProver || !reflect.DeepEqual(f.States, []aip.ProofExState{aip.ProofExRequest}) || !reflect.DeepEqual(f.ConnectionIDs, []string{seedConn}) {
		t.Errorf("filter reached the service as %+v", f)
	}
	w3c, anon := page.Items[0], page.Items[1]
	if anon.ID != seedEx || anon.MyRole != "PROVER" || anon.State != "REQUEST" || anon.ConnectionID != seedConn {
		t.Errorf("anoncreds exchange: %+v", anon)
	}
	jsonEqual(t, "anoncreds request", anon.Messages.Request, wantAnoncredsRequest)
	jsonEqual(t, "w3c request", w3c.Messages.Request, wantW3CRequest)

	// The proposed extra fields the seed's query does not select.
	r = noErrors(t, post(t, prover, `query($id: ID!) { aipProofExchange(proofExId: $id) {
		createdTimestamp modifiedTimestamp errorMessage
		messages { request { format { ... on AnoncredsProofRequest { name version } ... on W3CProofNegotiation { challenge domain } } } } } }`,
		map[string]any{"id": w3c.ID}))
	jsonEqual(t, "w3c extras", r.Data["aipProofExchange"], `{"createdTimestamp": "`+timestamp(pp.ex[1].Created)+`", "modifiedTimestamp": "`+timestamp(pp.ex[1].Modified)+`",
		"errorMessage": null, "messages": {"request": {"format": {"challenge": "c-123", "domain": "verifier.example"}}}}`)

	// The seed's single-object query and credentialsForAipProofExchange,
	// verbatim (the fake holds nothing that fits: empty lists).
	r = noErrors(t, post(t, prover, operation(t, "seed_aipProofExchange"), nil))
	jsonEqual(t, "aipProofExchange", r.Data["aipProofExchange"], `{"id": "`+seedEx+`", "myRole": "PROVER", "state": "REQUEST", "connectionId": "`+seedConn+`"}`)
	r = noErrors(t, post(t, prover, operation(t, "seed_credentialsForAipProofExchange"), nil))
	jsonEqual(t, "credentialsFor", r.Data["credentialsForAipProofExchange"],
		`{"credentialsForReferents": [{"referent": "over18", "credentialIds": []}, {"referent": "name", "credentialIds": []}]}`)

	// The seed's accept and send, verbatim, have empty formats: refused,
	// nothing changes.
	for _, op := range []string{"seed_acceptAipProofRequest", "seed_sendAipProofRequest"} {
		r = post(t, prover, operation(t, op), nil)
		if code := errorCode(t, r); code != CodeBadUserInput || !strings.Contains(r.Errors[0].Message, "exactly one of") {
			t.Errorf("%s: %+v", op, r.Errors)
		}
	}
	if pp.ex[0].State != aip.ProofExRequest || len(vp.ex) != 2 || len(pp.ex) != 2 {
		t.Fatal("a refused operation changed something")
	}

	// Presenting with W3C: PRESENTED, the presentation readable.
	accept := `mutation($id: ID!) { acceptAipProofRequest(proofExId: $id, presentation: { comment: "here", format: { w3c: {
		credentialsForReferents: [{ referent: "dob", credentialId: "cred-1" }, { referent: "holder", credentialId: "cred-2" }] } } }) {
		state messages { presentation { comment verificationResult verificationErrors format { __typename ... on W3CProofPresentation { presentationJson credentialsForReferents { referent path } } } } } } }`
	r = noErrors(t, post(t, prover, accept, map[string]any{"id": w3c.ID}))
	jsonEqual(t, "accepted", r.Data["acceptAipProofRequest"], `{"state": "PRESENTED", "messages": {"presentation": {"comment": "here", "verificationResult": null, "verificationErrors": null,
		"format": {"__typename": "W3CProofPresentation", "presentationJson": "{\"type\":[\"VerifiablePresentation\"]}",
		"credentialsForReferents": [{"referent": "dob", "path": "$.verifiableCredential[0]"}, {"referent": "holder", "path": "$.verifiableCredential[1]"}]}}}}`)
	// Again (wrong state), or on the verifier (wrong role): INVALID_STATE.
	if code := errorCode(t, post(t, prover, accept, map[string]any{"id": w3c.ID})); code != CodeInvalidState {
		t.Errorf("second accept: %s", code)
	}
	if code := errorCode(t, post(t, verifier, accept, map[string]any{"id": sent.ID})); code != CodeInvalidState {
		t.Errorf("accept on the verifier: %s", code)
	}

	// The seed's delete (credExId, sic), verbatim: gone; the single query
	// answers null without an error; a second delete is NOT_FOUND.
	r = noErrors(t, post(t, prover, operation(t, "seed_deleteAipProofExchange"), nil))
	jsonEqual(t, "delete", r.Data["deleteAipProofExchange"], `"`+seedEx+`"`)
	r = noErrors(t, post(t, prover, operation(t, "seed_aipProofExchange"), nil))
	jsonEqual(t, "deleted", r.Data["aipProofExchange"], `null`)
	if code := errorCode(t, post(t, prover, operation(t, "seed_deleteAipProofExchange"), nil)); code != CodeNotFound {
		t.Errorf("second delete: %s", code)
	}
	if code := errorCode(t, post(t, prover, `mutation { deleteAipProofExchange(credExId: "a", proofExId: "b") }`, nil)); code != CodeBadUserInput {
		t.Errorf("both ids: %s", code)
	}
}
