package daemon_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/didcommnode"
	"github.com/agentd/agentd/internal/zenroom"
	"github.com/agentd/agentd/protocols/users"
	"github.com/agentd/agentd/transport/email/emailtest"
	httptransport "github.com/agentd/agentd/transport/http"
)

// syncBuffer is a log sink the test reads after the daemon wrote to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// usersFixture is an agent that mails through a capture SMTP server, with
// a clock the test can move forward, and its debug log.
type usersFixture struct {
	a      *running
	relay  *emailtest.Server
	log    *syncBuffer
	mu     sync.Mutex
	offset time.Duration
}

func newUsersFixture(t *testing.T, tweak func(*config.Config)) *usersFixture {
	t.Helper()
	f := &usersFixture{relay: emailtest.Start(t, emailtest.Options{}), log: &syncBuffer{}}
	t.Cleanup(daemon.SetUsersClock(func() time.Time {
		f.mu.Lock()
		defer f.mu.Unlock()
		return time.Now().Add(f.offset)
	}))
	cfg := mailConfig(t, "agent.test", f.relay.Addr)
	cfg.SMTP.Addr = "" // outbound only
	if tweak != nil {
		tweak(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := daemon.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	f.a = &running{Daemon: d, base: "http://" + d.Addr(), cfg: cfg}
	return f
}

func (f *usersFixture) advance(d time.Duration) {
	f.mu.Lock()
	f.offset += d
	f.mu.Unlock()
}

// call sends a request and returns the status, headers and body.
func call(t *testing.T, method, url, contentType, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (f *usersFixture) signup(t *testing.T, name, email string) (int, httptransport.SignupReceipt, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"name": name, "email": email})
	code, _, body := call(t, "POST", f.a.base+"/v1/users/requests", "application/json", string(b))
	var rec httptransport.SignupReceipt
	json.Unmarshal([]byte(body), &rec)
	return code, rec, body
}

func (f *usersFixture) admin(t *testing.T, method, path, body string, v any) int {
	t.Helper()
	code, _, got := call(t, method, f.a.base+path, "application/json", body, "Authorization", "Bearer "+f.a.AdminToken())
	if v != nil {
		json.Unmarshal([]byte(got), v)
	}
	return code
}

func (f *usersFixture) status(t *testing.T, id, wait string) httptransport.SignupStatus {
	t.Helper()
	var st httptransport.SignupStatus
	if code := getJSON(t, f.a.base+"/v1/users/requests/"+id+"?wait="+wait, "", &st); code != 200 {
		t.Fatalf("GET request %s: %d", id, code)
	}
	return st
}

// received is a mail the capture server got, decoded.
type received struct {
	to, subject, text, html string
}

var confirmLink = regexp.MustCompile(`https?://[^\s"<>]+/v1/users/confirm\?token=[A-Za-z0-9_-]{43}`)

func (r received) link(t *testing.T) string {
	t.Helper()
	l := confirmLink.FindString(r.text)
	if l == "" {
		t.Fatalf("the mail has no confirmation link:\n%s", r.text)
	}
	if !strings.Contains(r.html, strings.ReplaceAll(l, "&", "&amp;")) {
		t.Fatalf("the HTML part has another link:\n%s", r.html)
	}
	return l
}

func (f *usersFixture) mail(t *testing.T) received {
	t.Helper()
	m := f.relay.Wait(t, 20*time.Second)
	mr, err := mail.CreateReader(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	out := received{to: strings.Join(m.To, ",")}
	out.subject, _ = mr.Header.Subject()
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h, _ := p.Header.(*mail.InlineHeader)
		b, _ := io.ReadAll(p.Body)
		if h != nil {
			if ct, _, _ := h.ContentType(); ct == "text/html" {
				out.html = string(b)
				continue
			}
		}
		out.text = string(b)
	}
	return out
}

// noMail checks that the capture server gets no mail for a moment.
func (f *usersFixture) noMail(t *testing.T) {
	t.Helper()
	select {
	case m := <-f.relay.Mails:
		t.Fatalf("unexpected mail to %v", m.To)
	case <-time.After(500 * time.Millisecond):
	}
}

func tokenOf(t *testing.T, link string) string {
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

// zenroomKeys runs Zenroom 5.38.1 for a keyring's public keys, as
// Zenflows' front end makes them.
func zenroomKeys(t *testing.T) httptransport.UserKeys {
	k, _ := zenroomKeyring(t)
	return k
}

// zenroomKeyring is zenroomKeys with the keyring's secret keys.
func zenroomKeyring(t *testing.T) (httptransport.UserKeys, map[string]string) {
	t.Helper()
	out, err := zenroom.Keygen(context.Background())
	if err != nil {
		t.Fatalf("%v (run make deps)", err)
	}
	p := out.Pubkeys
	return httptransport.UserKeys{EthereumAddress: out.EthereumAddress, Pubkeys: httptransport.UserPubkeys{
		ECDH: p["ecdh_public_key"], EdDSA: p["eddsa_public_key"], Reflow: p["reflow_public_key"], Schnorr: p["schnorr_public_key"]}}, out.Keyring
}

// base58 decodes Bitcoin-alphabet base58, as Zenroom prints secret keys.
func base58(t *testing.T, s string) []byte {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	n := new(big.Int)
	for _, c := range s {
		d := strings.IndexRune(alphabet, c)
		if d < 0 {
			t.Fatalf("not base58: %q", s)
		}
		n.Mul(n, big.NewInt(58)).Add(n, big.NewInt(int64(d)))
	}
	b := n.Bytes()
	for i := 0; i < len(s) && s[i] == '1'; i++ {
		b = append([]byte{0}, b...)
	}
	return b
}

// userSigner signs DIDComm messages as the user's did:key with
// didcomm-node, with the EdDSA secret key of the user's Zenroom keyring
// (Zenroom's eddsa secret is the RFC 8032 seed).
type userSigner struct {
	node    *didcommnode.Peer
	did     string
	docs    []any
	secrets []any
}

func newUserSigner(t *testing.T, base, userDID string, keyring map[string]string, pub string) *userSigner {
	t.Helper()
	seed := base58(t, keyring["eddsa"])
	priv := ed25519.NewKeyFromSeed(seed)
	if want, _ := base64.StdEncoding.DecodeString(pub); !bytes.Equal(priv.Public().(ed25519.PublicKey), want) {
		t.Fatal("the keyring's eddsa secret is not the seed of its public key")
	}
	doc, err := did.ResolveKey(userDID)
	if err != nil {
		t.Fatal(err)
	}
	if doc, err = doc.WithVerificationMethodType(did.StyleJSONWebKey2020); err != nil {
		t.Fatal(err)
	}
	kid := userDID + "#" + strings.TrimPrefix(userDID, "did:key:")
	b64 := base64.RawURLEncoding.EncodeToString
	return &userSigner{node: didcommnode.Start(t), did: userDID,
		docs: []any{didDocJSON(t, base), docJSON(t, doc)},
		secrets: []any{map[string]any{"id": kid, "type": "JsonWebKey2020", "privateKeyJwk": map[string]any{
			"kty": "OKP", "crv": "Ed25519", "x": b64(priv.Public().(ed25519.PublicKey)), "d": b64(seed)}}}}
}

// sign packs m (from the user) signed.
func (u *userSigner) sign(t *testing.T, m map[string]any) string {
	t.Helper()
	packed, _, err := u.node.PackSigned(m, u.did, u.docs, u.secrets)
	if err != nil {
		t.Fatal(err)
	}
	return packed
}

// registration is the user's DID-registration request for the DID of w,
// with w's signed statement naming userDID.
func registration(t *testing.T, u *userSigner, agentDID string, w *wallet, userDID string) map[string]any {
	t.Helper()
	proof := map[string]any{"id": agent.NewID(), "typ": agent.MediaTypePlain, "type": users.TypeProveControl,
		"from": w.did, "created_time": time.Now().Unix(), "body": map[string]any{"user_did": userDID}}
	jws, _, err := u.node.PackSigned(proof, w.did, []any{docJSON(t, w.doc)}, w.secretJSON())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"id": agent.NewID(), "typ": agent.MediaTypePlain, "type": users.TypeRegister,
		"from": u.did, "to": []string{agentDID}, "created_time": time.Now().Unix(), "body": map[string]any{},
		"attachments": []any{map[string]any{"id": "proof", "media_type": agent.MediaTypeSigned,
			"data": map[string]any{"json": json.RawMessage(jws)}}}}
}

func (f *usersFixture) putKeys(t *testing.T, id, token string, k any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(k)
	code, _, body := call(t, "PUT", f.a.base+"/v1/users/"+id+"/keys", "application/json", string(b), "Authorization", "Bearer "+token)
	return code, body
}

// TestUsersSignupByMail is the whole flow: the sign-up is mailed, the link
// shows a page and changes nothing, its POST creates the account, the
// long poll hands out the key-upload token once, and the keys Zenroom made
// are stored, with the user's did:key.
func TestUsersSignupByMail(t *testing.T) {
	f := newUsersFixture(t, nil)
	k, keyring := zenroomKeyring(t)
	code, rec, body := f.signup(t, "Ada Lovelace", "ada@example.org")
	if code != 202 || rec.ID == "" || time.Until(rec.ExpiresAt) < 14*time.Minute || time.Until(rec.ExpiresAt) > 16*time.Minute {
		t.Fatalf("sign-up: %d %s", code, body)
	}
	m := f.mail(t)
	if m.to != "ada@example.org" || !strings.Contains(m.subject, "Confirm your account") || !strings.Contains(m.text, "Hello Ada Lovelace") {
		t.Fatalf("mail to %s %q:\n%s", m.to, m.subject, m.text)
	}
	link := m.link(t)
	if !strings.HasPrefix(link, f.a.base+httptransport.UsersConfirmPath+"?token=") {
		t.Fatalf("link %s is not on the agent's public base %s", link, f.a.base)
	}
	token := tokenOf(t, link)
	// The link's GET shows the page, twice: it changes nothing.
	for i := 0; i < 2; i++ {
		code, hdr, page := call(t, "GET", link, "", "")
		if code != 200 || !strings.Contains(page, "Confirm your account") || !strings.Contains(page, "ada@example.org") ||
			!strings.Contains(page, `<form method="post"`) || hdr.Get("Cache-Control") != "no-store" || hdr.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("GET link: %d %v\n%s", code, hdr, page)
		}
	}
	if st := f.status(t, rec.ID, ""); st.State != "pending" || st.UserID != "" {
		t.Fatalf("after GETs: %+v", st)
	}
	var users httptransport.Page[httptransport.User]
	if f.admin(t, "GET", "/admin/users", "", &users); len(users.Items) != 0 {
		t.Fatalf("a GET made an account: %+v", users.Items)
	}
	// The front end long-polls; the confirmation wakes it.
	polled := make(chan httptransport.SignupStatus, 1)
	go func() {
		var st httptransport.SignupStatus
		getJSON(t, f.a.base+"/v1/users/requests/"+rec.ID+"?wait=30s", "", &st)
		polled <- st
	}()
	time.Sleep(200 * time.Millisecond)
	code, _, page := call(t, "POST", f.a.base+httptransport.UsersConfirmPath, "application/x-www-form-urlencoded", url.Values{"token": {token}}.Encode())
	if code != 200 || !strings.Contains(page, "Account confirmed") {
		t.Fatalf("POST confirm: %d\n%s", code, page)
	}
	var st httptransport.SignupStatus
	select {
	case st = <-polled:
	case <-time.After(10 * time.Second):
		t.Fatal("the long poll was not answered on confirmation")
	}
	if st.State != "confirmed" || st.UserID == "" || st.KeyUploadToken == "" || st.KeyUploadExpiresAt.IsZero() {
		t.Fatalf("long poll: %+v", st)
	}
	if again := f.status(t, rec.ID, ""); again.KeyUploadToken != "" || again.State != "confirmed" {
		t.Fatalf("the key-upload token was given twice: %+v", again)
	}
	// The link is used up: its page and its POST say so (410).
	if code, _, page := call(t, "GET", link, "", ""); code != 410 || !strings.Contains(page, "can no longer be used") {
		t.Fatalf("used link GET: %d\n%s", code, page)
	}
	if code, _, body := call(t, "POST", f.a.base+httptransport.UsersConfirmPath+"?token="+token, "", ""); code != 410 || !strings.Contains(body, `"e.p.req.gone"`) {
		t.Fatalf("used token POST: %d %s", code, body)
	}
	// The keys Zenroom made.
	code, body = f.putKeys(t, st.UserID, st.KeyUploadToken, k)
	var u httptransport.User
	json.Unmarshal([]byte(body), &u)
	if code != 200 || u.State != "active" || !strings.HasPrefix(u.DID, "did:key:z6Mk") || len(u.Checks) != 5 || u.Keys.Pubkeys.EdDSA != k.Pubkeys.EdDSA {
		t.Fatalf("PUT keys: %d %s", code, body)
	}
	if code, body := f.putKeys(t, st.UserID, st.KeyUploadToken, k); code != 410 {
		t.Fatalf("second upload with the same token: %d %s", code, body)
	}
	var shown httptransport.User
	if code := f.admin(t, "GET", "/admin/users/"+u.ID, "", &shown); code != 200 || shown.DID != u.DID || shown.Name != "Ada Lovelace" {
		t.Fatalf("admin show: %d %+v", code, shown)
	}
	if f.admin(t, "GET", "/admin/users?state=active&email=ADA@", "", &users); len(users.Items) != 1 || users.Items[0].ID != u.ID {
		t.Fatalf("admin list: %+v", users)
	}
	if got, err := f.a.Daemon.UserByDID(context.Background(), u.DID); err != nil || got.ID != u.ID {
		t.Fatalf("UserByDID: %+v %v", got, err)
	}
	// A DIDComm message signed with the user's EdDSA key comes from the user.
	signer := newUserSigner(t, f.a.base, u.DID, keyring, k.Pubkeys.EdDSA)
	packed := signer.sign(t, map[string]any{"id": agent.NewID(), "typ": agent.MediaTypePlain, "type": trustPing,
		"from": u.DID, "to": []string{f.a.DID()}, "created_time": time.Now().Unix(),
		"body": map[string]any{"response_requested": false}})
	if code, _, body := post(t, f.a.base+"/didcomm", agent.MediaTypeSigned, []byte(packed)); code/100 != 2 {
		t.Fatalf("signed ping from the user: %d %s", code, body)
	}
	if !regexp.MustCompile(`msg="message from a user" component=router user=` + u.ID + ` from=` + regexp.QuoteMeta(u.DID) + ` type=` + regexp.QuoteMeta(trustPing)).MatchString(f.log.String()) {
		t.Fatalf("the message was not attributed to the user:\n%s", f.log.String())
	}
	// The user registers their wallet's DID; the wallet signed that it
	// belongs to the user. A statement naming another user registers nothing.
	w, other := newWallet(t, ""), newWallet(t, "")
	for _, reg := range []map[string]any{registration(t, signer, f.a.DID(), w, u.DID), registration(t, signer, f.a.DID(), other, "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp")} {
		if code, _, body := post(t, f.a.base+"/didcomm", agent.MediaTypeSigned, []byte(signer.sign(t, reg))); code/100 != 2 {
			t.Fatalf("registration: %d %s", code, body)
		}
	}
	if f.admin(t, "GET", "/admin/users/"+u.ID, "", &shown); len(shown.DIDs) != 1 || shown.DIDs[0].DID != w.did {
		t.Fatalf("registered DIDs: %+v", shown.DIDs)
	}
	if got, err := f.a.Daemon.UserByDID(context.Background(), w.did); err != nil || got.ID != u.ID {
		t.Fatalf("UserByDID(wallet): %+v %v", got, err)
	}
	if _, err := f.a.Daemon.UserByDID(context.Background(), other.did); err == nil {
		t.Fatal("a statement naming another user registered its DID")
	}
	// The same registration from someone who is not a user is refused.
	stranger := registration(t, signer, f.a.DID(), other, other.did)
	stranger["from"] = other.did
	if packed, _, err := signer.node.PackSigned(stranger, other.did, []any{docJSON(t, other.doc)}, other.secretJSON()); err != nil {
		t.Fatal(err)
	} else {
		post(t, f.a.base+"/didcomm", agent.MediaTypeSigned, []byte(packed))
	}
	if _, err := f.a.Daemon.UserByDID(context.Background(), other.did); err == nil {
		t.Fatal("a non-user registered a DID")
	}
	for _, reason := range []string{"the prove-control message names another user", "the sender is not a user's DID"} {
		if !strings.Contains(f.log.String(), reason) {
			t.Errorf("no refusal %q in the log", reason)
		}
	}
	// A replacement needs a fresh token (from an operator).
	var fresh httptransport.KeyUploadToken
	if code := f.admin(t, "POST", "/admin/users/"+u.ID+"/key-upload-token", "", &fresh); code != 201 || fresh.Token == "" {
		t.Fatalf("fresh token: %d", code)
	}
	k2 := zenroomKeys(t)
	if code, body := f.putKeys(t, u.ID, fresh.Token, k2); code != 200 || !strings.Contains(body, k2.Pubkeys.EdDSA) {
		t.Fatalf("replacement: %d %s", code, body)
	}
	// Tokens are never logged.
	logs := f.log.String()
	for _, secret := range []string{token, st.KeyUploadToken, fresh.Token} {
		if strings.Contains(logs, secret) {
			t.Fatal("a token is in the log")
		}
	}
	if !strings.Contains(logs, "sign-up confirmed") {
		t.Fatalf("the log does not show the confirmation:\n%s", logs)
	}
}

// TestUsersClaim: an operator pre-creates an account; the sign-up from its
// address claims it. A later request for the confirmed account is refused
// at confirmation (409) and the owner gets a notice.
func TestUsersClaim(t *testing.T) {
	f := newUsersFixture(t, nil)
	var pre httptransport.User
	if code := f.admin(t, "POST", "/admin/users", `{"email":"bob@example.org","reference":"exchange-7"}`, &pre); code != 201 || pre.State != "unclaimed" {
		t.Fatalf("create: %d %+v", code, pre)
	}
	if code := f.admin(t, "POST", "/admin/users", `{"email":"Bob@EXAMPLE.org"}`, nil); code != 409 {
		t.Fatalf("second account for the address: %d", code)
	}
	_, rec, _ := f.signup(t, "Bob", "bob@example.org")
	m := f.mail(t)
	if !strings.Contains(m.text, "claim an account") {
		t.Fatalf("the mail does not say claim:\n%s", m.text)
	}
	// An API client confirms with JSON.
	code, _, body := call(t, "POST", f.a.base+httptransport.UsersConfirmPath+"?token="+tokenOf(t, m.link(t)), "", "")
	var c httptransport.SignupConfirmed
	json.Unmarshal([]byte(body), &c)
	if code != 200 || c.Action != "claimed" || c.User.ID != pre.ID || c.User.Name != "Bob" || c.User.Reference != "exchange-7" || c.User.State != "confirmed" {
		t.Fatalf("claim: %d %s", code, body)
	}
	if st := f.status(t, rec.ID, ""); !st.Claimed || st.UserID != pre.ID || st.KeyUploadToken == "" {
		t.Fatalf("poll after claim: %+v", st)
	}
	// Someone asks for the address again: same answer, a mail; the link's
	// POST is refused and the owner is told.
	code, rec2, _ := f.signup(t, "Mallory", "bob@example.org")
	if code != 202 {
		t.Fatal(code)
	}
	link := f.mail(t).link(t)
	code, _, page := call(t, "POST", f.a.base+httptransport.UsersConfirmPath, "application/x-www-form-urlencoded", "token="+tokenOf(t, link))
	if code != 409 || !strings.Contains(page, "confirmed already") {
		t.Fatalf("second claim: %d\n%s", code, page)
	}
	notice := f.mail(t)
	if notice.to != "bob@example.org" || !strings.Contains(notice.subject, "Someone tried to claim your account") {
		t.Fatalf("notice: %+v", notice)
	}
	if st := f.status(t, rec2.ID, ""); st.State != "expired" || st.UserID != "" {
		t.Fatalf("refused request: %+v", st)
	}
	var shown httptransport.User
	f.admin(t, "GET", "/admin/users/"+pre.ID, "", &shown)
	if shown.Name != "Bob" {
		t.Fatalf("the refused claim renamed the account: %+v", shown)
	}
	// Disable and delete.
	if code := f.admin(t, "POST", "/admin/users/"+pre.ID+"/disable", "", &shown); code != 200 || shown.State != "disabled" {
		t.Fatalf("disable: %d %+v", code, shown)
	}
	if code := f.admin(t, "POST", "/admin/users/"+pre.ID+"/disable", "", nil); code != 409 {
		t.Fatalf("disable twice: %d", code)
	}
	if code := f.admin(t, "DELETE", "/admin/users/"+pre.ID, "", nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code := f.admin(t, "GET", "/admin/users/"+pre.ID, "", nil); code != 404 {
		t.Fatalf("deleted: %d", code)
	}
}

// TestUsersExpiryAndEnumeration: known and unknown addresses get the same
// answer; a link past its expiry is refused (410) and makes no account.
func TestUsersExpiryAndEnumeration(t *testing.T) {
	f := newUsersFixture(t, nil)
	f.admin(t, "POST", "/admin/users", `{"email":"known@example.org"}`, nil)
	shape := func(body string) string {
		var m map[string]any
		json.Unmarshal([]byte(body), &m)
		keys := []string{}
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return strings.Join(keys, ",") + "/" + itoa(len(m["id"].(string)))
	}
	c1, r1, b1 := f.signup(t, "K", "known@example.org")
	c2, r2, b2 := f.signup(t, "U", "unknown@example.org")
	if c1 != 202 || c2 != 202 || shape(b1) != shape(b2) || r1.ExpiresAt.Sub(r2.ExpiresAt).Abs() > time.Second {
		t.Fatalf("answers differ: %d %s / %d %s", c1, b1, c2, b2)
	}
	l1, l2 := f.mail(t).link(t), f.mail(t).link(t)
	f.advance(15*time.Minute + time.Second)
	for _, l := range []string{l1, l2} {
		if code, _, page := call(t, "GET", l, "", ""); code != 410 || !strings.Contains(page, "expired") {
			t.Fatalf("expired link GET: %d\n%s", code, page)
		}
		if code, _, _ := call(t, "POST", f.a.base+httptransport.UsersConfirmPath, "application/x-www-form-urlencoded", "token="+tokenOf(t, l)); code != 410 {
			t.Fatalf("expired link POST: %d", code)
		}
	}
	if st := f.status(t, r2.ID, "1s"); st.State != "expired" {
		t.Fatalf("poll: %+v", st)
	}
	var users httptransport.Page[httptransport.User]
	f.admin(t, "GET", "/admin/users", "", &users)
	if len(users.Items) != 1 || users.Items[0].State != "unclaimed" {
		t.Fatalf("accounts after expiry: %+v", users.Items)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestUsersBadInput: malformed requests and keys are refused with the
// field named, and nothing is stored or mailed.
func TestUsersBadInput(t *testing.T) {
	f := newUsersFixture(t, nil)
	for _, c := range []struct{ body, reason string }{
		{`{"name":"A","email":"a@example.org","admin":true}`, "admin: unknown field"},
		{`{"name":"` + strings.Repeat("n", 101) + `","email":"a@example.org"}`, "name: longer than 100 characters"},
		{`{"name":"A","email":"not an address"}`, "email: "},
		{`{"name":"A","email":"A <a@example.org>"}`, "email: "},
		{`{"name":1,"email":"a@example.org"}`, "name: must be a string"},
		{`{"name":"A"}`, "email: missing"},
		{`{"email":"a@example.org"}`, "name: missing"},
		{`not json`, "body: not valid JSON"},
		{`{"name":"A","email":"a@example.org"} {}`, "body: data after the JSON object"},
	} {
		code, _, body := call(t, "POST", f.a.base+"/v1/users/requests", "application/json", c.body)
		var e httptransport.ErrorBody
		json.Unmarshal([]byte(body), &e)
		if code != 400 || e.Error != "e.p.msg" || !strings.HasPrefix(e.Reason, c.reason) {
			t.Errorf("%s: %d %s, want 400 %q", c.body, code, body, c.reason)
		}
	}
	f.noMail(t)
	var users httptransport.Page[httptransport.User]
	if f.admin(t, "POST", "/admin/users", `{"email":"x@example.org","extra":1}`, nil) != 400 || f.admin(t, "GET", "/admin/users", "", &users) != 200 || len(users.Items) != 0 {
		t.Fatalf("bad input stored an account: %+v", users.Items)
	}

	// Bad keys, with a valid upload token: each is refused naming its
	// field, the account keeps no keys, and the token still works.
	_, rec, _ := f.signup(t, "Carol", "carol@example.org")
	call(t, "POST", f.a.base+httptransport.UsersConfirmPath+"?token="+tokenOf(t, f.mail(t).link(t)), "", "")
	st := f.status(t, rec.ID, "")
	k := zenroomKeys(t)
	dec := func(s string) []byte { b, _ := base64.StdEncoding.DecodeString(s); return b }
	enc := base64.StdEncoding.EncodeToString
	offCurve := dec(k.Pubkeys.ECDH)
	offCurve[64] ^= 1
	g2 := dec(k.Pubkeys.Reflow)
	g2[100] ^= 1
	var x5 [32]byte
	x5[31] = 5
	for _, c := range []struct {
		field string
		mod   func(*httptransport.UserKeys)
	}{
		{"ethereum_address", func(k *httptransport.UserKeys) { k.EthereumAddress = "0x1234" }},
		{"ethereum_address", func(k *httptransport.UserKeys) { k.EthereumAddress = "0x" + strings.Repeat("g", 40) }},
		{"pubkeys.ecdh_public_key", func(k *httptransport.UserKeys) { k.Pubkeys.ECDH = "%%%" }},
		{"pubkeys.ecdh_public_key", func(k *httptransport.UserKeys) { k.Pubkeys.ECDH = enc(dec(k.Pubkeys.ECDH)[:33]) }},
		{"pubkeys.ecdh_public_key", func(k *httptransport.UserKeys) { k.Pubkeys.ECDH = enc(offCurve) }},
		{"pubkeys.eddsa_public_key", func(k *httptransport.UserKeys) { k.Pubkeys.EdDSA = enc(make([]byte, 31)) }},
		{"pubkeys.eddsa_public_key", func(k *httptransport.UserKeys) { k.Pubkeys.EdDSA = "" }},
		{"pubkeys.reflow_public_key", func(k *httptransport.UserKeys) { k.Pubkeys.Reflow = enc(dec(k.Pubkeys.Reflow)[:191]) }},
		{"pubkeys.reflow_public_key", func(k *httptransport.UserKeys) { k.Pubkeys.Reflow = enc(g2) }},
		{"pubkeys.schnorr_public_key", func(k *httptransport.UserKeys) { k.Pubkeys.Schnorr = enc(make([]byte, 64)) }},
		{"pubkeys.schnorr_public_key", func(k *httptransport.UserKeys) { k.Pubkeys.Schnorr = enc(x5[:]) }},
	} {
		bad := k
		c.mod(&bad)
		code, body := f.putKeys(t, st.UserID, st.KeyUploadToken, bad)
		var e httptransport.ErrorBody
		json.Unmarshal([]byte(body), &e)
		if code != 400 || !strings.HasPrefix(e.Reason, c.field+":") {
			t.Errorf("bad %s: %d %s", c.field, code, body)
		}
	}
	if code, body := f.putKeys(t, st.UserID, st.KeyUploadToken, map[string]any{"ethereum_address": k.EthereumAddress, "pubkeys": k.Pubkeys, "secret": "x"}); code != 400 || !strings.Contains(body, "secret: unknown field") {
		t.Errorf("unknown key field: %d %s", code, body)
	}
	if code, body := f.putKeys(t, st.UserID, "wrong", k); code != 403 {
		t.Errorf("wrong token: %d %s", code, body)
	}
	var u httptransport.User
	if f.admin(t, "GET", "/admin/users/"+st.UserID, "", &u); u.State != "confirmed" || u.Keys != nil || u.DID != "" {
		t.Fatalf("bad keys changed the account: %+v", u)
	}
	if code, body := f.putKeys(t, st.UserID, st.KeyUploadToken, k); code != 200 {
		t.Fatalf("good keys after bad ones: %d %s", code, body)
	}
}

// TestUsersRateLimit: per address and per client IP, 429 with Retry-After,
// and nothing mailed beyond the limit.
func TestUsersRateLimit(t *testing.T) {
	f := newUsersFixture(t, func(c *config.Config) {
		c.Users.AddressRate, c.Users.AddressBurst = 1, 2
		c.Users.IPRate, c.Users.IPBurst = 1, 5 // the refused third request counts too
	})
	for i := 0; i < 2; i++ {
		if code, _, body := f.signup(t, "V", "victim@example.org"); code != 202 {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	b, _ := json.Marshal(map[string]string{"name": "V", "email": "VICTIM@example.org"})
	code, hdr, body := call(t, "POST", f.a.base+"/v1/users/requests", "application/json", string(b))
	if code != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "e.p.req.rate-limited") {
		t.Fatalf("third request for the address: %d %v %s", code, hdr, body)
	}
	for _, addr := range []string{"a@example.org", "b@example.org"} {
		if code, _, body := f.signup(t, "X", addr); code != 202 {
			t.Fatalf("%s: %d %s", addr, code, body)
		}
	}
	if code, _, _ := f.signup(t, "X", "c@example.org"); code != 429 {
		t.Fatalf("beyond the client's limit: %d", code)
	}
	for i := 0; i < 4; i++ {
		f.mail(t)
	}
	f.noMail(t)
}
