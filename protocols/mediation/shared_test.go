package mediation

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
)

// testSignals is an agent.Signals the test fires by hand: the store's
// side (store/postgres) is tested against PostgreSQL in its package and in
// internal/daemon's multi-process tests.
type testSignals struct {
	mu     sync.Mutex
	subs   map[string][]func(string)
	resync []func()
	// held are signals sent but not yet received (hold); Sync delivers
	// them, as PostgreSQL delivers those committed before its own.
	held  [][2]string
	syncs int
}

func (s *testSignals) hold(topic, payload string) {
	s.mu.Lock()
	s.held = append(s.held, [2]string{topic, payload})
	s.mu.Unlock()
}

func (s *testSignals) Sync(context.Context) error {
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.syncs++
	s.mu.Unlock()
	for _, h := range held {
		s.fire(h[0], h[1])
	}
	return nil
}

func (s *testSignals) Subscribe(topic string, fn func(string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs == nil {
		s.subs = map[string][]func(string){}
	}
	s.subs[topic] = append(s.subs[topic], fn)
}
func (s *testSignals) OnResync(fn func()) {
	s.mu.Lock()
	s.resync = append(s.resync, fn)
	s.mu.Unlock()
}
func (s *testSignals) Signal(context.Context, string, string) error { return nil }

func (s *testSignals) fire(topic, payload string) {
	s.mu.Lock()
	subs := s.subs[topic]
	s.mu.Unlock()
	for _, fn := range subs {
		fn(payload)
	}
}

func (s *testSignals) fireResync() {
	s.mu.Lock()
	fns := s.resync
	s.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// secondInstance is a mediator on a's store, loaded now and shared.
func secondInstance(t *testing.T, a *harness) (*harness, *testSignals) {
	t.Helper()
	b := &harness{st: a.st, q: a.q, records: a.records, relayer: &fakeRelayer{resolves: map[string]bool{}}, now: a.now}
	cfg := Config{RoutingDID: routingDID, DID: mediatorDIDx, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return b.now }}
	b.m = NewMediator(cfg, Deps{Store: a.st.Agent(), Queue: a.q, Packer: plainPacker{}, Relayer: b.relayer})
	if err := b.m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.protos = b.m.Protocols()
	sig := &testSignals{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b.m.Share(ctx, sig)
	return b, sig
}

// pushedTags reads one live delivery pushed on s (plainPacker: JSON) and
// returns its messages' tags.
func pushedTags(t *testing.T, s *fakeSession) []string {
	t.Helper()
	select {
	case p := <-s.pushed:
		var d agent.Message
		if err := json.Unmarshal(p, &d); err != nil {
			t.Fatal(err)
		}
		var tags []string
		for _, a := range d.Attachments {
			raw, _ := base64.RawURLEncoding.DecodeString(a.Data.Base64)
			var inner struct {
				IV string `json:"iv"`
			}
			json.Unmarshal(raw, &inner)
			tags = append(tags, inner.IV)
		}
		return tags
	case <-time.After(5 * time.Second):
		t.Fatal("nothing pushed")
		return nil
	}
}

func noPush(t *testing.T, s *fakeSession) {
	t.Helper()
	select {
	case p := <-s.pushed:
		t.Fatalf("unexpected push %s", p)
	case <-time.After(100 * time.Millisecond):
	}
}

// forwardAttempts hands a forward to the routing handler as the router
// does, running it again (Attempt 1, 2) after a commit conflict, and
// returns how many runs its commit took.
func (h *harness) forwardAttempts(t *testing.T, m agent.Message) int {
	t.Helper()
	ctx := context.Background()
	for _, p := range h.protos {
		if !strings.HasPrefix(m.Type, p.PIURI+"/") {
			continue
		}
		for attempt := 0; attempt < 3; attempt++ {
			st := h.st.Agent()
			in := &agent.Inbound{Message: m, Received: h.now, Work: st.New(), Attempt: attempt,
				Envelope: envelope.Metadata{Encrypted: true, AnonymousSender: true}}
			in.Work.Remember(m.ID, h.now.Add(time.Hour))
			if _, err := p.Handler.HandleMessage(ctx, in); err != nil {
				t.Fatal(err)
			}
			err := st.Commit(ctx, in.Work)
			if errors.Is(err, agent.ErrConflict) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			return attempt + 1
		}
		t.Fatal("three conflicts")
	}
	t.Fatalf("no protocol for %s", m.Type)
	return 0
}

// A shared mediator (B) loaded before another instance (A) granted and
// registered a client routes for it at once, reading the registration and
// the grant through to the store, and reads an unknown DID once per
// missTTL; it pushes to its live connection what A queued when signalled
// (reading the queue), after a resync what it missed, and nothing twice;
// a signalled removal stops routing.
func TestSharedMediator(t *testing.T) {
	a := newHarness(t, Config{})
	b, sig := secondInstance(t, a)
	c := a.grant(t, V3, alice, "did:example:inbox")

	if _, client, ok := b.m.Registry().Route("did:example:inbox"); !ok || client != alice {
		t.Fatalf("B routes A's registration: %q %v", client, ok)
	}
	if n := b.m.Registry().ReadThroughs(); n != 2 {
		t.Fatalf("%d read-throughs, want 2 (the registration, the grant)", n)
	}
	for range 3 {
		if _, _, ok := b.m.Registry().Route("did:example:nobody"); ok {
			t.Fatal("B routes an unregistered DID")
		}
	}
	if n := b.m.Registry().ReadThroughs(); n != 3 {
		t.Fatalf("%d read-throughs after three lookups of one unknown DID, want 3", n)
	}

	// Live on B, forwards through A.
	s := newSession("ws-b")
	req, err := c.Request(LiveDeliveryChangeType, map[string]any{"live_delivery": true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.deliver(req, s); err != nil {
		t.Fatal(err)
	}
	if _, err := a.deliver(forward(t, "did:example:inbox", jwe("one")), nil); err != nil {
		t.Fatal(err)
	}
	sig.fire(agent.SignalQueue, "did:example:inbox")
	if got := pushedTags(t, s); len(got) != 1 || got[0] != "one" {
		t.Fatalf("pushed %v, want [one]", got)
	}
	sig.fireResync() // "one" is still queued (not acknowledged) but was pushed
	noPush(t, s)
	if _, err := a.deliver(forward(t, "did:example:inbox", jwe("two")), nil); err != nil {
		t.Fatal(err)
	}
	sig.fireResync() // the signal of "two" was lost
	if got := pushedTags(t, s); len(got) != 1 || got[0] != "two" {
		t.Fatalf("pushed after a resync %v, want [two]", got)
	}

	// B routes with the registration it has (Work.Expect, no read); when
	// that is stale (A registered the DID again, and B was not signalled),
	// the first attempt conflicts and the second reads the store.
	if n := b.forwardAttempts(t, forward(t, "did:example:inbox", jwe("three"))); n != 1 {
		t.Fatalf("a forward through B took %d attempts, want 1", n)
	}
	for _, action := range []string{ActionRemove, ActionAdd} {
		a.now = a.now.Add(time.Second)
		if _, err := c.UpdateRecipients(context.Background(), exchanger{h: a}, []Update{{RecipientDID: "did:example:inbox", Action: action}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.forwardAttempts(t, forward(t, "did:example:inbox", jwe("four"))); n != 2 {
		t.Fatalf("a forward through B with a stale registration took %d attempts, want 2", n)
	}

	// A revokes the client; B ends its live delivery once signalled.
	if err := a.m.Revoke(context.Background(), alice); err != nil {
		t.Fatal(err)
	}
	sig.fire(agent.SignalRecord, KindGrant+"\x1f"+alice)
	waitFor(t, func() bool { return b.m.Live().Stats().Sessions == 0 })
	waitFor(t, func() bool { _, _, ok := b.m.Registry().Route("did:example:inbox"); return !ok })
}

// A shared mediator stops routing a registration another instance
// removed once signalled.
func TestSharedMediatorRemoval(t *testing.T) {
	a := newHarness(t, Config{})
	b, sig := secondInstance(t, a)
	c := a.grant(t, V3, alice, "did:example:inbox")
	if _, _, ok := b.m.Registry().Route("did:example:inbox"); !ok {
		t.Fatal("B does not route A's registration")
	}
	// A removes the registration; B stops routing once signalled.
	if _, err := c.UpdateRecipients(context.Background(), exchanger{h: a}, []Update{{RecipientDID: "did:example:inbox", Action: ActionRemove}}); err != nil {
		t.Fatal(err)
	}
	sig.fire(agent.SignalRecord, KindRecipient+"\x1fdid:example:inbox")
	waitFor(t, func() bool { _, _, ok := b.m.Registry().Route("did:example:inbox"); return !ok })
}

// A client that registered a DID through A and picks up through B at once
// (before B received A's signal) is served that DID's messages: the pickup
// first catches up with the signals committed before it (Registry.CatchUp).
func TestSharedPickupCatchesUp(t *testing.T) {
	ctx := context.Background()
	a := newHarness(t, Config{})
	b, sig := secondInstance(t, a)
	c := a.grant(t, V3, alice, "did:example:early")
	// B knows the client and its first DID...
	if got := b.m.Registry().Recipients(alice); len(got) != 0 {
		t.Fatalf("B's index before any signal: %q", got)
	}
	sig.fire(agent.SignalRecord, KindRecipient+"\x1fdid:example:early")
	waitFor(t, func() bool { return len(b.m.Registry().Recipients(alice)) == 1 })
	// ... then the client registers another through A, whose signal has
	// not reached B when the client asks B for its messages.
	if _, err := c.UpdateRecipients(ctx, exchanger{h: a}, []Update{{RecipientDID: "did:example:late", Action: ActionAdd}}); err != nil {
		t.Fatal(err)
	}
	sig.hold(agent.SignalRecord, KindRecipient+"\x1fdid:example:late")
	for _, to := range []string{"did:example:early", "did:example:late"} {
		if _, err := a.deliver(forward(t, to, jwe(to)), nil); err != nil {
			t.Fatal(err)
		}
	}
	syncs := sig.syncs
	d, err := c.Deliver(ctx, exchanger{h: b}, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range d {
		got = append(got, string(m.Message))
	}
	slices.Sort(got)
	if want := []string{jwe("did:example:early"), jwe("did:example:late")}; !slices.Equal(got, want) {
		t.Fatalf("B delivered %q, want %q", got, want)
	}
	if sig.syncs != syncs+1 {
		t.Fatalf("the delivery-request synced %d times, want once", sig.syncs-syncs)
	}
	// Status and messages-received catch up too.
	st, err := c.Received(ctx, exchanger{h: b}, []string{d[0].ID, d[1].ID})
	if err != nil || st.MessageCount != 0 {
		t.Fatalf("messages-received through B: %+v %v", st, err)
	}
	if sig.syncs != syncs+2 {
		t.Fatalf("messages-received did not sync")
	}
}

// Signalled pushes read one client's queue once at a time (signals for it
// during a read make one more read, of the recipients signalled meanwhile)
// and do not wait for another client's slow read.
func TestPushers(t *testing.T) {
	ctx := context.Background()
	var p pushers
	var mu sync.Mutex
	var reads []string
	slow := make(chan struct{})
	started := make(chan string, 10)
	read := func(_ context.Context, client string, rcpts []string) {
		slices.Sort(rcpts)
		mu.Lock()
		reads = append(reads, client+":"+strings.Join(rcpts, ","))
		mu.Unlock()
		started <- client
		if client == "slow" {
			<-slow
		}
	}
	p.start(ctx, "slow", []string{"r1"}, read)
	if c := <-started; c != "slow" {
		t.Fatalf("started %s", c)
	}
	// While slow's read runs: two more signals for it, and one for fast.
	p.start(ctx, "slow", []string{"r2"}, read)
	p.start(ctx, "slow", []string{"r3", "r2"}, read)
	p.start(ctx, "fast", []string{"f1"}, read)
	select {
	case c := <-started:
		if c != "fast" {
			t.Fatalf("a second read of %s started while its first ran", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fast's read waited for slow's")
	}
	close(slow)
	if c := <-started; c != "slow" {
		t.Fatalf("started %s", c)
	}
	waitFor(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.busy) == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"slow:r1", "fast:f1", "slow:r2,r3"}; !slices.Equal(reads, want) {
		t.Fatalf("reads %q, want %q", reads, want)
	}
}
