// Package fakes holds in-memory stand-ins for the agent's stores and router,
// shared by the tests of the protocol packages.
package fakes

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/agentd/agentd/agent"
)

// Records is an in-memory agent.Records. The zero value is ready to use.
type Records struct {
	mu sync.Mutex
	m  map[string]map[string][]byte
}

// Put stores a copy of value under kind and id.
func (r *Records) Put(_ context.Context, kind, id string, value []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]map[string][]byte)
	}
	if r.m[kind] == nil {
		r.m[kind] = make(map[string][]byte)
	}
	r.m[kind][id] = slices.Clone(value)
	return nil
}

// Get returns a copy of the record, or agent.ErrNotFound.
func (r *Records) Get(_ context.Context, kind, id string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m[kind][id]
	if !ok {
		return nil, agent.ErrNotFound
	}
	return slices.Clone(v), nil
}

// Delete removes a record; deleting a missing one is not an error.
func (r *Records) Delete(_ context.Context, kind, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m[kind], id)
	return nil
}

// List returns up to limit records of kind in id order, after the id after.
func (r *Records) List(_ context.Context, kind, after string, limit int) ([]agent.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []agent.Record
	for _, id := range slices.Sorted(maps.Keys(r.m[kind])) {
		if id <= after {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, agent.Record{ID: id, Value: slices.Clone(r.m[kind][id])})
	}
	return out, nil
}

// Len returns the number of records of kind.
func (r *Records) Len(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m[kind])
}

// Agent is a minimal, synchronous stand-in for the agent's router and
// messenger: it dispatches messages to the protocols registered with it,
// addresses the replies the way the router does (From = its DID, To = the
// sender when unset), answers handler errors with problem reports (never a
// problem report with a problem report), and delivers what it sends straight
// to the peers it knows. It implements agent.Sender and agent.Features.
type Agent struct {
	// DID is the agent's own DID, set as From on what it sends.
	DID string
	// Store commits each received message's unit of work, as the router
	// does; NewAgent gives each agent its own.
	Store *Store

	mu        sync.Mutex
	protocols []agent.Protocol
	peers     map[string]*Agent
	sent      []agent.Message
	received  []agent.Message
	drop      bool // see Drop
}

// NewAgent returns an Agent with the given DID.
func NewAgent(did string) *Agent {
	return &Agent{DID: did, peers: make(map[string]*Agent), Store: &Store{}}
}

// Connect makes a and b reachable from each other.
func Connect(a, b *Agent) {
	a.mu.Lock()
	a.peers[b.DID] = b
	a.mu.Unlock()
	b.mu.Lock()
	b.peers[a.DID] = a
	b.mu.Unlock()
}

// Register adds protocols to dispatch to.
func (a *Agent) Register(ps ...agent.Protocol) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.protocols = append(a.protocols, ps...)
}

// Protocols lists the registered protocols (agent.Features).
func (a *Agent) Protocols() []agent.Protocol {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.protocols)
}

// Drop makes Send record messages without delivering them, as if the peer
// never answered.
func (a *Agent) Drop(drop bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.drop = drop
}

// Sent returns the messages sent so far.
func (a *Agent) Sent() []agent.Message {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.sent)
}

// Received returns the messages received so far.
func (a *Agent) Received() []agent.Message {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.received)
}

// Send implements agent.Sender: it sets From to the agent's DID when unset and
// hands the message to every peer in To. An unknown recipient is an error,
// like a DID the real sender can't resolve.
func (a *Agent) Send(ctx context.Context, msg agent.Message) error {
	if msg.From == "" {
		msg.From = a.DID
	}
	if len(msg.To) == 0 {
		return fmt.Errorf("fakes: message %s has no recipient", msg.ID)
	}
	a.mu.Lock()
	a.sent = append(a.sent, msg)
	drop := a.drop
	var peers []*Agent
	for _, to := range msg.To {
		p, ok := a.peers[agent.DIDOf(to)]
		if !ok {
			a.mu.Unlock()
			return agent.Errorf(agent.CodeDIDUnresolved, "unknown recipient %s", to)
		}
		peers = append(peers, p)
	}
	a.mu.Unlock()
	if drop {
		return nil
	}
	for _, p := range peers {
		p.Receive(ctx, msg)
	}
	return nil
}

// Receive dispatches msg as the router would and sends the replies.
func (a *Agent) Receive(ctx context.Context, msg agent.Message) {
	a.mu.Lock()
	a.received = append(a.received, msg)
	var h agent.Handler
	for _, p := range a.protocols {
		if strings.HasPrefix(msg.Type, p.PIURI+"/") {
			h = p.Handler
			break
		}
	}
	a.mu.Unlock()
	var replies []agent.Message
	var err error
	st := a.Store.Agent()
	in := &agent.Inbound{Message: msg, Transport: "fake", Work: st.New()}
	if h == nil {
		err = agent.Errorf(agent.CodeMsgUnsupported, "unsupported message type")
	} else {
		replies, err = h.HandleMessage(ctx, in)
	}
	if agent.IsRefusal(err) {
		return
	}
	if err != nil && msg.Type != agent.ProblemReportType {
		replies = append(replies, agent.ProblemReport(msg, err))
	}
	if cerr := st.Commit(ctx, in.Work); cerr != nil {
		return // as the router: nothing recorded, nothing answered
	}
	for _, r := range replies {
		r.From = a.DID
		if len(r.To) == 0 && msg.From != "" {
			r.To = []string{msg.From}
		}
		if len(r.To) == 0 {
			continue // only deliverable over return_route, which the fake lacks
		}
		_ = a.Send(ctx, r)
	}
}
