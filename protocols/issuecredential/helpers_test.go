package issuecredential

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
	"github.com/agentd/agentd/protocols/credstore"
	"github.com/agentd/agentd/protocols/internal/fakes"
	"github.com/agentd/agentd/store/seal"
	"github.com/agentd/agentd/w3cvc"
)

// fakeConns knows this side's connections by peer DID.
type fakeConns struct {
	mu    sync.Mutex
	byDID map[string]*aip.Connection
}

func (f *fakeConns) ConnectionOf(_ context.Context, _ *agent.Work, d string) (*aip.Connection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.byDID[agent.DIDOf(d)]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("connection of %s: %w", d, agent.ErrNotFound)
}

func (f *fakeConns) Connection(_ context.Context, id string) (*aip.Connection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.byDID {
		if c.ID == id {
			return c, nil
		}
	}
	return nil, &agent.Error{Code: agent.CodeNotFound, Comment: "connection not found", Err: agent.ErrNotFound}
}

// plainMessenger "packs" a message as its plaintext JSON.
type plainMessenger struct{}

func (plainMessenger) Outbound(_ context.Context, m agent.Message) ([]*agent.OutboundMessage, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out []*agent.OutboundMessage
	for _, to := range m.To {
		out = append(out, &agent.OutboundMessage{To: to, Endpoint: "fake:" + to, MediaType: agent.MediaTypePlain, MessageType: m.Type, Payload: b})
	}
	return out, nil
}

// recEvents records the published events.
type recEvents struct {
	mu     sync.Mutex
	events []aip.CredentialExchange
}

func (r *recEvents) Publish(w *agent.Work, topic string, rec any) error {
	if topic != aip.TopicCredentialExchange {
		return fmt.Errorf("topic %s", topic)
	}
	e := *rec.(*aip.CredentialExchange)
	w.AfterCommit(func() { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() })
	return nil
}

// side is one agent: a DID (did:key, also its W3C issuer key), a store,
// the credential store and the protocol service.
type side struct {
	t      *testing.T
	did    string
	key    keys.PrivateKey
	st     *fakes.Store
	sealer seal.Key
	conns  *fakeConns
	events *recEvents
	cs     *credstore.Service
	svc    *Service
	sent   int // how many of st.Outbound() were delivered
}

var (
	primesOnce sync.Once
	primes     *anoncreds.CredentialDefinitionPrivate
)

// testPrimes are the stored test issuer key's primes (anoncreds testdata),
// to skip the safe-prime search.
func testPrimes(t *testing.T) *anoncreds.CredentialDefinitionPrivate {
	primesOnce.Do(func() {
		b, err := os.ReadFile("../../anoncreds/testdata/issuer/test_key_cred_def_private.json")
		if err != nil {
			t.Fatal(err)
		}
		if primes, err = anoncreds.ParseCredentialDefinitionPrivate(b); err != nil {
			t.Fatal(err)
		}
	})
	return primes
}

func newSide(t *testing.T) *side {
	t.Helper()
	k, err := keys.Generate(keys.Ed25519, "")
	if err != nil {
		t.Fatal(err)
	}
	d := did.KeyDID(k.PublicKey)
	k.ID = d + "#" + k.PublicKey.Multikey()
	raw := make([]byte, 32)
	rand.Read(raw)
	sk, err := seal.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	s := &side{t: t, did: d, key: k, st: &fakes.Store{}, sealer: sk, conns: &fakeConns{byDID: map[string]*aip.Connection{}}, events: &recEvents{}}
	s.start()
	return s
}

// start (re)builds the services over the side's store, as a restart does.
func (s *side) start() {
	t := s.t
	var err error
	s.cs, err = credstore.New(credstore.Config{Store: s.st.Agent(), Sealer: s.sealer, IssuerDID: func() string { return s.did },
		CredDefOptions: anoncreds.CredentialDefinitionConfig{Primes: testPrimes(t)}})
	if err != nil {
		t.Fatal(err)
	}
	s.svc, err = New(Config{Store: s.st.Agent(), Messenger: plainMessenger{}, Connections: s.conns, Credentials: s.cs,
		Events: s.events, Sealer: s.sealer, Verifier: w3cvc.NewVerifier(w3cvc.VerifierConfig{Resolver: did.NewDefaultRegistry(nil, nil)}),
		Signer: func(context.Context) (w3cvc.Signer, error) { return w3cvc.KeySigner(s.did, s.key), nil },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
}

// connect makes a connection between a and b on both sides; it returns
// a's connection id to b.
func connect(a, b *side) (string, string) {
	now := time.Now()
	ca := &aip.Connection{ID: agent.NewID(), TheirDID: b.did, MyDID: a.did, Created: now, Modified: now}
	cb := &aip.Connection{ID: agent.NewID(), TheirDID: a.did, MyDID: b.did, Created: now, Modified: now}
	a.conns.byDID[b.did] = ca
	b.conns.byDID[a.did] = cb
	return ca.ID, cb.ID
}

// net delivers what the sides committed to their outboxes, in order,
// until nothing is left; tamper, when set, may change a message first.
type net struct {
	sides  map[string]*side
	tamper func(*agent.Message)
	// problems are the handler errors, by message type.
	problems []error
}

func newNet(sides ...*side) *net {
	n := &net{sides: map[string]*side{}}
	for _, s := range sides {
		n.sides[s.did] = s
	}
	return n
}

// run delivers pending messages until none is left.
func (n *net) run(t *testing.T) {
	t.Helper()
	for round := 0; round < 50; round++ {
		moved := false
		for _, s := range n.sides {
			outs := s.st.Outbound()
			for _, o := range outs[s.sent:] {
				s.sent++
				moved = true
				m, err := agent.ParseMessage(o.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if n.tamper != nil {
					n.tamper(&m)
				}
				to, ok := n.sides[o.To]
				if !ok {
					t.Fatalf("message to unknown %s", o.To)
				}
				n.deliver(t, to, m)
			}
		}
		if !moved {
			return
		}
	}
	t.Fatal("messages keep flowing")
}

// deliver hands m to s as the router would: its handler's writes and
// replies commit together; an error discards them and is answered with a
// problem report (never a problem report with one).
func (n *net) deliver(t *testing.T, s *side, m agent.Message) {
	t.Helper()
	st := s.st.Agent()
	in := &agent.Inbound{Message: m, Work: st.New(), Transport: "fake"}
	in.Envelope.Authenticated = true
	var replies []agent.Message
	var err error
	if m.Type == agent.ProblemReportType {
		replies, err = s.svc.WrapProblemReports(agent.HandlerFunc(func(context.Context, *agent.Inbound) ([]agent.Message, error) { return nil, nil })).HandleMessage(context.Background(), in)
	} else {
		replies, err = s.svc.HandleMessage(context.Background(), in)
	}
	if err != nil {
		n.problems = append(n.problems, err)
		in.Work = st.New()
		if m.Type != agent.ProblemReportType {
			replies = []agent.Message{agent.ProblemReport(m, err)}
		}
	}
	for i := range replies {
		replies[i].From = s.did
		if len(replies[i].To) == 0 {
			replies[i].To = []string{m.From}
		}
		outs, _ := plainMessenger{}.Outbound(context.Background(), replies[i])
		in.Work.Enqueue(outs...)
	}
	if err := st.Commit(context.Background(), in.Work); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// exchangeOf returns the single exchange of a side.
func (s *side) only(t *testing.T) *aip.CredentialExchange {
	t.Helper()
	items, _, err := s.svc.CredentialExchanges(context.Background(), aip.Page{}, aip.CredentialExchangeFilter{})
	if err != nil || len(items) != 1 {
		t.Fatalf("exchanges: %d, %v", len(items), err)
	}
	return items[0]
}

// heldCount is the number of credentials the side holds.
func (s *side) heldCount(t *testing.T) int {
	t.Helper()
	items, _, err := s.cs.Credentials(context.Background(), aip.Page{Limit: 100}, aip.CredentialFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(items)
}

// transfer makes b resolve a's AnonCreds objects (the operator import).
func transfer(t *testing.T, a, b *side, ids ...string) {
	t.Helper()
	for _, id := range ids {
		js, err := a.cs.Export(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.cs.Import(context.Background(), js); err != nil {
			t.Fatal(err)
		}
	}
}
