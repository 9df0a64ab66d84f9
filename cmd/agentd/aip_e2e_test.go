package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/w3cvc"
)

// The cloud-agent end-to-end tests run two agentd processes, Alice and
// Bob, connected over DIDComm v2 on loopback, and drive both only through
// their GraphQL admin APIs (POST /admin/graphql), as an application would.
// Where the seed's operations fit they are used verbatim, from
// transport/graphql/testdata/operations, with their example ids replaced.

const aipHookSecret = "aip-hook-secret-0123456789abcdef"

// aipYAML is the aip section of a test agent: webhooks to hook, and
// fetches (status lists) allowed on loopback, where the test serves them.
func aipYAML(label, hook string) string {
	return fmt.Sprintf("aip:\n  label: %s\n  webhook_url: %s\n  fetch_allow_private: true\n", label, hook)
}

// gqlError is an entry of a GraphQL answer's errors.
type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

// gql posts a GraphQL operation with the admin token in x-api-key.
func (p *proc) gql(query string, vars map[string]any) (map[string]json.RawMessage, []gqlError) {
	p.t.Helper()
	var out struct {
		Data   map[string]json.RawMessage `json:"data"`
		Errors []gqlError                 `json:"errors"`
	}
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", "http://"+p.addr+"/admin/graphql", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s graphql: %v", p.name, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		p.t.Fatalf("%s graphql: %s: %s", p.name, resp.Status, data)
	}
	if err := json.Unmarshal(data, &out); err != nil {
		p.t.Fatalf("%s graphql: %v: %s", p.name, err, data)
	}
	return out.Data, out.Errors
}

// must runs an operation that must succeed and decodes its one root field
// into out.
func (p *proc) must(query string, vars map[string]any, out any) {
	p.t.Helper()
	data, errs := p.gql(query, vars)
	if len(errs) > 0 {
		p.t.Fatalf("%s: %s\nerrors: %+v", p.name, firstLine(query), errs)
	}
	if out == nil {
		return
	}
	for _, v := range data {
		if err := json.Unmarshal(v, out); err != nil {
			p.t.Fatalf("%s: %v: %s", p.name, err, v)
		}
		return
	}
}

// refused runs an operation that must fail and returns its error code.
func (p *proc) refused(query string, vars map[string]any) gqlError {
	p.t.Helper()
	_, errs := p.gql(query, vars)
	if len(errs) == 0 {
		p.t.Fatalf("%s: %s succeeded, want an error", p.name, firstLine(query))
	}
	return errs[0]
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i > 0 {
		return s[:i]
	}
	return s
}

// seedOp returns a documented operation verbatim, with its example ids
// replaced by ids.
func seedOp(t *testing.T, name string, ids ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "transport", "graphql", "testdata", "operations", name+".graphql"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(ids); i += 2 {
		if !strings.Contains(s, ids[i]) {
			t.Fatalf("%s has no %q", name, ids[i])
		}
		s = strings.ReplaceAll(s, ids[i], ids[i+1])
	}
	return s
}

// The seed's example ids.
const (
	seedProofExID = "44269eb7-0288-46ad-ab59-e646ad010202"
	seedConnID    = "001fe530-3562-41d6-a631-3df9c7ae1f38"
)

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hookLog records the webhook posts of both agents, checking their HMAC.
type hookLog struct {
	mu     sync.Mutex
	events []hookEvent
	bad    int
}

type hookEvent struct {
	agent, topic string
	record       json.RawMessage
}

func newHookLog(t *testing.T) (*hookLog, string) {
	h := &hookLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte(aipHookSecret))
		m.Write(body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.Header.Get("X-Agentd-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) {
			h.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var e struct {
			Topic  string          `json:"topic"`
			Record json.RawMessage `json:"record"`
		}
		json.Unmarshal(body, &e)
		agent, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		h.events = append(h.events, hookEvent{agent: agent, topic: e.Topic, record: e.Record})
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL
}

// statesOf returns, per agent and exchange id, the states the webhooks
// reported for topic, in the order of the records' modification times.
func (h *hookLog) statesOf(topic string) map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	type rec struct {
		ID       string    `json:"id"`
		State    string    `json:"state"`
		Modified time.Time `json:"modifiedTimestamp"`
	}
	byID := map[string][]rec{}
	for _, e := range h.events {
		if e.topic != topic {
			continue
		}
		var r rec
		json.Unmarshal(e.record, &r)
		byID[e.agent+"/"+r.ID] = append(byID[e.agent+"/"+r.ID], r)
	}
	out := map[string][]string{}
	for k, rs := range byID {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Modified.Before(rs[j].Modified) })
		for _, r := range rs {
			out[k] = append(out[k], r.State)
		}
	}
	return out
}

// statusServer serves one status list credential, which the test replaces.
type statusServer struct {
	url  string
	list atomic.Value // string: the list credential (a VC-JWT)
}

func newStatusServer(t *testing.T) *statusServer {
	s := &statusServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l, _ := s.list.Load().(string)
		if l == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/vc+jwt")
		io.WriteString(w, l)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/status/1"
	return s
}

// ---------------------------------------------------------------- operations

const (
	opCreateInvitation = `mutation($alias: String!) { createAipConnectionInvitation(alias: $alias) { id state invitation { invitationUrl } } }`
	opAcceptInvitation = `mutation($alias: String!, $url: String!) { acceptAipConnectionInvitation(alias: $alias, invitationUrl: $url) { id state } }`
	opConnExchange     = `query($id: ID!) { aipConnectionExchange(connExId: $id) { id state theirDid } }`
	opConnections      = `query { connections { items { id alias theirDid } } }`
	opCreateSchema     = `mutation($name: String!) { createAnoncredsSchema(args: { name: $name, version: "1.0", attributeNames: ["name", "degree", "age"] }) { id } }`
	opCreateCredDef    = `mutation($s: ID!) { createAnoncredsCredDef(args: { schemaId: $s, tag: "default", isRevocable: false }) { id schemaId } }`
	opSendOffer        = `mutation($c: ID!, $o: AIPCredentialOfferInput!) { sendAipCredentialOffer(connectionId: $c, offer: $o) { id state myRole } }`
	opCredExchanges    = `query($c: ID!, $s: [AIPCredExState!]) { aipCredentialExchanges(filter: { myCredExRole: HOLDER, credExStates: $s, connectionIds: [$c] }) { items { id state } } }`
	opAcceptOffer      = `mutation($id: ID!) { acceptAipCredentialOffer(credExId: $id) { id state } }`
	opCredExchange     = `query($id: ID!) { aipCredentialExchange(credExId: $id) { id state errorMessage } }`
	opCredentials      = `query($f: [CredentialFormat!]) { credentials(filter: { formats: $f }) { items { __typename
		... on AnoncredsCredential { id credDefId attributes { name value } }
		... on W3CCredential { id credentialJson w3cFormat } } } }`
	opSendRequest  = `mutation($c: ID!, $r: AIPProofRequestInput!) { sendAipProofRequest(connectionId: $c, request: $r) { id myRole state connectionId } }`
	opSendProposal = `mutation($c: ID!, $r: AIPProofRequestInput!) { sendAipProofProposal(connectionId: $c, proposal: $r) { id myRole state } }`
	opAcceptProp   = `mutation($id: ID!) { acceptAipProofProposal(proofExId: $id) { id myRole state } }`
	opAcceptReq    = `mutation($id: ID!, $p: AIPProofPresentationInput!) { acceptAipProofRequest(proofExId: $id, presentation: $p) { id myRole state } }`
	opProofEx      = `query($id: ID!) { aipProofExchange(proofExId: $id) { id myRole state errorMessage connectionId
		messages { proposal { comment } request { comment } presentation { verificationResult verificationErrors format { __typename
			... on AnoncredsProofPresentation { groups { referent kind attributes { name value } } }
			... on W3CProofPresentation { presentationJson credentialsForReferents { referent path } } } } } } }`
	opProofExsByState = `query($role: AIPProofExRole, $s: [AIPProofExState!], $c: [ID!]) { aipProofExchanges(filter: { myProofExRole: $role, proofExStates: $s, connectionIds: $c }) { items { id state } } }`
	opSign            = `mutation($signer: String!, $vc: String!, $m: W3CSecuringMechanism!) { signCredential(input: { signer: $signer, format: { w3c: { credentialJson: $vc, securingMechanism: $m } } }) { ... on SignW3CCredentialResult { credentialJson securedCredentialJson } } }`
)

type proofEx struct {
	ID           string
	MyRole       string
	State        string
	ErrorMessage *string
	ConnectionID string
	Messages     struct {
		Proposal     *struct{ Comment *string }
		Request      *struct{ Comment *string }
		Presentation *struct {
			VerificationResult *string
			VerificationErrors []string
			Format             struct {
				Typename string `json:"__typename"`
				Groups   []struct {
					Referent   string
					Kind       string
					Attributes []struct{ Name, Value string }
				}
				PresentationJSON        string `json:"presentationJson"`
				CredentialsForReferents []struct{ Referent, Path string }
			}
		}
	}
}

func (p *proc) proofEx(id string) proofEx {
	p.t.Helper()
	var x proofEx
	p.must(opProofEx, map[string]any{"id": id}, &x)
	return x
}

// awaitProof waits until the exchange is in state and returns it.
func (p *proc) awaitProof(id, state string) proofEx {
	p.t.Helper()
	var x proofEx
	eventually(p.t, p.name+"'s proof exchange "+state, func() bool {
		x = p.proofEx(id)
		if aip.Terminal(x.State) && x.State != state {
			p.t.Fatalf("%s's proof exchange ended %s, want %s: %+v", p.name, x.State, state, x)
		}
		return x.State == state
	})
	return x
}

// incoming waits for the one exchange of role in state on connection
// conn, through the seed's aipProofExchanges query when the role is
// PROVER in REQUEST.
func (p *proc) incoming(role, state, conn string) string {
	p.t.Helper()
	var id string
	eventually(p.t, p.name+" receives a "+state, func() bool {
		var page struct {
			Items []struct {
				ID, MyRole, State, ConnectionID string
				Messages                        struct {
					Request *struct {
						Format struct {
							Typename string `json:"__typename"`
						}
					}
				}
			}
		}
		if role == "PROVER" && state == "REQUEST" {
			p.must(seedOp(p.t, "seed_aipProofExchanges", seedConnID, conn), nil, &page)
			for _, it := range page.Items {
				if it.Messages.Request == nil || it.Messages.Request.Format.Typename == "" {
					p.t.Fatalf("seed query: request without its format: %+v", it)
				}
			}
		} else {
			p.must(opProofExsByState, map[string]any{"role": role, "s": []string{state}, "c": []string{conn}}, &page)
		}
		for _, it := range page.Items {
			if it.State != state || (it.MyRole != "" && it.MyRole != role) {
				p.t.Fatalf("filter let through %+v", it)
			}
		}
		if len(page.Items) > 1 {
			p.t.Fatalf("%s has %d exchanges in %s, want 1", p.name, len(page.Items), state)
		}
		if len(page.Items) == 1 {
			id = page.Items[0].ID
		}
		return id != ""
	})
	return id
}

type forReferent struct {
	Referent      string
	CredentialIDs []string `json:"credentialIds"`
}

// candidates runs the seed's credentialsForAipProofExchange.
func (p *proc) candidates(id string) map[string][]string {
	p.t.Helper()
	var out struct{ CredentialsForReferents []forReferent }
	p.must(seedOp(p.t, "seed_credentialsForAipProofExchange", seedProofExID, id), nil, &out)
	m := map[string][]string{}
	for _, r := range out.CredentialsForReferents {
		if _, dup := m[r.Referent]; dup {
			p.t.Fatalf("referent %s twice", r.Referent)
		}
		m[r.Referent] = r.CredentialIDs
	}
	return m
}

// connect makes a connection from a's invitation and returns both sides'
// connection ids.
func connect(t *testing.T, a, b *proc) (aConn, bConn string) {
	var inv struct {
		ID, State  string
		Invitation struct{ InvitationURL string }
	}
	a.must(opCreateInvitation, map[string]any{"alias": "bob"}, &inv)
	if inv.State != "INVITATION" || inv.Invitation.InvitationURL == "" {
		t.Fatalf("invitation %+v", inv)
	}
	var acc struct{ ID, State string }
	b.must(opAcceptInvitation, map[string]any{"alias": "alice", "url": inv.Invitation.InvitationURL}, &acc)
	for _, x := range []struct {
		p  *proc
		id string
	}{{a, inv.ID}, {b, acc.ID}} {
		eventually(t, x.p.name+"'s connection exchange DONE", func() bool {
			var ex struct{ State string }
			x.p.must(opConnExchange, map[string]any{"id": x.id}, &ex)
			return ex.State == "DONE"
		})
	}
	conns := func(p, peer *proc) string {
		var page struct {
			Items []struct{ ID, Alias, TheirDid string }
		}
		p.must(opConnections, nil, &page)
		if len(page.Items) != 1 || page.Items[0].TheirDid != peer.did {
			t.Fatalf("%s's connections %+v, want one with %s", p.name, page.Items, peer.did)
		}
		return page.Items[0].ID
	}
	return conns(a, b), conns(b, a)
}

// issue offers a credential from issuer to holder on their connection,
// has the holder accept it and waits until both are DONE.
func issue(t *testing.T, issuer, holder *proc, iConn, hConn string, offer map[string]any) {
	t.Helper()
	offer["autoAcceptRequest"] = true
	var x struct{ ID, State, MyRole string }
	issuer.must(opSendOffer, map[string]any{"c": iConn, "o": offer}, &x)
	if x.State != "OFFER" || x.MyRole != "ISSUER" {
		t.Fatalf("offer %+v", x)
	}
	var hid string
	eventually(t, holder.name+" receives the offer", func() bool {
		var page struct{ Items []struct{ ID, State string } }
		holder.must(opCredExchanges, map[string]any{"c": hConn, "s": []string{"OFFER"}}, &page)
		if len(page.Items) == 1 {
			hid = page.Items[0].ID
		}
		return hid != ""
	})
	holder.must(opAcceptOffer, map[string]any{"id": hid}, nil)
	for _, s := range []struct {
		p  *proc
		id string
	}{{holder, hid}, {issuer, x.ID}} {
		eventually(t, s.p.name+"'s credential exchange DONE", func() bool {
			var ex struct {
				State        string
				ErrorMessage *string
			}
			s.p.must(opCredExchange, map[string]any{"id": s.id}, &ex)
			if ex.State == "ABANDONED" {
				t.Fatalf("%s's credential exchange abandoned: %v", s.p.name, *ex.ErrorMessage)
			}
			return ex.State == "DONE"
		})
	}
}

type heldCredential struct {
	Typename       string `json:"__typename"`
	ID             string
	CredDefID      string `json:"credDefId"`
	Attributes     []struct{ Name, Value string }
	CredentialJSON string `json:"credentialJson"`
	W3CFormat      string `json:"w3cFormat"`
}

func (p *proc) credentials(format string) []heldCredential {
	p.t.Helper()
	var page struct{ Items []heldCredential }
	p.must(opCredentials, map[string]any{"f": []string{format}}, &page)
	return page.Items
}

// w3cHeld finds the held W3C credential whose JSON contains marker.
func (p *proc) w3cHeld(marker string) heldCredential {
	p.t.Helper()
	var found []heldCredential
	for _, c := range p.credentials("W3C") {
		raw := c.CredentialJSON
		if !strings.HasPrefix(strings.TrimSpace(raw), "{") {
			raw = jwtPayload(p.t, raw)
		}
		if strings.Contains(raw, marker) {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		p.t.Fatalf("%s holds %d W3C credentials with %q", p.name, len(found), marker)
	}
	return found[0]
}

func jwtPayload(t *testing.T, jwt string) string {
	parts := strings.Split(strings.Trim(jwt, `"`), ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.80s", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// w3cGroup is a W3CProofAttributeGroupInput asking for path = value.
func w3cGroup(referent, path, value string) map[string]any {
	return map[string]any{"referent": referent, "attributes": []any{map[string]any{
		"attributePaths": []string{path}, "valueRestrictions": map[string]any{"dataFormat": "STRING", "equal": value}}}}
}

func w3cRequest(comment string, groups ...map[string]any) map[string]any {
	return map[string]any{"comment": comment, "format": map[string]any{"w3c": map[string]any{
		"attributeGroups": groups, "challenge": "c-" + comment, "domain": "alice.example"}}}
}

func w3cAnswer(pairs ...string) map[string]any {
	var refs []any
	for i := 0; i+1 < len(pairs); i += 2 {
		refs = append(refs, map[string]any{"referent": pairs[i], "credentialId": pairs[i+1]})
	}
	return map[string]any{"format": map[string]any{"w3c": map[string]any{"credentialsForReferents": refs}}}
}

// ---------------------------------------------------------------- the test

// TestAIPProofExchangesBetweenTwoProcesses runs the seed's proof exchanges
// between two agentd processes through GraphQL only: connection,
// AnonCreds and W3C (JWT and JSON-LD) credentials issued by Issue
// Credential 3.0, proof requests both ways with several referents
// answered by different credentials, a proposal first, an unanswerable
// request, a revoked credential, refused accepts, a delete that abandons
// the peer's exchange, a kill -9 and restart in the middle, and states
// that never go back.
func TestAIPProofExchangesBetweenTwoProcesses(t *testing.T) {
	hooks, hookURL := newHookLog(t)
	status := newStatusServer(t)
	env := []string{"AGENTD_AIP_WEBHOOK_SECRET=" + aipHookSecret}
	alice := startProc(t, "alice", aipYAML("Alice", hookURL+"/alice"), env...)
	bob := startProc(t, "bob", aipYAML("Bob", hookURL+"/bob"), env...)
	aConn, bConn := connect(t, alice, bob)
	top := t

	var aliceIssuer string // Alice's W3C issuer DID, learnt from a credential she issued
	t.Run("anoncreds", func(t *testing.T) {
		alice.t, bob.t = t, t
		var schema struct{ ID string }
		alice.must(opCreateSchema, map[string]any{"name": "degree"}, &schema)
		var cd struct{ ID, SchemaID string }
		alice.must(opCreateCredDef, map[string]any{"s": schema.ID}, &cd)
		if cd.SchemaID != schema.ID || !strings.HasPrefix(cd.ID, alice.did+"/anoncreds/v0/CLAIM_DEF/") {
			t.Fatalf("cred def %+v", cd)
		}
		// Bob's operator imports Alice's public objects (no ledger here).
		for _, id := range []string{schema.ID, cd.ID} {
			obj := alice.call("GET", "/admin/anoncreds/objects/"+url.PathEscape(id), nil, nil, 200)
			bob.call("POST", "/admin/anoncreds/objects", obj, nil, 201)
			bob.call("POST", "/admin/anoncreds/objects", obj, nil, 409) // stored already
		}
		alice.call("GET", "/admin/anoncreds/objects/"+url.PathEscape("did:example:x/anoncreds/v0/SCHEMA/x/1"), nil, nil, 404)
		issue(t, alice, bob, aConn, bConn, map[string]any{"format": map[string]any{"anoncreds": map[string]any{
			"credDefId": cd.ID, "attributes": []any{
				map[string]any{"name": "name", "value": "Bob"}, map[string]any{"name": "degree", "value": "Maths"},
				map[string]any{"name": "age", "value": "27"}}}}})
		held := bob.credentials("ANONCREDS")
		if len(held) != 1 || held[0].CredDefID != cd.ID || len(held[0].Attributes) != 3 {
			t.Fatalf("Bob holds %+v", held)
		}
		cred := held[0].ID

		req := map[string]any{"comment": "name, degree and age", "format": map[string]any{"anoncreds": map[string]any{
			"attributeGroups": []any{
				map[string]any{"referent": "identity", "attributeNames": []string{"name", "degree"},
					"restrictions": []any{map[string]any{"credDefId": cd.ID}}},
				map[string]any{"referent": "adult", "attributeNames": []string{"age"},
					"restrictions": []any{map[string]any{"credDefId": cd.ID, "predicate": map[string]any{"operator": "GREATER_THAN_OR_EQUAL", "threshold": 18}}}},
			}}}}
		var vx proofEx
		alice.must(opSendRequest, map[string]any{"c": aConn, "r": req}, &vx)
		if vx.MyRole != "VERIFIER" || vx.State != "REQUEST" || vx.ConnectionID != aConn {
			t.Fatalf("request %+v", vx)
		}
		px := bob.incoming("PROVER", "REQUEST", bConn)
		c := bob.candidates(px)
		if len(c) != 2 || strings.Join(c["identity"], ",") != cred || strings.Join(c["adult"], ",") != cred {
			t.Fatalf("candidates %v, want %s for both referents", c, cred)
		}
		bob.must(opAcceptReq, map[string]any{"id": px, "p": map[string]any{"format": map[string]any{"anoncreds": map[string]any{
			"credentialsForReferents": []any{map[string]any{"referent": "identity", "credentialId": cred, "revealed": true},
				map[string]any{"referent": "adult", "credentialId": cred}}}}}}, nil)
		done := alice.awaitProof(vx.ID, "DONE")
		pres := done.Messages.Presentation
		if pres == nil || pres.VerificationResult == nil || *pres.VerificationResult != "VERIFIED" || pres.Format.Typename != "AnoncredsProofPresentation" {
			t.Fatalf("Alice's presentation %+v", pres)
		}
		revealed := map[string]string{}
		kinds := map[string]string{}
		for _, g := range pres.Format.Groups {
			kinds[g.Referent] = g.Kind
			for _, a := range g.Attributes {
				revealed[a.Name] = a.Value
			}
		}
		if revealed["name"] != "Bob" || revealed["degree"] != "Maths" || kinds["identity"] != "REVEALED" || kinds["adult"] != "PREDICATE" {
			t.Fatalf("revealed %v kinds %v", revealed, kinds)
		}
		if revealed["age"] == "27" {
			t.Fatal("the predicate's attribute was revealed")
		}
		bob.awaitProof(px, "DONE") // the ack

		// Accepting the verifier's exchange, or a done one again: INVALID_STATE, nothing changes.
		ans := map[string]any{"format": map[string]any{"anoncreds": map[string]any{"credentialsForReferents": []any{
			map[string]any{"referent": "identity", "credentialId": cred}}}}}
		for _, x := range []struct {
			p  *proc
			id string
		}{{alice, vx.ID}, {bob, px}} {
			before := x.p.proofEx(x.id)
			if e := x.p.refused(opAcceptReq, map[string]any{"id": x.id, "p": ans}); e.Extensions.Code != "INVALID_STATE" {
				t.Errorf("%s: accept on %s/%s: %+v", x.p.name, before.MyRole, before.State, e)
			}
			if after := x.p.proofEx(x.id); mustJSON(after) != mustJSON(before) {
				t.Errorf("%s: a refused accept changed the exchange:\n%+v\n%+v", x.p.name, before, after)
			}
		}
	})

	t.Run("w3c", func(t *testing.T) {
		alice.t, bob.t = t, t
		// A VC-JWT and a JSON-LD credential, from Alice to Bob.
		issue(t, alice, bob, aConn, bConn, map[string]any{"format": map[string]any{"w3c": map[string]any{"securingMechanism": "JWT",
			"credentialJson": `{"@context":["https://www.w3.org/2018/credentials/v1","https://www.w3.org/2018/credentials/examples/v1"],
			"type":["VerifiableCredential","UniversityDegreeCredential"],"issuanceDate":"2024-01-01T00:00:00Z",
			"credentialSubject":{"degree":{"type":"BachelorDegree","name":"Bachelor of Science and Arts"}}}`}}})
		issue(t, alice, bob, aConn, bConn, map[string]any{"format": map[string]any{"w3c": map[string]any{"securingMechanism": "LINKED_DATA_PROOF",
			"credentialJson": `{"@context":["https://www.w3.org/2018/credentials/v1","https://www.w3.org/2018/credentials/examples/v1"],
			"type":["VerifiableCredential","AlumniCredential"],"issuanceDate":"2024-01-01T00:00:00Z",
			"credentialSubject":{"alumniOf":"Example University"}}`}}})
		degree, alumni := bob.w3cHeld("BachelorDegree"), bob.w3cHeld("Example University")
		if degree.W3CFormat != "jwt_vc_json" || alumni.W3CFormat != "ldp_vc" {
			t.Fatalf("formats %s %s", degree.W3CFormat, alumni.W3CFormat)
		}
		var ldp struct{ Issuer string }
		json.Unmarshal([]byte(alumni.CredentialJSON), &ldp)
		if !strings.HasPrefix(ldp.Issuer, "did:key:z6Mk") {
			t.Fatalf("Alice issues as %q, want her did:key", ldp.Issuer)
		}
		aliceIssuer = ldp.Issuer

		// Two referents, a different credential each; Bob is killed (-9)
		// after the request arrived and restarted before he answers.
		var vx proofEx
		alice.must(opSendRequest, map[string]any{"c": aConn, "r": w3cRequest("two",
			w3cGroup("degree", "$.credentialSubject.degree.type", "BachelorDegree"),
			w3cGroup("alumni", "$.credentialSubject.alumniOf", "Example University"))}, &vx)
		px := bob.incoming("PROVER", "REQUEST", bConn)
		bob.cmd.Process.Signal(syscall.SIGKILL)
		bob.cmd.Wait()
		bob.t = top // the restarted process lives as long as the whole test
		bob.start()
		bob.t = t
		c := bob.candidates(px)
		if strings.Join(c["degree"], ",") != degree.ID || strings.Join(c["alumni"], ",") != alumni.ID {
			t.Fatalf("candidates %v, want degree %s alumni %s", c, degree.ID, alumni.ID)
		}
		bob.must(opAcceptReq, map[string]any{"id": px, "p": w3cAnswer("degree", degree.ID, "alumni", alumni.ID)}, nil)
		done := alice.awaitProof(vx.ID, "DONE")
		pres := done.Messages.Presentation
		if pres == nil || pres.VerificationResult == nil || *pres.VerificationResult != "VERIFIED" || len(pres.Format.CredentialsForReferents) != 2 {
			t.Fatalf("Alice's presentation %+v", pres)
		}
		bob.awaitProof(px, "DONE")

		// A request nothing fits: empty lists; deleting it on Alice's side
		// abandons Bob's by the problem report.
		alice.must(opSendRequest, map[string]any{"c": aConn, "r": w3cRequest("passport",
			w3cGroup("passport", "$.credentialSubject.passportNumber", "P123"))}, &vx)
		px = bob.incoming("PROVER", "REQUEST", bConn)
		if c := bob.candidates(px); len(c) != 1 || c["passport"] == nil || len(c["passport"]) != 0 {
			t.Fatalf("candidates for an unanswerable request %v, want passport: []", c)
		}
		var deleted string
		alice.must(seedOp(t, "seed_deleteAipProofExchange", seedProofExID, vx.ID), nil, &deleted)
		if deleted != vx.ID {
			t.Fatalf("deleted %q", deleted)
		}
		if x, _ := alice.gql(opProofEx, map[string]any{"id": vx.ID}); string(x["aipProofExchange"]) != "null" {
			t.Fatalf("deleted exchange still there: %s", x["aipProofExchange"])
		}
		ab := bob.awaitProof(px, "ABANDONED")
		if ab.ErrorMessage == nil || *ab.ErrorMessage == "" {
			t.Fatalf("abandoned without a reason: %+v", ab)
		}
		if e := bob.refused(opAcceptReq, map[string]any{"id": px, "p": w3cAnswer("passport", degree.ID)}); e.Extensions.Code != "INVALID_STATE" {
			t.Errorf("accept of an abandoned exchange: %+v", e)
		}
	})

	t.Run("proposal first", func(t *testing.T) {
		alice.t, bob.t = t, t
		degree := bob.w3cHeld("BachelorDegree")
		var bx proofEx
		bob.must(opSendProposal, map[string]any{"c": bConn, "r": w3cRequest("proposed",
			w3cGroup("degree", "$.credentialSubject.degree.type", "BachelorDegree"))}, &bx)
		if bx.MyRole != "PROVER" || bx.State != "PROPOSAL" {
			t.Fatalf("proposal %+v", bx)
		}
		ax := alice.incoming("VERIFIER", "PROPOSAL", aConn)
		if x := alice.proofEx(ax); x.Messages.Proposal == nil {
			t.Fatalf("Alice's exchange has no proposal: %+v", x)
		}
		alice.must(opAcceptProp, map[string]any{"id": ax}, nil)
		bob.awaitProof(bx.ID, "REQUEST")
		if c := bob.candidates(bx.ID); strings.Join(c["degree"], ",") != degree.ID {
			t.Fatalf("candidates %v", c)
		}
		bob.must(opAcceptReq, map[string]any{"id": bx.ID, "p": w3cAnswer("degree", degree.ID)}, nil)
		done := alice.awaitProof(ax, "DONE")
		if r := done.Messages.Presentation; r == nil || r.VerificationResult == nil || *r.VerificationResult != "VERIFIED" {
			t.Fatalf("Alice's presentation %+v", r)
		}
		bob.awaitProof(bx.ID, "DONE")
	})

	t.Run("roles reversed, verifier restarted", func(t *testing.T) {
		alice.t, bob.t = t, t
		issue(t, bob, alice, bConn, aConn, map[string]any{"format": map[string]any{"w3c": map[string]any{"securingMechanism": "JWT",
			"credentialJson": `{"@context":["https://www.w3.org/2018/credentials/v1","https://www.w3.org/2018/credentials/examples/v1"],
			"type":["VerifiableCredential","UniversityDegreeCredential"],"issuanceDate":"2024-01-01T00:00:00Z",
			"credentialSubject":{"degree":{"type":"MasterDegree","name":"Master of Arts"}}}`}}})
		master := alice.w3cHeld("MasterDegree")
		var vx proofEx
		bob.must(opSendRequest, map[string]any{"c": bConn, "r": w3cRequest("master",
			w3cGroup("degree", "$.credentialSubject.degree.type", "MasterDegree"))}, &vx)
		px := alice.incoming("PROVER", "REQUEST", aConn)
		if c := alice.candidates(px); strings.Join(c["degree"], ",") != master.ID {
			t.Fatalf("candidates %v", c)
		}
		// The verifier is down (kill -9) when the presentation is sent: it
		// waits in Alice's outbox and is verified once Bob is back.
		bob.cmd.Process.Signal(syscall.SIGKILL)
		bob.cmd.Wait()
		alice.must(opAcceptReq, map[string]any{"id": px, "p": w3cAnswer("degree", master.ID)}, nil)
		time.Sleep(300 * time.Millisecond) // a delivery attempt or two fails
		bob.t = top
		bob.start()
		bob.t = t
		done := bob.awaitProof(vx.ID, "DONE")
		if r := done.Messages.Presentation; r == nil || r.VerificationResult == nil || *r.VerificationResult != "VERIFIED" {
			t.Fatalf("Bob's presentation %+v", r)
		}
		alice.awaitProof(px, "DONE")
	})

	t.Run("revoked", func(t *testing.T) {
		alice.t, bob.t = t, t
		if aliceIssuer == "" {
			t.Fatal("the w3c step did not learn Alice's issuer DID")
		}
		bits := make([]byte, 16384)
		const index = 77
		publish := func() {
			enc, err := w3cvc.EncodeStatusList(bits)
			if err != nil {
				t.Fatal(err)
			}
			list := fmt.Sprintf(`{"@context":["https://www.w3.org/ns/credentials/v2"],"id":%q,"type":["VerifiableCredential","BitstringStatusListCredential"],
				"issuer":%q,"validFrom":"2024-01-01T00:00:00Z","credentialSubject":{"id":"%s#list","type":"BitstringStatusList","statusPurpose":"revocation","encodedList":%q}}`,
				status.url, aliceIssuer, status.url, enc)
			var signed struct{ CredentialJSON, SecuredCredentialJSON string }
			alice.must(opSign, map[string]any{"signer": aliceIssuer, "vc": list, "m": "JWT"}, &signed)
			if strings.Count(signed.SecuredCredentialJSON, ".") != 2 || !strings.Contains(signed.CredentialJSON, aliceIssuer) {
				t.Fatalf("signed list %+v", signed)
			}
			status.list.Store(signed.SecuredCredentialJSON)
		}
		publish()
		// signCredential refuses SD_JWT and a DID Alice does not sign for.
		if e := alice.refused(opSign, map[string]any{"signer": aliceIssuer, "vc": `{"credentialSubject":{}}`, "m": "SD_JWT"}); e.Extensions.Code != "UNSUPPORTED_FORMAT" {
			t.Errorf("SD_JWT: %+v", e)
		}
		if e := alice.refused(opSign, map[string]any{"signer": bob.did, "vc": `{"credentialSubject":{}}`, "m": "JWT"}); e.Extensions.Code != "BAD_USER_INPUT" {
			t.Errorf("foreign signer: %+v", e)
		}
		if e := alice.refused(opSign, map[string]any{"signer": alice.did, "vc": `{"credentialSubject":{}}`, "m": "JWT"}); e.Extensions.Code != "BAD_USER_INPUT" || !strings.Contains(e.Message, aliceIssuer) {
			t.Errorf("signing as the did:peer: %+v", e)
		}
		// A JSON-LD credential: the secured form carries the proof, the plain one not.
		var ldp struct{ CredentialJSON, SecuredCredentialJSON string }
		alice.must(opSign, map[string]any{"signer": aliceIssuer, "m": "LINKED_DATA_PROOF",
			"vc": `{"@context":["https://www.w3.org/2018/credentials/v1","https://www.w3.org/2018/credentials/examples/v1"],"type":["VerifiableCredential","AlumniCredential"],"issuanceDate":"2024-01-01T00:00:00Z","credentialSubject":{"id":"did:example:123","alumniOf":"Example University"}}`}, &ldp)
		var plain, secured map[string]any
		json.Unmarshal([]byte(ldp.CredentialJSON), &plain)
		json.Unmarshal([]byte(ldp.SecuredCredentialJSON), &secured)
		if proof, _ := secured["proof"].(map[string]any); proof == nil || proof["type"] != "Ed25519Signature2020" || plain["proof"] != nil || plain["issuer"] != aliceIssuer || secured["issuer"] != aliceIssuer {
			t.Errorf("signed JSON-LD credential:\nplain %v\nsecured %v", plain, secured)
		}
		issue(t, alice, bob, aConn, bConn, map[string]any{"format": map[string]any{"w3c": map[string]any{"securingMechanism": "JWT",
			"credentialJson": fmt.Sprintf(`{"@context":["https://www.w3.org/ns/credentials/v2"],"type":["VerifiableCredential","LicenceCredential"],
			"validFrom":"2024-01-01T00:00:00Z","credentialSubject":{"licence":"revocable-licence"},
			"credentialStatus":{"id":"%s#%d","type":"BitstringStatusListEntry","statusPurpose":"revocation","statusListIndex":"%d","statusListCredential":%q}}`,
				status.url, index, index, status.url)}}})
		licence := bob.w3cHeld("revocable-licence")

		bits[index/8] |= 0x80 >> (index % 8) // revoked
		publish()
		var vx proofEx
		alice.must(opSendRequest, map[string]any{"c": aConn, "r": w3cRequest("licence",
			w3cGroup("licence", "$.credentialSubject.licence", "revocable-licence"))}, &vx)
		px := bob.incoming("PROVER", "REQUEST", bConn)
		bob.must(opAcceptReq, map[string]any{"id": px, "p": w3cAnswer("licence", licence.ID)}, nil)
		done := alice.awaitProof(vx.ID, "DONE")
		r := done.Messages.Presentation
		if r == nil || r.VerificationResult == nil || *r.VerificationResult != "NOT_VERIFIED" || !strings.Contains(strings.Join(r.VerificationErrors, " "), "revoked") {
			t.Fatalf("presentation of a revoked credential: %+v", r)
		}
		// The prover hears of it by the problem report that follows.
		bob.awaitProof(px, "ABANDONED")
	})

	alice.t, bob.t = t, t
	// States never went back: each exchange's webhook records, in order of
	// modification, follow aip.CanMove.
	eventually(t, "the webhooks of the last exchanges", func() bool {
		for _, s := range hooks.statesOf(aip.TopicProofExchange) {
			if last := s[len(s)-1]; !aip.Terminal(last) {
				return false
			}
		}
		return len(hooks.statesOf(aip.TopicProofExchange)) >= 12
	})
	seen := map[string]bool{}
	for _, topic := range []string{aip.TopicProofExchange, aip.TopicCredentialExchange} {
		for id, states := range hooks.statesOf(topic) {
			for i := 1; i < len(states); i++ {
				seen[states[i-1]+">"+states[i]] = true
				if states[i] != states[i-1] && !canMove(topic, states[i-1], states[i]) {
					t.Errorf("%s %s went %s → %s: %v", topic, id, states[i-1], states[i], states)
				}
			}
		}
	}
	for _, step := range []string{"REQUEST>PRESENTED", "PRESENTED>DONE", "PROPOSAL>REQUEST", "REQUEST>ABANDONED", "OFFER>REQUEST"} {
		if !seen[step] {
			t.Errorf("no webhook showed %s (seen %v)", step, seen)
		}
	}
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	if hooks.bad != 0 {
		t.Errorf("%d webhook posts with a bad signature", hooks.bad)
	}
}

func canMove(topic, from, to string) bool {
	if topic == aip.TopicProofExchange {
		return aip.CanMove(aip.ProofExState(from), aip.ProofExState(to))
	}
	return aip.CanMove(aip.CredExState(from), aip.CredExState(to))
}
