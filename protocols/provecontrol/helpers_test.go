package provecontrol

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/did/didtest"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/protocols/internal/fakes"
)

// party is a DID with its keys, as an agent would hold them.
type party struct {
	did string
	id  *agent.Identity
}

func newParty(t *testing.T, endpoint string) *party {
	t.Helper()
	var services []did.Service
	if endpoint != "" {
		services = []did.Service{{ID: "#didcomm", Type: did.ServiceTypeDIDCommMessaging,
			ServiceEndpoint: did.ServiceEndpoint{URI: endpoint, Accept: []string{"didcomm/v2"}}}}
	}
	p := didtest.NewPeer2(t, services...)
	ks := &keys.MemoryStore{}
	ks.Put(context.Background(), p.Agreement)
	ks.Put(context.Background(), p.Authentication)
	ident := agent.NewIdentity(ks)
	ident.AddDID(p.DID)
	return &party{did: p.DID, id: ident}
}

// sent is one thing the fake messenger was asked to do.
type sent struct {
	op       string // send, sendto, pack, encrypt
	msg      agent.Message
	to       string // pack/encrypt recipient, or sendto endpoint
	endpoint string
}

// fakeMessenger records what the service hands it.
type fakeMessenger struct {
	mu   sync.Mutex
	out  []sent
	fail error
}

func (f *fakeMessenger) add(s sent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.out = append(f.out, s)
	return nil
}

// outbound stands in for a packed message: its plaintext JSON.
func outbound(m agent.Message, to, endpoint string) []*agent.OutboundMessage {
	b, _ := json.Marshal(m)
	return []*agent.OutboundMessage{{ID: agent.NewID(), To: to, Endpoint: endpoint, MediaType: agent.MediaTypeEncrypted, MessageType: m.Type, Payload: b}}
}

func (f *fakeMessenger) Outbound(_ context.Context, m agent.Message) ([]*agent.OutboundMessage, error) {
	if err := f.add(sent{op: "send", msg: m, to: m.To[0]}); err != nil {
		return nil, err
	}
	return outbound(m, m.To[0], "https://user.example/didcomm"), nil
}

func (f *fakeMessenger) OutboundTo(_ context.Context, m agent.Message, endpoint string) ([]*agent.OutboundMessage, error) {
	if err := f.add(sent{op: "sendto", msg: m, to: m.To[0], endpoint: endpoint}); err != nil {
		return nil, err
	}
	return outbound(m, m.To[0], endpoint), nil
}

func (f *fakeMessenger) Pack(_ context.Context, m agent.Message, to string) ([]byte, string, error) {
	if err := f.add(sent{op: "pack", msg: m, to: to, endpoint: "https://subject.example/didcomm"}); err != nil {
		return nil, "", err
	}
	b, _ := json.Marshal(m)
	return b, "https://subject.example/didcomm", nil
}

func (f *fakeMessenger) Encrypt(_ context.Context, m agent.Message, to string) ([]byte, error) {
	if err := f.add(sent{op: "encrypt", msg: m, to: to}); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(m) // stands in for the JWE
	return b, nil
}

func (f *fakeMessenger) last(t *testing.T) sent {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.out) == 0 {
		t.Fatal("nothing was sent")
	}
	return f.out[len(f.out)-1]
}

// fakeSMS, fakeDiscord, fakeMail and fakeTXT are channel stand-ins.
type fakeSMS struct{ to, text []string }

func (f *fakeSMS) SendSMS(_ context.Context, to, text string) error {
	f.to, f.text = append(f.to, to), append(f.text, text)
	return nil
}

type fakeDiscord struct {
	users, texts []string
	fail         error
}

func (f *fakeDiscord) SendDM(_ context.Context, user, text string) error {
	if f.fail != nil {
		return f.fail
	}
	f.users, f.texts = append(f.users, user), append(f.texts, text)
	return nil
}

type fakeMail struct {
	msgs  []agent.Message
	addrs []string
}

func (f *fakeMail) MailChallenge(_ context.Context, m agent.Message, addr string) ([]*agent.OutboundMessage, error) {
	f.msgs, f.addrs = append(f.msgs, m), append(f.addrs, addr)
	return outbound(m, m.To[0], "mailto:"+addr), nil
}

type fakeTXT struct {
	records map[string][]string
	err     error
}

func (f *fakeTXT) LookupTXT(_ context.Context, name string) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	v, ok := f.records[name]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return v, nil
}

type fakeLetters struct{ got []LetterContent }

func (f *fakeLetters) RenderLetter(l LetterContent) ([]byte, error) {
	f.got = append(f.got, l)
	return []byte("%PDF-1.4 fake " + l.Link), nil
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// rig is a verifier Service with fake channels, and a user party.
type rig struct {
	svc     *Service
	me      *party
	user    *party
	st      *fakes.Store
	records *fakes.Records
	msgr    *fakeMessenger
	sms     *fakeSMS
	discord *fakeDiscord
	mail    *fakeMail
	txt     *fakeTXT
	letters *fakeLetters
	clock   *clock
}

var resolver = did.NewDefaultRegistry(nil, nil)

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{
		me: newParty(t, "https://verifier.example/didcomm"), user: newParty(t, "https://user.example/didcomm"),
		st: &fakes.Store{}, msgr: &fakeMessenger{}, sms: &fakeSMS{}, discord: &fakeDiscord{},
		mail: &fakeMail{}, txt: &fakeTXT{records: map[string][]string{}}, letters: &fakeLetters{},
		clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
	}
	r.records = &r.st.Records
	r.svc = New(Config{
		Identity: r.me.id, Store: r.st.Agent(), Messenger: r.msgr, Resolver: resolver,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: r.clock.now,
		Verifier: VerifierConfig{Enabled: true, MaxAttempts: 3, LinkBaseURL: "https://verifier.example/",
			AllowPrivateIPs: true, Name: "Test Verifier"},
		Channels: Channels{Email: r.mail, SMS: r.sms, Discord: r.discord, DNS: r.txt, Letters: r.letters},
	})
	return r
}

// handle hands in to the service and commits its unit of work, as the
// router does: a refusal or a failed commit leaves nothing behind.
func (r *rig) handle(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	return handleIn(ctx, r.svc, r.st, in)
}

func handleIn(ctx context.Context, svc *Service, st *fakes.Store, in *agent.Inbound) ([]agent.Message, error) {
	store := st.Agent()
	in.Work = store.New()
	replies, err := svc.HandleMessage(ctx, in)
	if agent.IsRefusal(err) {
		return nil, err
	}
	if cerr := store.Commit(ctx, in.Work); cerr != nil {
		return nil, agent.Wrap(agent.CodeMe, cerr, "could not record the message")
	}
	return replies, err
}

// authIn wraps a message as the router hands an authcrypted one to a handler.
func authIn(m agent.Message) *agent.Inbound {
	return &agent.Inbound{Message: m, Transport: "http", Envelope: envelopeAuth(m.From)}
}

func envelopeAuth(from string) (md envelope.Metadata) {
	md.Encrypted, md.Authenticated = true, true
	if from != "" {
		md.EncryptedFrom = from + "#key-1"
	}
	return md
}

// request has the user request a verification and returns the challenge
// message the verifier produced (from its reply or its channel).
func (r *rig) request(t *testing.T, vt VerificationType, subject string) agent.Message {
	t.Helper()
	m, err := RequestVerification{To: r.me.did, From: r.user.did, VerificationType: vt, Subject: subject}.Message()
	if err != nil {
		t.Fatal(err)
	}
	replies, err := r.handle(context.Background(), authIn(m))
	if err != nil {
		t.Fatalf("request %s %q: %v", vt, subject, err)
	}
	if len(replies) == 1 {
		return replies[0]
	}
	if len(replies) != 0 {
		t.Fatalf("%d replies", len(replies))
	}
	switch vt {
	case Email:
		return r.mail.msgs[len(r.mail.msgs)-1]
	}
	return r.msgr.last(t).msg
}

// prove sends a prove for challenge c (with the given changes) and returns
// the replies and error.
func (r *rig) prove(c VerificationChallenge, edit func(*agent.Message)) ([]agent.Message, error) {
	p := c.Prove()
	m, _ := p.Message()
	if edit != nil {
		edit(&m)
	}
	return r.handle(context.Background(), authIn(m))
}

func mustChallenge(t *testing.T, m agent.Message) VerificationChallenge {
	t.Helper()
	c, err := ParseVerificationChallenge(m)
	if err != nil {
		t.Fatalf("challenge: %v", err)
	}
	return c
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	if got := agent.ErrorCode(err); got != code {
		t.Fatalf("code %s (%v), want %s", got, err, code)
	}
}

// confirmed counts the verifications the verifier recorded.
func (r *rig) confirmed() int { return r.records.Len(KindVerification) }

func (r *rig) challenge(t *testing.T, id string) Challenge {
	t.Helper()
	var c Challenge
	if err := r.svc.st.get(context.Background(), KindChallenge, id, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
