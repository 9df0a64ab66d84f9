package users

import (
	"io"

	"bytes"
	"github.com/emersion/go-message/mail"
	"math/big"

	"context"
	"encoding/base64"
	"encoding/hex"
	"filippo.io/edwards25519"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/ratelimit"
	"github.com/agentd/agentd/internal/zenroom"
	"github.com/agentd/agentd/protocols/internal/fakes"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type rig struct {
	svc *Service
	st  *fakes.Store
	clk *clock
}

func newRig(t *testing.T, mod func(*Config)) *rig {
	t.Helper()
	r := &rig{st: &fakes.Store{}, clk: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	cfg := Config{Store: r.st.Agent(), BaseURL: "https://agent.example/", MailFrom: "agent@agent.example", Now: r.clk.now}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	return r
}

var linkRE = regexp.MustCompile(`https://agent\.example/v1/users/confirm\?token=([A-Za-z0-9_-]{43})`)

// token reads the confirmation token from the n-th mail queued.
func (r *rig) token(t *testing.T, n int) string {
	t.Helper()
	out := r.st.Outbound()
	if len(out) <= n {
		t.Fatalf("%d mails queued, want more than %d", len(out), n)
	}
	m := out[n]
	if m.MediaType != MediaTypeMail || !strings.HasPrefix(m.Endpoint, "mailto:") {
		t.Fatalf("mail %d: %s to %s", n, m.MediaType, m.Endpoint)
	}
	got := linkRE.FindStringSubmatch(mailText(t, m.Payload))
	if got == nil {
		t.Fatalf("mail %d has no link:\n%s", n, m.Payload)
	}
	return got[1]
}

// mailText returns the decoded parts of a mail, one after the other.
func mailText(t *testing.T, raw []byte) string {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return b.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p.Body)
		b.Write(body)
	}
}

// keygen runs Zenroom for a keyring's public keys.
func keygen(t *testing.T) PublicKeys {
	t.Helper()
	out, err := zenroom.Keygen(context.Background())
	if err != nil {
		t.Fatalf("%v (run make deps)", err)
	}
	p := out.Pubkeys
	return PublicKeys{EthereumAddress: out.EthereumAddress, Pubkeys: Pubkeys{
		ECDH: p["ecdh_public_key"], EdDSA: p["eddsa_public_key"], Reflow: p["reflow_public_key"], Schnorr: p["schnorr_public_key"]}}
}

func wantCode(t *testing.T, err error, code, field string) {
	t.Helper()
	if err == nil || agent.ErrorCode(err) != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	if field != "" && !strings.HasPrefix(agent.ErrorComment(err), field+":") {
		t.Fatalf("reason %q does not name %s", agent.ErrorComment(err), field)
	}
}

func TestSignupConfirmUploadKeys(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, nil)
	k := keygen(t)
	rec, err := r.svc.RequestSignup(ctx, "Ada Lovelace", "Ada@Example.ORG", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if !rec.ExpiresAt.Equal(r.clk.now().Add(DefaultConfirmTTL)) {
		t.Errorf("expires %v", rec.ExpiresAt)
	}
	token := r.token(t, 0)
	// Only the hash is stored: no record holds the token.
	for _, kind := range []string{KindRequest, KindToken} {
		recs, _ := r.st.Records.List(ctx, kind, "", 100)
		for _, x := range recs {
			if strings.Contains(string(x.Value), token) || strings.Contains(x.ID, token) {
				t.Fatalf("%s stores the token", kind)
			}
		}
	}
	st, err := r.svc.Poll(ctx, rec.ID, 0)
	if err != nil || st.State != RequestPending || st.KeyUploadToken != "" {
		t.Fatalf("poll: %+v %v", st, err)
	}
	info, err := r.svc.ConfirmInfo(ctx, token)
	if err != nil || info.Email != "Ada@example.org" || info.Action != "create" {
		t.Fatalf("info %+v %v", info, err)
	}
	if n := r.st.Records.Len(KindAccount); n != 0 {
		t.Fatal("ConfirmInfo created an account")
	}
	// A long poll is woken by the confirmation.
	polled := make(chan RequestStatus, 1)
	go func() {
		st, err := r.svc.Poll(ctx, rec.ID, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		polled <- st
	}()
	time.Sleep(50 * time.Millisecond)
	c, err := r.svc.Confirm(ctx, token)
	if err != nil || c.Action != "created" || c.Account.State != AccountConfirmed {
		t.Fatalf("confirm: %+v %v", c, err)
	}
	var st1 RequestStatus
	select {
	case st1 = <-polled:
	case <-time.After(5 * time.Second):
		t.Fatal("the long poll was not woken")
	}
	if st1.State != RequestConfirmed || st1.UserID != c.Account.ID || st1.KeyUploadToken == "" {
		t.Fatalf("long poll: %+v", st1)
	}
	st2, _ := r.svc.Poll(ctx, rec.ID, 0)
	if st2.KeyUploadToken != "" {
		t.Fatal("the key-upload token was given twice")
	}
	if _, err := r.svc.Confirm(ctx, token); err != ErrTokenGone {
		t.Fatalf("reused token: %v", err)
	}
	v, err := r.svc.UploadKeys(ctx, c.Account.ID, st1.KeyUploadToken, k)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != AccountActive || !strings.HasPrefix(v.DID, "did:key:z6Mk") || len(v.Checks) != 5 {
		t.Fatalf("after upload: %+v", v)
	}
	if got, err := r.svc.UserByDID(ctx, v.DID+"#key-1"); err != nil || got.ID != v.ID {
		t.Fatalf("UserByDID: %+v %v", got, err)
	}
	if _, err := r.svc.UploadKeys(ctx, c.Account.ID, st1.KeyUploadToken, k); err != ErrTokenGone {
		t.Fatalf("second upload with the same token: %v", err)
	}
	fresh, err := r.svc.IssueUploadToken(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	k2 := keygen(t)
	v2, err := r.svc.UploadKeys(ctx, v.ID, fresh.Token, k2)
	if err != nil || v2.DID == v.DID || v2.Keys.Pubkeys.EdDSA != k2.Pubkeys.EdDSA {
		t.Fatalf("replacement: %+v %v", v2, err)
	}
	if _, err := r.svc.UserByDID(ctx, v.DID); err == nil {
		t.Fatal("the old DID still finds the user")
	}
	if _, err := r.svc.Disable(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.UserByDID(ctx, v2.DID); err == nil {
		t.Fatal("a disabled user is found by DID")
	}
}

func TestClaimAndConflict(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, nil)
	pre, err := r.svc.CreateAccount(ctx, "bob@example.org", "", "exchange-42")
	if err != nil || pre.State != AccountUnclaimed {
		t.Fatal(pre, err)
	}
	if _, err := r.svc.CreateAccount(ctx, "BOB@example.org", "", ""); agent.ErrorCode(err) != agent.CodeConflict {
		t.Fatalf("second account for the address: %v", err)
	}
	if _, err := r.svc.RequestSignup(ctx, "Bob", "bob@example.org", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	c, err := r.svc.Confirm(ctx, r.token(t, 0))
	if err != nil || c.Action != "claimed" || c.Account.ID != pre.ID || c.Account.Name != "Bob" || c.Account.Reference != "exchange-42" {
		t.Fatalf("claim: %+v %v", c, err)
	}
	// A new request for the confirmed account: 409 at confirmation, and a notice.
	rec, _ := r.svc.RequestSignup(ctx, "Mallory", "bob@example.org", "192.0.2.9")
	_, err = r.svc.Confirm(ctx, r.token(t, 1))
	wantCode(t, err, agent.CodeConflict, "")
	out := r.st.Outbound()
	if len(out) != 3 || !strings.Contains(mailText(t, out[2].Payload), "someone confirmed a request to claim your account") {
		t.Fatalf("no notice mail: %d mails: %s", len(out), mailText(t, out[len(out)-1].Payload))
	}
	st, _ := r.svc.Poll(ctx, rec.ID, 0)
	if st.State != RequestExpired || st.UserID != "" {
		t.Fatalf("refused request: %+v", st)
	}
	acc, _ := r.svc.Account(ctx, pre.ID)
	if acc.Name != "Bob" {
		t.Fatal("the refused claim changed the account")
	}
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, nil)
	rec, _ := r.svc.RequestSignup(ctx, "Eve", "eve@example.org", "192.0.2.1")
	token := r.token(t, 0)
	r.clk.add(DefaultConfirmTTL)
	if _, err := r.svc.ConfirmInfo(ctx, token); err != ErrTokenGone {
		t.Fatal(err)
	}
	if _, err := r.svc.Confirm(ctx, token); err != ErrTokenGone {
		t.Fatal(err)
	}
	st, _ := r.svc.Poll(ctx, rec.ID, time.Second)
	if st.State != RequestExpired {
		t.Fatal(st)
	}
	if n, err := r.svc.Sweep(ctx, time.Hour); err != nil || n != 1 || r.st.Records.Len(KindToken) != 0 {
		t.Fatalf("sweep: %d %v, %d token records", n, err, r.st.Records.Len(KindToken))
	}
	if r.st.Records.Len(KindAccount) != 0 {
		t.Fatal("an expired request made an account")
	}
	// An unknown token of the right shape, and a malformed one.
	if _, err := r.svc.Confirm(ctx, strings.Repeat("A", 43)); err != ErrTokenGone {
		t.Fatal(err)
	}
	if _, err := r.svc.Confirm(ctx, "x"); err != ErrTokenGone {
		t.Fatal(err)
	}
}

func TestBadInputStoresNothing(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, nil)
	for _, c := range []struct{ name, email, field string }{
		{"", "a@example.org", "name"},
		{strings.Repeat("n", 101), "a@example.org", "name"},
		{"a\x00b", "a@example.org", "name"},
		{"A", "", "email"},
		{"A", "not-an-address", "email"},
		{"A", "A <a@example.org>", "email"},
		{"A", "a@localhost", "email"},
		{"A", strings.Repeat("a", 250) + "@example.org", "email"},
	} {
		_, err := r.svc.RequestSignup(ctx, c.name, c.email, "192.0.2.1")
		wantCode(t, err, agent.CodeMsg, c.field)
	}
	if len(r.st.Outbound()) != 0 || r.st.Records.Len(KindRequest) != 0 {
		t.Fatal("bad input stored something")
	}
}

func TestEnumeration(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, nil)
	r.svc.CreateAccount(ctx, "known@example.org", "", "")
	a, err1 := r.svc.RequestSignup(ctx, "X", "known@example.org", "192.0.2.1")
	b, err2 := r.svc.RequestSignup(ctx, "X", "unknown@example.org", "192.0.2.1")
	if err1 != nil || err2 != nil || len(a.ID) != len(b.ID) || !a.ExpiresAt.Equal(b.ExpiresAt) {
		t.Fatalf("answers differ: %+v %v / %+v %v", a, err1, b, err2)
	}
	if len(r.st.Outbound()) != 2 {
		t.Fatal("not both mailed")
	}
}

func TestRateLimits(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, func(c *Config) {
		c.PerAddress = ratelimit.New(1, 2, 0)
		c.PerIP = ratelimit.New(1, 3, 0)
	})
	for i := 0; i < 2; i++ {
		if _, err := r.svc.RequestSignup(ctx, "V", "victim@example.org", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	_, err := r.svc.RequestSignup(ctx, "V", "VICTIM@example.org", "192.0.2.2")
	wantCode(t, err, agent.CodeRateLimited, "")
	if agent.RetryAfter(err) <= 0 {
		t.Fatal("no Retry-After")
	}
	if _, err := r.svc.RequestSignup(ctx, "V", "other@example.org", "192.0.2.1"); err != nil {
		t.Fatal(err) // third from this IP: within its burst of 3
	}
	_, err = r.svc.RequestSignup(ctx, "V", "third@example.org", "192.0.2.1")
	wantCode(t, err, agent.CodeRateLimited, "")
	if n := len(r.st.Outbound()); n != 3 {
		t.Fatalf("%d mails, want 3", n)
	}
}

func TestCheckKeysZenroom(t *testing.T) {
	k := keygen(t)
	ck, err := CheckKeys(k)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ck.Checks {
		t.Logf("%s: %s, %d bytes: %s", c.Field, c.Encoding, c.Bytes, c.Checked)
	}
	dec := func(s string) []byte { b, _ := base64.StdEncoding.DecodeString(s); return b }
	enc := base64.StdEncoding.EncodeToString
	flip := func(s string, i int) string { b := dec(s); b[i] ^= 1; return enc(b) }
	// The seed's older forms: the EdDSA key in base58, the address without 0x.
	old := k
	old.Pubkeys.EdDSA = base58Encode(dec(k.Pubkeys.EdDSA))
	old.EthereumAddress = strings.ToLower(k.EthereumAddress[2:])
	if _, err := CheckKeys(old); err != nil {
		t.Fatalf("older forms: %v", err)
	}
	old.Pubkeys.Schnorr = enc(make([]byte, 48))
	if _, err := CheckKeys(old); err != nil {
		t.Fatalf("48-byte schnorr: %v", err)
	}
	offCurveECDH := dec(k.Pubkeys.ECDH)
	offCurveECDH[64] ^= 1
	var badX [32]byte
	badX[31] = 5 // x = 5: x³+7 = 132 is not a square mod p
	badG2 := dec(k.Pubkeys.Reflow)
	badG2[191] ^= 1
	bigFp := dec(k.Pubkeys.Reflow)
	copy(bigFp[:48], bytesOf(0xff, 48))
	edNonCanonical := bytesOf(0xff, 32)
	edNonCanonical[31] = 0x7f // y = 2^255-1 ≥ p
	for _, c := range []struct {
		name, field string
		mod         func(*PublicKeys)
	}{
		{"eth short", fEth, func(p *PublicKeys) { p.EthereumAddress = p.EthereumAddress[:40] }},
		{"eth not hex", fEth, func(p *PublicKeys) { p.EthereumAddress = "0x" + strings.Repeat("zz", 20) }},
		{"eth bad checksum", fEth, func(p *PublicKeys) { p.EthereumAddress = "0x" + swapCase(p.EthereumAddress[2:]) }},
		{"eth missing", fEth, func(p *PublicKeys) { p.EthereumAddress = "" }},
		{"ecdh not base64", fECDH, func(p *PublicKeys) { p.Pubkeys.ECDH = "!!!" }},
		{"ecdh compressed", fECDH, func(p *PublicKeys) { p.Pubkeys.ECDH = enc(append([]byte{2}, dec(p.Pubkeys.ECDH)[1:33]...)) }},
		{"ecdh hex", fECDH, func(p *PublicKeys) { p.Pubkeys.ECDH = hex.EncodeToString(dec(p.Pubkeys.ECDH)) }},
		{"ecdh off curve", fECDH, func(p *PublicKeys) { p.Pubkeys.ECDH = enc(offCurveECDH) }},
		{"eddsa short", fEdDSA, func(p *PublicKeys) { p.Pubkeys.EdDSA = enc(dec(p.Pubkeys.EdDSA)[:31]) }},
		{"eddsa base58 garbage", fEdDSA, func(p *PublicKeys) { p.Pubkeys.EdDSA = "0OIl" }},
		{"eddsa non-canonical", fEdDSA, func(p *PublicKeys) { p.Pubkeys.EdDSA = enc(edNonCanonical) }},
		{"eddsa not a point", fEdDSA, func(p *PublicKeys) { p.Pubkeys.EdDSA = enc(notEdPoint(t)) }},
		{"reflow short", fReflow, func(p *PublicKeys) { p.Pubkeys.Reflow = enc(dec(p.Pubkeys.Reflow)[:96]) }},
		{"reflow off curve", fReflow, func(p *PublicKeys) { p.Pubkeys.Reflow = enc(badG2) }},
		{"reflow coordinate ≥ p", fReflow, func(p *PublicKeys) { p.Pubkeys.Reflow = enc(bigFp) }},
		{"schnorr 33 bytes", fSchnorr, func(p *PublicKeys) { p.Pubkeys.Schnorr = enc(make([]byte, 33)) }},
		{"schnorr off curve", fSchnorr, func(p *PublicKeys) { p.Pubkeys.Schnorr = enc(badX[:]) }},
		{"schnorr flipped", fSchnorr, func(p *PublicKeys) { p.Pubkeys.Schnorr = flip(p.Pubkeys.Schnorr, 0) }},
	} {
		p := k
		c.mod(&p)
		_, err := CheckKeys(p)
		if c.name == "schnorr flipped" {
			// A flipped bit may still be the x of a point (half of them are).
			if err != nil && !strings.HasPrefix(agent.ErrorComment(err), fSchnorr) {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || agent.ErrorCode(err) != agent.CodeMsg || !strings.HasPrefix(agent.ErrorComment(err), c.field+":") {
			t.Errorf("%s: err = %v, want one naming %s", c.name, err, c.field)
		}
	}
}

func bytesOf(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// notEdPoint returns 32 bytes that encode no Ed25519 point.
func notEdPoint(t *testing.T) []byte {
	for y := byte(2); y < 200; y++ {
		b := make([]byte, 32)
		b[0] = y
		if _, err := new(edwards25519.Point).SetBytes(b); err != nil {
			return b
		}
	}
	t.Fatal("no non-point found")
	return nil
}

// base58Encode encodes as Zenroom prints base58 (Bitcoin alphabet).
func base58Encode(b []byte) string {
	n := new(big.Int).SetBytes(b)
	var out []byte
	for n.Sign() > 0 {
		m := new(big.Int)
		n.DivMod(n, big.NewInt(58), m)
		out = append([]byte{base58Alphabet[m.Int64()]}, out...)
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append([]byte{'1'}, out...)
	}
	return string(out)
}

func swapCase(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'f':
			b.WriteRune(c - 32)
		case c >= 'A' && c <= 'F':
			b.WriteRune(c + 32)
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// TestReferenceAndEmailIndexes: an account is found by its reference and
// its address through their indexes; a reference names one account; the
// indexes go with the account.
func TestReferenceAndEmailIndexes(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, nil)
	a, err := r.svc.CreateAccount(ctx, "carol@example.org", "", "vasp-7:carol")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.svc.AccountByReference(ctx, "vasp-7:carol"); err != nil || got.ID != a.ID {
		t.Fatalf("by reference: %+v %v", got, err)
	}
	if got, err := r.svc.AccountByEmail(ctx, "Carol@Example.org"); err != nil || got.ID != a.ID {
		t.Fatalf("by address: %+v %v", got, err)
	}
	if _, err := r.svc.CreateAccount(ctx, "dave@example.org", "", "vasp-7:carol"); agent.ErrorCode(err) != agent.CodeConflict {
		t.Fatalf("a second account with the reference: %v", err)
	}
	if _, err := r.svc.AccountByEmail(ctx, "dave@example.org"); agent.ErrorCode(err) != agent.CodeNotFound {
		t.Fatalf("the refused account was stored: %v", err)
	}
	if err := r.svc.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	for _, find := range []func() (AccountView, error){
		func() (AccountView, error) { return r.svc.AccountByReference(ctx, "vasp-7:carol") },
		func() (AccountView, error) { return r.svc.AccountByEmail(ctx, "carol@example.org") },
		func() (AccountView, error) { return r.svc.AccountByReference(ctx, "") },
	} {
		if _, err := find(); agent.ErrorCode(err) != agent.CodeNotFound {
			t.Fatalf("after deletion: %v", err)
		}
	}
	if _, err := r.svc.CreateAccount(ctx, "erin@example.org", "", "vasp-7:carol"); err != nil {
		t.Fatalf("the reference of a deleted account is free again: %v", err)
	}
}
