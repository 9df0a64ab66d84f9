package graphql

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
)

// In-memory implementations of the aip services, enough to test the
// GraphQL layer (the real services have their own tests).

var clock = struct {
	sync.Mutex
	t time.Time
}{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}

func tick() time.Time {
	clock.Lock()
	defer clock.Unlock()
	clock.t = clock.t.Add(1500 * time.Millisecond)
	return clock.t
}

// pageOf pages items (already newest first) with an opaque offset token.
func pageOf[T any](items []T, p aip.Page) ([]T, string, error) {
	start := 0
	if p.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.NextToken)
		if err != nil {
			return nil, "", agent.Errorf(agent.CodeMsg, "bad nextToken")
		}
		if start, err = strconv.Atoi(string(b)); err != nil || start < 0 || start > len(items) {
			return nil, "", agent.Errorf(agent.CodeMsg, "bad nextToken")
		}
	}
	end := min(start+p.Clamp(), len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	return items[start:end], next, nil
}

// fakeProofs is aip.ProofExchanges; peer, when set, receives what is sent
// (a request arrives there as a PROVER exchange on peerConn).
type fakeProofs struct {
	mu       sync.Mutex
	ex       []*aip.ProofExchange
	peer     *fakeProofs
	peerConn string
	// events, when set, hears of every change.
	events     *fakeBroker
	lastFilter aip.ProofExchangeFilter
	// fail, when set, is returned by SendRequest.
	fail error
	n    int
	// ids are handed to the next exchanges, in order.
	ids []string
}

func (f *fakeProofs) add(x *aip.ProofExchange) *aip.ProofExchange {
	f.mu.Lock()
	f.n++
	if x.ID == "" && len(f.ids) > 0 {
		x.ID, f.ids = f.ids[0], f.ids[1:]
	}
	if x.ID == "" {
		x.ID = fmt.Sprintf("proofex-%d-%p", f.n, f)
	}
	if x.Created.IsZero() {
		x.Created = tick()
		x.Modified = x.Created
	}
	f.ex = append(f.ex, x)
	f.mu.Unlock()
	f.publish(x)
	return x
}

func (f *fakeProofs) publish(x *aip.ProofExchange) {
	if f.events != nil {
		cp := *x
		f.events.Publish(aip.Event{ID: x.ID + x.Modified.String(), Topic: aip.TopicProofExchange, Emitted: x.Modified, Record: &cp})
	}
}

func (f *fakeProofs) get(id string) (*aip.ProofExchange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range f.ex {
		if x.ID == id {
			return x, nil
		}
	}
	return nil, fmt.Errorf("proof exchange %s: %w", id, agent.ErrNotFound)
}

func (f *fakeProofs) SendRequest(ctx context.Context, connectionID string, req aip.ProofRequest) (*aip.ProofExchange, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	if req.Anoncreds == nil && req.W3C == nil {
		panic("the resolver let a request without format through")
	}
	thid := fmt.Sprintf("thid-%d", len(f.ex))
	x := f.add(&aip.ProofExchange{ThreadID: thid, ConnectionID: connectionID, MyRole: aip.ProofExVerifier, State: aip.ProofExRequest,
		Messages: aip.ProofMessages{Request: &req}})
	if f.peer != nil {
		r := req
		f.peer.add(&aip.ProofExchange{ThreadID: thid, ConnectionID: f.peerConn, MyRole: aip.ProofExProver, State: aip.ProofExRequest,
			Messages: aip.ProofMessages{Request: &r}})
	}
	return x, nil
}

func (f *fakeProofs) RequestFromProposal(ctx context.Context, id string, req *aip.ProofRequest) (*aip.ProofExchange, error) {
	return nil, agent.Errorf(agent.CodeMsgUnsupported, "not in the fake")
}

func (f *fakeProofs) SendProposal(ctx context.Context, connectionID string, p aip.ProofRequest) (*aip.ProofExchange, error) {
	return f.add(&aip.ProofExchange{ConnectionID: connectionID, MyRole: aip.ProofExProver, State: aip.ProofExProposal,
		Messages: aip.ProofMessages{Proposal: &p}}), nil
}

func (f *fakeProofs) ProofExchange(ctx context.Context, id string) (*aip.ProofExchange, error) {
	return f.get(id)
}

func (f *fakeProofs) ProofExchanges(ctx context.Context, p aip.Page, fl aip.ProofExchangeFilter) ([]*aip.ProofExchange, string, error) {
	f.mu.Lock()
	f.lastFilter = fl
	var sel []*aip.ProofExchange
	for _, x := range f.ex {
		if matchProof(fl, x) {
			sel = append(sel, x)
		}
	}
	f.mu.Unlock()
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].Created.After(sel[j].Created) })
	return pageOf(sel, p)
}

func (f *fakeProofs) CredentialsFor(ctx context.Context, id string) ([]aip.CredentialsForReferent, error) {
	x, err := f.get(id)
	if err != nil {
		return nil, err
	}
	if x.MyRole != aip.ProofExProver {
		return nil, agent.Errorf(agent.CodeConflict, "exchange %s is not a PROVER exchange", id)
	}
	var out []aip.CredentialsForReferent
	if a := x.Messages.Request.Anoncreds; a != nil {
		for _, g := range a.AttributeGroups {
			out = append(out, aip.CredentialsForReferent{Referent: g.Referent}) // nothing held fits
		}
	}
	return out, nil
}

func (f *fakeProofs) AcceptRequest(ctx context.Context, id string, in aip.PresentationInput) (*aip.ProofExchange, error) {
	x, err := f.get(id)
	if err != nil {
		return nil, err
	}
	if x.MyRole != aip.ProofExProver || x.State != aip.ProofExRequest {
		return nil, agent.Errorf(agent.CodeConflict, "only a PROVER exchange in REQUEST can be accepted (this one: %s in %s)", x.MyRole, x.State)
	}
	if in.W3C == nil {
		return nil, agent.Errorf(agent.CodeMsgUnsupported, "AnonCreds presentations are not supported by the fake")
	}
	f.mu.Lock()
	x.State = aip.ProofExPresented
	x.Modified = tick()
	refs := []aip.W3CPresentedReferent{}
	for i, c := range in.W3C.CredentialsForReferents {
		refs = append(refs, aip.W3CPresentedReferent{Referent: c.Referent, Path: fmt.Sprintf("$.verifiableCredential[%d]", i)})
	}
	x.Messages.Presentation = &aip.ProofPresentation{Comment: in.Comment, W3C: &aip.W3CProofPresentation{PresentationJSON: `{"type":["VerifiablePresentation"]}`, CredentialsForReferents: refs}}
	f.mu.Unlock()
	f.publish(x)
	return x, nil
}

func (f *fakeProofs) Delete(ctx context.Context, id string) error {
	if _, err := f.get(id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.ex {
		if x.ID == id {
			f.ex = append(f.ex[:i], f.ex[i+1:]...)
			break
		}
	}
	return nil
}

// fakeConnections is aip.Connections with one connection; methods the tests
// do not use panic (a recovered panic is itself tested).
type fakeConnections struct {
	unusedConnections // nil: unused methods panic
	conns             map[string]*aip.Connection
	msgs              []*aip.BasicMessage
}

func (f *fakeConnections) Connection(ctx context.Context, id string) (*aip.Connection, error) {
	if c, ok := f.conns[id]; ok {
		return c, nil
	}
	return nil, agent.Errorf(agent.CodeNotFound, "no connection %s", id)
}

func (f *fakeConnections) BasicMessages(ctx context.Context, connectionID string, p aip.Page) ([]*aip.BasicMessage, string, error) {
	var sel []*aip.BasicMessage
	for i := len(f.msgs) - 1; i >= 0; i-- {
		if f.msgs[i].ConnectionID == connectionID {
			sel = append(sel, f.msgs[i])
		}
	}
	return pageOf(sel, p)
}

func (f *fakeConnections) SendBasicMessage(ctx context.Context, connectionID, content string) (*aip.BasicMessage, error) {
	if _, ok := f.conns[connectionID]; !ok {
		return nil, agent.Errorf(agent.CodeNotFound, "no connection %s", connectionID)
	}
	if content == "leak" {
		return nil, fmt.Errorf("database at postgres://admin:hunter2@db failed")
	}
	m := &aip.BasicMessage{ID: fmt.Sprint("msg-", len(f.msgs)), ConnectionID: connectionID, Content: content, Timestamp: tick(), Direction: aip.Outbound}
	f.msgs = append(f.msgs, m)
	return m, nil
}

type unusedConnections = aip.Connections

// fakeBroker is an EventSource.
type fakeBroker struct {
	mu   sync.Mutex
	subs map[string][]chan aip.Event
}

func (b *fakeBroker) Subscribe(ctx context.Context, topic string) <-chan aip.Event {
	ch := make(chan aip.Event, 16)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[string][]chan aip.Event{}
	}
	b.subs[topic] = append(b.subs[topic], ch)
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		defer b.mu.Unlock()
		for i, c := range b.subs[topic] {
			if c == ch {
				b.subs[topic] = append(b.subs[topic][:i], b.subs[topic][i+1:]...)
				close(ch)
				break
			}
		}
	}()
	return ch
}

func (b *fakeBroker) Publish(e aip.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.subs[e.Topic] {
		select {
		case c <- e:
		default:
		}
	}
}

func (b *fakeBroker) count(topic string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs[topic])
}

// DeleteConnection panics: the recovered panic is tested.
func (f *fakeConnections) DeleteConnection(ctx context.Context, id string) error {
	var m map[string]int
	m["boom"]++
	return nil
}
