package iden3auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/iden3auth/iden3test"
	"github.com/agentd/agentd/protocols/iden3auth/schemas"
	"github.com/iden3/iden3comm/v2/protocol"
)

func vecCreate() CreateRequest {
	return CreateRequest{Reason: "age verification", Scope: vecScope(), Chain: "polygon:mumbai"}
}

// TestVerifyRecordedVector drives the recorded Polygon ID response through
// the production path: the stored request, FullVerify with the real
// ETHResolver over the JSON-RPC double, the result, the commit.
func TestVerifyRecordedVector(t *testing.T) {
	f := newFixture(t, vectorChain(t))
	ctx := context.Background()
	s := f.create(t, vecThread, vecCreate())
	if s.State != StatePending || s.Request.ThreadID != vecThread || s.Request.From != vecVerifier {
		t.Fatalf("created %+v", s)
	}
	if want := "https://verifier.example/iden3/callback?session=" + vecThread; s.Request.Body.CallbackURL != want {
		t.Fatalf("callbackUrl %q, want %q", s.Request.Body.CallbackURL, want)
	}
	got, err := f.svc.Verify(ctx, vecThread, readFile(t, "mtpv2_token.txt"))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.State != StateVerified || got.Result == nil || got.ResponseID == "" {
		t.Fatalf("verified session %+v", got)
	}
	r := got.Result
	if r.UserDID != vecUser || len(r.Scopes) != 1 {
		t.Fatalf("result %+v", r)
	}
	sc := r.Scopes[0]
	if sc.ID != 23 || sc.CircuitID != "credentialAtomicQueryMTPV2" || sc.ProofKind != ProofKindMTP || sc.Issuer != vecVerifier || sc.Timestamp != 1679323038 {
		t.Fatalf("scope result %+v", sc)
	}
	// The verdict is stored, and the chain was read exactly twice.
	stored, err := f.svc.Get(ctx, vecThread)
	if err != nil || stored.State != StateVerified || mustJSON(t, stored.Result) != mustJSON(t, r) {
		t.Fatalf("stored %+v %v", stored, err)
	}
	if n, m := f.chain.Calls(iden3test.SelectorGetGISTRootInfo), f.chain.Calls(iden3test.SelectorGetStateInfoByIDAndState); n != 1 || m != 1 {
		t.Fatalf("eth_calls: gist %d, state %d; want 1 and 1", n, m)
	}
	// A replay of the same token, and any other answer, is refused and changes nothing.
	before := f.stored(t, vecThread)
	quoted := append(append([]byte(`"`), readFile(t, "mtpv2_token.txt")...), '"')
	if _, err := f.svc.Verify(ctx, vecThread, quoted); !agent.HasCode(err, agent.CodeConflict) {
		t.Fatalf("quoted replay: %v", err)
	}
	_, err = f.svc.Verify(ctx, vecThread, readFile(t, "mtpv2_token.txt"))
	if !agent.HasCode(err, agent.CodeConflict) || !strings.Contains(agent.ErrorComment(err), "already answered") {
		t.Fatalf("replay: %v", err)
	}
	if f.stored(t, vecThread) != before {
		t.Fatal("the replay changed the session")
	}
	// Cancelling a verified session is refused too.
	if _, err := f.svc.Cancel(ctx, vecThread); !agent.HasCode(err, agent.CodeConflict) {
		t.Fatalf("cancel after verified: %v", err)
	}
}

// TestVerifyChainCases runs the recorded response against chain answers,
// each on a fresh resolver (the resolver caches answers): the library's
// acceptance rules, through the real ETHResolver.
func TestVerifyChainCases(t *testing.T) {
	ago := func(d time.Duration) int64 { return time.Now().Add(-d).Unix() }
	other := big.NewInt(12345)
	cases := []struct {
		name   string
		root   *iden3test.Info // nil: unknown (reverts)
		state  *iden3test.Info
		reason string // "" = accepted
	}{
		{"latest", &iden3test.Info{}, &iden3test.Info{}, ""},
		{"gist root unknown", nil, &iden3test.Info{}, "gist state doesn't exist on smart contract"},
		{"gist root replaced 1h ago", &iden3test.Info{ReplacedBy: other, ReplacedAt: ago(time.Hour)}, &iden3test.Info{}, "global state is not valid"},
		{"gist root replaced 2m ago", &iden3test.Info{ReplacedBy: other, ReplacedAt: ago(2 * time.Minute)}, &iden3test.Info{}, ""},
		{"issuer state unknown", &iden3test.Info{}, nil, "state is not genesis and not registered in the smart contract"},
		{"issuer state replaced 10m ago", &iden3test.Info{}, &iden3test.Info{ReplacedBy: other, ReplacedAt: ago(10 * time.Minute)}, ""},
		{"non-rev state replaced 2h ago", &iden3test.Info{}, &iden3test.Info{ReplacedBy: other, ReplacedAt: ago(2 * time.Hour)}, "issuer state for non-revocation proofs is not valid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := iden3test.Start(t)
			if tc.root != nil {
				c.SetRoot(iden3test.Dec(vecGISTRoot), *tc.root)
			}
			if tc.state != nil {
				c.SetState(iden3test.Dec(vecIssuerID), iden3test.Dec(vecIssuerSt), *tc.state)
			}
			f := newFixture(t, c)
			f.create(t, vecThread, vecCreate())
			before := f.stored(t, vecThread)
			s, err := f.svc.Verify(context.Background(), vecThread, readFile(t, "mtpv2_token.txt"))
			if tc.reason == "" {
				if err != nil || s.State != StateVerified {
					t.Fatalf("want accepted, got %v", err)
				}
				return
			}
			if !agent.HasCode(err, CodeRefused) || !strings.Contains(agent.ErrorComment(err), tc.reason) {
				t.Fatalf("want refused with %q, got %v", tc.reason, err)
			}
			if f.stored(t, vecThread) != before {
				t.Fatal("the refusal changed the session")
			}
		})
	}
}

// TestVerifyRefusals: every refusal leaves the stored session as it was.
func TestVerifyRefusals(t *testing.T) {
	token := readFile(t, "mtpv2_token.txt")
	scope := func(mut func(q map[string]any, s *[]any)) CreateRequest {
		r := vecCreate()
		mut(r.Scope[0].Query, nil)
		return r
	}
	cases := []struct {
		name   string
		id     string
		req    CreateRequest
		token  []byte
		code   string
		reason string
	}{
		{"tampered token", vecThread, vecCreate(), tamper(t, token), CodeRefused, "challenge is not equal to message hash"},
		{"garbage", vecThread, vecCreate(), []byte("not a token"), CodeRefused, "response refused"},
		{"empty body", vecThread, vecCreate(), []byte("  "), agent.CodeMsg, "JWZ token"},
		{"wrong thid", "11111111-2222-4333-8444-555555555555", vecCreate(), token, CodeRefused, "is not the request's thid"},
		{"scope id not requested", vecThread, func() CreateRequest {
			r := vecCreate()
			r.Scope[0].ID = 24
			return r
		}(), token, CodeRefused, "scope id 23 was not requested"},
		{"required scope missing", vecThread, func() CreateRequest {
			r := vecCreate()
			r.Scope[0].ID, r.Scope[0].Optional = 24, nil
			return r
		}(), token, CodeRefused, "proof for zk request id 24 is presented not found"},
		{"circuit not requested", vecThread, func() CreateRequest {
			r := vecCreate()
			r.Scope[0].CircuitID = "credentialAtomicQuerySigV2"
			return r
		}(), token, CodeRefused, "does not match requested circuit"},
		{"query not satisfied", vecThread, scope(func(q map[string]any, _ *[]any) {
			q["credentialSubject"] = map[string]any{"countryCode": map[string]any{"$nin": []any{840, 120, 340, 510}}}
		}), token, CodeRefused, "proof was generated for another values"},
		{"other schema", vecThread, scope(func(q map[string]any, _ *[]any) { q["type"] = "KYCAgeCredential" }), token, CodeRefused, "proof was generated for another schema"},
		{"message not presented", vecThread, func() CreateRequest {
			r := vecCreate()
			r.Message = "hello"
			return r
		}(), token, CodeRefused, "was not presented in the response"},
		{"other verifier", vecThread, func() CreateRequest {
			r := vecCreate()
			r.Chain = "polygon:amoy"
			return r
		}(), token, CodeRefused, "sender of the request is not a target of response"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, vectorChain(t))
			f.create(t, tc.id, tc.req)
			before := f.stored(t, tc.id)
			_, err := f.svc.Verify(context.Background(), tc.id, tc.token)
			if !agent.HasCode(err, tc.code) || !strings.Contains(agent.ErrorComment(err), tc.reason) {
				t.Fatalf("want %s %q, got %v", tc.code, tc.reason, err)
			}
			if f.stored(t, tc.id) != before {
				t.Fatal("the refusal changed the session")
			}
		})
	}
}

// tamper re-encodes the token's payload with one value changed: the JWZ
// message hash no longer matches the authV2 proof's challenge.
func tamper(t *testing.T, token []byte) []byte {
	parts := strings.Split(string(token), ".")
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	q := strings.Replace(string(p), `"message":`, `"message":"x",`, 1)
	if q == string(p) {
		var m map[string]any
		json.Unmarshal(p, &m)
		m["id"] = "00000000-0000-4000-8000-000000000000"
		b, _ := json.Marshal(m)
		q = string(b)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(q))
	return []byte(strings.Join(parts, "."))
}

// TestVerifySessionStates: unknown, expired and cancelled sessions take no
// answer, and nothing changes.
func TestVerifySessionStates(t *testing.T) {
	ctx := context.Background()
	token := readFile(t, "mtpv2_token.txt")
	f := newFixture(t, vectorChain(t))
	if _, err := f.svc.Verify(ctx, "no-such-session", token); !agent.HasCode(err, agent.CodeNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	f.create(t, vecThread, vecCreate())
	before := f.stored(t, vecThread)
	f.now = f.now.Add(2 * time.Hour) // default expiry 1h
	if _, err := f.svc.Verify(ctx, vecThread, token); !agent.HasCode(err, agent.CodeGone) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired: %v", err)
	}
	if f.stored(t, vecThread) != before {
		t.Fatal("refusing an expired session changed it")
	}
	if s, _ := f.svc.Get(ctx, vecThread); s.State != StateExpired {
		t.Fatalf("expired session shows %s", s.State)
	}
	if _, err := f.svc.RequestMessage(ctx, vecThread); !agent.HasCode(err, agent.CodeGone) {
		t.Fatalf("request of an expired session: %v", err)
	}

	g := newFixture(t, vectorChain(t))
	g.create(t, vecThread, vecCreate())
	c, err := g.svc.Cancel(ctx, vecThread)
	if err != nil || c.State != StateCancelled {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	before = g.stored(t, vecThread)
	if _, err := g.svc.Verify(ctx, vecThread, token); !agent.HasCode(err, agent.CodeGone) {
		t.Fatalf("cancelled: %v", err)
	}
	if _, err := g.svc.Cancel(ctx, vecThread); !agent.HasCode(err, agent.CodeGone) {
		t.Fatalf("cancel twice: %v", err)
	}
	if g.stored(t, vecThread) != before {
		t.Fatal("refusals changed the cancelled session")
	}
}

// TestVerifyChainDown: an unreachable RPC endpoint is a retryable error,
// the session stays pending, and the answer is accepted once the chain
// is back.
func TestVerifyChainDown(t *testing.T) {
	ctx := context.Background()
	c := vectorChain(t)
	var results []string
	f := newFixture(t, c, func(cfg *Config) {
		cfg.Observe = func(r string, d time.Duration) { results = append(results, r) }
	})
	f.create(t, vecThread, vecCreate())
	before := f.stored(t, vecThread)
	c.SetDown(true)
	_, err := f.svc.Verify(ctx, vecThread, readFile(t, "mtpv2_token.txt"))
	if !agent.HasCode(err, agent.CodeBusy) || agent.RetryAfter(err) <= 0 || !errors.Is(err, ErrChainUnavailable) ||
		!strings.Contains(agent.ErrorComment(err), "polygon:mumbai") {
		t.Fatalf("chain down: %v (retry after %v)", err, agent.RetryAfter(err))
	}
	if f.stored(t, vecThread) != before {
		t.Fatal("a chain failure changed the session")
	}
	c.SetDown(false)
	if s, err := f.svc.Verify(ctx, vecThread, readFile(t, "mtpv2_token.txt")); err != nil || s.State != StateVerified {
		t.Fatalf("after the chain is back: %v", err)
	}
	f.svc.Verify(ctx, vecThread, readFile(t, "mtpv2_token.txt"))
	f.svc.Verify(ctx, "nope", []byte("x"))
	if got := strings.Join(results, ","); got != "chain-unavailable,verified,not-answerable,not-answerable" {
		t.Fatalf("observed %s", got)
	}
}

// TestVerifyConcurrentAnswers: of two answers verified at once, exactly
// one is accepted.
func TestVerifyConcurrentAnswers(t *testing.T) {
	f := newFixture(t, vectorChain(t))
	f.create(t, vecThread, vecCreate())
	token := readFile(t, "mtpv2_token.txt")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = f.svc.Verify(context.Background(), vecThread, token) }()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !agent.HasCode(err, agent.CodeConflict) && !agent.HasCode(err, agent.CodeMsgReplay) {
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d answers accepted, want 1 (%v)", ok, errs)
	}
}

// TestVerifyRecordedV3: the proof kind of V3 comes from the proofType
// public signal (BJJSignature2021 = 1: sig), with the nullifier of the
// scope that asked for one, and linkedMultiQuery's linkID.
func TestVerifyRecordedV3(t *testing.T) {
	c := iden3test.Start(t)
	c.SetPermissive(true) // the vector's states are not listed; every one is the latest
	f := newFixture(t, c)
	f.create(t, v3Thread, CreateRequest{Reason: "reason", Message: "message", Scope: v3Scope(), Chain: "polygon:amoy"})
	s, err := f.svc.Verify(context.Background(), v3Thread, readFile(t, "v3_stable_token.txt"))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if s.Result.UserDID != v3User || len(s.Result.Scopes) != 3 {
		t.Fatalf("result %+v", s.Result)
	}
	by := map[uint32]ScopeResult{}
	for _, sc := range s.Result.Scopes {
		by[sc.ID] = sc
	}
	if sc := by[1]; sc.CircuitID != "credentialAtomicQueryV3-16-16-64" || sc.ProofKind != ProofKindSig || !strings.HasPrefix(sc.Issuer, "did:iden3:polygon:amoy:") || sc.Nullifier != "" {
		t.Fatalf("scope 1 %+v", sc)
	}
	if sc := by[3]; sc.ProofKind != ProofKindSig || sc.Nullifier == "" || sc.LinkID == "" {
		t.Fatalf("scope 3 %+v", sc)
	}
	if sc := by[2]; sc.CircuitID != "linkedMultiQuery3" || sc.ProofKind != "" || sc.LinkID != by[3].LinkID {
		t.Fatalf("scope 2 %+v (linkID of 3: %s)", sc, by[3].LinkID)
	}
}

// TestProofKindV3MTP: go-iden3-auth's recorded V3 response with an
// Iden3SparseMerkleTreeProof (TestVerifyV3MessageWithMtpProof_Merklized, a
// plain message: it has no JWZ) verified by the service's verifier, then
// read: the proofType signal 2 is mtp.
func TestProofKindV3MTP(t *testing.T) {
	c := iden3test.Start(t)
	c.SetPermissive(true)
	f := newFixture(t, c)
	var resp protocol.AuthorizationResponseMessage
	if err := json.Unmarshal(readFile(t, "v3_mtp_response.json"), &resp); err != nil {
		t.Fatal(err)
	}
	opt := true
	req := protocol.AuthorizationRequestMessage{ID: "r", ThreadID: "r", Type: protocol.AuthorizationRequestMessageType,
		From: resp.To, Body: protocol.AuthorizationRequestMessageBody{Message: "message to sign", Scope: []protocol.ZeroKnowledgeProofRequest{{
			ID: 1, CircuitID: "credentialAtomicQueryV3-beta.1", Optional: &opt, Query: map[string]any{
				"allowedIssuers": []any{"*"}, "context": vecSchemaURL, "type": "KYCAgeCredential",
				"credentialSubject": map[string]any{"documentType": map[string]any{"$eq": 99}},
				"proofType":         "Iden3SparseMerkleTreeProof"}}}}}
	if err := f.svc.verifier.VerifyAuthResponse(context.Background(), resp, req, f.svc.opts...); err != nil {
		t.Fatalf("VerifyAuthResponse: %v", err)
	}
	r, err := results(&resp, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if sc := r.Scopes[0]; sc.ProofKind != ProofKindMTP || !strings.HasPrefix(sc.Issuer, "did:") || sc.CircuitID != "credentialAtomicQueryV3-beta.1" {
		t.Fatalf("scope %+v", sc)
	}
	// The kind is the signal's: with proofType 1 it would read sig, and an
	// unknown value is refused.
	resp.Body.Scope[0].PubSignals[6] = "1"
	if r, err := results(&resp, f.now); err != nil || r.Scopes[0].ProofKind != ProofKindSig {
		t.Fatalf("proofType 1: %+v %v", r, err)
	}
	resp.Body.Scope[0].PubSignals[6] = "3"
	if _, err := results(&resp, f.now); err == nil {
		t.Fatal("proofType 3 accepted")
	}
}

// TestVerifyMalformedTokens: input the libraries choke on (go-jwz panics
// on a header without crit) is refused as the wallet's fault, nothing
// changed.
func TestVerifyMalformedTokens(t *testing.T) {
	f := newFixture(t, vectorChain(t))
	f.create(t, vecThread, vecCreate())
	before := f.stored(t, vecThread)
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, tok := range []string{
		b64(`{"alg":"groth16"}`) + "." + b64(`{"thid":"x"}`) + "." + b64(`{}`),
		b64(`{"alg":"groth16","circuitId":"authV2","crit":["circuitId"],"typ":"application/iden3-zkp-json"}`) + "." + b64(`{"thid":"`+vecThread+`"}`) + "." + b64(`{}`),
		b64(`{"alg":"groth16","circuitId":"authV2","crit":["circuitId"]}`) + "." + b64(`null`) + "." + b64(`null`),
		"a.b.c", "...", strings.Repeat(".", 5000),
	} {
		_, err := f.svc.Verify(context.Background(), vecThread, []byte(tok))
		if !agent.HasCode(err, CodeRefused) && !agent.HasCode(err, agent.CodeMsg) {
			t.Errorf("%.60s: %v", tok, err)
		}
		if _, err := ThreadOf([]byte(tok)); err == nil {
			t.Errorf("ThreadOf(%.60s) read a thread", tok)
		}
	}
	if f.stored(t, vecThread) != before {
		t.Fatal("malformed tokens changed the session")
	}
}

// TestVerifySchemaNotCached: a schema neither cached nor allowed is not
// fetched; the answer is refused naming its URL, and the session is
// unchanged (the wallet may answer again once the operator loads it).
func TestVerifySchemaNotCached(t *testing.T) {
	empty, err := schemas.New(t.TempDir(), nil, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, vectorChain(t), func(c *Config) { c.Documents = empty })
	f.create(t, vecThread, vecCreate())
	before := f.stored(t, vecThread)
	_, err = f.svc.Verify(context.Background(), vecThread, readFile(t, "mtpv2_token.txt"))
	if !agent.HasCode(err, CodeRefused) || !strings.Contains(agent.ErrorComment(err), vecSchemaURL) {
		t.Fatalf("uncached schema: %v", err)
	}
	if f.stored(t, vecThread) != before {
		t.Fatal("the refusal changed the session")
	}
	if err := empty.Store(vecSchemaURL, readFile(t, "kyc-v3.json-ld")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Verify(context.Background(), vecThread, readFile(t, "mtpv2_token.txt")); err != nil {
		t.Fatalf("after loading the schema: %v", err)
	}
}

// TestVerifyQuotedToken: a JWZ posted as a JSON string is taken as the JWZ.
func TestVerifyQuotedToken(t *testing.T) {
	f := newFixture(t, vectorChain(t))
	f.create(t, vecThread, vecCreate())
	quoted := append(append([]byte("\n\""), readFile(t, "mtpv2_token.txt")...), '"', '\n')
	if s, err := f.svc.Verify(context.Background(), vecThread, quoted); err != nil || s.State != StateVerified {
		t.Fatalf("quoted token: %v", err)
	}
}
