package privado

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/iden3auth"
	"github.com/agentd/agentd/protocols/internal/fakes"
	"github.com/agentd/agentd/store/seal"
	"github.com/emersion/go-message/mail"
)

// fakeUsers knows one account by id and by reference.
type fakeUsers struct{}

func (fakeUsers) LookupUser(_ context.Context, ref string) (User, error) {
	if ref == "u-1" || ref == "ref-1" {
		return User{ID: "u-1", Email: "alice@example.com", Name: "Alice", Reference: "ref-1"}, nil
	}
	if ref == "u-2" {
		return User{ID: "u-2", Email: "bob@example.com", Name: "Bob"}, nil
	}
	return User{}, agent.Errorf(agent.CodeNotFound, "userReference: no such user")
}

func (f fakeUsers) UserByEmail(ctx context.Context, email string) (User, error) {
	if strings.EqualFold(email, "alice@example.com") {
		return f.LookupUser(ctx, "u-1")
	}
	return User{}, agent.Errorf(agent.CodeNotFound, "no such user")
}

// fakeVerifier records the sessions asked for and the verdict hook.
type fakeVerifier struct {
	mu       sync.Mutex
	created  []iden3auth.CreateRequest
	hook     iden3auth.VerdictHook
	recheck  func(id string) (*iden3auth.Result, error)
	rechecks []string
}

func (f *fakeVerifier) CreateIn(_ context.Context, _ *agent.Work, req iden3auth.CreateRequest) (iden3auth.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, req)
	id := "sess-" + string(rune('a'+len(f.created)-1))
	return iden3auth.Session{ID: id, State: iden3auth.StatePending, Expires: time.Date(2026, 1, 2, 5, 0, 0, 0, time.UTC)}, nil
}

func (f *fakeVerifier) Recheck(_ context.Context, id string, _ []byte) (*iden3auth.Result, error) {
	f.rechecks = append(f.rechecks, id)
	return f.recheck(id)
}
func (f *fakeVerifier) RequestURI(id string) string {
	return "https://agent.example/iden3/requests/" + id
}
func (f *fakeVerifier) DeepLink(id string) string         { return "iden3comm://?request_uri=x" + id }
func (f *fakeVerifier) OnVerdict(h iden3auth.VerdictHook) { f.hook = h }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type rig struct {
	svc *Service
	st  *fakes.Store
	ver *fakeVerifier
	clk *clock
}

var template = map[string]any{
	"allowedIssuers":    []any{"*"},
	"context":           "https://schemas.example/kyc-v3.json-ld",
	"type":              "KYCAgeCredential",
	"credentialSubject": map[string]any{"birthday": map[string]any{"$lt": float64(20000101)}},
}

func newRig(t *testing.T) *rig {
	t.Helper()
	raw := make([]byte, 32)
	rand.Read(raw)
	key, err := seal.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{st: &fakes.Store{}, ver: &fakeVerifier{}, clk: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	r.svc, err = New(Config{Store: r.st.Agent(), Users: fakeUsers{}, Verifier: r.ver, Sealer: key,
		BaseURL: "https://agent.example/", MailFrom: "agent@agent.example", Now: r.clk.now,
		Callbacks: CallbackPolicy{Lookup: func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) exchange(t *testing.T, name string) (Credentials, ExchangeView) {
	t.Helper()
	c, err := r.svc.CreateExchange(context.Background(), ExchangeRequest{Name: name,
		CallbackAllowList: []string{"cb." + strings.ToLower(name) + ".example"}, ProofTemplate: template})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := r.svc.Authenticate(context.Background(), c.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	return c, ex
}

func (r *rig) request(t *testing.T, ex ExchangeView, challenge string) InteractionView {
	t.Helper()
	v, err := r.svc.Request(context.Background(), ex, ProofRequest{UserReference: "ref-1", Challenge: json.RawMessage(challenge),
		Callback: "https://cb." + strings.ToLower(ex.Name) + ".example/hook"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var linkRE = regexp.MustCompile(`https://agent\.example/v1/users/consent/\?token=([A-Za-z0-9_-]{43})`)

// mailText decodes the parts of a mail.
func mailText(t *testing.T, raw []byte) string {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		out.Write(b)
	}
	return out.String()
}

// token reads the consent token of the n-th message queued (a mail).
func (r *rig) token(t *testing.T, n int) string {
	t.Helper()
	m := r.st.Outbound()[n]
	if m.MediaType != MediaTypeMail || m.Endpoint != "mailto:alice@example.com" {
		t.Fatalf("message %d: %s to %s", n, m.MediaType, m.Endpoint)
	}
	got := linkRE.FindStringSubmatch(mailText(t, m.Payload))
	if got == nil {
		t.Fatalf("mail without link:\n%s", m.Payload)
	}
	return got[1]
}

// verdict runs the verdict hook as the verifier would, in a unit of work.
func (r *rig) verdict(t *testing.T, sess iden3auth.Session) {
	t.Helper()
	err := r.st.Agent().Update(context.Background(), func(w *agent.Work) error {
		return r.ver.hook(context.Background(), w, &sess, r.clk.now())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func lastCallback(t *testing.T, r *rig) (Callback, *agent.OutboundMessage) {
	t.Helper()
	out := r.st.Outbound()
	m := out[len(out)-1]
	if m.MessageType != "privado-callback" {
		t.Fatalf("last message %s to %s, want a callback", m.MessageType, m.Endpoint)
	}
	var cb Callback
	if err := json.Unmarshal(m.Payload, &cb); err != nil {
		t.Fatal(err)
	}
	return cb, m
}

func TestStateTable(t *testing.T) {
	allowed := map[[2]State]bool{
		{StateProofRequest, StateGivenConsent}: true, {StateProofRequest, StateNotGivenConsent}: true,
		{StateProofRequest, StateExpired}: true, {StateGivenConsent, StateProofShared}: true,
		{StateGivenConsent, StateExpired}: true, {StateGivenConsent, StateFailed}: true,
	}
	all := []State{StateProofRequest, StateGivenConsent, StateNotGivenConsent, StateProofShared, StateExpired, StateFailed}
	for _, from := range all {
		for _, to := range all {
			if from.CanMoveTo(to) != allowed[[2]State{from, to}] {
				t.Errorf("%s -> %s: %v", from, to, from.CanMoveTo(to))
			}
		}
	}
	for _, s := range []State{StateNotGivenConsent, StateProofShared, StateExpired, StateFailed} {
		if !s.Final() {
			t.Errorf("%s is not final", s)
		}
	}
	in := Interaction{State: StateProofShared}
	if err := in.moveTo(StateGivenConsent, time.Now(), "x"); err == nil || len(in.History) != 0 {
		t.Fatal("a backward move was allowed")
	}
}

func TestChallenge(t *testing.T) {
	for in, want := range map[string]uint32{`1`: 1, `12345`: 12345, `4294967295`: 4294967295, `"7"`: 7} {
		if got, err := ParseChallenge(json.RawMessage(in)); err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	for _, in := range []string{``, `null`, `0`, `-1`, `4294967296`, `1.5`, `1e3`, `"x"`, `true`, `99999999999999999999999`} {
		if _, err := ParseChallenge(json.RawMessage(in)); !agent.HasCode(err, agent.CodeMsg) || !strings.Contains(agent.ErrorComment(err), "challenge") {
			t.Errorf("%s: %v, want a refusal naming the challenge", in, err)
		}
	}
	if SigScopeID(1) != 2 || SigScopeID(4294967295) != 1 || SigScopeID(4294967294) != 4294967295 {
		t.Fatal("SigScopeID")
	}
}

func TestCallbackPolicy(t *testing.T) {
	ctx := context.Background()
	public := func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
	}
	private := func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("10.0.0.5")}, nil
	}
	allow := []string{"cb.ex.example", "*.hooks.example", "https://api.other.example/v1/"}
	p := CallbackPolicy{Lookup: public}
	for _, ok := range []string{"https://cb.ex.example/x", "https://cb.ex.example:8443/x?y=1", "https://a.hooks.example/p", "https://api.other.example/v1/cb"} {
		if _, err := p.Check(ctx, ok, allow); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "cb.ex.example/x", "http://cb.ex.example/x", "ftp://cb.ex.example/x", "https://u:p@cb.ex.example/",
		"https://cb.ex.example/x#f", "https://evil.example/x", "https://hooks.example.evil/x", "https://api.other.example/v2/cb",
		"https://api.other.example/v1x", "https://127.0.0.1/x", "https://[::1]/x", "http://localhost/x"} {
		if _, err := p.Check(ctx, bad, append(allow, "127.0.0.1", "::1")); err == nil {
			t.Errorf("%s was allowed", bad)
		}
	}
	// A name resolving to a private address is refused, unless allowed.
	if _, err := (CallbackPolicy{Lookup: private}).Check(ctx, "https://cb.ex.example/x", allow); !agent.HasCode(err, agent.CodeForbidden) {
		t.Errorf("private address: %v", err)
	}
	if _, err := (CallbackPolicy{Lookup: private, AllowPrivate: true}).Check(ctx, "https://cb.ex.example/x", allow); err != nil {
		t.Errorf("private allowed: %v", err)
	}
	// http to loopback only with private allowed; http elsewhere only with AllowHTTP.
	if _, err := (CallbackPolicy{AllowPrivate: true}).Check(ctx, "http://127.0.0.1:9/x", []string{"127.0.0.1"}); err != nil {
		t.Errorf("http loopback: %v", err)
	}
	if _, err := (CallbackPolicy{Lookup: public, AllowHTTP: true}).Check(ctx, "http://cb.ex.example/x", allow); err != nil {
		t.Errorf("http allowed: %v", err)
	}
	if _, err := CheckAllowList(nil); err == nil {
		t.Error("empty allow-list accepted")
	}
	if _, err := CheckAllowList([]string{"a.example", "ftp://x"}); err == nil {
		t.Error("ftp prefix accepted")
	}
}

func TestExchanges(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	c, ex := r.exchange(t, "Kraken")
	if !validSecret(c.APIKey) || !validSecret(c.HMACSecret) || ex.ID != c.ID || ex.State != ExchangeActive {
		t.Fatalf("credentials %v / %+v", c.ID, ex)
	}
	// Neither the key nor the secret is stored as such.
	for _, kind := range []string{KindExchange, KindAPIKey} {
		recs, _ := r.st.Records.List(ctx, kind, "", 100)
		for _, rec := range recs {
			if bytes.Contains(rec.Value, []byte(c.APIKey)) || bytes.Contains(rec.Value, []byte(c.HMACSecret)) ||
				strings.Contains(rec.ID, c.APIKey) {
				t.Fatalf("a %s record holds a credential", kind)
			}
		}
	}
	if sec, err := r.svc.Secret(ctx, ex.ID); err != nil || string(sec) != c.HMACSecret {
		t.Fatalf("secret: %v", err)
	}
	if _, err := r.svc.Authenticate(ctx, c.HMACSecret); err == nil {
		t.Fatal("the secret authenticates")
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", 43)} {
		if _, err := r.svc.Authenticate(ctx, bad); err == nil {
			t.Fatalf("%q authenticates", bad)
		}
	}
	// Rotation: the old key stops, the new works, the secret changes.
	c2, err := r.svc.RotateKeys(ctx, ex.ID)
	if err != nil || c2.APIKey == c.APIKey || c2.HMACSecret == c.HMACSecret {
		t.Fatalf("rotate: %v", err)
	}
	if _, err := r.svc.Authenticate(ctx, c.APIKey); err == nil {
		t.Fatal("the old key still works")
	}
	if _, err := r.svc.Authenticate(ctx, c2.APIKey); err != nil {
		t.Fatal(err)
	}
	if sec, _ := r.svc.Secret(ctx, ex.ID); string(sec) != c2.HMACSecret {
		t.Fatal("secret not rotated")
	}
	if v, err := r.svc.DisableExchange(ctx, ex.ID); err != nil || v.State != ExchangeDisabled {
		t.Fatalf("disable %+v %v", v, err)
	}
	if _, err := r.svc.Authenticate(ctx, c2.APIKey); err == nil {
		t.Fatal("a disabled exchange's key works")
	}
	if _, err := r.svc.RotateKeys(ctx, ex.ID); !agent.HasCode(err, agent.CodeConflict) {
		t.Fatalf("rotate disabled: %v", err)
	}
	for _, req := range []ExchangeRequest{{Name: "", CallbackAllowList: []string{"a.example"}}, {Name: "x"},
		{Name: "x", CallbackAllowList: []string{"a.example"}, ProofTemplate: map[string]any{"type": "T"}}} {
		if _, err := r.svc.CreateExchange(ctx, req); !agent.HasCode(err, agent.CodeMsg) {
			t.Errorf("%+v: %v", req, err)
		}
	}
	if list, _ := r.svc.Exchanges(ctx, "", 10); len(list) != 1 {
		t.Fatalf("%d exchanges, want 1", len(list))
	}
}

func TestRequestRefusalsStoreNothing(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	_, ex := r.exchange(t, "Kraken")
	good := ProofRequest{UserReference: "ref-1", Challenge: json.RawMessage(`12345`), Callback: "https://cb.kraken.example/hook"}
	for name, mod := range map[string]func(*ProofRequest){
		"unknown user":    func(p *ProofRequest) { p.UserReference = "nobody" },
		"no user":         func(p *ProofRequest) { p.UserReference = "" },
		"zero challenge":  func(p *ProofRequest) { p.Challenge = json.RawMessage(`0`) },
		"big challenge":   func(p *ProofRequest) { p.Challenge = json.RawMessage(`4294967296`) },
		"http callback":   func(p *ProofRequest) { p.Callback = "http://cb.kraken.example/hook" },
		"not allowed":     func(p *ProofRequest) { p.Callback = "https://evil.example/hook" },
		"private address": func(p *ProofRequest) { p.Callback = "https://10.0.0.1/hook" },
		"bad query":       func(p *ProofRequest) { p.Query = map[string]any{"type": "X"} },
		"bad circuit query": func(p *ProofRequest) {
			p.Query = map[string]any{"type": "X", "context": "c", "allowedIssuers": "nope"}
		},
	} {
		req := good
		mod(&req)
		if _, err := r.svc.Request(ctx, ex, req); err == nil || statusClass(err) != 4 {
			t.Errorf("%s: %v, want a 4xx refusal", name, err)
		}
	}
	if n := r.st.Records.Len(KindInteraction) + r.st.Records.Len(KindToken); n != 0 || len(r.st.Outbound()) != 0 {
		t.Fatalf("refusals stored %d records and queued %d messages", n, len(r.st.Outbound()))
	}
}

// statusClass is 4 for errors the transport answers with a 4xx.
func statusClass(err error) int {
	for _, c := range []string{agent.CodeMsg, agent.CodeForbidden, agent.CodeNotFound, agent.CodeGone, agent.CodeConflict} {
		if agent.HasCode(err, c) {
			return 4
		}
	}
	return 5
}

func TestDenial(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	_, ex := r.exchange(t, "Kraken")
	v := r.request(t, ex, `12345`)
	if v.State != StateProofRequest || v.Challenge != 12345 || v.UserReference != "ref-1" {
		t.Fatalf("interaction %+v", v)
	}
	tok := r.token(t, 0)
	body := mailText(t, r.st.Outbound()[0].Payload)
	for _, want := range []string{"Kraken", "KYCAgeCredential", "birthday is less than 20000101", "12345", "Sat, 03 Jan 2026 03:04:05 UTC"} {
		if !strings.Contains(body, want) {
			t.Errorf("the mail does not say %q:\n%s", want, body)
		}
	}
	// The token is stored hashed only.
	if _, err := r.st.Records.Get(ctx, KindToken, hashKey(tok)); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{KindToken, KindInteraction} {
		recs, _ := r.st.Records.List(ctx, kind, "", 100)
		for _, rec := range recs {
			if bytes.Contains(rec.Value, []byte(tok)) || rec.ID == tok {
				t.Fatal("the token is stored")
			}
		}
	}
	info, err := r.svc.ConsentInfo(ctx, tok)
	if err != nil || info.Decided || info.Interaction.VASPName != "Kraken" || info.Wallet != nil {
		t.Fatalf("info %+v %v", info, err)
	}
	r.clk.add(time.Minute)
	got, err := r.svc.Consent(ctx, tok, false)
	if err != nil || got.Interaction.State != StateNotGivenConsent || got.Wallet != nil {
		t.Fatalf("consent no: %+v %v", got, err)
	}
	cb, m := lastCallback(t, r)
	if cb.ID != v.ID || cb.State != StateNotGivenConsent || cb.Challenge != 12345 || cb.UserReference != "ref-1" || cb.Proof != "" {
		t.Fatalf("callback %+v", cb)
	}
	target, exID, delivery, err := ParseCallbackEndpoint(m.Endpoint)
	if err != nil || target != "https://cb.kraken.example/hook" || exID != ex.ID || delivery != v.ID+".NotGivenConsent" {
		t.Fatalf("endpoint %s: %s %s %s %v", m.Endpoint, target, exID, delivery, err)
	}
	var raw map[string]any
	json.Unmarshal(m.Payload, &raw)
	if len(raw) != 4 {
		t.Fatalf("denial callback %s, want exactly id, userReference, challenge, state", m.Payload)
	}
	// The token decided once; it still reads.
	if _, err := r.svc.Consent(ctx, tok, true); !agent.HasCode(err, agent.CodeConflict) {
		t.Fatalf("second decision: %v", err)
	}
	if len(r.ver.created) != 0 {
		t.Fatal("a refused request made an iden3 session")
	}
	list, err := r.svc.UserInteractions(ctx, tok, "", "", 10)
	if err != nil || len(list) != 1 || list[0].State != StateNotGivenConsent || len(list[0].History) != 2 ||
		list[0].History[1].Cause != "the user refused consent" || !list[0].History[1].At.Equal(r.clk.now()) {
		t.Fatalf("list %+v %v", list, err)
	}
	// After its expiry the token neither reads nor decides.
	r.clk.add(DefaultConsentTTL)
	if _, err := r.svc.UserInteractions(ctx, tok, "", "", 10); !agent.HasCode(err, agent.CodeGone) {
		t.Fatalf("expired token reads: %v", err)
	}
	if _, err := r.svc.Consent(ctx, "x"+tok[1:], false); !agent.HasCode(err, agent.CodeGone) {
		t.Fatalf("unknown token: %v", err)
	}
}

func TestConsentAndProof(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	_, ex := r.exchange(t, "Kraken")
	_, other := r.exchange(t, "Bitstamp")
	v := r.request(t, ex, `4294967295`)
	tok := r.token(t, 0)
	got, err := r.svc.Consent(ctx, tok, true)
	if err != nil || got.Interaction.State != StateGivenConsent || got.Wallet == nil || got.Wallet.SessionID != "sess-a" ||
		got.Wallet.UniversalLink != UniversalLinkBase+"request_uri=https%3A%2F%2Fagent.example%2Fiden3%2Frequests%2Fsess-a" {
		t.Fatalf("consent yes: %+v %v", got, err)
	}
	cr := r.ver.created[0]
	if cr.MaxRefusals != DefaultMaxAttempts || cr.Message != "4294967295" || len(cr.Scope) != 2 || cr.Scope[0].ID != 4294967295 || cr.Scope[0].CircuitID != CircuitMTP ||
		cr.Scope[1].ID != 1 || cr.Scope[1].CircuitID != CircuitSig || !*cr.Scope[0].Optional || !*cr.Scope[1].Optional {
		t.Fatalf("iden3 request %+v", cr)
	}
	if len(r.st.Outbound()) != 1 {
		t.Fatal("consent queued a callback")
	}
	// A verdict on an unrelated session changes nothing.
	r.verdict(t, iden3auth.Session{ID: "other", State: iden3auth.StateVerified})
	// The wallet's answer has both proofs: the full one is shared.
	r.clk.add(time.Minute)
	res := &iden3auth.Result{UserDID: "did:iden3:user", Verified: r.clk.now(), Scopes: []iden3auth.ScopeResult{
		{ID: 1, CircuitID: CircuitSig, ProofKind: "sig", Issuer: "did:iden3:issuer"},
		{ID: 4294967295, CircuitID: CircuitMTP, ProofKind: "mtp", Issuer: "did:iden3:issuer"}}}
	r.verdict(t, iden3auth.Session{ID: "sess-a", State: iden3auth.StateVerified, Result: res, Token: "jwz.token.x"})
	cb, m := lastCallback(t, r)
	if cb.State != StateProofShared || cb.ProofKind != "mtp" || cb.CircuitID != CircuitMTP || cb.Proof != "jwz.token.x" ||
		!cb.Verified || cb.Issuer != "did:iden3:issuer" || cb.VerifiedAt == nil || cb.Challenge != 4294967295 || cb.ID != v.ID {
		t.Fatalf("callback %s", m.Payload)
	}
	// A second verdict (a replayed hook) does not move it again.
	r.verdict(t, iden3auth.Session{ID: "sess-a", State: iden3auth.StateExpired})
	if iv, _ := r.svc.Interaction(ctx, v.ID); iv.State != StateProofShared || iv.ProofKind != "mtp" || len(iv.History) != 3 {
		t.Fatalf("interaction %+v", iv)
	}
	// Verify: the owner gets the answer of the verifier; another exchange
	// gets 404; a refused proof is valid:false with the reason.
	token := jws(t, "sess-a")
	r.ver.recheck = func(string) (*iden3auth.Result, error) { return res, nil }
	ver, err := r.svc.VerifyProof(ctx, ex, token)
	if err != nil || !ver.Valid || ver.ProofKind != "mtp" || ver.InteractionID != v.ID || ver.Challenge != 4294967295 || ver.UserReference != "ref-1" {
		t.Fatalf("verify %+v %v", ver, err)
	}
	if _, err := r.svc.VerifyProof(ctx, other, token); !agent.HasCode(err, agent.CodeNotFound) {
		t.Fatalf("another exchange: %v", err)
	}
	if _, err := r.svc.VerifyProof(ctx, ex, jws(t, "unknown")); !agent.HasCode(err, agent.CodeNotFound) {
		t.Fatalf("unknown thread: %v", err)
	}
	r.ver.recheck = func(string) (*iden3auth.Result, error) {
		return nil, agent.Errorf(iden3auth.CodeRefused, "response refused: GIST root is not current")
	}
	if ver, err := r.svc.VerifyProof(ctx, ex, token); err != nil || ver.Valid || !strings.Contains(ver.Reason, "GIST") {
		t.Fatalf("refused: %+v %v", ver, err)
	}
	if _, err := r.svc.VerifyProof(ctx, ex, "not a token"); !agent.HasCode(err, agent.CodeMsg) {
		t.Fatalf("garbage: %v", err)
	}
	// The exchange filter of the user's list.
	if l, _ := r.svc.UserInteractions(ctx, tok, other.ID, "", 10); len(l) != 0 {
		t.Fatalf("filtered list %+v", l)
	}
}

func TestSignatureFallbackAndExpiry(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	_, ex := r.exchange(t, "Kraken")
	a := r.request(t, ex, `7`)
	r.clk.add(time.Second)
	b := r.request(t, ex, `8`)
	r.clk.add(time.Second)
	c := r.request(t, ex, `9`)
	ta, tb := r.token(t, 0), r.token(t, 1)
	if _, err := r.svc.Consent(ctx, ta, true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Consent(ctx, tb, true); err != nil {
		t.Fatal(err)
	}
	// Only the signature proof: it is shared, with its kind.
	r.verdict(t, iden3auth.Session{ID: "sess-a", State: iden3auth.StateVerified, Token: "t", Result: &iden3auth.Result{
		Verified: r.clk.now(), Scopes: []iden3auth.ScopeResult{{ID: 8, CircuitID: CircuitSig, ProofKind: "sig", Issuer: "did:i"}}}})
	if cb, _ := lastCallback(t, r); cb.ID != a.ID || cb.ProofKind != "sig" || cb.CircuitID != CircuitSig {
		t.Fatalf("sig callback %+v", cb)
	}
	// The iden3 request of b expires: b is expired, with the reason.
	r.verdict(t, iden3auth.Session{ID: "sess-b", State: iden3auth.StateExpired})
	if cb, _ := lastCallback(t, r); cb.ID != b.ID || cb.State != StateExpired || !strings.Contains(cb.Reason, "expired") {
		t.Fatalf("expiry callback %+v", cb)
	}
	// d's wallet answers were refused too often: Failed, with the reason.
	r.clk.add(time.Second)
	d := r.request(t, ex, `10`)
	if _, err := r.svc.Consent(ctx, r.token(t, len(r.st.Outbound())-1), true); err != nil {
		t.Fatal(err)
	}
	r.verdict(t, iden3auth.Session{ID: "sess-c", State: iden3auth.StateFailed, Reason: "5 answers refused; the last: GIST root"})
	if cb, _ := lastCallback(t, r); cb.ID != d.ID || cb.State != StateFailed || !strings.Contains(cb.Reason, "5 answers refused") {
		t.Fatalf("failure callback %+v", cb)
	}
	// c is never decided: the sweep expires it after the consent TTL, once.
	if n, _ := r.svc.Sweep(ctx); n != 0 {
		t.Fatal("swept too early")
	}
	r.clk.add(DefaultConsentTTL)
	if n, err := r.svc.Sweep(ctx); n != 1 || err != nil {
		t.Fatalf("sweep %d %v", n, err)
	}
	if cb, _ := lastCallback(t, r); cb.ID != c.ID || cb.State != StateExpired {
		t.Fatalf("sweep callback %+v", cb)
	}
	if n, _ := r.svc.Sweep(ctx); n != 0 {
		t.Fatal("swept twice")
	}
	// Newest first, paged by a cursor.
	all, _ := r.svc.List(ctx, Filter{})
	if len(all) != 4 || all[0].ID != d.ID || all[1].ID != c.ID || all[3].ID != a.ID {
		t.Fatalf("order %v", all)
	}
	page, _ := r.svc.List(ctx, Filter{Before: all[1].ID, Limit: 1})
	if len(page) != 1 || page[0].ID != b.ID {
		t.Fatalf("page %v", page)
	}
	if l, _ := r.svc.List(ctx, Filter{State: StateProofShared}); len(l) != 1 || l[0].ID != a.ID {
		t.Fatalf("by state %v", l)
	}
}

// jws is a compact JWS whose payload is an authorization response of thread thid.
func jws(t *testing.T, thid string) string {
	p, _ := json.Marshal(map[string]string{"type": "https://iden3-communication.io/authorization/1.0/response", "thid": thid})
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256K"}`)) + "." + enc(p) + "." + enc([]byte("sig"))
}

func TestDescribe(t *testing.T) {
	got := Describe(map[string]any{"type": "KYC", "allowedIssuers": []any{"did:a", "did:b"},
		"credentialSubject": map[string]any{"country": map[string]any{"$nin": []any{float64(840), float64(120)}}, "name": map[string]any{}}})
	want := "that you hold a KYC credential from did:a or did:b, showing that country is none of 840, 120 and discloses your name"
	if got != want {
		t.Fatalf("%q\nwant %q", got, want)
	}
}

func TestTemplate(t *testing.T) {
	if _, err := ParseTemplate(`{{define "subject"}}{{.Nope}}{{end}}`); err == nil {
		t.Fatal("a template naming an unknown field was accepted")
	}
	tpl, err := ParseTemplate(`{{define "subject"}}Proof for {{.Exchange}}{{end}}{{define "html"}}<p>{{.Exchange}}</p>{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tpl.compose("", "a@x.example", "b@x.example", MailData{Exchange: "<b>X</b>", Challenge: 1}, time.Now())
	if err != nil || !strings.Contains(string(b), "Subject: Proof for <b>X</b>") || !strings.Contains(mailText(t, b), "&lt;b&gt;X&lt;/b&gt;") {
		t.Fatalf("%s %v", b, err)
	}
}

func TestLoginLink(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	_, ex := r.exchange(t, "Kraken")
	r.request(t, ex, `5`)
	// An address without an account: the same answer, no mail.
	if err := r.svc.MailLoginLink(ctx, "nobody@example.com"); err != nil || len(r.st.Outbound()) != 1 {
		t.Fatalf("unknown address: %v, %d messages", err, len(r.st.Outbound()))
	}
	if err := r.svc.MailLoginLink(ctx, "not an address"); !agent.HasCode(err, agent.CodeMsg) {
		t.Fatalf("bad address: %v", err)
	}
	if err := r.svc.MailLoginLink(ctx, "Alice@Example.com"); err != nil {
		t.Fatal(err)
	}
	m := r.st.Outbound()[1]
	re := regexp.MustCompile(`https://agent\.example/v1/interactions/\?token=([A-Za-z0-9_-]{43})`)
	got := re.FindStringSubmatch(mailText(t, m.Payload))
	if m.MessageType != "privado-login" || got == nil {
		t.Fatalf("login mail %s:\n%s", m.MessageType, m.Payload)
	}
	list, err := r.svc.UserInteractions(ctx, got[1], "", "", 10)
	if err != nil || len(list) != 1 || list[0].Challenge != 5 {
		t.Fatalf("list %+v %v", list, err)
	}
	// It reads; it does not decide.
	if _, err := r.svc.Consent(ctx, got[1], true); !agent.HasCode(err, agent.CodeForbidden) {
		t.Fatalf("decision with a login token: %v", err)
	}
	if _, err := r.svc.ConsentInfo(ctx, got[1]); !agent.HasCode(err, agent.CodeForbidden) {
		t.Fatalf("consent page with a login token: %v", err)
	}
}

// onlyN is a limiter that allows n calls per key.
type onlyN struct {
	n    int
	seen map[string]int
}

func (l *onlyN) Allow(key string) (bool, time.Duration) {
	l.seen[key]++
	return l.seen[key] <= l.n, time.Minute
}

// TestRequestLimitPerExchange: an exchange over its budget of proof
// requests is refused with a wait, and mails no one; another exchange is
// not affected.
func TestRequestLimitPerExchange(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.svc.cfg.RequestLimit = &onlyN{n: 1, seen: map[string]int{}}
	_, ex := r.exchange(t, "Kraken")
	_, other := r.exchange(t, "Bitstamp")
	req := ProofRequest{UserReference: "ref-1", Challenge: json.RawMessage(`12345`), Callback: "https://cb.kraken.example/hook"}
	if _, err := r.svc.Request(ctx, ex, req); err != nil {
		t.Fatal(err)
	}
	mails := len(r.st.Outbound())
	_, err := r.svc.Request(ctx, ex, req)
	if !agent.HasCode(err, agent.CodeRateLimited) || agent.RetryAfter(err) != time.Minute {
		t.Fatalf("over the limit: %v", err)
	}
	if n := r.st.Records.Len(KindInteraction); n != 1 || len(r.st.Outbound()) != mails {
		t.Fatalf("a refused request stored or mailed: %d interactions, %d messages", n, len(r.st.Outbound()))
	}
	req.Callback = "https://cb.bitstamp.example/hook"
	if _, err := r.svc.Request(ctx, other, req); err != nil {
		t.Fatalf("another exchange: %v", err)
	}
}

// TestListingIndexes: listings come newest first from the indexes (all, by
// user, by exchange), page with Before, and filter by state; the sweep
// expires only the undecided interactions past their consent expiry, and a
// decided one leaves the expiry index.
func TestListingIndexes(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	_, kr := r.exchange(t, "Kraken")
	_, bs := r.exchange(t, "Bitstamp")
	var ids []string // oldest first
	for i, c := range []struct {
		ex   ExchangeView
		user string
	}{{kr, "u-1"}, {bs, "u-1"}, {kr, "u-2"}, {bs, "u-2"}, {kr, "u-1"}} {
		r.clk.add(time.Second)
		v, err := r.svc.Request(ctx, c.ex, ProofRequest{UserReference: c.user, Challenge: json.RawMessage(strconv.Itoa(100 + i)),
			Callback: "https://cb." + strings.ToLower(c.ex.Name) + ".example/hook"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.ID)
	}
	list := func(f Filter) []string {
		t.Helper()
		got, err := r.svc.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range got {
			out = append(out, v.ID)
		}
		return out
	}
	for name, tc := range map[string]struct {
		f    Filter
		want []string
	}{
		"all":                {Filter{}, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		"user":               {Filter{UserID: "u-1"}, []string{ids[4], ids[1], ids[0]}},
		"exchange":           {Filter{ExchangeID: kr.ID}, []string{ids[4], ids[2], ids[0]}},
		"user and exchange":  {Filter{UserID: "u-2", ExchangeID: bs.ID}, []string{ids[3]}},
		"page":               {Filter{Limit: 2}, []string{ids[4], ids[3]}},
		"next page":          {Filter{Limit: 2, Before: ids[3]}, []string{ids[2], ids[1]}},
		"user page":          {Filter{UserID: "u-1", Before: ids[4], Limit: 1}, []string{ids[1]}},
		"state none matches": {Filter{State: StateProofShared}, nil},
	} {
		if got := list(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
	// The first interaction is decided; then every consent link expires.
	tok := r.token(t, 0) // the first mail: the first interaction's
	if _, err := r.svc.Consent(ctx, tok, false); err != nil {
		t.Fatal(err)
	}
	if n := r.st.Records.Len(KindPending); n != 4 {
		t.Fatalf("%d undecided interactions indexed, want 4", n)
	}
	if n, err := r.svc.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep before expiry: %d %v", n, err)
	}
	r.clk.add(25 * time.Hour)
	if n, err := r.svc.Sweep(ctx); err != nil || n != 4 {
		t.Fatalf("sweep after expiry: %d %v", n, err)
	}
	if n := r.st.Records.Len(KindPending); n != 0 {
		t.Fatalf("%d entries left in the expiry index", n)
	}
	if got := list(Filter{State: StateExpired}); len(got) != 4 || got[0] != ids[4] {
		t.Fatalf("expired: %v", got)
	}
}
