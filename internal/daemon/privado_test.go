package daemon_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/protocols/iden3auth/iden3test"
	httptransport "github.com/agentd/agentd/transport/http"
)

// exchangeServer plays the exchanges' callback endpoint over HTTPS: it
// records every callback, checks nothing itself, and can be down.
type exchangeServer struct {
	srv  *httptest.Server
	down atomic.Bool
	mu   sync.Mutex
	got  []callbackGot
	hits atomic.Int32
}

type callbackGot struct {
	body                []byte
	signature, delivery string
}

func startExchangeServer(t *testing.T) *exchangeServer {
	e := &exchangeServer{}
	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		if e.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.got = append(e.got, callbackGot{b, r.Header.Get(httptransport.CallbackSignatureHeader), r.Header.Get(httptransport.CallbackDeliveryHeader)})
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// caFile writes the server's certificate as the PEM file the agent trusts.
func (e *exchangeServer) caFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// await returns the callback of interaction id in state, checking its
// HMAC under secret and its delivery id.
func (e *exchangeServer) await(t *testing.T, id, state, secret string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		e.mu.Lock()
		for _, g := range e.got {
			var m map[string]any
			json.Unmarshal(g.body, &m)
			if m["id"] == id && m["state"] == state {
				e.mu.Unlock()
				mac := hmac.New(sha256.New, []byte(secret))
				mac.Write(g.body)
				if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(g.signature), []byte(want)) {
					t.Fatalf("callback signature %q, want %q", g.signature, want)
				}
				if g.delivery != id+"."+state {
					t.Fatalf("delivery id %q, want %s.%s", g.delivery, id, state)
				}
				return m
			}
		}
		e.mu.Unlock()
	}
	t.Fatalf("no callback %s for %s", state, id)
	return nil
}

var consentLink = regexp.MustCompile(`https?://[^\s"<>]+/v1/users/consent/\?token=([A-Za-z0-9_-]{43})`)

const kycTemplate = `{"allowedIssuers":["*"],"context":"https://schemas.example/kyc-v3.json-ld","type":"KYCAgeCredential",
 "credentialSubject":{"birthday":{"$lt":20000101}}}`

type privadoFixture struct {
	*usersFixture
	ex     *exchangeServer
	offset atomic.Int64
}

// newPrivadoFixture is an agent with user accounts mailing through the
// capture server, the iden3 verifier on a chain double and the
// proof-request service calling back the test HTTPS exchange.
func newPrivadoFixture(t *testing.T) *privadoFixture {
	f := &privadoFixture{ex: startExchangeServer(t)}
	t.Cleanup(daemon.SetPrivadoClock(func() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) }))
	chain := iden3test.Start(t)
	ca := f.ex.caFile(t)
	f.usersFixture = newUsersFixture(t, func(cfg *config.Config) {
		cfg.Iden3.Resolvers = []config.Iden3Resolver{{Chain: "polygon", Network: "amoy", RPCURL: chain.URL,
			StateContract: "0x1a4cC30f2aA0377b0c3bc9848766D90cb4404124", ChainID: 80002}}
		cfg.Iden3.VerifierDID = "did:iden3:polygon:amoy:xCRp75DgAdS63W65fmXHz6p9DwdonuRU9e46DifhX"
		cfg.Privado.Enabled = true
		cfg.Privado.AllowPrivateCallbacks = true
		cfg.Privado.CallbackCAFile = ca
		cfg.Privado.SweepInterval = time.Second
	})
	return f
}

type creds struct {
	ID, Key, Secret string
}

func (f *privadoFixture) exchange(t *testing.T, name string) creds {
	t.Helper()
	body := `{"name":"` + name + `","callback_allow_list":["127.0.0.1"],"proof_template":` + kycTemplate + `}`
	var c httptransport.ExchangeCredentials
	if code := f.admin(t, "POST", "/admin/privado/exchanges", body, &c); code != 201 || c.APIKey == "" || c.HMACSecret == "" {
		t.Fatalf("create exchange: %d %+v", code, c)
	}
	return creds{c.ID, c.APIKey, c.HMACSecret}
}

func (f *privadoFixture) request(t *testing.T, key, body string) (int, map[string]any) {
	t.Helper()
	code, _, got := call(t, "POST", f.a.base+"/v1/proof/request/", "application/json", body, "X-Api-Key", key)
	var m map[string]any
	json.Unmarshal([]byte(got), &m)
	return code, m
}

func (f *privadoFixture) consentToken(t *testing.T) (string, received) {
	t.Helper()
	m := f.mail(t)
	got := consentLink.FindStringSubmatch(m.text)
	if got == nil {
		t.Fatalf("the consent mail has no link:\n%s", m.text)
	}
	return got[1], m
}

func (f *privadoFixture) consent(t *testing.T, token, choice string) (int, httptransport.ConsentAnswer, string) {
	t.Helper()
	code, _, body := call(t, "POST", f.a.base+"/v1/users/consent/?token="+token, "application/json", `{"consent":"`+choice+`"}`)
	var a httptransport.ConsentAnswer
	json.Unmarshal([]byte(body), &a)
	return code, a, body
}

// TestPrivadoDenialAndRules runs the service on a real daemon: exchanges
// made by the operator, requests refused without a trace, the consent mail
// through the capture SMTP server, a denial called back to the exchange's
// HTTPS server with its HMAC, token reuse, interactions by token, another
// exchange refused, a callback server that is down, expiry, and a restart.
func TestPrivadoDenialAndRules(t *testing.T) {
	f := newPrivadoFixture(t)
	var user httptransport.User
	if code := f.admin(t, "POST", "/admin/users", `{"email":"alice@example.org","name":"Alice","reference":"kraken-42"}`, &user); code != 201 {
		t.Fatalf("create user: %d", code)
	}
	a, b := f.exchange(t, "Kraken"), f.exchange(t, "Bitstamp")
	// The key and the secret are shown once.
	_, _, shown := call(t, "GET", f.a.base+"/admin/privado/exchanges/"+a.ID, "", "", "Authorization", "Bearer "+f.a.AdminToken())
	if strings.Contains(shown, a.Key) || strings.Contains(shown, a.Secret) || !strings.Contains(shown, `"Kraken"`) {
		t.Fatalf("exchange shown: %s", shown)
	}
	cb := f.ex.srv.URL + "/hook"
	good := `{"userReference":"kraken-42","challenge":12345,"callback":"` + cb + `"}`

	// Refusals: no key, a wrong key, bad bodies, unknown user, callback
	// not allowed. No mail, nothing stored.
	if code, _, body := call(t, "POST", f.a.base+"/v1/proof/request/", "application/json", good); code != 401 || !strings.Contains(body, `"unauthorized"`) {
		t.Fatalf("no key: %d %s", code, body)
	}
	if code, _ := f.request(t, a.Secret, good); code != 401 {
		t.Fatalf("the secret as key: %d", code)
	}
	for _, bad := range []struct {
		body   string
		status int
		reason string
	}{
		{`{"userReference":"kraken-42","challenge":0,"callback":"` + cb + `"}`, 400, "challenge"},
		{`{"userReference":"kraken-42","challenge":4294967296,"callback":"` + cb + `"}`, 400, "challenge"},
		{`{"userReference":"kraken-42","challenge":1.5,"callback":"` + cb + `"}`, 400, "challenge"},
		{`{"userReference":"nobody","challenge":1,"callback":"` + cb + `"}`, 404, "userReference"},
		{`{"userReference":"kraken-42","challenge":1,"callback":"https://evil.example/x"}`, 403, "allow-list"},
		{`{"userReference":"kraken-42","challenge":1,"callback":"ftp://127.0.0.1/x"}`, 400, "https"},
		{`{"userReference":"kraken-42","challenge":1,"callback":"` + cb + `","extra":1}`, 400, "extra"},
		{`not json`, 400, "JSON"},
	} {
		code, m := f.request(t, a.Key, bad.body)
		if code != bad.status || m["error"] == nil || !strings.Contains(m["reason"].(string), bad.reason) {
			t.Errorf("%s: %d %v, want %d naming %s", bad.body, code, m, bad.status, bad.reason)
		}
	}
	f.noMail(t)
	var list struct {
		Interactions []httptransport.PrivadoInteraction `json:"interactions"`
	}
	if f.admin(t, "GET", "/admin/privado/interactions", "", &list); len(list.Interactions) != 0 {
		t.Fatalf("refusals stored %d interactions", len(list.Interactions))
	}

	// A request by reference, with Authorization: Bearer.
	code, _, body := call(t, "POST", f.a.base+"/v1/proof/request/", "application/json", good, "Authorization", "Bearer "+a.Key)
	var in httptransport.PrivadoInteraction
	json.Unmarshal([]byte(body), &in)
	if code != 201 || in.State != "ProofRequest" || in.Challenge != 12345 || in.UserReference != "kraken-42" || in.VASPID != a.ID {
		t.Fatalf("request: %d %s", code, body)
	}
	token, m := f.consentToken(t)
	if m.to != "alice@example.org" || !strings.Contains(m.subject, "Kraken") || !strings.Contains(m.text, "birthday is less than 20000101") ||
		!strings.Contains(m.text, "12345") || !strings.Contains(m.html, "Kraken") {
		t.Fatalf("mail %q:\n%s", m.subject, m.text)
	}
	// The page shows who asks and what; opening it decides nothing.
	code, hdr, page := call(t, "GET", f.a.base+"/v1/users/consent/?token="+token, "", "")
	if code != 200 || !strings.Contains(page, "Kraken asks for a proof") || !strings.Contains(page, `id="yes"`) ||
		!strings.Contains(page, `id="no"`) || strings.Contains(page, "<script") || !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("page %d:\n%s", code, page)
	}
	// Refuse: the exchange is called back, signed.
	code, ans, body := f.consent(t, token, "no")
	if code != 200 || ans.Interaction.State != "NotGivenConsent" || ans.Wallet != nil {
		t.Fatalf("consent no: %d %s", code, body)
	}
	got := f.ex.await(t, in.ID, "NotGivenConsent", a.Secret)
	if len(got) != 4 || got["userReference"] != "kraken-42" || got["challenge"] != float64(12345) {
		t.Fatalf("denial callback %v", got)
	}
	// The token decided once; it still reads the user's interactions.
	if code, _, body := f.consent(t, token, "yes"); code != 409 {
		t.Fatalf("second decision: %d %s", code, body)
	}
	if code, _, body := f.consent(t, token, "maybe"); code != 400 || !strings.Contains(body, "consent") {
		t.Fatalf("maybe: %d %s", code, body)
	}
	var mine struct {
		Interactions []httptransport.PrivadoInteraction `json:"interactions"`
	}
	if code := getJSON(t, f.a.base+"/v1/interactions/?token="+token, "", &mine); code != 200 || len(mine.Interactions) != 1 ||
		mine.Interactions[0].State != "NotGivenConsent" || len(mine.Interactions[0].History) != 2 {
		t.Fatalf("interactions by token: %d %+v", code, mine)
	}
	if getJSON(t, f.a.base+"/v1/interactions/?token="+token+"&vasp_id="+b.ID, "", &mine); len(mine.Interactions) != 0 {
		t.Fatalf("filtered by another exchange: %+v", mine)
	}
	if code := getJSON(t, f.a.base+"/v1/interactions/?token=x", "", &mine); code != 410 {
		t.Fatalf("bad token reads: %d", code)
	}

	// Consent: the wallet's request, with both scopes bound to the challenge.
	if code, _ := f.request(t, a.Key, `{"userReference":"`+user.ID+`","challenge":"4294967295","callback":"`+cb+`"}`); code != 201 {
		t.Fatalf("request by id: %d", code)
	}
	token2, _ := f.consentToken(t)
	code, ans, body = f.consent(t, token2, "yes")
	if code != 200 || ans.Interaction.State != "GivenConsent" || ans.Wallet == nil || !strings.HasPrefix(ans.Wallet.DeepLink, "iden3comm://?request_uri=") ||
		!strings.HasPrefix(ans.Wallet.QRPNG, "data:image/png;base64,") || !strings.HasPrefix(ans.Wallet.UniversalLink, "https://wallet.privado.id/#request_uri=") {
		t.Fatalf("consent yes: %d %s", code, body)
	}
	id2 := ans.Interaction.ID
	checkRequest := func() {
		t.Helper()
		_, _, reqJSON := call(t, "GET", ans.Wallet.RequestURI, "", "")
		var req struct {
			Body struct {
				Message string `json:"message"`
				Scope   []struct {
					ID        uint32 `json:"id"`
					CircuitID string `json:"circuitId"`
					Optional  bool   `json:"optional"`
				} `json:"scope"`
			} `json:"body"`
		}
		json.Unmarshal([]byte(reqJSON), &req)
		sc := req.Body.Scope
		if req.Body.Message != "4294967295" || len(sc) != 2 || sc[0].ID != 4294967295 || sc[0].CircuitID != "credentialAtomicQueryMTPV2" ||
			sc[1].ID != 1 || sc[1].CircuitID != "credentialAtomicQuerySigV2" || !sc[0].Optional || !sc[1].Optional {
			t.Fatalf("the wallet's request: %s", reqJSON)
		}
	}
	checkRequest()
	// A proof for Kraken's interaction is not Bitstamp's to verify; Kraken
	// gets a verdict (this token is no proof).
	fake := fakeResponse(ans.Wallet.SessionID)
	if code, _, body := call(t, "POST", f.a.base+"/v1/proof/verify/", "application/json", `{"proof":"`+fake+`"}`, "X-Api-Key", b.Key); code != 404 || strings.Contains(body, id2) {
		t.Fatalf("another exchange verifies: %d %s", code, body)
	}
	code, _, body = call(t, "POST", f.a.base+"/v1/proof/verify/", "application/json", `{"proof":"`+fake+`"}`, "X-Api-Key", a.Key)
	var v httptransport.ProofVerification
	json.Unmarshal([]byte(body), &v)
	if code != 200 || v.Valid || v.Reason == "" || v.InteractionID != id2 || v.Challenge != 4294967295 {
		t.Fatalf("verify: %d %s", code, body)
	}

	// The callback server is down: the denial is retried and delivered later.
	f.ex.down.Store(true)
	if code, _ := f.request(t, a.Key, good); code != 201 {
		t.Fatal("request 3")
	}
	token3, _ := f.consentToken(t)
	_, ans3, _ := f.consent(t, token3, "no")
	for deadline := time.Now().Add(10 * time.Second); f.ex.hits.Load() < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the callback was not tried")
		}
	}
	f.ex.down.Store(false)
	f.ex.await(t, ans3.Interaction.ID, "NotGivenConsent", a.Secret)

	// A request left undecided, then a restart: everything is still there,
	// the key works, the wallet's request is served, the pending request
	// can be refused and its callback is signed with the same secret.
	if code, _ := f.request(t, a.Key, good); code != 201 {
		t.Fatal("request 4")
	}
	token4, _ := f.consentToken(t)
	cfg := f.a.cfg
	f.a.Shutdown(context.Background())
	d, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	if f.admin(t, "GET", "/admin/privado/interactions", "", &list); len(list.Interactions) != 4 || list.Interactions[0].State != "ProofRequest" ||
		list.Interactions[2].ID != id2 || list.Interactions[2].State != "GivenConsent" || list.Interactions[3].State != "NotGivenConsent" {
		t.Fatalf("after the restart: %+v", list.Interactions)
	}
	checkRequest()
	if code, _, pg := call(t, "GET", f.a.base+"/v1/users/consent/?token="+token2, "", ""); code != 200 ||
		!strings.Contains(pg, `id="qr" alt="QR code of the request for your wallet" src="data:image/png;base64,`) || strings.Contains(pg, `id="yes"`) {
		t.Fatalf("the consented page after the restart: %d\n%s", code, pg)
	}
	if code, _, body := f.consent(t, token4, "no"); code != 200 {
		t.Fatalf("refuse after the restart: %d %s", code, body)
	}
	f.ex.await(t, list.Interactions[0].ID, "NotGivenConsent", a.Secret)

	// Expiry: an undecided request expires (called back), its token is gone.
	if code, _ := f.request(t, a.Key, good); code != 201 {
		t.Fatal("request 5")
	}
	token5, _ := f.consentToken(t)
	f.offset.Add(int64(25 * time.Hour))
	if code, _, _ := f.consent(t, token5, "yes"); code != 410 {
		t.Fatalf("expired token: %d", code)
	}
	f.admin(t, "GET", "/admin/privado/interactions?limit=1", "", &list)
	f.ex.await(t, list.Interactions[0].ID, "Expired", a.Secret)

	// Operators: rotate (the old key stops), disable (the key stops).
	var rot httptransport.ExchangeCredentials
	if code := f.admin(t, "POST", "/admin/privado/exchanges/"+a.ID+"/rotate-keys", "", &rot); code != 200 || rot.APIKey == a.Key {
		t.Fatalf("rotate: %d", code)
	}
	if code, _ := f.request(t, a.Key, good); code != 401 {
		t.Fatalf("old key after rotation: %d", code)
	}
	if code := f.admin(t, "POST", "/admin/privado/exchanges/"+a.ID+"/disable", "", nil); code != 200 {
		t.Fatalf("disable: %d", code)
	}
	if code, _ := f.request(t, rot.APIKey, good); code != 401 {
		t.Fatalf("disabled exchange: %d", code)
	}
	// No key, secret or token was logged.
	logs := f.log.String()
	for _, s := range []string{a.Key, a.Secret, rot.APIKey, rot.HMACSecret, token, token2, token3, token4, token5} {
		if strings.Contains(logs, s) {
			t.Fatal("a secret is in the log")
		}
	}
}

// fakeResponse is a compact JWS whose payload claims to be an
// authorization response in thread thid (not a valid proof).
func fakeResponse(thid string) string {
	p, _ := json.Marshal(map[string]string{"type": "https://iden3-communication.io/authorization/1.0/response", "thid": thid,
		"id": "x", "from": "did:iden3:polygon:amoy:x7Z95VkUuyo6mqraJw2VGwCfqTzdqhM1RVjRHzcpK"})
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256K-R","typ":"application/iden3comm-signed-json"}`)) + "." + enc(p) + "." + enc([]byte("sig"))
}

// TestPrivadoConsentPageInBrowser opens the consent link in a real
// headless chromium: the page shows who asks and what; Give consent shows
// the wallet's QR code and links.
func TestPrivadoConsentPageInBrowser(t *testing.T) {
	f := newPrivadoFixture(t)
	ctx := browser(t)
	if code := f.admin(t, "POST", "/admin/users", `{"email":"bob@example.org","name":"Bob","reference":"r-1"}`, nil); code != 201 {
		t.Fatal("user")
	}
	a := f.exchange(t, "Kraken")
	if code, _ := f.request(t, a.Key, `{"userReference":"r-1","challenge":777,"callback":"`+f.ex.srv.URL+`/cb"}`); code != 201 {
		t.Fatal("request")
	}
	token, _ := f.consentToken(t)
	link := f.a.base + "/v1/users/consent/?token=" + token
	if err := chromedp.Do(ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#yes"))); err != nil {
		t.Fatal(err)
	}
	title, message := pageText(t, ctx)
	if title != "Kraken asks for a proof" || !strings.Contains(message, "birthday is less than 20000101") || !strings.Contains(message, "777") {
		t.Fatalf("page: %q %q", title, message)
	}
	// Reloading decided nothing; the button does.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#yes")), chromedp.Click(chromedp.CSS("#yes"))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		title, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#title")))
		if err == nil && title == "Thank you: now answer with your wallet" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the button: %q %v", title, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	deep, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#deeplink"), "href"))
	if err != nil || !strings.HasPrefix(deep.Value, "iden3comm://?request_uri=") {
		t.Fatalf("deep link %q %v", deep.Value, err)
	}
	qr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#qr"), "src"))
	if err != nil || !strings.HasPrefix(qr.Value, "data:image/png;base64,") {
		t.Fatalf("QR code %.40q %v", qr.Value, err)
	}
	// The QR code is drawn (the browser decoded the image).
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById("qr").naturalWidth`))
	if err != nil || width < 100 {
		t.Fatalf("QR image width %d %v", width, err)
	}
	var list struct {
		Interactions []httptransport.PrivadoInteraction `json:"interactions"`
	}
	if f.admin(t, "GET", "/admin/privado/interactions", "", &list); len(list.Interactions) != 1 || list.Interactions[0].State != "GivenConsent" {
		t.Fatalf("interactions %+v", list.Interactions)
	}
}

// TestPrivadoLoginLink: a user asks for a link to their proof requests;
// the answer is the same for an unknown address (and nothing is mailed);
// the link shows the requests as JSON and, to a browser, as a page; it
// decides nothing.
func TestPrivadoLoginLink(t *testing.T) {
	f := newPrivadoFixture(t)
	if code := f.admin(t, "POST", "/admin/users", `{"email":"dan@example.org","name":"Dan","reference":"d-1"}`, nil); code != 201 {
		t.Fatal("user")
	}
	a := f.exchange(t, "Kraken <Pro>")
	if code, _ := f.request(t, a.Key, `{"userReference":"d-1","challenge":99,"callback":"`+f.ex.srv.URL+`/cb"}`); code != 201 {
		t.Fatal("request")
	}
	f.consentToken(t)
	code, _, unknown := call(t, "POST", f.a.base+"/v1/interactions/login", "application/json", `{"email":"nobody@example.org"}`)
	if code != 202 {
		t.Fatalf("unknown address: %d %s", code, unknown)
	}
	f.noMail(t)
	code, _, known := call(t, "POST", f.a.base+"/v1/interactions/login", "application/json", `{"email":"DAN@example.org"}`)
	if code != 202 || known != unknown {
		t.Fatalf("known address: %d %s (unknown: %s)", code, known, unknown)
	}
	m := f.mail(t)
	link := regexp.MustCompile(`https?://[^\s"<>]+/v1/interactions/\?token=([A-Za-z0-9_-]{43})`).FindStringSubmatch(m.text)
	if link == nil || m.to != "dan@example.org" {
		t.Fatalf("login mail to %s:\n%s", m.to, m.text)
	}
	var mine struct {
		Interactions []httptransport.PrivadoInteraction `json:"interactions"`
	}
	if code := getJSON(t, link[0], "", &mine); code != 200 || len(mine.Interactions) != 1 || mine.Interactions[0].Challenge != 99 {
		t.Fatalf("JSON: %d %+v", code, mine)
	}
	code, hdr, page := call(t, "GET", link[0], "", "", "Accept", "text/html")
	if code != 200 || !strings.Contains(page, "Kraken &lt;Pro&gt;") || !strings.Contains(page, "ProofRequest") ||
		!strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || strings.Contains(page, "<script") {
		t.Fatalf("page %d:\n%s", code, page)
	}
	if code, _, body := f.consent(t, link[1], "yes"); code != 403 {
		t.Fatalf("a login token decides: %d %s", code, body)
	}
	if code, _, body := call(t, "POST", f.a.base+"/v1/interactions/login", "application/json", `{"email":"not an address"}`); code != 400 {
		t.Fatalf("bad address: %d %s", code, body)
	}
}

// TestPrivadoNeedsItsParts: the service refuses to start without the
// iden3 verifier, or with a chain the verifier does not read.
func TestPrivadoNeedsItsParts(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Privado.Enabled = true
	cfg.Email.Address = "agent@agent.test"
	if _, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil ||
		!strings.Contains(err.Error(), "iden3") {
		t.Fatalf("without iden3: %v", err)
	}
	chain := iden3test.Start(t)
	cfg.Iden3.Resolvers = []config.Iden3Resolver{{Chain: "polygon", Network: "amoy", RPCURL: chain.URL,
		StateContract: "0x1a4cC30f2aA0377b0c3bc9848766D90cb4404124", ChainID: 80002}}
	cfg.Iden3.VerifierDID = "did:iden3:polygon:amoy:xCRp75DgAdS63W65fmXHz6p9DwdonuRU9e46DifhX"
	cfg.Privado.Chain = "polygon:main"
	if _, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil ||
		!strings.Contains(err.Error(), "privado.chain") {
		t.Fatalf("unknown chain: %v", err)
	}
}

// TestPrivadoFailedAfterAttempts: after privado.max_attempts refused
// answers the interaction fails and the exchange is told why; a further
// answer is refused.
func TestPrivadoFailedAfterAttempts(t *testing.T) {
	f := newPrivadoFixture(t)
	if code := f.admin(t, "POST", "/admin/users", `{"email":"eve@example.org","reference":"e-1"}`, nil); code != 201 {
		t.Fatal("user")
	}
	a := f.exchange(t, "Kraken")
	if code, _ := f.request(t, a.Key, `{"userReference":"e-1","challenge":31,"callback":"`+f.ex.srv.URL+`/cb"}`); code != 201 {
		t.Fatal("request")
	}
	token, _ := f.consentToken(t)
	_, ans, body := f.consent(t, token, "yes")
	if ans.Wallet == nil {
		t.Fatalf("consent: %s", body)
	}
	for i := 0; i < 5; i++ {
		code, _, body := call(t, "POST", f.a.base+"/iden3/callback?session="+ans.Wallet.SessionID, "text/plain", "not a proof")
		if code != 400 {
			t.Fatalf("answer %d: %d %s", i, code, body)
		}
	}
	cb := f.ex.await(t, ans.Interaction.ID, "Failed", a.Secret)
	if r, _ := cb["reason"].(string); !strings.Contains(r, "5 answers refused") || cb["challenge"] != float64(31) {
		t.Fatalf("failure callback %v", cb)
	}
	// A failed session takes no answer, before and after a restart.
	if code, _, body := call(t, "POST", f.a.base+"/iden3/callback?session="+ans.Wallet.SessionID, "text/plain", "not a proof"); code != 409 {
		t.Fatalf("an answer to a failed session: %d %s", code, body)
	}
	cfg := f.a.cfg
	f.a.Shutdown(context.Background())
	d, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	var list struct {
		Interactions []struct{ ID, State string } `json:"interactions"`
	}
	if f.admin(t, "GET", "/admin/privado/interactions", "", &list); len(list.Interactions) != 1 ||
		list.Interactions[0].ID != ans.Interaction.ID || list.Interactions[0].State != "Failed" {
		t.Fatalf("after a restart: %+v", list.Interactions)
	}
	if code, _, body := call(t, "POST", f.a.base+"/iden3/callback?session="+ans.Wallet.SessionID, "text/plain", "not a proof"); code != 409 {
		t.Fatalf("an answer to a failed session after a restart: %d %s", code, body)
	}
}
