package graphql

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
)

// TestPagingAndFilter walks a filtered listing page by page: every
// matching exchange once, newest first, nothing else.
func TestPagingAndFilter(t *testing.T) {
	pp := &fakeProofs{}
	want := []string{}
	for i := 0; i < 7; i++ {
		role, state, conn := aip.ProofExProver, aip.ProofExRequest, "c1"
		switch i % 3 {
		case 1:
			role = aip.ProofExVerifier
		case 2:
			state, conn = aip.ProofExDone, "c2"
		}
		x := pp.add(&aip.ProofExchange{ID: fmt.Sprint("ex", i), ConnectionID: conn, MyRole: role, State: state,
			Messages: aip.ProofMessages{Request: &aip.ProofRequest{W3C: &aip.W3CProofNegotiation{}}}})
		if role == aip.ProofExProver {
			want = append([]string{x.ID}, want...)
		}
	}
	srv := agentServer(t, &Resolver{ProofExchanges: pp}, nil)
	q := `query($t: String) { aipProofExchanges(page: { nextToken: $t, limit: 2 }, filter: { myProofExRole: PROVER, proofExStates: [REQUEST, DONE], connectionIds: ["c1", "c2"] }) { items { id myRole } nextToken } }`
	var got []string
	var tok any
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		r := noErrors(t, post(t, srv, q, map[string]any{"t": tok}))
		var p struct {
			Items     []struct{ ID, MyRole string }
			NextToken *string
		}
		json.Unmarshal(r.Data["aipProofExchanges"], &p)
		if len(p.Items) > 2 {
			t.Fatalf("limit 2, got %d", len(p.Items))
		}
		for _, it := range p.Items {
			if it.MyRole != "PROVER" {
				t.Errorf("%s is %s", it.ID, it.MyRole)
			}
			got = append(got, it.ID)
		}
		if p.NextToken == nil {
			break
		}
		tok = *p.NextToken
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", got, want)
	}
	// A bad token is the client's fault.
	if code := errorCode(t, post(t, srv, q, map[string]any{"t": "!!"})); code != CodeBadUserInput {
		t.Errorf("bad token: %s", code)
	}
}

// TestErrorCodes: each failure comes back as HTTP 200 with errors[] and the
// right extensions.code; internal details are logged, never answered.
func TestErrorCodes(t *testing.T) {
	logs := &lockedBuffer{}
	conns := &fakeConnections{conns: map[string]*aip.Connection{seedConn: {ID: seedConn, Alias: "Bob", TheirDID: "did:peer:bob", MyDID: "did:peer:me"}}}
	pp := &fakeProofs{}
	srv := agentServer(t, &Resolver{Connections: conns, ProofExchanges: pp}, logs)

	cases := []struct {
		name, query, code, msg string
	}{
		{"mutation on a missing id", `mutation { acceptAipProofRequest(proofExId: "nope", presentation: { format: { w3c: { credentialsForReferents: [] } } }) { id } }`, CodeNotFound, "not found"},
		{"misspelt field", `{ aipProofExchange(proofExId: "x") { id myRol } }`, "GRAPHQL_VALIDATION_FAILED", "myRol"},
		{"both formats, valid fields", `mutation { sendAipProofRequest(connectionId: "c", request: { format: { anoncreds: { attributeGroups: [{ referent: "a", attributeNames: ["x"] }] }, w3c: { attributeGroups: [{ referent: "a", attributes: [{ attributePaths: ["$.x"] }] }] } } }) { id } }`, CodeBadUserInput, "exactly one of request.format.anoncreds and request.format.w3c"},
		{"submission requirement not JSON", `mutation { sendAipProofRequest(connectionId: "c", request: { format: { w3c: { attributeGroups: [{ referent: "a", attributes: [{ attributePaths: ["$.x"] }] }], submissionRequirementJsons: ["rule: all"] } } }) { id } }`, CodeBadUserInput, "submissionRequirementJsons[0]"},
		{"unknown enum", `query { aipProofExchanges(filter: { myProofExRole: ISSUER }) { nextToken } }`, "GRAPHQL_VALIDATION_FAILED", ""},
		{"unsupported service", `query { credentials { nextToken } }`, CodeUnsupported, "credential store is not enabled"},
		{"unsupported signing", operation(t, "docs_signCredential"), CodeUnsupported, "signCredential"},
		{"internal error", `mutation { sendBasicMessage(connectionId: "` + seedConn + `", content: "leak") { id } }`, CodeInternal, "internal error"},
		{"panic", `mutation { deleteConnection(connectionId: "x") }`, CodeInternal, "internal error"},
		{"deep query", `{ aipProofExchanges { items { messages { request { format { ... on AnoncredsProofRequest { attributeGroups { restrictions { predicate { operator } } } } } } } } } }`, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := post(t, srv, c.query, nil)
			if c.code == "" { // within limits: no error
				noErrors(t, r)
				return
			}
			if code := errorCode(t, r); code != c.code || !strings.Contains(r.Errors[0].Message, c.msg) {
				t.Errorf("got %s %q, want %s %q", code, r.Errors[0].Message, c.code, c.msg)
			}
		})
	}
	out := post(t, srv, `mutation { sendBasicMessage(connectionId: "`+seedConn+`", content: "leak") { id } }`, nil)
	if b, _ := json.Marshal(out); strings.Contains(string(b), "hunter2") {
		t.Error("an internal error leaked into the answer")
	}
	if l := logs.String(); !strings.Contains(l, "hunter2") || !strings.Contains(l, "panic in resolver") || !strings.Contains(l, "goroutine") {
		t.Errorf("internal error and panic stack not logged: %s", l)
	}
	// Missing single objects are null without an error.
	r := noErrors(t, post(t, srv, `{ connection(connectionId: "nope") { id } aipProofExchange(proofExId: "nope") { id } }`, nil))
	if string(r.Data["connection"]) != "null" || string(r.Data["aipProofExchange"]) != "null" {
		t.Errorf("missing objects: %s", r.Data)
	}
	// A service error's code: conflict and unsupported format.
	pp.fail = agent.Errorf(agent.CodeMsgUnsupported, "AnonCreds revocation is not supported")
	r = post(t, srv, `mutation { sendAipProofRequest(connectionId: "c", request: { format: { anoncreds: { attributeGroups: [{ referent: "a", attributeNames: ["x"], restrictions: { nonRevoked: { to: 5 } } }] } } }) { id } }`, nil)
	if code := errorCode(t, r); code != CodeUnsupportedFormat || r.Errors[0].Message != "AnonCreds revocation is not supported" || fmt.Sprint(r.Errors[0].Path) != "[sendAipProofRequest]" {
		t.Errorf("unsupported format: %+v", r.Errors)
	}
	// Limits: depth and complexity.
	deep := `{ connection(connectionId: "x") { id } }`
	api := New(Config{Resolver: &Resolver{Connections: conns}, AdminToken: token, MaxDepth: 2})
	if code := errorCode(t, postTo(t, api, `{ connection(connectionId: "x") { basicMessages { items { id } } } }`)); code != CodeBadUserInput {
		t.Errorf("depth limit: %s", code)
	}
	noErrors(t, postTo(t, api, deep))
	api = New(Config{Resolver: &Resolver{Connections: conns}, AdminToken: token, ComplexityLimit: 3})
	if code := errorCode(t, postTo(t, api, `{ connection(connectionId: "x") { id alias theirDid myDid } }`)); code != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Errorf("complexity limit: %s", code)
	}
}

// postTo sends a query straight to an API's handler (no HTTP server).
func postTo(t *testing.T, api *API, query string) gqlResponse {
	t.Helper()
	srv := httptestServer(t, api)
	return post(t, srv, query, nil)
}

// TestAuth: the route wants the admin token, as a bearer token or an
// x-api-key header; raw query bodies (the vendor's TypeScript sample) work.
func TestAuth(t *testing.T) {
	conns := &fakeConnections{conns: map[string]*aip.Connection{seedConn: {ID: seedConn, Alias: "Bob", TheirDID: "did:peer:bob", MyDID: "did:peer:me"}}}
	conns.msgs = []*aip.BasicMessage{{ID: "m1", ConnectionID: seedConn, Content: "hello", Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC), Direction: aip.Inbound}}
	srv := agentServer(t, &Resolver{Connections: conns}, nil)
	raw := operation(t, "docs_integrate_connection") // posted as the body itself
	send := func(body string, hdr ...string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+Path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	want := `"connection":{"id":"` + seedConn + `","alias":"Bob","basicMessages":{"items":[{"id":"m1","content":"hello","timestamp":"2026-01-02T03:04:05.006Z","direction":"INBOUND"}],"nextToken":null}}`
	for _, c := range []struct {
		name   string
		hdr    []string
		status int
	}{
		{"no token", nil, 401},
		{"wrong key", []string{"x-api-key", "nope"}, 401},
		{"wrong bearer", []string{"Authorization", "Bearer nope"}, 401},
		{"x-api-key", []string{"x-api-key", token}, 200},
		{"bearer", []string{"Authorization", "Bearer " + token}, 200},
	} {
		status, body := send(raw, c.hdr...)
		if status != c.status {
			t.Errorf("%s: status %d: %s", c.name, status, body)
		}
		if status == 200 && !strings.Contains(body, want) {
			t.Errorf("%s: %s", c.name, body)
		}
		if status != 200 && strings.Contains(body, "Bob") {
			t.Errorf("%s: data without auth", c.name)
		}
	}
	// The same query as a JSON request.
	js, _ := json.Marshal(map[string]string{"query": raw})
	if status, body := send(string(js), "x-api-key", token); status != 200 || !strings.Contains(body, want) {
		t.Errorf("json body: %d %s", status, body)
	}
	// A parse error is still HTTP 200 with errors[].
	if status, body := send("{ connection(", "x-api-key", token); status != 200 || !strings.Contains(body, `"errors"`) {
		t.Errorf("parse error: %d %s", status, body)
	}
	// Too large.
	if status, _ := send(strings.Repeat(" ", 2<<20)+"{ __typename }", "x-api-key", token); status != http.StatusRequestEntityTooLarge {
		t.Errorf("large body: %d", status)
	}
}

// TestSubscriptions: an update reaches a WebSocket subscriber
// (graphql-transport-ws, token in connection_init) and an SSE subscriber,
// filtered; a WebSocket without the token is refused.
func TestSubscriptions(t *testing.T) {
	broker := &fakeBroker{}
	pp := &fakeProofs{events: broker}
	srv := agentServer(t, &Resolver{ProofExchanges: pp, Events: broker}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + Path
	sub := `subscription { onAipProofExchangeUpdated(filter: { myProofExRole: PROVER }) { id state myRole } }`

	// No token: refused.
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{}})
	var msg map[string]any
	if err := wsjson.Read(ctx, c, &msg); err == nil && msg["type"] == "connection_ack" {
		t.Fatal("a WebSocket without the token was acknowledged")
	}
	c.CloseNow()
	// A wrong token in the header: 401 before the upgrade.
	if _, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: http.Header{"X-Api-Key": {"nope"}}}); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("wrong header token: %v %v", err, resp)
	}

	c, _, err = websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"x-api-key": token}})
	if err := wsjson.Read(ctx, c, &msg); err != nil || msg["type"] != "connection_ack" {
		t.Fatalf("init: %v %v", msg, err)
	}
	wsjson.Write(ctx, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": sub}})

	// SSE, token in the header.
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+Path, strings.NewReader(`{"query":"`+sub+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("sse: %v %v", err, resp)
	}
	defer resp.Body.Close()

	for broker.count(aip.TopicProofExchange) < 2 {
		if ctx.Err() != nil {
			t.Fatal("subscribers never subscribed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pp.add(&aip.ProofExchange{ID: "verifier-ex", MyRole: aip.ProofExVerifier, State: aip.ProofExRequest}) // filtered out
	pp.add(&aip.ProofExchange{ID: "prover-ex", MyRole: aip.ProofExProver, State: aip.ProofExRequest})

	if err := wsjson.Read(ctx, c, &msg); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(msg)
	if want := `{"id":"1","payload":{"data":{"onAipProofExchangeUpdated":{"id":"prover-ex","myRole":"PROVER","state":"REQUEST"}}},"type":"next"}`; string(b) != want {
		t.Errorf("ws got %s\nwant %s", b, want)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "data:") && strings.Contains(line, "onAipProofExchangeUpdated") {
			if !strings.Contains(line, `"id":"prover-ex"`) || strings.Contains(line, "verifier-ex") {
				t.Errorf("sse got %s", line)
			}
			return
		}
	}
	t.Fatalf("sse stream ended: %v", sc.Err())
}

// fakeSigner signs as one DID, echoing what it was asked.
type fakeSigner struct{ calls []string }

func (f *fakeSigner) SignW3C(ctx context.Context, signer string, credential []byte, mechanism string) (string, string, error) {
	if signer != "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK" {
		return "", "", agent.Errorf(agent.CodeMsg, "signer: not a DID this agent signs for")
	}
	f.calls = append(f.calls, mechanism)
	return string(credential), "secured:" + mechanism, nil
}

// TestSignCredential: the documented operation reaches the signer with its
// mechanism and answers SignW3CCredentialResult; SD_JWT is
// UNSUPPORTED_FORMAT and a foreign signer BAD_USER_INPUT, neither signing.
func TestSignCredential(t *testing.T) {
	s := &fakeSigner{}
	srv := agentServer(t, &Resolver{Signer: s}, nil)
	r := noErrors(t, post(t, srv, operation(t, "docs_signCredential"), nil))
	var got struct{ CredentialJSON, SecuredCredentialJSON string }
	json.Unmarshal(r.Data["signCredential"], &got)
	if got.SecuredCredentialJSON != "secured:LINKED_DATA_PROOF" || !strings.Contains(got.CredentialJSON, `"name":"Alice"`) {
		t.Fatalf("result %s", r.Data["signCredential"])
	}
	sdjwt := strings.Replace(operation(t, "docs_signCredential"), "LINKED_DATA_PROOF", "SD_JWT", 1)
	if code := errorCode(t, post(t, srv, sdjwt, nil)); code != CodeUnsupportedFormat {
		t.Errorf("SD_JWT: %s", code)
	}
	other := strings.Replace(operation(t, "docs_signCredential"), `signer: "did:key:z6Mkha`, `signer: "did:key:z6Mkxx`, 1)
	if code := errorCode(t, post(t, srv, other, nil)); code != CodeBadUserInput {
		t.Errorf("foreign signer: %s", code)
	}
	if len(s.calls) != 1 {
		t.Errorf("signer called %d times, want 1", len(s.calls))
	}
}
