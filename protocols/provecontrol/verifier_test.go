package provecontrol

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
)

// A Domain verification end to end on the verifier: the challenge is the
// reply to the request, the prove needs the TXT record, and the
// confirmation carries a credential that verifies.
func TestVerifierDomainFlow(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	m := r.request(t, Domain, "Example.ORG.")
	c := mustChallenge(t, m)
	if c.To != r.user.did || c.From != r.me.did || c.Subject != "example.org" || c.VerificationType != Domain {
		t.Fatalf("challenge %+v", c)
	}
	if c.ThID == "" || m.ExpiresTime != r.clock.now().Add(24*time.Hour).Unix() {
		t.Fatalf("thid %q expires %d", c.ThID, m.ExpiresTime)
	}
	if len(c.Secret) < 22 { // at least 128 bits in base64url
		t.Fatalf("secret too short: %d characters", len(c.Secret))
	}

	// Without the TXT record the proof alone is not enough, and it costs an attempt.
	_, err := r.prove(c, nil)
	wantCode(t, err, CodeDNSRecord)
	if got := r.challenge(t, c.ID).Attempts; got != 1 {
		t.Fatalf("attempts %d after a missing record", got)
	}
	// A DNS failure is not the user's fault: no attempt.
	r.txt.err = &net.DNSError{Err: "server misbehaving", Name: "x", IsTemporary: true}
	_, err = r.prove(c, nil)
	wantCode(t, err, CodeDNSLookup)
	r.txt.err = nil
	if got := r.challenge(t, c.ID).Attempts; got != 1 {
		t.Fatalf("attempts %d after a DNS failure", got)
	}
	// A record with another value does not do either.
	rec := DomainRecord(c.ID, "example.org", c.Proof())
	r.txt.records[rec.Name] = []string{"v=spf1 -all", strings.Repeat("0", 64)}
	_, err = r.prove(c, nil)
	wantCode(t, err, CodeDNSRecord)
	r.txt.records[rec.Name] = []string{"v=spf1 -all", rec.Value}
	if r.confirmed() != 0 {
		t.Fatal("something was confirmed")
	}

	replies, err := r.prove(c, nil)
	if err != nil || len(replies) != 1 {
		t.Fatalf("prove: %v %v", replies, err)
	}
	cv, err := ParseConfirmVerification(replies[0])
	if err != nil {
		t.Fatal(err)
	}
	if cv.ThID != c.ID || cv.From != r.me.did || cv.To != r.user.did || cv.Subject != "example.org" || cv.VerificationType != Domain {
		t.Fatalf("confirm %+v", cv)
	}
	jwt, err := credentialFromAttachments(cv.Attachments)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := VerifyCredential(ctx, jwt, resolver, r.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	cs := claims.VC.CredentialSubject
	if claims.Iss != r.me.did || claims.Sub != r.user.did || cs.ID != r.user.did || cs.Subject != "example.org" || cs.VerificationType != Domain {
		t.Fatalf("claims %+v", claims)
	}
	if claims.Exp-claims.Nbf != int64((365 * 24 * time.Hour).Seconds()) {
		t.Fatalf("validity %d s", claims.Exp-claims.Nbf)
	}
	ch := r.challenge(t, c.ID)
	if ch.State != StateConfirmed || ch.CredentialID == "" || r.confirmed() != 1 {
		t.Fatalf("after confirmation: %+v, %d verifications", ch, r.confirmed())
	}
	vs, _ := r.svc.Verifications(ctx, "", 10)
	if len(vs) != 1 || vs[0].User != r.user.did || vs[0].Subject != "example.org" || vs[0].Credential != jwt {
		t.Fatalf("verifications %+v", vs)
	}

	// What the operator sees holds neither the secret nor the proof.
	views, _ := r.svc.Challenges(ctx, "", "", 10)
	b, _ := json.Marshal(views)
	for _, s := range []string{c.Secret, c.Proof(), "proof_digest", "secret"} {
		if strings.Contains(string(b), s) {
			t.Errorf("challenge listing contains %q", s)
		}
	}
	// Nor does the stored record.
	raw, _ := r.records.Get(ctx, KindChallenge, c.ID)
	if strings.Contains(string(raw), c.Secret) || strings.Contains(string(raw), c.Proof()) {
		t.Error("the stored challenge holds the secret or the proof")
	}
}

// Each channel gets the challenge the way its type says.
func TestVerifierChannels(t *testing.T) {
	ctx := context.Background()
	t.Run("Email", func(t *testing.T) {
		r := newRig(t)
		c := mustChallenge(t, r.request(t, Email, "Alice@Example.COM"))
		if r.mail.addrs[0] != "Alice@example.com" || c.Subject != "Alice@example.com" || c.To != r.user.did {
			t.Fatalf("mail to %v, challenge %+v", r.mail.addrs, c)
		}
	})
	t.Run("DID", func(t *testing.T) {
		r := newRig(t)
		subject := newParty(t, "https://subject.example/didcomm")
		r.request(t, DID, subject.did)
		s := r.msgr.last(t)
		if s.op != "pack" || s.to != subject.did || s.msg.To[0] != r.user.did {
			t.Fatalf("packed %+v", s)
		}
		if out := r.st.Outbound(); len(out) != 1 || out[0].Endpoint != "https://subject.example/didcomm" || out[0].To != subject.did {
			t.Fatalf("outbox %+v", out)
		}
		// The user's own DID, or a DID without an endpoint, can't be the subject.
		m, _ := RequestVerification{To: r.me.did, From: r.user.did, VerificationType: DID, Subject: r.user.did}.Message()
		_, err := r.handle(ctx, authIn(m))
		wantCode(t, err, CodeSubject)
		m, _ = RequestVerification{To: r.me.did, From: r.user.did, VerificationType: DID, Subject: newParty(t, "").did}.Message()
		_, err = r.handle(ctx, authIn(m))
		wantCode(t, err, CodeSubject)
	})
	t.Run("IP", func(t *testing.T) {
		r := newRig(t)
		r.request(t, IP, "203.0.113.5:8080")
		s := r.msgr.last(t)
		if s.op != "sendto" || s.endpoint != "http://203.0.113.5:8080/.well-known/provecontrol/challenge" || s.msg.To[0] != r.user.did {
			t.Fatalf("sent %+v", s)
		}
		r.request(t, IP, "2001:db8::7")
		if s := r.msgr.last(t); s.endpoint != "http://[2001:db8::7]/.well-known/provecontrol/challenge" {
			t.Fatalf("IPv6 endpoint %s", s.endpoint)
		}
	})
	t.Run("Tel link once", func(t *testing.T) {
		r := newRig(t)
		c := mustChallenge(t, r.request(t, Tel, "+44 20 7946 0958"))
		if c.Subject != "+442079460958" || r.sms.to[0] != "+442079460958" {
			t.Fatalf("sms to %v, subject %q", r.sms.to, c.Subject)
		}
		enc := r.msgr.last(t)
		if enc.op != "encrypt" || enc.to != r.user.did {
			t.Fatalf("encrypted %+v", enc)
		}
		text := r.sms.text[0]
		if len(text) > 320 || strings.Contains(text, c.Secret) {
			t.Fatalf("sms text %q", text)
		}
		token := linkToken(t, text)
		payload, mt, err := r.svc.FetchLink(ctx, token)
		if err != nil || mt != agent.MediaTypeEncrypted {
			t.Fatalf("fetch: %v %q", err, mt)
		}
		want, _ := json.Marshal(enc.msg)
		if string(payload) != string(want) {
			t.Fatal("the link does not serve the encrypted challenge")
		}
		if _, _, err := r.svc.FetchLink(ctx, token); !errors.Is(err, ErrLinkGone) {
			t.Fatalf("second fetch: %v", err)
		}
		if _, _, err := r.svc.FetchLink(ctx, strings.Repeat("A", 43)); !errors.Is(err, ErrLinkUnknown) {
			t.Fatalf("unknown token: %v", err)
		}
		if _, _, err := r.svc.FetchLink(ctx, "../etc"); !errors.Is(err, ErrLinkUnknown) {
			t.Fatalf("bad token: %v", err)
		}
		// The database holds only the token's hash.
		recs, _ := r.records.List(ctx, KindLink, "", 10)
		if len(recs) != 1 || strings.Contains(recs[0].ID+string(recs[0].Value), token) {
			t.Fatalf("link records %v", recs)
		}
	})
	t.Run("Tel link expires", func(t *testing.T) {
		r := newRig(t)
		r.request(t, Tel, "+15555550100")
		token := linkToken(t, r.sms.text[0])
		r.clock.add(25 * time.Hour)
		if _, _, err := r.svc.FetchLink(ctx, token); !errors.Is(err, ErrLinkGone) {
			t.Fatalf("fetch after expiry: %v", err)
		}
	})
	t.Run("Discord", func(t *testing.T) {
		r := newRig(t)
		r.request(t, Discord, "80351110224678912")
		if r.discord.users[0] != "80351110224678912" {
			t.Fatalf("DM to %v", r.discord.users)
		}
		text := r.discord.texts[0]
		if !strings.Contains(text, "<https://verifier.example/c/") {
			t.Fatalf("DM %q: the link must be in <> (no preview)", text)
		}
		if _, _, err := r.svc.FetchLink(ctx, linkToken(t, text)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Address", func(t *testing.T) {
		r := newRig(t)
		c := mustChallenge(t, r.request(t, Address, "Ana Example\n 1 Main Street \n\nSpringfield\n"))
		if c.Subject != "Ana Example\n1 Main Street\nSpringfield" {
			t.Fatalf("subject %q", c.Subject)
		}
		if len(r.letters.got) != 1 || r.letters.got[0].User != r.user.did || r.letters.got[0].Address != c.Subject {
			t.Fatalf("letter %+v", r.letters.got)
		}
		list, err := r.svc.Letters(ctx, true, "", 10)
		if err != nil || len(list) != 1 || list[0].ID != c.ID || list[0].ChallengeState != StatePending {
			t.Fatalf("letters %+v %v", list, err)
		}
		b, _ := json.Marshal(list)
		if strings.Contains(string(b), "/c/") {
			t.Fatal("the letter listing shows the link")
		}
		pdf, err := r.svc.LetterPDF(ctx, c.ID)
		if err != nil || !strings.Contains(string(pdf), r.letters.got[0].Link) {
			t.Fatalf("pdf: %v", err)
		}
		if _, err := r.svc.MarkLetterSent(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if list, _ := r.svc.Letters(ctx, true, "", 10); len(list) != 0 {
			t.Fatalf("unsent letters after sending: %+v", list)
		}
		if _, err := r.svc.LetterPDF(ctx, "nope"); !errors.Is(err, agent.ErrNotFound) {
			t.Fatalf("unknown letter: %v", err)
		}
	})
}

func linkToken(t *testing.T, text string) string {
	t.Helper()
	i := strings.Index(text, "/c/")
	if i < 0 {
		t.Fatalf("no link in %q", text)
	}
	tok := text[i+3:]
	if len(tok) < 43 {
		t.Fatalf("short token in %q", text)
	}
	return tok[:43]
}

// Bad input: each is answered with its own problem code and confirms
// nothing.
func TestProveBadInput(t *testing.T) {
	other := newParty(t, "https://other.example/didcomm")
	for _, tc := range []struct {
		name     string
		setup    func(r *rig, c VerificationChallenge)
		edit     func(r *rig, c VerificationChallenge, m *agent.Message)
		code     string
		attempts int
	}{
		{name: "wrong proof", code: CodeWrongProof, attempts: 1,
			edit: func(_ *rig, _ VerificationChallenge, m *agent.Message) {
				m.Body = json.RawMessage(`{"verification_type":"IP","subject":"198.51.100.7","proof":"` + strings.Repeat("ab", 32) + `"}`)
			}},
		{name: "non-hex proof", code: CodeWrongProof, attempts: 1,
			edit: func(_ *rig, _ VerificationChallenge, m *agent.Message) {
				m.Body = json.RawMessage(`{"verification_type":"IP","subject":"198.51.100.7","proof":"hash(id|thid|secret)"}`)
			}},
		{name: "expired challenge", code: CodeExpired,
			setup: func(r *rig, _ VerificationChallenge) { r.clock.add(24*time.Hour + time.Second) }},
		{name: "unknown thid", code: CodeUnknownChallenge,
			edit: func(_ *rig, _ VerificationChallenge, m *agent.Message) { m.ThID = agent.NewID() }},
		{name: "no thid", code: CodeThread,
			edit: func(_ *rig, _ VerificationChallenge, m *agent.Message) { m.ThID = "" }},
		{name: "mismatched subject", code: CodeSubjectMismatch,
			edit: func(_ *rig, c VerificationChallenge, m *agent.Message) {
				m.Body = json.RawMessage(`{"verification_type":"IP","subject":"198.51.100.8","proof":"` + c.Proof() + `"}`)
			}},
		{name: "mismatched type", code: CodeTypeMismatch,
			edit: func(_ *rig, c VerificationChallenge, m *agent.Message) {
				m.Body = json.RawMessage(`{"verification_type":"Domain","subject":"198.51.100.7","proof":"` + c.Proof() + `"}`)
			}},
		{name: "to with two DIDs", code: CodeTo,
			edit: func(r *rig, _ VerificationChallenge, m *agent.Message) { m.To = []string{r.me.did, other.did} }},
		{name: "prove from another DID", code: CodeWrongUser,
			edit: func(_ *rig, _ VerificationChallenge, m *agent.Message) { m.From = other.did }},
		{name: "unauthenticated prove", code: CodeUnauthenticated,
			edit: func(_ *rig, _ VerificationChallenge, m *agent.Message) { m.Type = "unauth:" + m.Type }},
		{name: "malformed body", code: CodeBody,
			edit: func(_ *rig, _ VerificationChallenge, m *agent.Message) {
				m.Body = json.RawMessage(`{"verification_type":"IP"}`)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			c := mustChallenge(t, r.request(t, IP, "198.51.100.7"))
			if tc.setup != nil {
				tc.setup(r, c)
			}
			p, _ := c.Prove().Message()
			in := authIn(p)
			if tc.edit != nil {
				tc.edit(r, c, &in.Message)
			}
			if t, ok := strings.CutPrefix(in.Message.Type, "unauth:"); ok {
				in.Message.Type = t
				in.Envelope = envelope.Metadata{} // plaintext: from is not authenticated
			}
			replies, err := r.handle(context.Background(), in)
			wantCode(t, err, tc.code)
			if len(replies) != 0 || r.confirmed() != 0 {
				t.Fatalf("confirmed: %d replies, %d verifications", len(replies), r.confirmed())
			}
			ch := r.challenge(t, c.ID)
			if ch.Attempts != tc.attempts || ch.State == StateConfirmed {
				t.Fatalf("challenge after refusal: attempts %d state %s", ch.Attempts, ch.State)
			}
			// The right prove still works afterwards, unless the challenge expired.
			replies, err = r.prove(c, nil)
			if tc.code == CodeExpired {
				wantCode(t, err, CodeExpired)
				if r.challenge(t, c.ID).State != StateExpired {
					t.Fatal("not expired")
				}
				return
			}
			if err != nil || len(replies) != 1 || r.confirmed() != 1 {
				t.Fatalf("right prove after %s: %v", tc.name, err)
			}
		})
	}
}

// A challenge succeeds at most once: a repeated prove with the right proof
// gets the same confirmation again (idempotent), another proof is refused;
// and a challenge runs out of attempts.
func TestProveReplayAndAttempts(t *testing.T) {
	r := newRig(t)
	c := mustChallenge(t, r.request(t, IP, "198.51.100.7"))
	first, err := r.prove(c, nil)
	if err != nil || len(first) != 1 {
		t.Fatal(len(first), err)
	}
	// A repeated prove (the same proof again, in a new message): the
	// confirmation may have been lost, so it is sent again, with the same
	// credential, and nothing new is recorded.
	replies, err := r.prove(c, nil)
	if err != nil || len(replies) != 1 || r.confirmed() != 1 {
		t.Fatalf("repeated prove: %v, %d replies, %d verifications", err, len(replies), r.confirmed())
	}
	a, _ := ParseConfirmVerification(first[0])
	b, _ := ParseConfirmVerification(replies[0])
	ja, _ := credentialFromAttachments(a.Attachments)
	jb, _ := credentialFromAttachments(b.Attachments)
	if ja == "" || ja != jb || b.ThID != c.ID {
		t.Fatal("the repeated confirmation does not carry the credential issued first")
	}
	// Another proof for the confirmed challenge is refused.
	_, err = r.prove(c, func(m *agent.Message) {
		m.Body = json.RawMessage(`{"verification_type":"IP","subject":"198.51.100.7","proof":"` + strings.Repeat("0", 64) + `"}`)
	})
	wantCode(t, err, CodeAlreadyConfirmed)
	if r.confirmed() != 1 {
		t.Fatalf("confirmed again: %d", r.confirmed())
	}

	r = newRig(t)
	c = mustChallenge(t, r.request(t, IP, "198.51.100.7"))
	wrong := func(m *agent.Message) {
		m.Body = json.RawMessage(`{"verification_type":"IP","subject":"198.51.100.7","proof":"` + strings.Repeat("0", 64) + `"}`)
	}
	for i := 1; i <= 3; i++ {
		_, err := r.prove(c, wrong)
		wantCode(t, err, CodeWrongProof)
		if left := 3 - i; left > 0 && !strings.Contains(agent.ErrorComment(err), "attempts left") {
			t.Fatalf("comment %q", agent.ErrorComment(err))
		}
	}
	if st := r.challenge(t, c.ID).State; st != StateFailed {
		t.Fatalf("state %s after 3 wrong proofs", st)
	}
	_, err = r.prove(c, nil)
	wantCode(t, err, CodeAttemptsExhausted)
	if r.confirmed() != 0 {
		t.Fatal("confirmed after the attempts ran out")
	}
}

func TestRequestRefusals(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	req := func(vt VerificationType, subject string) error {
		m, _ := RequestVerification{To: r.me.did, From: r.user.did, VerificationType: vt, Subject: subject}.Message()
		_, err := r.handle(ctx, authIn(m))
		return err
	}
	for _, tc := range []struct {
		vt      VerificationType
		subject string
	}{
		{Email, "not an address"}, {Domain, "localhost"}, {Domain, "10.0.0.1"}, {Tel, "555-0100"}, {Discord, "alice#1234"},
		{IP, "example.org"}, {Address, "one line only"}, {DID, "did:example"},
	} {
		wantCode(t, req(tc.vt, tc.subject), CodeSubject)
	}
	// Unknown verification types, and types whose channel is missing.
	m, _ := RequestVerification{To: r.me.did, From: r.user.did, VerificationType: "Fax", Subject: "x"}.Message()
	m.Body = json.RawMessage(`{"verification_type":"Fax","subject":"x"}`)
	_, err := r.handle(ctx, authIn(m))
	wantCode(t, err, CodeVerificationType)
	r.svc.cfg.Channels.SMS = nil
	wantCode(t, req(Tel, "+15555550100"), CodeTypeUnavailable)
	// An unauthenticated request.
	m, _ = RequestVerification{To: r.me.did, From: r.user.did, VerificationType: Domain, Subject: "example.org"}.Message()
	_, err = r.handle(ctx, &agent.Inbound{Message: m})
	wantCode(t, err, CodeUnauthenticated)
	// Too many pending challenges for one subject.
	for i := 0; i < 3; i++ {
		if err := req(Domain, "flood.example"); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, req(Domain, "flood.example"), CodeTooManyPending)
	// A channel that fails: the challenge is undelivered, and says so.
	r.discord.fail = errors.New("Discord answered 403 Forbidden: Cannot send messages to this user (code 50007)")
	wantCode(t, req(Discord, "80351110224678912"), CodeDelivery)
	views, _ := r.svc.Challenges(ctx, StateUndelivered, "", 10)
	if len(views) != 1 || !strings.Contains(views[0].Reason, "50007") {
		t.Fatalf("undelivered %+v", views)
	}
	// A verifier that is not enabled refuses requests.
	r.svc.cfg.Verifier.Enabled = false
	wantCode(t, req(Domain, "example.org"), CodeTypeUnavailable)
}

func TestOperatorStartedChallengeAndSweep(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	v, err := r.svc.StartChallenge(ctx, r.user.did, Domain, "example.net")
	if err != nil {
		t.Fatal(err)
	}
	s := r.msgr.last(t)
	if s.op != "send" || s.msg.ThID != "" || s.msg.ID != v.ID || v.RequestID != "" || v.State != StatePending {
		t.Fatalf("started %+v, sent %+v", v, s)
	}
	if _, err := r.svc.StartChallenge(ctx, "not-a-did", Domain, "example.net"); agent.ErrorCode(err) != agent.CodeMsg {
		t.Fatalf("bad user: %v", err)
	}
	r.clock.add(25 * time.Hour)
	if got, _ := r.svc.Challenge(ctx, v.ID); got.State != StateExpired {
		t.Fatalf("view state %s after expiry", got.State)
	}
	if n, err := r.svc.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if r.challenge(t, v.ID).State != StateExpired {
		t.Fatal("sweep did not expire the challenge")
	}
	r.clock.add(31 * 24 * time.Hour)
	if n, err := r.svc.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("second sweep: %d %v", n, err)
	}
	if _, err := r.svc.Challenge(ctx, v.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("after retention: %v", err)
	}
}

// TestProveCommitsAtomically: when the prove's unit of work cannot commit
// (a full disk, a crash), neither the confirmed state nor the verification
// nor the confirmation is left behind, and the same prove succeeds later.
func TestProveCommitsAtomically(t *testing.T) {
	r := newRig(t)
	c := mustChallenge(t, r.request(t, IP, "198.51.100.7"))
	r.st.FailCommit = errors.New("disk full")
	replies, err := r.prove(c, nil)
	wantCode(t, err, agent.CodeMe)
	if len(replies) != 0 || r.confirmed() != 0 || len(r.st.Outbound()) != 1 {
		t.Fatalf("a failed commit left %d replies, %d verifications, %d outbound", len(replies), r.confirmed(), len(r.st.Outbound()))
	}
	if st := r.challenge(t, c.ID).State; st != StatePending {
		t.Fatalf("state %s after a failed commit", st)
	}
	r.st.FailCommit = nil
	if replies, err := r.prove(c, nil); err != nil || len(replies) != 1 || r.confirmed() != 1 {
		t.Fatalf("prove after the store recovered: %v, %d replies, %d verifications", err, len(replies), r.confirmed())
	}
}
