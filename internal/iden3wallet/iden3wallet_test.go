package iden3wallet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iden3/go-circuits/v2"
	auth "github.com/iden3/go-iden3-auth/v2"
	"github.com/iden3/go-iden3-auth/v2/loaders"
	"github.com/iden3/go-iden3-auth/v2/pubsignals"
	"github.com/iden3/go-iden3-auth/v2/state"
	"github.com/iden3/iden3comm/v2/protocol"
	"github.com/piprate/json-gold/ld"
)

// verifierDID is the DID the hand-made requests come from (any amoy DID:
// go-iden3-auth only checks that the response is addressed to it).
const verifierDID = "did:polygonid:polygon:amoy:2qV9QXdhXXmN5sKjN1YueMjxgRbnJcEGK2kGpvk3cq"

// TestCircuitKeysMatchGoIden3Auth checks that the circuit files make proofs
// the daemon's verifier can check: every verification_key.json in the cache
// must equal, as JSON, the key go-iden3-auth v2.8.1 embeds.
func TestCircuitKeysMatchGoIden3Auth(t *testing.T) {
	dir, err := CircuitsDir()
	if err != nil {
		t.Fatalf("%v", err)
	}
	kl := loaders.NewEmbeddedKeyLoader()
	for _, c := range CircuitIDs {
		want, err := kl.Load(circuits.CircuitID(c))
		if err != nil {
			t.Fatalf("go-iden3-auth has no key for %s: %v", c, err)
		}
		got, err := os.ReadFile(dir + "/" + c + "/verification_key.json")
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: the verification key of %s@%s differs from go-iden3-auth v2.8.1's: proofs from these files would not verify", c, CircuitsPackage, CircuitsVersion)
		}
	}
}

// TestMissingCircuitsAdvice: without the circuit files, Start fails (no
// skip) and says what to run.
func TestMissingCircuitsAdvice(t *testing.T) {
	t.Setenv("AGENTD_IDEN3_CIRCUITS_CACHE", t.TempDir())
	_, err := Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "make deps") {
		t.Fatalf("Start without circuit files: %v, want an error advising make deps", err)
	}
}

// callbackServer serves one request at /request and records what is posted
// to /callback.
type callbackServer struct {
	*httptest.Server
	mu      sync.Mutex
	request []byte
	posts   []post
}

type post struct {
	contentType string
	body        string
}

func newCallbackServer(t *testing.T) *callbackServer {
	cs := &callbackServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /request", func(w http.ResponseWriter, r *http.Request) {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(cs.request)
	})
	mux.HandleFunc("POST /callback", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		cs.mu.Lock()
		cs.posts = append(cs.posts, post{r.Header.Get("Content-Type"), string(b)})
		cs.mu.Unlock()
		_, _ = w.Write([]byte("recorded"))
	})
	cs.Server = httptest.NewServer(mux)
	t.Cleanup(cs.Close)
	return cs
}

func (cs *callbackServer) serve(req []byte) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.request, cs.posts = req, nil
}

func (cs *callbackServer) received() []post {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]post(nil), cs.posts...)
}

// scope is one proof request of an authorization request.
type scope struct {
	id        uint32
	circuitID string
	subject   map[string]any // query.credentialSubject
	optional  bool
}

// birthdayBefore2000 asks for birthday < 2000-01-01.
var birthdayBefore2000 = map[string]any{"birthday": map[string]any{"$lt": 20000101}}

// authRequest builds an authorization request by hand.
func authRequest(t *testing.T, id, callback, message string, scopes ...scope) []byte {
	t.Helper()
	var sc []any
	for _, s := range scopes {
		m := map[string]any{
			"id":        s.id,
			"circuitId": s.circuitID,
			"query": map[string]any{
				"allowedIssuers":    []string{"*"},
				"context":           SchemaContextURL,
				"type":              SchemaType,
				"credentialSubject": s.subject,
			},
		}
		if s.optional {
			m["optional"] = true
		}
		sc = append(sc, m)
	}
	req := map[string]any{
		"id":   id,
		"thid": id,
		"typ":  "application/iden3comm-plain-json",
		"type": "https://iden3-communication.io/authorization/1.0/request",
		"from": verifierDID,
		"body": map[string]any{
			"callbackUrl": callback,
			"reason":      "harness test",
			"message":     message,
			"scope":       sc,
		},
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// responseScopes returns the circuit id of each scope id of a response.
func responseScopes(t *testing.T, response []byte) map[uint32]string {
	t.Helper()
	var resp struct {
		Body struct {
			Scope []struct {
				ID        uint32 `json:"id"`
				CircuitID string `json:"circuitId"`
			} `json:"scope"`
		} `json:"body"`
	}
	if err := json.Unmarshal(response, &resp); err != nil {
		t.Fatal(err)
	}
	out := map[uint32]string{}
	for _, s := range resp.Body.Scope {
		out[s.ID] = s.CircuitID
	}
	return out
}

// fileLoader is a JSON-LD document loader over SchemaFiles: no network.
type fileLoader map[string]string

func (l fileLoader) LoadDocument(u string) (*ld.RemoteDocument, error) {
	path, ok := l[u]
	if !ok {
		return nil, fmt.Errorf("document %s is not in interop/iden3/schemas (offline test)", u)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := ld.DocumentFromReader(f)
	if err != nil {
		return nil, err
	}
	return &ld.RemoteDocument{DocumentURL: u, Document: doc}, nil
}

// verifyGo runs go-iden3-auth v2.8.1 FullVerify with a fresh verifier whose
// resolver is the library's real ETHResolver pointed at anvil.
func verifyGo(ctx context.Context, t *testing.T, chain ChainInfo, token string, requestJSON []byte) error {
	t.Helper()
	files, err := SchemaFiles()
	if err != nil {
		t.Fatal(err)
	}
	resolver, err := state.NewETHResolverWithOpts(chain.RPCURL, chain.StateContract)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(loaders.NewEmbeddedKeyLoader(),
		map[string]pubsignals.StateResolver{ResolverKey: resolver},
		auth.WithDocumentLoader(fileLoader(files)))
	if err != nil {
		t.Fatal(err)
	}
	var req protocol.AuthorizationRequestMessage
	if err := json.Unmarshal(requestJSON, &req); err != nil {
		t.Fatal(err)
	}
	_, err = v.FullVerify(ctx, token, req)
	return err
}

// TestHarness proves the harness without agentd's verifier, with
// js-iden3-auth and go-iden3-auth both: a SigV2 answer is accepted at once;
// an MTPV2 answer is refused while the issuer's state is unpublished, and the
// same token is accepted after PublishIssuerState; with optional MTPV2 and
// SigV2 scopes the wallet answers SigV2 only until the issuer publishes, then
// both.
func TestHarness(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	w, err := Start(ctx)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer w.Close()
	chain := w.Chain()
	if chain.ChainID != ChainID || !strings.HasPrefix(chain.RPCURL, "http://127.0.0.1:") || !strings.HasPrefix(chain.StateContract, "0x") {
		t.Fatalf("chain %+v", chain)
	}
	for _, did := range []string{w.IssuerDID(), w.HolderDID()} {
		if !strings.HasPrefix(did, "did:"+DIDMethod+":"+Blockchain+":"+Network+":") {
			t.Fatalf("DID %s is not on %s:%s:%s", did, DIDMethod, Blockchain, Network)
		}
	}
	t.Logf("setup (chain, contracts, identities) %v: %+v issuer %s holder %s", time.Since(start).Round(time.Millisecond), chain, w.IssuerDID(), w.HolderDID())

	cs := newCallbackServer(t)

	cred, err := w.Issue(ctx, KindSig)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cred.JSON, []byte(`"BJJSignature2021"`)) || bytes.Contains(cred.JSON, []byte(`"Iden3SparseMerkleTreeProof"`)) {
		t.Fatalf("sig credential has the wrong proofs: %s", truncate(string(cred.JSON), 400))
	}

	// SigV2, fetched through a percent-encoded request_uri and posted back.
	sigReq := authRequest(t, "5b5a5a6e-9a2b-4e4c-8f0a-000000000001", cs.URL+"/callback?sessionID=1", "12345",
		scope{id: 12345, circuitID: CircuitSigV2, subject: birthdayBefore2000})
	cs.serve(sigReq)
	deepLink := "iden3comm://?request_uri=" + url.QueryEscape(cs.URL+"/request?id=1&x=a b")
	t0 := time.Now()
	ans, err := w.Answer(ctx, deepLink)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SigV2 answer %v (proving %v)", time.Since(t0).Round(time.Millisecond), ans.Prove)
	if ans.Status != http.StatusOK || ans.Body != "recorded" {
		t.Fatalf("callback answered %d %q", ans.Status, ans.Body)
	}
	posts := cs.received()
	if len(posts) != 1 || posts[0].body != ans.Token || !strings.HasPrefix(posts[0].contentType, "text/plain") {
		t.Fatalf("callback received %+v, want the token once as text/plain", posts)
	}
	var resp struct {
		From, To, Thid, Type string
		Body                 struct {
			Message string
			Scope   []struct {
				ID        uint32
				CircuitID string
			}
		}
	}
	if err := json.Unmarshal(ans.Response, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.From != w.HolderDID() || resp.To != verifierDID || resp.Thid != "5b5a5a6e-9a2b-4e4c-8f0a-000000000001" ||
		resp.Body.Message != "12345" || len(resp.Body.Scope) != 1 || resp.Body.Scope[0].ID != 12345 || resp.Body.Scope[0].CircuitID != CircuitSigV2 {
		t.Fatalf("response %s", ans.Response)
	}
	if v, err := w.VerifyJS(ctx, ans.Token, sigReq); err != nil || !v.OK {
		t.Fatalf("js-iden3-auth refused the SigV2 answer: %+v %v", v, err)
	}
	if err := verifyGo(ctx, t, chain, ans.Token, sigReq); err != nil {
		t.Fatalf("go-iden3-auth refused the SigV2 answer: %v", err)
	}
	// A token bound to another request is refused by both.
	otherReq := authRequest(t, "5b5a5a6e-9a2b-4e4c-8f0a-000000000001", cs.URL+"/callback?sessionID=1", "54321",
		scope{id: 12345, circuitID: CircuitSigV2, subject: birthdayBefore2000})
	if v, err := w.VerifyJS(ctx, ans.Token, otherReq); err != nil || v.OK {
		t.Fatalf("js-iden3-auth accepted an answer to another message: %+v %v", v, err)
	}
	if err := verifyGo(ctx, t, chain, ans.Token, otherReq); err == nil {
		t.Fatal("go-iden3-auth accepted an answer to another message")
	}

	// MTPV2: the claim is in the issuer's tree, but its state is not on chain.
	mcred, err := w.Issue(ctx, KindMTP)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(mcred.JSON, []byte(`"Iden3SparseMerkleTreeProof"`)) || mcred.IssuerState == "" {
		t.Fatalf("mtp credential: %s", truncate(string(mcred.JSON), 400))
	}
	mtpReq := authRequest(t, "5b5a5a6e-9a2b-4e4c-8f0a-000000000002", cs.URL+"/callback?sessionID=2", "",
		scope{id: 777, circuitID: CircuitMTPV2, subject: birthdayBefore2000})
	t0 = time.Now()
	before, err := w.AnswerRequest(ctx, mtpReq, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MTPV2 answer %v (proving %v)", time.Since(t0).Round(time.Millisecond), before.Prove)
	const unpublished = "not genesis and not registered in the smart contract"
	if v, err := w.VerifyJS(ctx, before.Token, mtpReq); err != nil || v.OK || !strings.Contains(v.Error, unpublished) {
		t.Fatalf("js-iden3-auth on an MTP proof of an unpublished state: %+v %v, want refused (%s)", v, err, unpublished)
	}
	if err := verifyGo(ctx, t, chain, before.Token, mtpReq); err == nil || !strings.Contains(err.Error(), unpublished) {
		t.Fatalf("go-iden3-auth on an MTP proof of an unpublished state: %v, want refused (%s)", err, unpublished)
	}

	pub, err := w.PublishIssuerState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Changed || pub.State != mcred.IssuerState || pub.Tx == "" {
		t.Fatalf("published %+v, want state %s", pub, mcred.IssuerState)
	}
	// The same proof is now good: nothing but the chain changed.
	if v, err := w.VerifyJS(ctx, before.Token, mtpReq); err != nil || !v.OK {
		t.Fatalf("js-iden3-auth refused the MTP answer after publishing: %+v %v", v, err)
	}
	if err := verifyGo(ctx, t, chain, before.Token, mtpReq); err != nil {
		t.Fatalf("go-iden3-auth refused the MTP answer after publishing: %v", err)
	}
	// Publishing again changes nothing.
	if again, err := w.PublishIssuerState(ctx); err != nil || again.Changed {
		t.Fatalf("second publish: %+v %v", again, err)
	}

	// "MTP if ready, else signature": two optional scopes. The holder gets
	// the MTP proof of this credential only when the issuer publishes.
	// documentType 7 singles it out among the holder's credentials.
	ocred, err := w.IssueSubject(ctx, KindMTPOnPublish, Subject{DocumentType: 7})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ocred.JSON, []byte(`"Iden3SparseMerkleTreeProof"`)) || ocred.IssuerState == "" {
		t.Fatalf("mtp-on-publish credential before publishing: %s", truncate(string(ocred.JSON), 400))
	}
	docType7 := map[string]any{"documentType": map[string]any{"$eq": 7}}
	eitherReq := authRequest(t, "5b5a5a6e-9a2b-4e4c-8f0a-000000000003", cs.URL+"/callback?sessionID=3", "777",
		scope{id: 1, circuitID: CircuitMTPV2, subject: docType7, optional: true},
		scope{id: 2, circuitID: CircuitSigV2, subject: docType7, optional: true})
	t0 = time.Now()
	sigOnly, err := w.AnswerRequest(ctx, eitherReq, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MTP-or-Sig answer before publishing %v (proving %v)", time.Since(t0).Round(time.Millisecond), sigOnly.Prove)
	if got := responseScopes(t, sigOnly.Response); !reflect.DeepEqual(got, map[uint32]string{2: CircuitSigV2}) {
		t.Fatalf("before publishing the wallet answered %v, want only the SigV2 scope", got)
	}
	if v, err := w.VerifyJS(ctx, sigOnly.Token, eitherReq); err != nil || !v.OK {
		t.Fatalf("js-iden3-auth refused the signature-only answer: %+v %v", v, err)
	}
	if err := verifyGo(ctx, t, chain, sigOnly.Token, eitherReq); err != nil {
		t.Fatalf("go-iden3-auth refused the signature-only answer: %v", err)
	}
	pub, err = w.PublishIssuerState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Changed || pub.State != ocred.IssuerState || !reflect.DeepEqual(pub.Updated, []string{ocred.ID}) {
		t.Fatalf("published %+v, want state %s and %s updated", pub, ocred.IssuerState, ocred.ID)
	}
	// Now both proofs, fetched through the request URI and posted back.
	cs.serve(eitherReq)
	t0 = time.Now()
	both, err := w.Answer(ctx, cs.URL+"/request?id=3")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MTP-or-Sig answer after publishing %v (proving %v)", time.Since(t0).Round(time.Millisecond), both.Prove)
	if both.Status != http.StatusOK || len(cs.received()) != 1 {
		t.Fatalf("callback: %d, %d posts", both.Status, len(cs.received()))
	}
	if got := responseScopes(t, both.Response); !reflect.DeepEqual(got, map[uint32]string{1: CircuitMTPV2, 2: CircuitSigV2}) {
		t.Fatalf("after publishing the wallet answered %v, want both scopes", got)
	}
	if v, err := w.VerifyJS(ctx, both.Token, eitherReq); err != nil || !v.OK {
		t.Fatalf("js-iden3-auth refused the MTP+Sig answer: %+v %v", v, err)
	}
	if err := verifyGo(ctx, t, chain, both.Token, eitherReq); err != nil {
		t.Fatalf("go-iden3-auth refused the MTP+Sig answer: %v", err)
	}
	t.Logf("whole harness test %v", time.Since(start).Round(time.Millisecond))
}
