package daemon

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/testport"
	"github.com/agentd/agentd/protocols/iden3auth/iden3test"
	httptransport "github.com/agentd/agentd/transport/http"
)

// The recorded Polygon ID vector (protocols/iden3auth/testdata).
const (
	tvVerifier = "did:polygonid:polygon:mumbai:2qJ689kpoJxcSzB5sAFJtPsSBSrHF5dq722BHMqURL"
	tvUser     = "did:polygonid:polygon:mumbai:2qPDLXDaU1xa1ERTb1XKBfPCB3o2wA46q49neiXWwY"
	tvThread   = "7f38a193-0918-4a48-9fac-36adfdb8b542"
	tvRoot     = "8756060205086803335252319748748354761961814012725499873382988056418680628619"
	tvIssuer   = "27752766823371471408248225708681313764866231655187366071881070918984471042"
	tvState    = "21545768883509657340209171549441005603306012513932221371599501498534807719689"
	tvSchema   = "https://raw.githubusercontent.com/iden3/claim-schema-vocab/main/schemas/json-ld/kyc-v3.json-ld"
	tvSecret   = "webhook-secret-0123456789"
	testAdmin  = "admin-token-0123456789"
)

const tvScope = `[{"id":23,"circuitId":"credentialAtomicQueryMTPV2","optional":true,"query":{"allowedIssuers":["*"],
 "context":"` + tvSchema + `","credentialSubject":{"countryCode":{"$nin":[840,120,340,509]}},"type":"KYCCountryOfResidenceCredential"}}]`

// hookSink is the operator's webhook receiver.
type hookSink struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.bodies, h.sigs = append(h.bodies, b), append(h.sigs, r.Header.Get(httptransport.SignatureHeader))
	h.mu.Unlock()
	w.WriteHeader(204)
}

// await returns the webhook body whose event is event, checking its signature.
func (h *hookSink) await(t *testing.T, event string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		h.mu.Lock()
		for i, b := range h.bodies {
			var m map[string]any
			json.Unmarshal(b, &m)
			if m["event"] == event {
				mac := hmac.New(sha256.New, []byte(tvSecret))
				mac.Write(b)
				if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); h.sigs[i] != want {
					t.Errorf("webhook signature %q, want %q", h.sigs[i], want)
				}
				h.mu.Unlock()
				return m
			}
		}
		h.mu.Unlock()
	}
	t.Fatalf("no webhook %s", event)
	return nil
}

// startIden3 starts a daemon whose iden3 verifier reads chain, with the
// webhook at hook.
func startIden3(t testing.TB, chain *iden3test.Chain, hook string) (*Daemon, string) {
	return startIden3In(t, t.TempDir(), chain, hook)
}

// startIden3In is startIden3 on the data directory dir.
func startIden3In(t testing.TB, dir string, chain *iden3test.Chain, hook string) (*Daemon, string) {
	// The recorded response's thid is the first session's id.
	ids := []string{tvThread}
	iden3NewID = func() string {
		if len(ids) == 0 {
			return "00000000-0000-4000-8000-" + strings.Repeat("0", 11) + "1"
		}
		id := ids[0]
		ids = ids[1:]
		return id
	}
	t.Cleanup(func() { iden3NewID = nil })
	return startIden3With(t, dir, func(cfg *config.Config) {
		cfg.Iden3.Resolvers = []config.Iden3Resolver{{Chain: "polygon", Network: "mumbai", RPCURL: chain.URL,
			StateContract: "0x134B1BE34911E39A8397ec6289782989729807a4", ChainID: 80001, DID: tvVerifier}}
		cfg.Iden3.ProofMaxAge = 100000 * time.Hour
		if hook != "" {
			cfg.Iden3.Webhook = config.Iden3Webhook{URL: hook, Secret: tvSecret}
		}
	})
}

// startIden3With starts a daemon on dir whose configuration set adjusts.
func startIden3With(t testing.TB, dir string, set func(*config.Config)) (*Daemon, string) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTP.Addr = testport.Addr(t)
	cfg.Admin.Token = testAdmin
	cfg.Outbox.BaseDelay, cfg.Outbox.MaxDelay = 50*time.Millisecond, 200*time.Millisecond
	cfg.Iden3.RPCTimeout = 2 * time.Second
	set(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return d, "http://" + d.Addr()
}

func call(t *testing.T, method, url, ct string, body []byte, token string) (*http.Response, []byte) {
	t.Helper()
	return callTB(t, method, url, ct, body, token)
}

// callTB sends a request and reads the whole answer.
func callTB(t testing.TB, method, url, ct string, body []byte, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestIden3Daemon drives the verifier through the daemon's HTTP routes, as
// a wallet and an operator do: schema preload, request, request_uri, QR
// code, the answer at the callback (text/plain) or at the DIDComm endpoint
// (application/iden3-zkp-json), the result, the signed webhook.
func TestIden3Daemon(t *testing.T) {
	token, err := os.ReadFile("../../protocols/iden3auth/testdata/mtpv2_token.txt")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := os.ReadFile("../../protocols/iden3auth/testdata/kyc-v3.json-ld")
	if err != nil {
		t.Fatal(err)
	}
	for _, route := range []string{"callback", "didcomm"} {
		t.Run(route, func(t *testing.T) {
			chain := iden3test.Start(t)
			chain.SetRoot(iden3test.Dec(tvRoot), iden3test.Info{})
			chain.SetState(iden3test.Dec(tvIssuer), iden3test.Dec(tvState), iden3test.Info{})
			sink := &hookSink{}
			hook := httptest.NewServer(sink)
			defer hook.Close()
			_, base := startIden3(t, chain, hook.URL+"/hook")

			load, _ := json.Marshal(httptransport.Iden3SchemaLoad{URL: tvSchema, Document: schema})
			if resp, b := call(t, "POST", base+"/admin/iden3/schemas", "application/json", load, testAdmin); resp.StatusCode != 204 {
				t.Fatalf("schema load: %d %s", resp.StatusCode, b)
			}
			resp, b := call(t, "POST", base+"/admin/iden3/requests", "application/json",
				[]byte(`{"reason":"age verification","scope":`+tvScope+`,"expires_in":"15m"}`), testAdmin)
			var created httptransport.Iden3Created
			json.Unmarshal(b, &created)
			if resp.StatusCode != 201 || created.ID != tvThread || created.RequestURI != base+"/iden3/requests/"+tvThread ||
				created.DeepLink != "iden3comm://?request_uri="+url.QueryEscape(created.RequestURI) || created.QRPNGURL != created.RequestURI+"/qr.png" {
				t.Fatalf("create: %d %s", resp.StatusCode, b)
			}
			if im, ok := strings.CutPrefix(created.InlineLink, "iden3comm://?i_m="); !ok {
				t.Fatalf("inline link %s", created.InlineLink)
			} else if raw, _ := url.QueryUnescape(im); decodeB64(raw) != compact(created.Request) {
				t.Fatalf("inline link carries %q", decodeB64(raw))
			}
			// The wallet fetches the request by request_uri.
			resp, b = call(t, "GET", created.RequestURI, "", nil, "")
			var req struct {
				ID, Thid, From, Type string
				Body                 struct {
					CallbackURL string `json:"callbackUrl"`
					Scope       []json.RawMessage
				}
			}
			json.Unmarshal(b, &req)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || req.Thid != tvThread || req.From != tvVerifier ||
				req.Body.CallbackURL != base+"/iden3/callback?session="+tvThread || len(req.Body.Scope) != 1 ||
				req.Type != "https://iden3-communication.io/authorization/1.0/request" {
				t.Fatalf("request_uri: %d %s", resp.StatusCode, b)
			}
			if resp, b := call(t, "GET", created.QRPNGURL, "", nil, ""); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(b, []byte("\x89PNG")) {
				t.Fatalf("qr: %d %q", resp.StatusCode, b[:min(len(b), 16)])
			}
			// An unreachable chain: 503, retry; the session stays pending.
			chain.SetDown(true)
			answer := func() (*http.Response, []byte) {
				if route == "callback" {
					return call(t, "POST", req.Body.CallbackURL, "text/plain", token, "")
				}
				return call(t, "POST", base+"/didcomm", "application/iden3-zkp-json", token, "")
			}
			if resp, b := answer(); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "polygon:mumbai") {
				t.Fatalf("chain down: %d %s", resp.StatusCode, b)
			}
			chain.SetDown(false)
			if resp, b := answer(); resp.StatusCode != 200 || !strings.Contains(string(b), "verified") {
				t.Fatalf("answer: %d %s", resp.StatusCode, b)
			}
			var s httptransport.Iden3Session
			resp, b = call(t, "GET", base+"/admin/iden3/requests/"+tvThread, "", nil, testAdmin)
			json.Unmarshal(b, &s)
			if resp.StatusCode != 200 || s.State != "verified" || s.Result == nil || s.Result.UserDID != tvUser ||
				len(s.Result.Scopes) != 1 || s.Result.Scopes[0].ProofKind != "mtp" || s.Result.Scopes[0].Issuer != tvVerifier {
				t.Fatalf("session: %d %s", resp.StatusCode, b)
			}
			if _, b := call(t, "GET", base+"/metrics", "", nil, testAdmin); !strings.Contains(string(b), `agentd_iden3_answers_total{result="chain-unavailable"} 1`) ||
				!strings.Contains(string(b), `agentd_iden3_answers_total{result="verified"} 1`) {
				t.Fatalf("metrics lack the answers:\n%s", grepLines(string(b), "iden3"))
			}
			// Accepted once.
			if resp, b := answer(); resp.StatusCode != 409 {
				t.Fatalf("second answer: %d %s", resp.StatusCode, b)
			}
			if resp, _ := call(t, "GET", created.RequestURI, "", nil, ""); resp.StatusCode != 409 {
				t.Fatalf("request_uri after the answer: %d", resp.StatusCode)
			}
			ev := sink.await(t, "iden3.session.verified")
			if sess, _ := ev["session"].(map[string]any); sess["id"] != tvThread {
				t.Fatalf("webhook %v", ev)
			}
			var page struct{ Requests []httptransport.Iden3Session }
			call(t, "GET", base+"/admin/iden3/requests?state=verified", "", nil, testAdmin)
			resp, b = call(t, "GET", base+"/admin/iden3/requests?state=verified", "", nil, testAdmin)
			json.Unmarshal(b, &page)
			if resp.StatusCode != 200 || len(page.Requests) != 1 {
				t.Fatalf("list: %s", b)
			}

			// A second session, cancelled: its answer is refused, its request gone.
			resp, b = call(t, "POST", base+"/admin/iden3/requests", "application/json", []byte(`{"reason":"r","scope":`+tvScope+`}`), testAdmin)
			json.Unmarshal(b, &created)
			if resp.StatusCode != 201 {
				t.Fatalf("create 2: %s", b)
			}
			if resp, b := call(t, "DELETE", base+"/admin/iden3/requests/"+created.ID, "", nil, testAdmin); resp.StatusCode != 200 || !strings.Contains(string(b), "cancelled") {
				t.Fatalf("cancel: %d %s", resp.StatusCode, b)
			}
			sink.await(t, "iden3.session.cancelled")
			if resp, _ := call(t, "GET", created.RequestURI, "", nil, ""); resp.StatusCode != 410 {
				t.Fatalf("request_uri of a cancelled session: %d", resp.StatusCode)
			}
			if resp, _ := call(t, "POST", base+"/iden3/callback?session=nope", "text/plain", token, ""); resp.StatusCode != 404 {
				t.Fatalf("unknown session: %d", resp.StatusCode)
			}
			plain := []byte(`{"id":"1","typ":"application/iden3comm-plain-json","type":"https://iden3-communication.io/authorization/1.0/response","thid":"` + tvThread + `","body":{"scope":[]}}`)
			if resp, b := call(t, "POST", base+"/didcomm", "application/iden3comm-plain-json", plain, ""); resp.StatusCode != 415 || !strings.Contains(string(b), "proves nothing") {
				t.Fatalf("plain iden3comm: %d %s", resp.StatusCode, b)
			}
			// A JWS goes to its thread's session like a JWZ (here one answered
			// already): it is not refused for its media type.
			jws, err := os.ReadFile("../../protocols/iden3auth/testdata/jws_sigv2_token.txt")
			if err != nil {
				t.Fatal(err)
			}
			if resp, b := call(t, "POST", base+"/didcomm", "application/iden3comm-signed-json", jws, ""); resp.StatusCode != 409 || !strings.Contains(string(b), "answered") {
				t.Fatalf("JWS to an answered session: %d %s", resp.StatusCode, b)
			}
			other := []byte(`{"id":"1","typ":"application/iden3comm-plain-json","type":"https://iden3-communication.io/credentials/1.0/offer","body":{}}`)
			if resp, b := call(t, "POST", base+"/didcomm", "application/iden3comm-plain-json", other, ""); resp.StatusCode != 400 || !strings.Contains(string(b), "not handled") {
				t.Fatalf("other iden3comm type: %d %s", resp.StatusCode, b)
			}
			// Validation: a bad scope is refused with the reason.
			if resp, b := call(t, "POST", base+"/admin/iden3/requests", "application/json",
				[]byte(`{"scope":[{"id":0,"circuitId":"credentialAtomicQueryMTPV2","query":{}}]}`), testAdmin); resp.StatusCode != 400 || !strings.Contains(string(b), "scope[0].id") {
				t.Fatalf("bad scope: %d %s", resp.StatusCode, b)
			}
		})
	}
}

func decodeB64(s string) string {
	b, _ := base64.StdEncoding.DecodeString(s)
	return string(b)
}

func compact(b []byte) string {
	var buf bytes.Buffer
	json.Compact(&buf, b)
	return buf.String()
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestIden3SessionsSurviveRestart: a session created before a restart is
// served and answered after it (sessions are in the database, unlike the
// reference verifier-backend's memory cache), the preloaded schema too.
func TestIden3SessionsSurviveRestart(t *testing.T) {
	token, _ := os.ReadFile("../../protocols/iden3auth/testdata/mtpv2_token.txt")
	schema, _ := os.ReadFile("../../protocols/iden3auth/testdata/kyc-v3.json-ld")
	chain := iden3test.Start(t)
	chain.SetRoot(iden3test.Dec(tvRoot), iden3test.Info{})
	chain.SetState(iden3test.Dec(tvIssuer), iden3test.Dec(tvState), iden3test.Info{})
	dir := t.TempDir()
	d, base := startIden3In(t, dir, chain, "")
	load, _ := json.Marshal(httptransport.Iden3SchemaLoad{URL: tvSchema, Document: schema})
	call(t, "POST", base+"/admin/iden3/schemas", "application/json", load, testAdmin)
	if resp, b := call(t, "POST", base+"/admin/iden3/requests", "application/json", []byte(`{"reason":"r","scope":`+tvScope+`}`), testAdmin); resp.StatusCode != 201 {
		t.Fatalf("create: %s", b)
	}
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, base = startIden3In(t, dir, chain, "")
	if resp, b := call(t, "GET", base+"/iden3/requests/"+tvThread, "", nil, ""); resp.StatusCode != 200 || !strings.Contains(string(b), tvThread) {
		t.Fatalf("request after restart: %d %s", resp.StatusCode, b)
	}
	// The callback URL names the old listener's port: post to the new one.
	if resp, b := call(t, "POST", base+"/iden3/callback?session="+tvThread, "text/plain", token, ""); resp.StatusCode != 200 {
		t.Fatalf("answer after restart: %d %s", resp.StatusCode, b)
	}
}
