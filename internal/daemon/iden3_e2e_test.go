package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/iden3wallet"
	httptransport "github.com/agentd/agentd/transport/http"
)

// e2eVerifier is the verifier DID of the fresh-proof test (any amoy DID).
const e2eVerifier = "did:polygonid:polygon:amoy:2qV9QXdhXXmN5sKjN1YueMjxgRbnJcEGK2kGpvk3cq"

// TestIden3FreshProofsOnAnvil is agentd verifying fresh proofs end to end:
// a js-sdk issuer and wallet (internal/iden3wallet, interop/iden3) on anvil
// running the real iden3 State contract; agentd reads that chain through
// its configuration (iden3.resolvers), serves its own requests by
// request_uri, takes the wallet's answers at its callback, and records the
// results; js-iden3-auth checks the same tokens as a second verifier.
//
//   - SigV2 is accepted at once (proof kind sig);
//   - with optional MTPV2 and SigV2 scopes and an MTP not ready yet, the
//     wallet answers SigV2 only, and that is accepted;
//   - an MTPV2 proof is refused while the issuer's state is unpublished
//     (the session stays pending) and accepted after it is published
//     (proof kind mtp).
//
// It needs `make deps` (Node.js packages and circuit files) and fails, never
// skips, without them.
func TestIden3FreshProofsOnAnvil(t *testing.T) {
	if testing.Short() {
		t.Skip("fresh proofs take tens of seconds")
	}
	ctx := context.Background()
	w, err := iden3wallet.Start(ctx)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer w.Close()
	chain := w.Chain()
	_, base := startIden3With(t, t.TempDir(), func(cfg *config.Config) {
		cfg.Iden3.Resolvers = []config.Iden3Resolver{{Chain: iden3wallet.Blockchain, Network: iden3wallet.Network,
			RPCURL: chain.RPCURL, StateContract: chain.StateContract, ChainID: int(chain.ChainID), DID: e2eVerifier}}
		cfg.Iden3.RPCTimeout = 10 * time.Second
	})
	// The documents the credentials use, preloaded: nothing is fetched.
	files, err := iden3wallet.SchemaFiles()
	if err != nil {
		t.Fatal(err)
	}
	for u, path := range files {
		doc, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		load, _ := json.Marshal(httptransport.Iden3SchemaLoad{URL: u, Document: doc})
		if resp, b := call(t, "POST", base+"/admin/iden3/schemas", "application/json", load, testAdmin); resp.StatusCode != 204 {
			t.Fatalf("schema %s: %d %s", u, resp.StatusCode, b)
		}
	}
	create := func(message string, scopes ...string) httptransport.Iden3Created {
		t.Helper()
		resp, b := call(t, "POST", base+"/admin/iden3/requests", "application/json",
			[]byte(`{"reason":"e2e","message":"`+message+`","scope":[`+strings.Join(scopes, ",")+`]}`), testAdmin)
		var c httptransport.Iden3Created
		if err := json.Unmarshal(b, &c); err != nil || resp.StatusCode != 201 {
			t.Fatalf("create: %d %s", resp.StatusCode, b)
		}
		return c
	}
	session := func(id string) httptransport.Iden3Session {
		t.Helper()
		var s httptransport.Iden3Session
		_, b := call(t, "GET", base+"/admin/iden3/requests/"+id, "", nil, testAdmin)
		json.Unmarshal(b, &s)
		return s
	}
	answer := func(c httptransport.Iden3Created) iden3wallet.Answer {
		t.Helper()
		a, err := w.Answer(ctx, c.DeepLink)
		if err != nil {
			t.Fatalf("wallet: %v", err)
		}
		t.Logf("wallet answered %s in %v: %d %s", c.ID, a.Prove, a.Status, strings.Join(strings.Fields(a.Body), " "))
		return a
	}
	secondOpinion := func(a iden3wallet.Answer, wantOK bool) {
		t.Helper()
		v, err := w.VerifyJS(ctx, a.Token, a.Request)
		if err != nil || v.OK != wantOK {
			t.Fatalf("js-iden3-auth: %+v %v, want ok=%v", v, err, wantOK)
		}
	}
	scope := func(id int, circuit string, optional bool, subject string) string {
		return fmt.Sprintf(`{"id":%d,"circuitId":%q,"optional":%v,"query":{"allowedIssuers":["*"],"context":%q,"type":%q,"credentialSubject":%s}}`,
			id, circuit, optional, iden3wallet.SchemaContextURL, iden3wallet.SchemaType, subject)
	}

	// SigV2, accepted at once; the challenge is the scope id and the message.
	if _, err := w.Issue(ctx, iden3wallet.KindSig); err != nil {
		t.Fatal(err)
	}
	c := create("1234567", scope(1234567, iden3wallet.CircuitSigV2, false, `{"birthday":{"$lt":20000101}}`))
	a := answer(c)
	s := session(c.ID)
	if a.Status != 200 || s.State != "verified" || s.Result == nil || s.Result.UserDID != w.HolderDID() || len(s.Result.Scopes) != 1 ||
		s.Result.Scopes[0].ProofKind != "sig" || s.Result.Scopes[0].Issuer != w.IssuerDID() || s.Result.Scopes[0].ID != 1234567 {
		t.Fatalf("SigV2: answer %d %s, session %+v", a.Status, a.Body, s)
	}
	secondOpinion(a, true)

	// MTP if ready, else signature: the MTP is not ready, the wallet answers SigV2.
	if _, err := w.IssueSubject(ctx, iden3wallet.KindMTPOnPublish, iden3wallet.Subject{Birthday: 19900101}); err != nil {
		t.Fatal(err)
	}
	c = create("", scope(1, iden3wallet.CircuitMTPV2, true, `{"birthday":{"$eq":19900101}}`),
		scope(2, iden3wallet.CircuitSigV2, true, `{"birthday":{"$eq":19900101}}`))
	a = answer(c)
	s = session(c.ID)
	if a.Status != 200 || s.State != "verified" || len(s.Result.Scopes) != 1 || s.Result.Scopes[0].ID != 2 || s.Result.Scopes[0].ProofKind != "sig" {
		t.Fatalf("MTP-else-Sig: answer %d %s, session %+v", a.Status, a.Body, s)
	}

	// MTPV2: refused until the issuer's state is on chain, then accepted.
	if _, err := w.IssueSubject(ctx, iden3wallet.KindMTP, iden3wallet.Subject{Birthday: 19850505}); err != nil {
		t.Fatal(err)
	}
	c = create("", scope(7, iden3wallet.CircuitMTPV2, false, `{"birthday":{"$eq":19850505}}`))
	a = answer(c)
	if s = session(c.ID); a.Status != 400 || !strings.Contains(a.Body, "state is not genesis and not registered in the smart contract") || s.State != "pending" {
		t.Fatalf("unpublished MTP: answer %d %s, session %s", a.Status, a.Body, s.State)
	}
	secondOpinion(a, false)
	if _, err := w.PublishIssuerState(ctx); err != nil {
		t.Fatal(err)
	}
	a = answer(c)
	s = session(c.ID)
	if a.Status != 200 || s.State != "verified" || len(s.Result.Scopes) != 1 || s.Result.Scopes[0].ProofKind != "mtp" || s.Result.Scopes[0].Issuer != w.IssuerDID() {
		t.Fatalf("published MTP: answer %d %s, session %+v", a.Status, a.Body, s)
	}
	secondOpinion(a, true)
}
