package provecontrol

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/protocols/internal/fakes"
)

// userSide is a user-role Service over the rig's user party.
type userSide struct {
	svc     *Service
	st      *fakes.Store
	msgr    *fakeMessenger
	records *fakes.Records
	waiters *agent.Waiters
}

func (u *userSide) handle(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	return handleIn(ctx, u.svc, u.st, in)
}

func newUserSide(t *testing.T, r *rig) *userSide {
	u := &userSide{st: &fakes.Store{}, msgr: &fakeMessenger{}, waiters: &agent.Waiters{}}
	u.records = &u.st.Records
	u.svc = New(Config{Identity: r.user.id, Store: u.st.Agent(), Messenger: u.msgr, Resolver: resolver, Waiters: u.waiters,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: r.clock.now})
	return u
}

// encIn is how the router hands over an encrypted challenge.
func encIn(m agent.Message) *agent.Inbound {
	return &agent.Inbound{Message: m, Transport: "http", Envelope: envelope.Metadata{Encrypted: true, Authenticated: true, EncryptedFrom: m.From + "#key-1"}}
}

// signedIn is how the router hands over a signed-then-encrypted confirmation.
func signedIn(m agent.Message, signer string) *agent.Inbound {
	b, _ := json.Marshal(m)
	return &agent.Inbound{Message: m, Transport: "http", Envelope: envelope.Metadata{Encrypted: true, Authenticated: true,
		NonRepudiation: true, SignFrom: signer + "#key-2", SignedMessage: b}}
}

// The user role against the verifier, message by message: request,
// challenge, prove, confirmation stored as a credential.
func TestUserFlow(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	u := newUserSide(t, r)
	out, err := u.svc.RequestVerification(ctx, r.me.did, Domain, "Example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	req := u.msgr.last(t).msg
	if req.Type != RequestVerificationType || req.To[0] != r.me.did || req.From != r.user.did || out.Request.ID != req.ID {
		t.Fatalf("request %+v", req)
	}
	replies, err := r.handle(ctx, authIn(req))
	if err != nil || len(replies) != 1 {
		t.Fatalf("verifier: %v", err)
	}
	challenge := replies[0]
	// A plaintext challenge is refused: its secret was exposed.
	_, err = u.handle(ctx, &agent.Inbound{Message: challenge})
	wantCode(t, err, CodeUnencrypted)
	if u.records.Len(KindReceived) != 0 {
		t.Fatal("a plaintext challenge was kept")
	}
	if _, err := u.handle(ctx, encIn(challenge)); err != nil {
		t.Fatal(err)
	}
	got, err := u.svc.ReceivedChallenge(ctx, challenge.ID)
	if err != nil || !got.Requested || got.State != HeldReceived || got.DNSRecord == nil {
		t.Fatalf("received %+v %v", got, err)
	}
	c := mustChallenge(t, challenge)
	if got.DNSRecord.Name != c.ID+".example.org" || got.DNSRecord.Value != c.Proof() {
		t.Fatalf("TXT record %+v", got.DNSRecord)
	}
	raw, _ := u.records.Get(ctx, KindReceived, c.ID)
	if strings.Contains(string(raw), c.Secret) {
		t.Fatal("the user stored the secret")
	}
	reqs, _ := u.svc.Requests(ctx, "", 10)
	if len(reqs) != 1 || reqs[0].ChallengeID != c.ID {
		t.Fatalf("requests %+v", reqs)
	}

	// Prove (without waiting), with the TXT record published.
	r.txt.records[got.DNSRecord.Name] = []string{got.DNSRecord.Value}
	po, err := u.svc.Prove(ctx, c.ID, 0)
	if err != nil || po.Challenge.State != HeldProved {
		t.Fatalf("prove: %+v %v", po, err)
	}
	prove := u.msgr.last(t).msg
	if prove.Type != ProveType || prove.ThID != c.ID || prove.To[0] != r.me.did {
		t.Fatalf("prove %+v", prove)
	}
	replies, err = r.handle(ctx, authIn(prove))
	if err != nil || len(replies) != 1 {
		t.Fatalf("verifier on prove: %v", err)
	}
	confirm := replies[0]

	// An unsigned confirmation is refused.
	_, err = u.handle(ctx, encIn(confirm))
	wantCode(t, err, CodeUnsigned)
	// One signed by someone else than its from, too.
	_, err = u.handle(ctx, signedIn(confirm, r.user.did))
	wantCode(t, err, CodeUnsigned)
	if u.records.Len(KindCredential) != 0 {
		t.Fatal("a credential was stored from an unsigned confirmation")
	}

	if _, err := u.handle(ctx, signedIn(confirm, r.me.did)); err != nil {
		t.Fatal(err)
	}
	creds, _ := u.svc.Credentials(ctx, "", 10)
	if len(creds) != 1 {
		t.Fatalf("%d credentials", len(creds))
	}
	cr := creds[0]
	if cr.Issuer != r.me.did || cr.Holder != r.user.did || cr.Subject != "example.org" || cr.VerificationType != Domain ||
		cr.ChallengeID != c.ID || len(cr.Confirmation) == 0 || !strings.HasPrefix(cr.JWT, "ey") {
		t.Fatalf("credential %+v", cr)
	}
	got, _ = u.svc.ReceivedChallenge(ctx, c.ID)
	if got.State != HeldConfirmed || got.CredentialID != cr.ID {
		t.Fatalf("received after confirmation %+v", got)
	}
	// The same confirmation again (the verifier answered a repeated prove)
	// is accepted and changes nothing.
	if _, err = u.handle(ctx, signedIn(confirm, r.me.did)); err != nil {
		t.Fatalf("a repeated confirmation: %v", err)
	}
	if creds, _ := u.svc.Credentials(ctx, "", 10); len(creds) != 1 || creds[0].ID != cr.ID {
		t.Fatalf("a repeated confirmation changed the credentials: %+v", creds)
	}
	// A confirmation from another verifier is still refused.
	other := confirm
	other.From = r.user.did
	_, err = u.handle(ctx, signedIn(other, r.user.did))
	wantCode(t, err, CodeWrongVerifier)
	if _, err := u.svc.Prove(ctx, c.ID, 0); agent.ErrorCode(err) != agent.CodeMsg {
		t.Fatalf("prove of a confirmed challenge: %v", err)
	}
}

// A confirmation is checked against the held challenge and its credential.
func TestUserRefusesBadConfirmations(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	u := newUserSide(t, r)
	// An operator-started (unrequested) IP challenge.
	v, err := r.svc.StartChallenge(ctx, r.user.did, IP, "198.51.100.9")
	if err != nil {
		t.Fatal(err)
	}
	challenge := r.msgr.last(t).msg
	if _, err := u.handle(ctx, encIn(challenge)); err != nil {
		t.Fatal(err)
	}
	if got, _ := u.svc.ReceivedChallenge(ctx, v.ID); got.Requested || got.DNSRecord != nil {
		t.Fatalf("unrequested challenge %+v", got)
	}
	// A confirmation before any prove.
	c := mustChallenge(t, challenge)
	proveMsg, _ := c.Prove().Message()
	replies, err := r.handle(ctx, authIn(proveMsg))
	if err != nil {
		t.Fatal(err)
	}
	confirm := replies[0]
	_, err = u.handle(ctx, signedIn(confirm, r.me.did))
	wantCode(t, err, CodeNotProved)
	if _, err := u.svc.Prove(ctx, c.ID, 0); err != nil {
		t.Fatal(err)
	}

	edit := func(f func(m *agent.Message)) agent.Message {
		m := confirm
		m.Attachments = append([]agent.Attachment(nil), confirm.Attachments...)
		f(&m)
		return m
	}
	otherVerifier := newParty(t, "https://evil.example/didcomm")
	// A credential naming the verifier's key, signed with another key.
	forgedKey, _ := keys.Generate(keys.Ed25519, r.me.did+"#key-2")
	forged, _, _ := IssueCredential(forgedKey, r.me.did, r.user.did, IP, "198.51.100.9", r.clock.now(), time.Hour)
	for _, tc := range []struct {
		name string
		msg  agent.Message
		in   func(agent.Message) *agent.Inbound
		code string
	}{
		{"unknown challenge", edit(func(m *agent.Message) { m.ThID = agent.NewID() }), nil, CodeUnknownChallenge},
		{"another verifier", edit(func(m *agent.Message) { m.From = otherVerifier.did }), func(m agent.Message) *agent.Inbound { return signedIn(m, otherVerifier.did) }, CodeWrongVerifier},
		{"mismatched subject", edit(func(m *agent.Message) {
			m.Body = json.RawMessage(`{"verification_type":"IP","subject":"198.51.100.10"}`)
		}), nil, CodeSubjectMismatch},
		{"no credential", edit(func(m *agent.Message) { m.Attachments = nil }), nil, CodeCredential},
		{"forged credential", edit(func(m *agent.Message) {
			m.Attachments[0].Data.Base64 = base64.RawURLEncoding.EncodeToString([]byte(forged))
		}), nil, CodeCredential},
		{"tampered credential", edit(func(m *agent.Message) {
			jwt, _ := credentialFromAttachments(confirm.Attachments)
			parts := strings.Split(jwt, ".")
			var claims map[string]any
			b, _ := base64.RawURLEncoding.DecodeString(parts[1])
			json.Unmarshal(b, &claims)
			claims["sub"] = otherVerifier.did
			b, _ = json.Marshal(claims)
			parts[1] = base64.RawURLEncoding.EncodeToString(b)
			m.Attachments[0].Data.Base64 = base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, ".")))
		}), nil, CodeCredential},
	} {
		in := signedIn(tc.msg, r.me.did)
		if tc.in != nil {
			in = tc.in(tc.msg)
		}
		_, err := u.handle(ctx, in)
		if agent.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
		if u.records.Len(KindCredential) != 0 {
			t.Fatalf("%s: a credential was stored", tc.name)
		}
	}
	// The genuine one still works.
	if _, err := u.handle(ctx, signedIn(confirm, r.me.did)); err != nil {
		t.Fatal(err)
	}
}

// A challenge that answers our request must match it.
func TestUserRefusesMismatchedChallenge(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	u := newUserSide(t, r)
	out, err := u.svc.RequestVerification(ctx, r.me.did, Email, "ana@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	c := VerificationChallenge{ID: agent.NewID(), To: r.user.did, From: r.me.did, ThID: out.Request.ID,
		VerificationType: Email, Subject: "eve@example.org", Secret: NewSecret()}
	m, _ := c.Message()
	_, err = u.handle(ctx, encIn(m))
	wantCode(t, err, CodeRequestMismatch)
	// Answering the request from another DID than the one asked.
	other := newParty(t, "")
	c.Subject, c.From = "ana@example.org", other.did
	m, _ = c.Message()
	_, err = u.handle(ctx, encIn(m))
	wantCode(t, err, CodeRequestMismatch)
	if u.records.Len(KindReceived) != 0 {
		t.Fatal("a mismatched challenge was kept")
	}
	// A challenge for a DID that is not ours.
	c.From, c.To = r.me.did, other.did
	m, _ = c.Message()
	_, err = u.handle(ctx, encIn(m))
	wantCode(t, err, agent.CodeNotForUs)
}

// Prove waits for the verifier's answer: a problem report of an "e.m" code
// leaves the challenge proved, one of an "e.p" code rejects it.
func TestProveWaitsForTheAnswer(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	u := newUserSide(t, r)
	v, _ := r.svc.StartChallenge(ctx, r.user.did, Domain, "wait.example")
	if _, err := u.handle(ctx, encIn(r.msgr.last(t).msg)); err != nil {
		t.Fatal(err)
	}
	answer := func(code string) ProveOutcome {
		done := make(chan ProveOutcome, 1)
		go func() {
			out, err := u.svc.Prove(ctx, v.ID, 5*time.Second)
			if err != nil {
				t.Error(err)
			}
			done <- out
		}()
		// The verifier answers the prove with a problem report.
		deadline := time.Now().Add(5 * time.Second)
		for {
			u.msgr.mu.Lock()
			n := len(u.msgr.out)
			u.msgr.mu.Unlock()
			if n > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		prove := u.msgr.last(t).msg
		u.msgr.mu.Lock()
		u.msgr.out = nil
		u.msgr.mu.Unlock()
		pr := agent.ProblemReport(prove, agent.Errorf(code, "no"))
		pr.From = r.me.did
		for !u.waiters.NotifyThread(pr.PThID, &agent.Inbound{Message: pr}) {
			time.Sleep(5 * time.Millisecond)
		}
		return <-done
	}
	out := answer(CodeDNSRecord)
	if out.Problem == nil || out.Problem.Code != CodeDNSRecord || out.Challenge.State != HeldProved || !out.Answered {
		t.Fatalf("after an e.m problem: %+v", out)
	}
	out = answer(CodeExpired)
	if out.Problem == nil || out.Challenge.State != HeldRejected {
		t.Fatalf("after an e.p problem: %+v", out)
	}
}
