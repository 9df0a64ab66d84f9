package presentproof

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
	"github.com/agentd/agentd/store/bolt"
	"github.com/agentd/agentd/w3cvc"
)

// memMessenger stands in for agent.Messenger: the "packed" payload is the
// plaintext JSON, for the harness to hand to the peer.
type memMessenger struct{}

func (memMessenger) Outbound(_ context.Context, m agent.Message) ([]*agent.OutboundMessage, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return []*agent.OutboundMessage{{ID: agent.NewID(), To: m.To[0], Endpoint: "mem:" + m.To[0],
		MediaType: agent.MediaTypePlain, MessageType: m.Type, Payload: b}}, nil
}

// memConns is a fixed set of connections.
type memConns struct {
	mu    sync.Mutex
	byID  map[string]*aip.Connection
	byDID map[string]*aip.Connection
}

func (c *memConns) add(conn *aip.Connection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byID, c.byDID = map[string]*aip.Connection{}, map[string]*aip.Connection{}
	}
	c.byID[conn.ID], c.byDID[conn.TheirDID] = conn, conn
}

func (c *memConns) Connection(_ context.Context, id string) (*aip.Connection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if x, ok := c.byID[id]; ok {
		return x, nil
	}
	return nil, fmt.Errorf("connection %s: %w", id, agent.ErrNotFound)
}

func (c *memConns) ConnectionOf(_ context.Context, _ *agent.Work, from string) (*aip.Connection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if x, ok := c.byDID[agent.DIDOf(from)]; ok {
		return x, nil
	}
	return nil, fmt.Errorf("sender %s: %w", from, agent.ErrNotFound)
}

// memCreds is a credential store in memory, with the AnonCreds test
// vectors' schema and credential definition.
type memCreds struct {
	mu       sync.Mutex
	creds    []*aip.Credential
	raw      map[string][]byte
	ls       anoncreds.LinkSecret
	schemas  map[string]*anoncreds.Schema
	credDefs map[string]*anoncreds.CredentialDefinition
}

func (m *memCreds) Credential(_ context.Context, id string) (*aip.Credential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.creds {
		if c.ID == id {
			return c, nil
		}
	}
	return nil, fmt.Errorf("credential %s: %w", id, agent.ErrNotFound)
}

func (m *memCreds) Raw(_ context.Context, id string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.raw[id]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("credential %s: %w", id, agent.ErrNotFound)
}

func (m *memCreds) Each(_ context.Context, f aip.CredentialFormat, fn func(*aip.Credential) bool) error {
	m.mu.Lock()
	list := append([]*aip.Credential(nil), m.creds...)
	m.mu.Unlock()
	for _, c := range list {
		if c.Format == f && !fn(c) {
			return nil
		}
	}
	return nil
}

func (m *memCreds) LinkSecret(context.Context) (anoncreds.LinkSecret, error) { return m.ls, nil }

func (m *memCreds) ResolveSchema(_ context.Context, id string) (*anoncreds.Schema, error) {
	if s, ok := m.schemas[id]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("schema %s: %w", id, agent.ErrNotFound)
}

func (m *memCreds) ResolveCredDef(_ context.Context, id string) (*anoncreds.CredentialDefinition, error) {
	if d, ok := m.credDefs[id]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("credential definition %s: %w", id, agent.ErrNotFound)
}

func (m *memCreds) addW3C(id string, raw []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.creds = append(m.creds, &aip.Credential{ID: id, Format: aip.FormatW3C, CredentialJSON: string(raw), W3CFormat: w3cvc.FormatJWTVC})
}

func (m *memCreds) addAnoncreds(t testing.TB, id, file string) {
	t.Helper()
	raw := readVector(t, file)
	c, err := anoncreds.ParseCredential(raw)
	if err != nil {
		t.Fatal(err)
	}
	var attrs []aip.Attribute
	for _, n := range slices.Sorted(maps.Keys(c.Values)) {
		attrs = append(attrs, aip.Attribute{Name: n, Value: c.Values[n].Raw})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.raw == nil {
		m.raw = map[string][]byte{}
	}
	m.creds = append(m.creds, &aip.Credential{ID: id, Format: aip.FormatAnoncreds, Attributes: attrs, CredDefID: c.CredDefID, SchemaID: c.SchemaID})
	m.raw[id] = raw
}

// events records what the service publishes, at commit time.
type events struct {
	mu     sync.Mutex
	states map[string][]aip.ProofExState
}

func (e *events) Publish(w *agent.Work, _ string, rec any) error {
	x := *rec.(*aip.ProofExchange)
	w.AfterCommit(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.states == nil {
			e.states = map[string][]aip.ProofExState{}
		}
		e.states[x.ID] = append(e.states[x.ID], x.State)
	})
	return nil
}

// of returns the states published for id, once there are at least n
// (after-commit functions run just after the commit a test may see).
func (e *events) of(id string, n int) []aip.ProofExState {
	for i := 0; ; i++ {
		e.mu.Lock()
		got := append([]aip.ProofExState(nil), e.states[id]...)
		e.mu.Unlock()
		if len(got) >= n || i > 200 {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "anoncreds", "testdata", "generated", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vectorObjects(t testing.TB) (map[string]*anoncreds.Schema, map[string]*anoncreds.CredentialDefinition, anoncreds.LinkSecret) {
	t.Helper()
	s, err := anoncreds.ParseSchema(readVector(t, "set1-ge/schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := anoncreds.ParseCredentialDefinition(readVector(t, "set1-ge/cred_def.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ls struct {
		LinkSecret string `json:"link_secret"`
	}
	if err := json.Unmarshal(readVector(t, "set1-ge/link_secret.json"), &ls); err != nil {
		t.Fatal(err)
	}
	secret, err := anoncreds.LinkSecretFromDecimal(ls.LinkSecret)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*anoncreds.Schema{vecSchemaID: s}, map[string]*anoncreds.CredentialDefinition{vecCredDefID: d}, secret
}

const (
	vecSchemaID  = "did:web:issuer.example/anoncreds/schema/person/1.0"
	vecCredDefID = "did:web:issuer.example/anoncreds/creddef/person/default"
	vecIssuer    = "did:web:issuer.example"
)

// node is one agent: a service over a bolt store, its connections and
// credentials.
type node struct {
	name   string
	did    string
	key    keys.PrivateKey
	path   string
	db     *bolt.DB
	store  agent.Store
	svc    *Service
	conns  *memConns
	creds  *memCreds
	events *events
	cfg    Config
}

func newNode(t *testing.T, name string, mod ...func(*Config)) *node {
	t.Helper()
	k, err := keys.Generate(keys.Ed25519, "")
	if err != nil {
		t.Fatal(err)
	}
	d := did.KeyDID(k.PublicKey)
	k.ID = d + "#" + k.PublicKey.Multikey()
	n := &node{name: name, did: d, key: k, path: filepath.Join(t.TempDir(), name+".db"),
		conns: &memConns{}, events: &events{}}
	schemas, credDefs, ls := vectorObjects(t)
	n.creds = &memCreds{ls: ls, schemas: schemas, credDefs: credDefs}
	n.open(t, mod...)
	return n
}

// open (re)opens the node's store and builds a new service over it.
func (n *node) open(t *testing.T, mod ...func(*Config)) {
	t.Helper()
	db, err := bolt.Open(n.path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	n.db = db
	n.store = agent.Store{Records: db.Records(), Committer: db}
	w3c, err := NewW3C(W3CConfig{
		Verifier: w3cvc.NewVerifier(w3cvc.VerifierConfig{Resolver: did.NewDefaultRegistry(nil, nil)}),
		Signer: func(_ context.Context, d string) (w3cvc.Signer, error) {
			if d != n.did {
				return nil, fmt.Errorf("not our DID: %s", d)
			}
			return w3cvc.KeySigner(d, n.key), nil
		},
		Resolver: did.NewDefaultRegistry(nil, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.cfg = Config{Store: n.store, Messenger: memMessenger{}, Connections: n.conns, Credentials: n.creds, W3C: w3c,
		Events: n.events, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mod {
		m(&n.cfg)
	}
	if n.svc, err = New(n.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.close)
}

func (n *node) close() {
	if n.db != nil {
		n.svc.Close()
		n.db.Close()
		n.db = nil
	}
}

// connect makes a connection between a and b on both sides and returns
// a's and b's connection ids.
func connect(a, b *node) (string, string) {
	ca := &aip.Connection{ID: agent.NewID(), TheirDID: b.did, MyDID: a.did, Created: time.Now()}
	cb := &aip.Connection{ID: agent.NewID(), TheirDID: a.did, MyDID: b.did, Created: time.Now()}
	a.conns.add(ca)
	b.conns.add(cb)
	return ca.ID, cb.ID
}

// deliver hands every message waiting in from's outbox to its recipient
// among nodes, as the router would: the recipient's handler in a unit of
// work that commits its changes, or on a handler error a problem report
// back to the sender. It returns the messages delivered.
func deliver(t *testing.T, from *node, nodes ...*node) []agent.Message {
	t.Helper()
	return deliverWith(t, from, nil, nodes...)
}

// deliverWith is deliver with a change to each message on the way.
func deliverWith(t *testing.T, from *node, change func(*agent.Message), nodes ...*node) []agent.Message {
	t.Helper()
	ctx := context.Background()
	due, err := from.db.Outbox().Due(ctx, time.Now().Add(time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []agent.Message
	for _, o := range due {
		if err := from.db.Outbox().Delete(ctx, o.ID); err != nil {
			t.Fatal(err)
		}
		msg, err := agent.ParseMessage(o.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if change != nil {
			change(&msg)
		}
		out = append(out, msg)
		var to *node
		for _, n := range nodes {
			if n.did == o.To {
				to = n
			}
		}
		if to == nil {
			t.Fatalf("no node %s", o.To)
		}
		in := &agent.Inbound{Message: msg, Envelope: envelope.Metadata{Encrypted: true, Authenticated: true}, Transport: "mem", Received: time.Now()}
		in.Work = to.store.New()
		var h agent.Handler = to.svc
		if msg.Type == agent.ProblemReportType {
			h = to.svc.ProblemReports(agent.HandlerFunc(func(context.Context, *agent.Inbound) ([]agent.Message, error) { return nil, nil }))
		}
		if _, herr := h.HandleMessage(ctx, in); herr != nil {
			t.Logf("%s refused %s: %v", to.name, shortType(msg.Type), herr)
			pr := agent.ProblemReport(msg, herr)
			pr.From = to.did
			outs, _ := memMessenger{}.Outbound(ctx, pr)
			in.Work = to.store.New()
			in.Work.Enqueue(outs...)
		}
		if err := to.store.Commit(ctx, in.Work); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// waitState waits for exchange id of n to reach state.
func waitState(t *testing.T, n *node, id string, state aip.ProofExState) *aip.ProofExchange {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		x, err := n.svc.ProofExchange(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if x.State == state {
			return x
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: exchange %s in state %s, want %s (%s)", n.name, id, x.State, state, x.ErrorMessage)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// only returns the one exchange of n with role.
func only(t *testing.T, n *node, role aip.ProofExRole) *aip.ProofExchange {
	t.Helper()
	items, _, err := n.svc.ProofExchanges(context.Background(), aip.Page{}, aip.ProofExchangeFilter{Role: role})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 {
		t.Fatalf("%s: %d %s exchanges, want 1", n.name, len(items), role)
	}
	return items[0]
}

// stored is an exchange's record as stored, to show a refusal changed nothing.
func (n *node) stored(t *testing.T, id string) string {
	t.Helper()
	b, err := n.store.Records.Get(context.Background(), KindExchange, id)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func outboxLen(t *testing.T, n *node) int {
	t.Helper()
	p, _, err := n.db.Outbox().Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}
