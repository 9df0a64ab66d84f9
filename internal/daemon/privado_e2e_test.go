package daemon

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/iden3wallet"
	"github.com/agentd/agentd/transport/email/emailtest"
	httptransport "github.com/agentd/agentd/transport/http"
)

// TestPrivadoFreshProofsOnAnvil is the proof-request service end to end
// with real parts: the consent mail through the capture SMTP server, the
// js-sdk wallet (internal/iden3wallet) on anvil with the real State
// contract fetching the request through the consent answer's request_uri
// and answering with a fresh proof of the exchange's challenge, and a test
// HTTPS server playing the exchange, which checks the callback's HMAC and
// asks /v1/proof/verify/.
//
//   - the issuer has not published its state: the signature proof is
//     shared, with proofKind "sig";
//   - after it published: the full proof is shared, proofKind "mtp".
//
// Two wallet answers (about 15 s each). It needs `make deps` and fails,
// never skips, without them.
func TestPrivadoFreshProofsOnAnvil(t *testing.T) {
	if testing.Short() {
		t.Skip("fresh proofs take tens of seconds")
	}
	ctx := context.Background()
	w, err := iden3wallet.Start(ctx)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer w.Close()
	relay := emailtest.Start(t, emailtest.Options{})

	// The exchange's HTTPS callback endpoint.
	var mu sync.Mutex
	type got struct {
		body          []byte
		sig, delivery string
	}
	var calls []got
	exch := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, got{b, r.Header.Get(httptransport.CallbackSignatureHeader), r.Header.Get(httptransport.CallbackDeliveryHeader)})
		mu.Unlock()
		rw.WriteHeader(204)
	}))
	defer exch.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: exch.Certificate().Raw}), 0o600)

	chain := w.Chain()
	d, base := startIden3With(t, t.TempDir(), func(cfg *config.Config) {
		cfg.Iden3.Resolvers = []config.Iden3Resolver{{Chain: iden3wallet.Blockchain, Network: iden3wallet.Network,
			RPCURL: chain.RPCURL, StateContract: chain.StateContract, ChainID: int(chain.ChainID), DID: e2eVerifier}}
		cfg.Iden3.RPCTimeout = 10 * time.Second
		cfg.Outbox.AllowPrivate = true
		cfg.SMTP.Addr = ""
		cfg.Email.Address = "agent@agent.test"
		cfg.Email.Relay.Addr = relay.Addr
		cfg.Privado.Enabled = true
		cfg.Privado.AllowPrivateCallbacks = true
		cfg.Privado.CallbackCAFile = ca
	})
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
	if resp, b := call(t, "POST", base+"/admin/users", "application/json", []byte(`{"email":"carol@example.org","name":"Carol","reference":"ex-7"}`), testAdmin); resp.StatusCode != 201 {
		t.Fatalf("user: %d %s", resp.StatusCode, b)
	}
	tmpl := fmt.Sprintf(`{"allowedIssuers":["*"],"context":%q,"type":%q,"credentialSubject":{"birthday":{"$lt":20000101}}}`,
		iden3wallet.SchemaContextURL, iden3wallet.SchemaType)
	resp, b := call(t, "POST", base+"/admin/privado/exchanges", "application/json",
		[]byte(`{"name":"Kraken","callback_allow_list":["127.0.0.1"],"proof_template":`+tmpl+`}`), testAdmin)
	var ex httptransport.ExchangeCredentials
	if json.Unmarshal(b, &ex); resp.StatusCode != 201 {
		t.Fatalf("exchange: %d %s", resp.StatusCode, b)
	}
	exchangeCall := func(path, body string) (int, []byte) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+ex.APIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	link := regexp.MustCompile(`/v1/users/consent/\?token=([A-Za-z0-9_-]{43})`)
	// flow runs one proof request to its callback and verification.
	var earlier string // the first flow's token
	flow := func(challenge uint32, wantKind, wantCircuit string) string {
		t.Helper()
		code, b := exchangeCall("/v1/proof/request/", fmt.Sprintf(`{"userReference":"ex-7","challenge":%d,"callback":%q}`, challenge, exch.URL+"/cb"))
		var in httptransport.PrivadoInteraction
		if json.Unmarshal(b, &in); code != 201 || in.State != "ProofRequest" {
			t.Fatalf("request: %d %s", code, b)
		}
		m := relay.Wait(t, 20*time.Second)
		text, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(m.Data)))
		tok := link.FindSubmatch(text)
		if tok == nil || !strings.Contains(string(text), "Kraken") || !strings.Contains(string(text), fmt.Sprint(challenge)) {
			t.Fatalf("consent mail:\n%s", text)
		}
		resp, b := call(t, "POST", base+"/v1/users/consent/?token="+string(tok[1]), "application/json", []byte(`{"consent":"yes"}`), "")
		var ans httptransport.ConsentAnswer
		if json.Unmarshal(b, &ans); resp.StatusCode != 200 || ans.Wallet == nil {
			t.Fatalf("consent: %d %s", resp.StatusCode, b)
		}
		if earlier != "" {
			// The proof of another interaction (another challenge) is
			// refused at this one's callback, and changes nothing.
			resp, b := call(t, "POST", base+"/iden3/callback?session="+ans.Wallet.SessionID, "text/plain", []byte(earlier), "")
			if resp.StatusCode != 400 || !strings.Contains(string(b), "thid") {
				t.Fatalf("another interaction's proof: %d %s", resp.StatusCode, b)
			}
			_, b = call(t, "GET", base+"/admin/privado/interactions/"+in.ID, "", nil, testAdmin)
			var cur httptransport.PrivadoInteraction
			if json.Unmarshal(b, &cur); cur.State != "GivenConsent" {
				t.Fatalf("after another interaction's proof: %s", b)
			}
		}
		a, err := w.Answer(ctx, ans.Wallet.DeepLink)
		if err != nil {
			t.Fatalf("wallet: %v", err)
		}
		t.Logf("wallet answered in %v: %d %s", a.Prove, a.Status, strings.Join(strings.Fields(a.Body), " "))
		if a.Status != 200 {
			t.Fatalf("the wallet's answer was refused: %d %s", a.Status, a.Body)
		}
		// The exchange's callback: signed, the challenge, the proof.
		var cb map[string]any
		for deadline := time.Now().Add(20 * time.Second); cb == nil; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no ProofShared callback for %s", in.ID)
			}
			mu.Lock()
			for _, c := range calls {
				var v map[string]any
				json.Unmarshal(c.body, &v)
				if v["id"] == in.ID && v["state"] == "ProofShared" {
					mac := hmac.New(sha256.New, []byte(ex.HMACSecret))
					mac.Write(c.body)
					if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); c.sig != want || c.delivery != in.ID+".ProofShared" {
						t.Errorf("callback signature %q (want %q), delivery %q", c.sig, want, c.delivery)
					}
					cb = v
				}
			}
			mu.Unlock()
		}
		if cb["challenge"] != float64(challenge) || cb["userReference"] != "ex-7" || cb["proofKind"] != wantKind || cb["circuitId"] != wantCircuit ||
			cb["verified"] != true || cb["issuer"] != w.IssuerDID() || cb["proof"] != a.Token || cb["verifiedAt"] == nil {
			t.Fatalf("callback %v", cb)
		}
		// The token binds the challenge: the wallet's response says it.
		var r struct {
			Body struct {
				Message string `json:"message"`
			} `json:"body"`
		}
		json.Unmarshal(a.Response, &r)
		if r.Body.Message != fmt.Sprint(challenge) {
			t.Fatalf("the response's message %q, want the challenge", r.Body.Message)
		}
		code, b = exchangeCall("/v1/proof/verify/", `{"proof":"`+a.Token+`"}`)
		var v httptransport.ProofVerification
		if json.Unmarshal(b, &v); code != 200 || !v.Valid || v.ProofKind != wantKind || v.Challenge != challenge || v.InteractionID != in.ID || v.UserReference != "ex-7" {
			t.Fatalf("verify: %d %s", code, b)
		}
		// A token altered in its proof part is not valid.
		parts := strings.Split(a.Token, ".")
		if len(parts) == 3 {
			bad := parts[0] + "." + parts[1] + "." + strings.Replace(parts[2], "1", "2", 1)
			code, b = exchangeCall("/v1/proof/verify/", `{"proof":"`+bad+`"}`)
			if json.Unmarshal(b, &v); code != 200 || v.Valid || v.Reason == "" || v.InteractionID != in.ID {
				t.Fatalf("altered proof: %d %s", code, b)
			}
		}
		return a.Token
	}

	// Not yet published: the signature proof.
	if _, err := w.IssueSubject(ctx, iden3wallet.KindMTPOnPublish, iden3wallet.Subject{Birthday: 19900101}); err != nil {
		t.Fatal(err)
	}
	earlier = flow(1234567, "sig", iden3wallet.CircuitSigV2)
	// Published: the full proof.
	if _, err := w.PublishIssuerState(ctx); err != nil {
		t.Fatal(err)
	}
	last := flow(7654321, "mtp", iden3wallet.CircuitMTPV2)

	// A restart with both requests shared: they stay ProofShared, and the
	// exchange can still have the proof verified.
	d.Shutdown(ctx)
	d2, err := New(ctx, d.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Shutdown(context.Background()) })
	var list struct {
		Interactions []httptransport.PrivadoInteraction `json:"interactions"`
	}
	resp, b = call(t, "GET", base+"/admin/privado/interactions", "", nil, testAdmin)
	if json.Unmarshal(b, &list); resp.StatusCode != 200 || len(list.Interactions) != 2 ||
		list.Interactions[0].State != "ProofShared" || list.Interactions[1].State != "ProofShared" ||
		list.Interactions[0].ProofKind != "mtp" || list.Interactions[1].ProofKind != "sig" {
		t.Fatalf("after a restart: %d %s", resp.StatusCode, b)
	}
	code, vb := exchangeCall("/v1/proof/verify/", `{"proof":"`+last+`"}`)
	var v httptransport.ProofVerification
	if json.Unmarshal(vb, &v); code != 200 || !v.Valid || v.ProofKind != "mtp" {
		t.Fatalf("verify after a restart: %d %s", code, vb)
	}
}
