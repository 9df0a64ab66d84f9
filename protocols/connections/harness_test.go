package connections

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/protocols/aipevents"
	"github.com/agentd/agentd/protocols/internal/fakes"
	"github.com/agentd/agentd/protocols/oob"
	"github.com/agentd/agentd/protocols/trustping"
)

// node is one agent of a test network: its own store, connections service
// and the handlers the router would have, wrapped in the Middleware.
type node struct {
	did    string
	store  *fakes.Store
	svc    *Service
	broker *aipevents.Broker
	events <-chan aip.Event
	sent   int // outbound messages already delivered
	protos map[string]agent.Handler
}

// plainPacker "packs" a message as its plaintext, to a fake endpoint.
type plainPacker struct{}

func (plainPacker) Outbound(_ context.Context, m agent.Message) ([]*agent.OutboundMessage, error) {
	var outs []*agent.OutboundMessage
	for _, to := range m.To {
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		outs = append(outs, &agent.OutboundMessage{To: agent.DIDOf(to), Endpoint: "fake:" + agent.DIDOf(to),
			MediaType: agent.MediaTypePlain, MessageType: m.Type, Payload: b})
	}
	return outs, nil
}

type network struct {
	mu    sync.Mutex
	nodes map[string]*node
}

func newNetwork() *network { return &network{nodes: map[string]*node{}} }

func (n *network) resolver() did.Resolver {
	return did.ResolverFunc(func(_ context.Context, d string) (*did.Doc, error) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if _, ok := n.nodes[d]; !ok {
			return nil, agent.ErrNotFound
		}
		return &did.Doc{ID: d, Service: []did.Service{{ID: "#s", Type: did.ServiceTypeDIDCommMessaging,
			ServiceEndpoint: did.ServiceEndpoint{URI: "fake:" + d}}}}, nil
	})
}

func (n *network) add(t *testing.T, name string) *node {
	t.Helper()
	d := "did:example:" + name
	st := &fakes.Store{}
	b := &aipevents.Broker{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	svc, err := New(Config{Store: st.Agent(), Packer: plainPacker{}, OOB: oob.New(&st.Records, quiet), Resolver: n.resolver(),
		MyDID: func() string { return d }, Events: aipevents.New(aipevents.Config{Broker: b, WebhookEndpoint: "webhook+https://app.example/" + name}),
		Logger: quiet, Label: strings.ToUpper(name), Endpoint: "https://" + name + ".example/didcomm"})
	if err != nil {
		t.Fatal(err)
	}
	nd := &node{did: d, store: st, svc: svc, broker: b, events: b.Subscribe(ctx, ""), protos: map[string]agent.Handler{}}
	ping := trustping.New(plainSender{}, nil, quiet)
	nd.protos[trustping.PIURI] = svc.Middleware(ping)
	for _, p := range svc.Protocols() {
		nd.protos[p.PIURI] = svc.Middleware(p.Handler)
	}
	nd.protos["https://didcomm.org/report-problem/2.0"] = svc.Middleware(agent.HandlerFunc(func(context.Context, *agent.Inbound) ([]agent.Message, error) { return nil, nil }))
	n.mu.Lock()
	n.nodes[d] = nd
	n.mu.Unlock()
	return nd
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type plainSender struct{}

func (plainSender) Send(context.Context, agent.Message) error { return nil }

// pump delivers every DIDComm message queued in the nodes' outboxes until
// none is left, as authcrypted from their from; it returns how many.
func (n *network) pump(t *testing.T) int {
	t.Helper()
	total := 0
	for {
		moved := 0
		n.mu.Lock()
		nodes := make([]*node, 0, len(n.nodes))
		for _, nd := range n.nodes {
			nodes = append(nodes, nd)
		}
		n.mu.Unlock()
		for _, nd := range nodes {
			outs := nd.store.Outbound()
			for _, o := range outs[nd.sent:] {
				nd.sent++
				if !strings.HasPrefix(o.Endpoint, "fake:") {
					continue // a webhook
				}
				var m agent.Message
				if err := json.Unmarshal(o.Payload, &m); err != nil {
					t.Fatal(err)
				}
				n.mu.Lock()
				to := n.nodes[o.To]
				n.mu.Unlock()
				to.receive(t, m, true)
				moved++
			}
		}
		if moved == 0 {
			return total
		}
		total += moved
	}
}

// receive handles m as the router would: in one unit of work with its
// replies (problem reports for errors), which go to the outbox.
func (nd *node) receive(t *testing.T, m agent.Message, authenticated bool) error {
	t.Helper()
	ctx := context.Background()
	for attempt := 0; ; attempt++ {
		in := &agent.Inbound{Message: m, Transport: "fake", Work: nd.store.Agent().New()}
		if authenticated {
			in.Envelope.Authenticated, in.Envelope.EncryptedFrom = true, m.From+"#key-1"
		}
		h := nd.protos[agent.PIURI(m.Type)]
		var replies []agent.Message
		var err error
		if h == nil {
			err = agent.Errorf(agent.CodeMsgUnsupported, "unsupported")
		} else {
			replies, err = h.HandleMessage(ctx, in)
		}
		if err != nil {
			if m.Type == agent.ProblemReportType {
				replies = nil
			} else {
				replies = []agent.Message{agent.ProblemReport(m, err)}
			}
		}
		for _, r := range replies {
			r.From = nd.did
			if len(r.To) == 0 {
				r.To = []string{m.From}
			}
			outs, _ := plainPacker{}.Outbound(ctx, r)
			in.Work.Enqueue(outs...)
		}
		cerr := nd.store.Agent().Commit(ctx, in.Work)
		if cerr == agent.ErrConflict && attempt < 3 {
			continue
		}
		if cerr != nil {
			t.Fatal(cerr)
		}
		return err
	}
}

// drain returns the events published so far.
func (nd *node) drain() []aip.Event {
	var out []aip.Event
	for {
		select {
		case e := <-nd.events:
			out = append(out, e)
		default:
			return out
		}
	}
}
