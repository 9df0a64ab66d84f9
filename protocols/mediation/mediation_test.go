package mediation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/protocols/internal/fakes"
	"github.com/agentd/agentd/protocols/reportproblem"
)

const (
	mediatorDIDx = "did:example:mediator"
	routingDID   = "did:example:routing"
	alice        = "did:example:alice"
	bob          = "did:example:bob"
)

// plainPacker "packs" a message as its plaintext JSON.
type plainPacker struct{}

func (plainPacker) PackReply(_ context.Context, m agent.Message, _ *agent.Inbound) ([]byte, string, error) {
	b, err := json.Marshal(m)
	return b, agent.MediaTypePlain, err
}

// fakeRelayer prepares relays to the DIDs it can resolve.
type fakeRelayer struct {
	resolves map[string]bool // DIDs it can resolve
}

func (r *fakeRelayer) PrepareRelay(_ context.Context, packed []byte, next string) (*agent.OutboundMessage, error) {
	if !r.resolves[agent.DIDOf(next)] {
		return nil, agent.Errorf(agent.CodeDIDUnresolved, "cannot resolve %s", next)
	}
	return &agent.OutboundMessage{ID: agent.NewID(), To: next, Endpoint: "https://elsewhere.example", Payload: packed}, nil
}

// fakeSession is a live connection that records what is pushed.
type fakeSession struct {
	id     string
	pushed chan []byte
	done   chan struct{}
	fail   bool
}

func newSession(id string) *fakeSession {
	return &fakeSession{id: id, pushed: make(chan []byte, 100), done: make(chan struct{})}
}

func (s *fakeSession) ID() string { return s.id }
func (s *fakeSession) Push(_ context.Context, _ string, p []byte) error {
	if s.fail {
		return errors.New("broken pipe")
	}
	s.pushed <- p
	return nil
}
func (s *fakeSession) Done() <-chan struct{} { return s.done }

type harness struct {
	m       *Mediator
	st      *fakes.Store
	q       *fakes.Queue
	records *fakes.Records
	relayer *fakeRelayer
	now     time.Time
	protos  []agent.Protocol
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	st := &fakes.Store{}
	h := &harness{st: st, q: &st.Queue, records: &st.Records, relayer: &fakeRelayer{resolves: map[string]bool{}}, now: time.Now()}
	cfg.RoutingDID = routingDID
	cfg.DID = mediatorDIDx
	if cfg.Logger == nil && !testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return h.now }
	}
	h.m = NewMediator(cfg, Deps{Store: h.st.Agent(), Queue: h.q, Packer: plainPacker{}, Relayer: h.relayer})
	if err := h.m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.protos = h.m.Protocols()
	return h
}

// deliver dispatches msg as the router would, authenticated when it has a
// from, commits its unit of work with its replay record, and returns the
// replies or the handler's error (or the router's refusal when the commit
// fails).
func (h *harness) deliver(msg agent.Message, s agent.Session) ([]agent.Message, error) {
	return h.deliverWith(msg, s, envelope.Metadata{Authenticated: msg.From != "", Encrypted: true, AnonymousSender: msg.From == ""})
}

// deliverWith is deliver with the envelope metadata meta.
func (h *harness) deliverWith(msg agent.Message, s agent.Session, meta envelope.Metadata) ([]agent.Message, error) {
	for _, p := range h.protos {
		if strings.HasPrefix(msg.Type, p.PIURI+"/") {
			st := h.st.Agent()
			in := &agent.Inbound{Message: msg, Session: s, Received: h.now, Work: st.New(), Envelope: meta}
			in.Work.Remember(msg.From+"\x00"+msg.ID, h.now.Add(time.Hour))
			replies, err := p.Handler.HandleMessage(context.Background(), in)
			if agent.IsRefusal(err) {
				return nil, err
			}
			switch cerr := st.Commit(context.Background(), in.Work); {
			case errors.Is(cerr, agent.ErrReplay):
				return nil, nil
			case errors.Is(cerr, agent.ErrQuota):
				return nil, agent.Refuse(agent.Wrap(agent.CodeMeResStorage, cerr, "the recipient's queue is full"))
			case cerr != nil:
				return nil, agent.Refuse(agent.Wrap(agent.CodeMe, cerr, "could not record the message"))
			}
			return replies, err
		}
	}
	return nil, fmt.Errorf("no protocol for %s", msg.Type)
}

// exchanger answers a client's requests through deliver, as a mediator
// agent would on the same connection: a handler error becomes a problem
// report.
type exchanger struct {
	h *harness
	s agent.Session
}

func (e exchanger) Exchange(_ context.Context, msg agent.Message) (agent.Message, error) {
	replies, err := e.h.deliver(msg, e.s)
	if err != nil {
		pr := agent.ProblemReport(msg, err)
		pr.From = mediatorDIDx
		pr.ThID = msg.ID
		return pr, nil
	}
	if len(replies) != 1 {
		return agent.Message{}, fmt.Errorf("%d replies", len(replies))
	}
	r := replies[0]
	r.From = mediatorDIDx
	return r, nil
}

func msg(t *testing.T, typ, from string, body any) agent.Message {
	t.Helper()
	m, err := agent.NewMessage(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	m.From = from
	if from != "" {
		m.To = []string{mediatorDIDx}
	}
	return m
}

func forward(t *testing.T, next string, payloads ...string) agent.Message {
	t.Helper()
	m := msg(t, ForwardType, "", ForwardBody{Next: next})
	for _, p := range payloads {
		m.Attachments = append(m.Attachments, agent.Attachment{ID: agent.NewID(), Data: agent.AttachmentData{JSON: json.RawMessage(p)}})
	}
	return m
}

func jwe(tag string) string {
	return `{"protected":"eyJ0eXAiOiJ4In0","recipients":[{"header":{"kid":"k"},"encrypted_key":"a"}],"iv":"` + tag + `","ciphertext":"c","tag":"t"}`
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil || agent.ErrorCode(err) != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

func wantRefusal(t *testing.T, err error, code string) {
	t.Helper()
	wantCode(t, err, code)
	if !agent.IsRefusal(err) {
		t.Fatalf("error %v is not a refusal", err)
	}
}

// granted returns a client granted mediation with the given DIDs registered.
func (h *harness) grant(t *testing.T, v Version, clientDID string, recipients ...string) *Client {
	t.Helper()
	c := &Client{DID: clientDID, Mediator: mediatorDIDx, Version: v}
	ctx := context.Background()
	rd, err := c.RequestMediation(ctx, exchanger{h: h}, "")
	if err != nil || !slices.Equal(rd, []string{routingDID}) {
		t.Fatalf("RequestMediation = %v, %v", rd, err)
	}
	var ups []Update
	for _, r := range recipients {
		ups = append(ups, Update{RecipientDID: r, Action: ActionAdd})
	}
	if len(ups) > 0 {
		res, err := c.UpdateRecipients(ctx, exchanger{h: h}, ups)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Result != ResultSuccess {
				t.Fatalf("add %s: %s", r.RecipientDID, r.Result)
			}
		}
	}
	return c
}

// The messages of the specifications decode into our structs, and ours use
// the specifications' names.
func TestSpecMessages(t *testing.T) {
	var g2, g3 GrantBody
	if err := json.Unmarshal([]byte(`{"routing_did": "did:peer:z6Mkfriq1MqLBoPWecGoDLjguo1sB9brj6wT3qZ5BxkKpuP6"}`), &g2); err != nil || len(g2.RoutingDID) != 1 {
		t.Fatalf("2.0 grant body: %+v %v", g2, err)
	}
	if err := json.Unmarshal([]byte(`{"routing_did": ["did:peer:0z6Mkfriq1MqLBoPWecGoDLjguo1sB9brj6wT3qZ5BxkKpuP6"]}`), &g3); err != nil || len(g3.RoutingDID) != 1 {
		t.Fatalf("3.0 grant body: %+v %v", g3, err)
	}
	b2, _ := GrantBody{RoutingDID: []string{routingDID}}.MarshalVersion(V2)
	b3, _ := GrantBody{RoutingDID: []string{routingDID}}.MarshalVersion(V3)
	if string(b2) != `{"routing_did":"did:example:routing"}` || string(b3) != `{"routing_did":["did:example:routing"]}` {
		t.Errorf("grant bodies %s %s", b2, b3)
	}
	var up UpdateBody
	json.Unmarshal([]byte(`{"updates":[{"recipient_did":"did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH","action":"add"}]}`), &up)
	if len(up.Updates) != 1 || up.Updates[0].Action != ActionAdd {
		t.Errorf("update body %+v", up)
	}
	l2, _ := ListBody{Entries: []RecipientEntry{{RecipientDID: alice}}, Pagination: &Pagination{Count: 1, Offset: 0, Remaining: 2}}.MarshalVersion(V2)
	l3, _ := ListBody{Entries: []RecipientEntry{{RecipientDID: alice}}}.MarshalVersion(V3)
	if string(l2) != `{"keys":[{"recipient_did":"did:example:alice"}],"pagination":{"count":1,"offset":0,"remaining":2}}` || string(l3) != `{"dids":[{"recipient_did":"did:example:alice"}]}` {
		t.Errorf("list bodies %s %s", l2, l3)
	}
	var lb ListBody
	json.Unmarshal(l2, &lb)
	if len(lb.Entries) != 1 || lb.Pagination.Remaining != 2 {
		t.Errorf("keylist read back %+v", lb)
	}
	var st StatusBody
	json.Unmarshal([]byte(`{"recipient_did":"did:x","message_count":7,"longest_waited_seconds":3600,"newest_received_time":1658085169,"oldest_received_time":1658084293,"total_bytes":8096,"live_delivery":false}`), &st)
	if st.MessageCount != 7 || *st.TotalBytes != 8096 || *st.LongestWaitedSeconds != 3600 {
		t.Errorf("status %+v", st)
	}
	for typ, want := range map[string]string{
		V2.Type(V2.Update):   "https://didcomm.org/coordinate-mediation/2.0/keylist-update",
		V2.Type(V2.List):     "https://didcomm.org/coordinate-mediation/2.0/keylist",
		V3.Type(V3.Update):   "https://didcomm.org/coordinate-mediation/3.0/recipient-update",
		V3.Type(V3.List):     "https://didcomm.org/coordinate-mediation/3.0/recipient",
		ForwardType:          "https://didcomm.org/routing/2.0/forward",
		MessagesReceivedType: "https://didcomm.org/messagepickup/3.0/messages-received",
	} {
		if typ != want {
			t.Errorf("type %s, want %s", typ, want)
		}
	}
}

func TestGrantStateTable(t *testing.T) {
	for _, tc := range []struct {
		from  GrantState
		event GrantEvent
		to    GrantState
		ok    bool
	}{
		{GrantNone, EventRequestAllowed, GrantGranted, true},
		{GrantNone, EventRequestRefused, GrantNone, true},
		{GrantNone, EventOperatorRevoke, "", false},
		{GrantGranted, EventRequestAllowed, GrantGranted, true},
		{GrantGranted, EventOperatorRevoke, GrantRevoked, true},
		{GrantRevoked, EventRequestAllowed, GrantRevoked, true},
		{GrantRevoked, EventOperatorGrant, GrantGranted, true},
	} {
		got, ok := tc.from.Next(tc.event)
		if got != tc.to || ok != tc.ok {
			t.Errorf("%q + %s = %q, %v; want %q, %v", tc.from, tc.event, got, ok, tc.to, tc.ok)
		}
	}
}

func TestMediateRequestPolicies(t *testing.T) {
	ctx := context.Background()
	t.Run("open, both versions", func(t *testing.T) {
		h := newHarness(t, Config{Policy: PolicyOpen})
		for _, v := range []Version{V2, V3} {
			req := msg(t, v.Type(MediateRequest), alice, nil)
			replies, err := h.deliver(req, nil)
			if err != nil || len(replies) != 1 || replies[0].Type != v.Type(MediateGrant) || replies[0].ThID != req.ID {
				t.Fatalf("%s: %v %v", v, replies, err)
			}
			var raw map[string]any
			json.Unmarshal(replies[0].Body, &raw)
			if v == V2 && raw["routing_did"] != routingDID {
				t.Errorf("2.0 routing_did %v, want a string", raw["routing_did"])
			}
			if v == V3 {
				if l, ok := raw["routing_did"].([]any); !ok || len(l) != 1 || l[0] != routingDID {
					t.Errorf("3.0 routing_did %v, want a list", raw["routing_did"])
				}
			}
		}
		g := h.m.Registry().Grant(alice)
		if g.State != GrantGranted || g.MediatorDID != mediatorDIDx || g.Version != "3.0" || g.RoutingDID != routingDID {
			t.Errorf("grant %+v", g)
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		h := newHarness(t, Config{})
		_, err := h.deliver(msg(t, V3.Type(MediateRequest), "", nil), nil)
		wantCode(t, err, agent.CodeTrust)
		// A from in an unauthenticated envelope (anoncrypt) proves nothing.
		m := msg(t, V3.Type(MediateRequest), alice, nil)
		in := &agent.Inbound{Message: m, Envelope: envelope.Metadata{Encrypted: true, AnonymousSender: true}}
		_, err = h.protos[1].Handler.HandleMessage(ctx, in)
		wantCode(t, err, agent.CodeTrust)
	})
	t.Run("allow-list", func(t *testing.T) {
		h := newHarness(t, Config{Policy: PolicyAllowList, AllowList: []string{alice + "#key-1"}})
		c := &Client{DID: alice, Mediator: mediatorDIDx}
		if _, err := c.RequestMediation(ctx, exchanger{h: h}, ""); err != nil {
			t.Fatalf("listed DID: %v", err)
		}
		c.DID = bob
		if _, err := c.RequestMediation(ctx, exchanger{h: h}, ""); !errors.Is(err, ErrDenied) {
			t.Fatalf("unlisted DID: %v, want ErrDenied", err)
		}
		if g := h.m.Registry().Grant(bob); g.State != GrantNone {
			t.Errorf("a denial was stored: %+v", g)
		}
	})
	t.Run("invitation", func(t *testing.T) {
		h := newHarness(t, Config{Policy: PolicyInvitation})
		if _, err := h.m.RecordInvitation(ctx, "inv-1"); err != nil {
			t.Fatal(err)
		}
		c := &Client{DID: alice, Mediator: mediatorDIDx}
		if _, err := c.RequestMediation(ctx, exchanger{h: h}, ""); !errors.Is(err, ErrDenied) {
			t.Fatalf("without invitation: %v", err)
		}
		if _, err := c.RequestMediation(ctx, exchanger{h: h}, "inv-unknown"); !errors.Is(err, ErrDenied) {
			t.Fatalf("unknown invitation: %v", err)
		}
		if _, err := c.RequestMediation(ctx, exchanger{h: h}, "inv-1"); err != nil {
			t.Fatalf("with invitation: %v", err)
		}
		if g := h.m.Registry().Grant(alice); g.Invitation != "inv-1" {
			t.Errorf("grant %+v", g)
		}
		// The holder asking again is granted again; the invitation is used up for others.
		if _, err := c.RequestMediation(ctx, exchanger{h: h}, "inv-1"); err != nil {
			t.Fatalf("again: %v", err)
		}
		c2 := &Client{DID: bob, Mediator: mediatorDIDx}
		if _, err := c2.RequestMediation(ctx, exchanger{h: h}, "inv-1"); !errors.Is(err, ErrDenied) {
			t.Fatalf("second holder: %v", err)
		}
		// An expired invitation is refused.
		h.m.RecordInvitation(ctx, "inv-2")
		h.now = h.now.Add(8 * 24 * time.Hour)
		if _, err := c2.RequestMediation(ctx, exchanger{h: h}, "inv-2"); !errors.Is(err, ErrDenied) {
			t.Fatalf("expired invitation: %v", err)
		}
	})
	t.Run("revoked stays denied", func(t *testing.T) {
		h := newHarness(t, Config{Policy: PolicyOpen})
		c := h.grant(t, V3, alice, "did:example:alice-inbox")
		if err := h.q.Add(ctx, []*agent.QueuedMessage{{Recipient: "did:example:alice-inbox", Payload: []byte("{}"), Expires: h.now.Add(time.Hour)}}, agent.QueueLimits{}); err != nil {
			t.Fatal(err)
		}
		if err := h.m.Revoke(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if tt, _ := h.q.Totals(ctx); tt.Messages != 0 {
			t.Errorf("revoke left %d messages queued", tt.Messages)
		}
		if _, err := c.RequestMediation(ctx, exchanger{h: h}, ""); !errors.Is(err, ErrDenied) {
			t.Fatalf("after revoke: %v", err)
		}
		if _, err := c.Status(ctx, exchanger{h: h}, ""); !isProblem(err, CodeNotGranted) {
			t.Fatalf("pickup after revoke: %v", err)
		}
		if _, err := h.m.GrantTo(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if _, err := c.RequestMediation(ctx, exchanger{h: h}, ""); err != nil {
			t.Fatalf("after the operator granted again: %v", err)
		}
		if err := h.m.Revoke(ctx, "did:example:stranger"); !errors.Is(err, agent.ErrNotFound) {
			t.Fatalf("revoke of an unknown client: %v", err)
		}
	})
}

func isProblem(err error, code string) bool {
	var p *reportproblem.Problem
	return errors.As(err, &p) && p.Code == code
}

func TestRecipientUpdateAndQuery(t *testing.T) {
	ctx := context.Background()
	for _, v := range []Version{V2, V3} {
		t.Run(v.String(), func(t *testing.T) {
			h := newHarness(t, Config{MaxRecipients: 4})
			c := &Client{DID: alice, Mediator: mediatorDIDx, Version: v}
			if _, err := c.UpdateRecipients(ctx, exchanger{h: h}, []Update{{RecipientDID: "did:example:a1", Action: ActionAdd}}); !isProblem(err, CodeNotGranted) {
				t.Fatalf("update without grant: %v", err)
			}
			if _, err := c.QueryRecipients(ctx, exchanger{h: h}, 0, 0); !isProblem(err, CodeNotGranted) {
				t.Fatalf("query without grant: %v", err)
			}
			h.grant(t, v, alice)
			h.grant(t, v, bob, "did:example:bobs")
			res, err := c.UpdateRecipients(ctx, exchanger{h: h}, []Update{
				{RecipientDID: "did:key:z6LSa#z6LSa", Action: ActionAdd},
				{RecipientDID: "did:example:a2", Action: ActionAdd},
				{RecipientDID: "did:example:a2", Action: ActionAdd},
				{RecipientDID: "not a did", Action: ActionAdd},
				{RecipientDID: "did:example:a3", Action: "replace"},
				{RecipientDID: "did:example:bobs", Action: ActionAdd},
				{RecipientDID: "did:example:nope", Action: ActionRemove},
				{RecipientDID: "did:example:a3", Action: ActionAdd},
				{RecipientDID: "did:example:a4", Action: ActionAdd},
				{RecipientDID: "did:example:a5", Action: ActionAdd},
			})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{ResultSuccess, ResultSuccess, ResultNoChange, ResultClientError, ResultClientError, ResultClientError, ResultNoChange, ResultSuccess, ResultSuccess, ResultClientError}
			for i, r := range res {
				if r.Result != want[i] {
					t.Errorf("update %d (%s %s): %s, want %s", i, r.Action, r.RecipientDID, r.Result, want[i])
				}
			}
			list, err := c.QueryRecipients(ctx, exchanger{h: h}, 0, 0)
			if err != nil || len(list.Entries) != 4 || list.Pagination != nil {
				t.Fatalf("query: %+v %v", list, err)
			}
			if list.Entries[0].RecipientDID != "did:example:a2" || list.Entries[3].RecipientDID != "did:key:z6LSa#z6LSa" {
				t.Errorf("entries %+v: want the registered values in DID order", list.Entries)
			}
			page, err := c.QueryRecipients(ctx, exchanger{h: h}, 3, 2)
			if err != nil || len(page.Entries) != 2 || *page.Pagination != (Pagination{Count: 2, Offset: 2, Remaining: 0}) {
				t.Fatalf("page: %+v %v", page, err)
			}
			page, _ = c.QueryRecipients(ctx, exchanger{h: h}, 1, 0)
			if len(page.Entries) != 1 || *page.Pagination != (Pagination{Count: 1, Offset: 0, Remaining: 3}) {
				t.Errorf("first page %+v", page)
			}
			// paginate without offset is malformed.
			req, _ := c.Request(v.Type(v.Query), map[string]any{"paginate": map[string]any{"limit": 3}})
			if _, err := h.deliver(req, nil); agent.ErrorCode(err) != agent.CodeMsg {
				t.Errorf("paginate without offset: %v", err)
			}
			// Remove, with the key id of a registered DID.
			res, _ = c.UpdateRecipients(ctx, exchanger{h: h}, []Update{{RecipientDID: "did:example:a2#key-1", Action: ActionRemove}})
			if res[0].Result != ResultSuccess {
				t.Errorf("remove by key id: %s", res[0].Result)
			}
			if got := h.m.Registry().Recipients(alice); len(got) != 3 || slices.Contains(got, "did:example:a2") {
				t.Errorf("recipients after remove %v", got)
			}
		})
	}
}

func TestForward(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, Config{Limits: agent.QueueLimits{MaxMessages: 3, MaxBytes: 4000}, MaxMessageBytes: 2000, MessageTTL: time.Hour})
	h.grant(t, V3, alice, "did:example:inbox", "did:key:z6LSk#z6LSk")

	// Queued for a registered DID, by DID or key id, several attachments at once.
	fwd := forward(t, "did:example:inbox#key-1", jwe("1"), jwe("2"))
	if replies, err := h.deliver(fwd, nil); err != nil || len(replies) != 0 {
		t.Fatalf("forward: %v %v", replies, err)
	}
	// A replay of the same forward queues nothing.
	if _, err := h.deliver(fwd, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := h.q.List(ctx, []string{"did:example:inbox"}, h.now, 10)
	if len(got) != 2 || string(got[0].Payload) != jwe("1") && string(got[1].Payload) != jwe("1") {
		t.Fatalf("queued %d messages", len(got))
	}
	if !got[0].Expires.Equal(h.now.Add(time.Hour)) {
		t.Errorf("expiry %v, want the TTL", got[0].Expires)
	}
	withExp := forward(t, "did:key:z6LSk", jwe("3"))
	withExp.ExpiresTime = h.now.Add(10 * time.Minute).Unix()
	if _, err := h.deliver(withExp, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = h.q.List(ctx, []string{"did:key:z6LSk"}, h.now, 10)
	if len(got) != 1 || got[0].Expires.Unix() != withExp.ExpiresTime {
		t.Fatalf("expires_time not honoured: %+v", got)
	}
	// base64 attachments are accepted.
	b64 := forward(t, "did:key:z6LSk")
	b64.Attachments = []agent.Attachment{{Data: agent.AttachmentData{Base64: EncodeBase64([]byte(jwe("4")))}}}
	if _, err := h.deliver(b64, nil); err != nil {
		t.Fatal(err)
	}

	// Refusals: nothing queued, the transport answers with the code.
	_, err := h.deliver(forward(t, "did:example:stranger", jwe("x")), nil)
	wantRefusal(t, err, CodeUnknownRecipient)
	_, err = h.deliver(forward(t, "did:example:inbox", jwe("a"), jwe("b")), nil) // 2 + 2 > 3: over the count quota
	wantRefusal(t, err, agent.CodeMeResStorage)
	// Over the size limit: 413, not a 5xx a sender would retry forever.
	_, err = h.deliver(forward(t, "did:key:z6LSk", `{"ciphertext":"`+strings.Repeat("x", 2100)+`"}`), nil)
	wantRefusal(t, err, agent.CodeTooLarge)
	// More attachments than MaxAttachments (default 10).
	many := make([]string, DefaultMaxAttachments+1)
	for i := range many {
		many[i] = jwe(fmt.Sprint("many", i))
	}
	_, err = h.deliver(forward(t, "did:key:z6LSk", many...), nil)
	wantRefusal(t, err, agent.CodeTooLarge)
	// A forward must arrive encrypted: plaintext or only signed is refused.
	for _, meta := range []envelope.Metadata{{}, {NonRepudiation: true, Authenticated: true, SignFrom: "did:example:x#k"}} {
		_, err = h.deliverWith(forward(t, "did:key:z6LSk", jwe("plain")), nil, meta)
		wantRefusal(t, err, agent.CodeTrust)
	}
	for name, m := range map[string]agent.Message{
		"no next":        forward(t, "", jwe("x")),
		"next not a DID": forward(t, "mailto:x@example.com", jwe("x")),
		"no attachment":  forward(t, "did:example:inbox"),
		"not JSON": func() agent.Message {
			m := forward(t, "did:key:z6LSk")
			m.Attachments = []agent.Attachment{{Data: agent.AttachmentData{Base64: EncodeBase64([]byte("hello"))}}}
			return m
		}(),
		"links only": func() agent.Message {
			m := forward(t, "did:key:z6LSk")
			m.Attachments = []agent.Attachment{{Data: agent.AttachmentData{Links: []string{"https://x"}}}}
			return m
		}(),
		"bad body": func() agent.Message {
			m := forward(t, "did:key:z6LSk", jwe("x"))
			m.Body = json.RawMessage(`{"next":5}`)
			return m
		}(),
	} {
		_, err := h.deliver(m, nil)
		if err == nil || agent.ErrorCode(err) != agent.CodeMsg || !agent.IsRefusal(err) {
			t.Errorf("%s: %v, want a refusal with e.p.msg", name, err)
		}
	}
	if tt, _ := h.q.Totals(ctx); tt.Messages != 4 {
		t.Errorf("%d messages queued, want 4", tt.Messages)
	}
	got, _ = h.q.List(ctx, []string{"did:example:inbox"}, h.now, 10)
	// A forward refused for quota may be retried once there is room.
	if _, err := h.deliver(forward(t, "did:example:inbox", jwe("third")), nil); err != nil {
		t.Fatal(err)
	}
	full := forward(t, "did:example:inbox", jwe("retry"))
	_, err = h.deliver(full, nil)
	wantRefusal(t, err, agent.CodeMeResStorage)
	if n, _ := h.q.Remove(ctx, []string{"did:example:inbox"}, []string{got[0].ID}); n != 1 {
		t.Fatal("remove failed")
	}
	if _, err := h.deliver(full, nil); err != nil {
		t.Fatalf("retry of a refused forward: %v", err)
	}
	// Storage failure is our fault (e.p.me), still a refusal.
	h.q.FailAdd = errors.New("disk on fire")
	_, err = h.deliver(forward(t, "did:example:inbox", jwe("y")), nil)
	wantRefusal(t, err, agent.CodeMe)
}

func TestForwardRelay(t *testing.T) {
	h := newHarness(t, Config{Relay: true})
	h.relayer.resolves["did:example:faraway"] = true
	fwd := forward(t, "did:example:faraway", jwe("1"), jwe("2"))
	if _, err := h.deliver(fwd, nil); err != nil {
		t.Fatal(err)
	}
	if out := h.st.Outbound(); len(out) != 2 || string(out[0].Payload) != jwe("1") {
		t.Fatalf("relayed %d", len(out))
	}
	_, err := h.deliver(forward(t, "did:example:nowhere", jwe("1")), nil)
	wantRefusal(t, err, agent.CodeDIDUnresolved)
	if len(h.st.Outbound()) != 2 {
		t.Fatal("a refused relay queued something")
	}
}

func TestPickup(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, Config{MaxDeliveryMessages: 2})
	c := h.grant(t, V3, alice, "did:example:inbox1", "did:example:inbox2")
	h.grant(t, V2, bob, "did:example:bobinbox")
	ex := exchanger{h: h}

	st, err := c.Status(ctx, ex, "")
	if err != nil || st.MessageCount != 0 || *st.TotalBytes != 0 || st.LiveDelivery || st.OldestReceivedTime != nil {
		t.Fatalf("empty status %+v %v", st, err)
	}
	if d, err := c.Deliver(ctx, ex, 10, ""); err != nil || d != nil {
		t.Fatalf("delivery from an empty queue: %v %v", d, err)
	}
	t0 := h.now
	for i, next := range []string{"did:example:inbox1", "did:example:inbox2", "did:example:inbox1", "did:example:bobinbox"} {
		h.now = t0.Add(time.Duration(i) * time.Second)
		if _, err := h.deliver(forward(t, next, jwe(fmt.Sprint(i))), nil); err != nil {
			t.Fatal(err)
		}
	}
	h.now = t0.Add(10 * time.Second)
	st, _ = c.Status(ctx, ex, "")
	if st.MessageCount != 3 || *st.TotalBytes != int64(3*len(jwe("0"))) || *st.OldestReceivedTime != t0.Unix() ||
		*st.NewestReceivedTime != t0.Add(2*time.Second).Unix() || *st.LongestWaitedSeconds != 10 {
		t.Errorf("status %+v", st)
	}
	st, _ = c.Status(ctx, ex, "did:example:inbox2")
	if st.MessageCount != 1 || st.RecipientDID != "did:example:inbox2" {
		t.Errorf("status for inbox2 %+v", st)
	}
	if _, err := c.Status(ctx, ex, "did:example:bobinbox"); !isProblem(err, agent.CodeForbidden) {
		t.Errorf("status for another client's DID: %v", err)
	}

	// Delivery: limited by the configured batch, oldest first, ids are queue ids.
	d, err := c.Deliver(ctx, ex, 10, "")
	if err != nil || len(d) != 2 || string(d[0].Message) != jwe("0") || string(d[1].Message) != jwe("1") {
		t.Fatalf("delivery %v %v", d, err)
	}
	d1, _ := c.Deliver(ctx, ex, 1, "did:example:inbox2")
	if len(d1) != 1 || string(d1[0].Message) != jwe("1") {
		t.Fatalf("filtered delivery %v", d1)
	}
	// Delivered messages stay until messages-received names them.
	again, _ := c.Deliver(ctx, ex, 10, "")
	if len(again) != 2 || again[0].ID != d[0].ID {
		t.Fatal("delivery removed messages")
	}
	// Bob cannot remove Alice's messages, nor see them.
	bc := &Client{DID: bob, Mediator: mediatorDIDx, Version: V2}
	if st, _ := bc.Received(ctx, ex, []string{d[0].ID}); st.MessageCount != 1 {
		t.Errorf("bob's status %+v", st)
	}
	if bd, _ := bc.Deliver(ctx, ex, 10, ""); len(bd) != 1 || string(bd[0].Message) != jwe("3") {
		t.Errorf("bob sees %v", bd)
	}
	st, err = c.Received(ctx, ex, []string{d[0].ID, "no-such-id"})
	if err != nil || st.MessageCount != 2 {
		t.Fatalf("after messages-received: %+v %v", st, err)
	}
	if req, _ := c.Request(MessagesReceivedType, map[string]any{}); true {
		if _, err := h.deliver(req, nil); agent.ErrorCode(err) != agent.CodeMsg {
			t.Errorf("messages-received without a list: %v", err)
		}
	}
	if req, _ := c.Request(DeliveryRequestType, map[string]any{"limit": 0}); true {
		if _, err := h.deliver(req, nil); agent.ErrorCode(err) != agent.CodeMsg {
			t.Errorf("delivery-request with limit 0: %v", err)
		}
	}
	// Unauthenticated or ungranted pickup.
	if _, err := h.deliver(msg(t, StatusRequestType, "", nil), nil); agent.ErrorCode(err) != agent.CodeTrust {
		t.Errorf("anonymous status-request: %v", err)
	}
	stranger := &Client{DID: "did:example:stranger", Mediator: mediatorDIDx}
	if _, err := stranger.Deliver(ctx, ex, 1, ""); !isProblem(err, CodeNotGranted) {
		t.Errorf("ungranted delivery-request: %v", err)
	}
}

func TestLiveDelivery(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, Config{})
	c := h.grant(t, V3, alice, "did:example:inbox")

	// Over a one-shot connection live mode is not supported; switching it
	// off there is harmless.
	if _, err := c.SetLive(ctx, exchanger{h: h}, true); !isProblem(err, CodeLiveModeNotSupported) {
		t.Fatalf("live over HTTP: %v", err)
	}
	if st, err := c.SetLive(ctx, exchanger{h: h}, false); err != nil || st.LiveDelivery {
		t.Fatalf("live off over HTTP: %+v %v", st, err)
	}

	s := newSession("ws-1")
	ex := exchanger{h: h, s: s}
	st, err := c.SetLive(ctx, ex, true)
	if err != nil || !st.LiveDelivery {
		t.Fatalf("live on: %+v %v", st, err)
	}
	if st, _ := c.Status(ctx, ex, ""); !st.LiveDelivery {
		t.Error("status on the live session does not say live")
	}
	if st, _ := c.Status(ctx, exchanger{h: h}, ""); st.LiveDelivery {
		t.Error("status on another connection says live")
	}
	if _, err := h.deliver(forward(t, "did:example:inbox", jwe("live")), nil); err != nil {
		t.Fatal(err)
	}
	var pushed agent.Message
	select {
	case p := <-s.pushed:
		json.Unmarshal(p, &pushed)
	case <-time.After(5 * time.Second):
		t.Fatal("nothing pushed")
	}
	if pushed.Type != DeliveryType || pushed.From != mediatorDIDx || !slices.Equal(pushed.To, []string{alice}) {
		t.Fatalf("pushed %+v", pushed)
	}
	d, err := ParseDelivery(pushed)
	if err != nil || len(d) != 1 || string(d[0].Message) != jwe("live") {
		t.Fatalf("pushed delivery %v %v", d, err)
	}
	// Pushed is not received: it stays queued until messages-received.
	if st, _ := c.Status(ctx, ex, ""); st.MessageCount != 1 {
		t.Fatalf("pushed message left the queue: %+v", st)
	}
	if st, _ := c.Received(ctx, ex, []string{d[0].ID}); st.MessageCount != 0 {
		t.Fatalf("after messages-received %+v", st)
	}
	// Another client's forward is not pushed to Alice.
	h.grant(t, V3, bob, "did:example:bobinbox")
	h.deliver(forward(t, "did:example:bobinbox", jwe("bob")), nil)
	select {
	case p := <-s.pushed:
		t.Fatalf("bob's message pushed to alice: %s", p)
	case <-time.After(100 * time.Millisecond):
	}
	// A failing push loses nothing; a closed session stops live mode.
	s.fail = true
	h.deliver(forward(t, "did:example:inbox", jwe("lost?")), nil)
	waitFor(t, func() bool { return h.m.Live().Stats().Failed == 1 })
	if st, _ := c.Status(ctx, exchanger{h: h}, ""); st.MessageCount != 1 {
		t.Fatalf("a failed push removed the message: %+v", st)
	}
	close(s.done)
	waitFor(t, func() bool { return h.m.Live().Stats().Sessions == 0 })
	// Live off stops pushes.
	s2 := newSession("ws-2")
	c.SetLive(ctx, exchanger{h: h, s: s2}, true)
	c.SetLive(ctx, exchanger{h: h, s: s2}, false)
	h.deliver(forward(t, "did:example:inbox", jwe("after off")), nil)
	select {
	case p := <-s2.pushed:
		t.Fatalf("pushed after live off: %s", p)
	case <-time.After(100 * time.Millisecond):
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRegistryReload: grants and registrations survive a reload from the records.
func TestRegistryReload(t *testing.T) {
	h := newHarness(t, Config{})
	h.grant(t, V2, alice, "did:key:z6LSa#z6LSa", "did:example:inbox")
	m2 := NewMediator(Config{RoutingDID: routingDID}, Deps{Store: h.st.Agent(), Queue: h.q, Packer: plainPacker{}})
	if err := m2.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := m2.Registry().Grant(alice); g.State != GrantGranted {
		t.Fatalf("grant after reload %+v", g)
	}
	if c, client, ok := m2.Registry().Route("did:key:z6LSa"); !ok || client != alice || c != "did:key:z6LSa" {
		t.Fatalf("route after reload: %s %s %v", c, client, ok)
	}
	regs := m2.Registry().Registrations(alice)
	if len(regs) != 2 || regs[1].Registered != "did:key:z6LSa#z6LSa" {
		t.Fatalf("registrations %+v", regs)
	}
	if granted, revoked, n := m2.Registry().Counts(); granted != 1 || revoked != 0 || n != 2 {
		t.Errorf("counts %d %d %d", granted, revoked, n)
	}
}

// live-delivery-change takes "true" and "false" as strings too (the Identus
// wallets send them so), and refuses anything else as malformed.
func TestLiveDeliveryChangeStringBoolean(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.grant(t, V3, alice, "did:example:inbox")
	s := newSession("ws-strings")
	change := func(v any) (StatusBody, error) {
		t.Helper()
		req, err := c.Request(LiveDeliveryChangeType, map[string]any{"live_delivery": v})
		if err != nil {
			t.Fatal(err)
		}
		replies, err := h.deliver(req, s)
		if err != nil {
			return StatusBody{}, err
		}
		var st StatusBody
		if len(replies) != 1 || replies[0].Type != StatusType || replies[0].DecodeBody(&st) != nil {
			t.Fatalf("live-delivery-change %v answered %+v", v, replies)
		}
		return st, nil
	}
	if st, err := change("true"); err != nil || !st.LiveDelivery || h.m.Live().Stats().Sessions != 1 {
		t.Fatalf(`"true": %+v %v, %d live sessions`, st, err, h.m.Live().Stats().Sessions)
	}
	if st, err := change("false"); err != nil || st.LiveDelivery || h.m.Live().Stats().Sessions != 0 {
		t.Fatalf(`"false": %+v %v, %d live sessions`, st, err, h.m.Live().Stats().Sessions)
	}
	for _, bad := range []any{"yes", "TRUE", 1, map[string]any{}} {
		_, err := change(bad)
		if agent.ErrorCode(err) != agent.CodeMsg || !strings.Contains(err.Error(), `"true" or "false"`) {
			t.Errorf("live_delivery %v: %v", bad, err)
		}
	}
	if h.m.Live().Stats().Sessions != 0 {
		t.Error("a refused live-delivery-change switched live mode on")
	}
	// A client reads a status whose live_delivery is a string.
	var st StatusBody
	if err := json.Unmarshal([]byte(`{"message_count":0,"live_delivery":"true"}`), &st); err != nil || !st.LiveDelivery {
		t.Fatalf("status with a string live_delivery: %+v %v", st, err)
	}
}
