package trustping

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/internal/fakes"
	"github.com/agentd/agentd/protocols/reportproblem"
)

// The messages of the spec's "Trust Ping Protocol 2.0" section.
const (
	specPing = `{
  "type": "https://didcomm.org/trust-ping/2.0/ping",
  "id": "518be002-de8e-456e-b3d5-8fe472477a86",
  "from": "did:example:123456",
  "body": {
      "response_requested": true
  }
}`
	specPingResponse = `{
  "type": "https://didcomm.org/trust-ping/2.0/ping-response",
  "id": "e002518b-456e-b3d5-de8e-7a86fe472847",
  "thid": "518be002-de8e-456e-b3d5-8fe472477a86"
}`
)

func decode(t *testing.T, s string) agent.Message {
	t.Helper()
	var m agent.Message
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSpecMessages(t *testing.T) {
	ping := decode(t, specPing)
	if ping.Type != PingType {
		t.Errorf("spec ping type %q, want %q", ping.Type, PingType)
	}
	var body PingBody
	if err := ping.DecodeBody(&body); err != nil || !body.WantsResponse() {
		t.Errorf("spec ping body: %+v, %v", body, err)
	}
	// Our ping body is the spec's.
	m, err := NewPing("did:example:bob", true)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Body) != `{"response_requested":true}` {
		t.Errorf("ping body %s", m.Body)
	}
	if m.Type != PingType || !slices.Equal(m.To, []string{"did:example:bob"}) || m.ThID != "" {
		t.Errorf("ping %+v", m)
	}

	// Our answer to the spec's ping has the spec's response's type and thid.
	s := New(nil, nil, nil)
	replies, err := s.HandleMessage(context.Background(), &agent.Inbound{Message: ping})
	if err != nil || len(replies) != 1 {
		t.Fatalf("HandleMessage = %v, %v", replies, err)
	}
	want := decode(t, specPingResponse)
	r := replies[0]
	if r.Type != want.Type || r.ThID != want.ThID {
		t.Errorf("response type %q thid %q, want %q %q", r.Type, r.ThID, want.Type, want.ThID)
	}
	if !slices.Equal(r.To, []string{"did:example:123456"}) {
		t.Errorf("response to %v, want the pinger", r.To)
	}
	if r.ID == "" || r.ID == ping.ID {
		t.Errorf("response id %q must be fresh", r.ID)
	}
}

func TestHandlePing(t *testing.T) {
	s := New(nil, nil, nil)
	for _, tc := range []struct {
		name      string
		msg       agent.Message
		wantReply bool
		wantTo    []string
	}{
		{"requested", agent.Message{ID: "p1", Type: PingType, From: "did:example:a", Body: json.RawMessage(`{"response_requested":true}`)}, true, []string{"did:example:a"}},
		{"default true", agent.Message{ID: "p2", Type: PingType, From: "did:example:a", Body: json.RawMessage(`{}`)}, true, []string{"did:example:a"}},
		{"no body", agent.Message{ID: "p3", Type: PingType, From: "did:example:a"}, true, []string{"did:example:a"}},
		{"not requested", agent.Message{ID: "p4", Type: PingType, From: "did:example:a", Body: json.RawMessage(`{"response_requested":false}`)}, false, nil},
		{"anonymous, return_route", agent.Message{ID: "p5", Type: PingType, ReturnRoute: "all", Body: json.RawMessage(`{}`)}, true, nil},
		{"anonymous, no return_route", agent.Message{ID: "p6", Type: PingType, Body: json.RawMessage(`{}`)}, false, nil},
	} {
		replies, err := s.HandleMessage(context.Background(), &agent.Inbound{Message: tc.msg})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !tc.wantReply {
			if len(replies) != 0 {
				t.Errorf("%s: replies %v, want none", tc.name, replies)
			}
			continue
		}
		if len(replies) != 1 {
			t.Errorf("%s: %d replies, want 1", tc.name, len(replies))
			continue
		}
		r := replies[0]
		if r.Type != PingResponseType || r.ThID != tc.msg.ID || !slices.Equal(r.To, tc.wantTo) {
			t.Errorf("%s: reply type %q thid %q to %v; want %q %q %v", tc.name, r.Type, r.ThID, r.To, PingResponseType, tc.msg.ID, tc.wantTo)
		}
	}
}

func TestHandleErrors(t *testing.T) {
	s := New(nil, nil, nil)
	for _, tc := range []struct {
		msg  agent.Message
		code string
	}{
		{agent.Message{ID: "x", Type: PingType, From: "did:example:a", Body: json.RawMessage(`{"response_requested":"yes"}`)}, agent.CodeMsg},
		{agent.Message{ID: "y", Type: PIURI + "/pong", From: "did:example:a", Body: json.RawMessage(`{}`)}, agent.CodeMsgUnsupported},
	} {
		_, err := s.HandleMessage(context.Background(), &agent.Inbound{Message: tc.msg})
		if agent.ErrorCode(err) != tc.code {
			t.Errorf("%s: error %v, want code %s", tc.msg.Type, err, tc.code)
		}
	}
	// A ping-response nobody waits for is dropped quietly.
	replies, err := s.HandleMessage(context.Background(), &agent.Inbound{Message: agent.Message{ID: "z", Type: PingResponseType, ThID: "unknown"}})
	if replies != nil || err != nil {
		t.Errorf("unsolicited ping-response: %v, %v", replies, err)
	}
}

// pair wires two fake agents, each with trust ping and report problem on a
// shared Waiters, as the daemon does.
func pair(t *testing.T) (alice, bob *fakes.Agent, aliceSvc *Service) {
	alice, bob = fakes.NewAgent("did:example:alice"), fakes.NewAgent("did:example:bob")
	fakes.Connect(alice, bob)
	for _, a := range []*fakes.Agent{alice, bob} {
		w := new(agent.Waiters)
		svc := New(a, w, nil)
		a.Register(svc.Protocol(), reportproblem.New(w, nil).Protocol())
		if a == alice {
			aliceSvc = svc
		}
	}
	return alice, bob, aliceSvc
}

func TestPing(t *testing.T) {
	alice, bob, svc := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rtt, err := svc.Ping(ctx, "did:example:bob")
	if err != nil {
		t.Fatal(err)
	}
	if rtt < 0 {
		t.Errorf("rtt %v", rtt)
	}
	sent := alice.Sent()
	if len(sent) != 1 || sent[0].Type != PingType || !slices.Equal(sent[0].To, []string{"did:example:bob"}) {
		t.Fatalf("alice sent %+v, want one ping to bob", sent)
	}
	got := bob.Sent()
	if len(got) != 1 || got[0].Type != PingResponseType || got[0].ThID != sent[0].ID {
		t.Fatalf("bob sent %+v, want one ping-response in the ping's thread", got)
	}
}

// pingWith runs Ping against a Sender that answers with answer (built from
// the ping), delivered to the service's own handler after delay.
func pingWith(t *testing.T, delay time.Duration, answer func(ping agent.Message) agent.Message) (time.Duration, error) {
	t.Helper()
	w := new(agent.Waiters)
	var svc *Service
	var rp *reportproblem.Service
	sender := senderFunc(func(ctx context.Context, ping agent.Message) error {
		go func() {
			time.Sleep(delay)
			a := answer(ping)
			in := &agent.Inbound{Message: a}
			if a.Type == agent.ProblemReportType {
				_, _ = rp.HandleMessage(context.Background(), in)
			} else {
				_, _ = svc.HandleMessage(context.Background(), in)
			}
		}()
		return nil
	})
	svc, rp = New(sender, w, nil), reportproblem.New(w, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return svc.Ping(ctx, "did:example:bob")
}

type senderFunc func(ctx context.Context, m agent.Message) error

func (f senderFunc) Send(ctx context.Context, m agent.Message) error { return f(ctx, m) }

func response(from string) func(agent.Message) agent.Message {
	return func(ping agent.Message) agent.Message {
		r, _ := ping.Reply(PingResponseType, nil)
		r.From = from
		return r
	}
}

func TestPingMeasuresRTT(t *testing.T) {
	const delay = 30 * time.Millisecond
	rtt, err := pingWith(t, delay, response("did:example:bob#key-1"))
	if err != nil {
		t.Fatal(err)
	}
	if rtt < delay {
		t.Errorf("rtt %v shorter than the answer's delay %v", rtt, delay)
	}
}

func TestPingProblemReport(t *testing.T) {
	_, err := pingWith(t, 0, func(ping agent.Message) agent.Message {
		r := agent.ProblemReport(ping, agent.Errorf(agent.CodeForbidden, "not allowed"))
		r.From = "did:example:bob"
		return r
	})
	var p *reportproblem.Problem
	if !errors.As(err, &p) || p.Code != agent.CodeForbidden {
		t.Fatalf("Ping error %v, want *reportproblem.Problem with code %s", err, agent.CodeForbidden)
	}
}

// When the peer has no trust ping, its router answers with a problem report,
// which ends the Ping at once with the peer's code.
func TestPingUnsupportedPeer(t *testing.T) {
	alice, bob := fakes.NewAgent("did:example:alice"), fakes.NewAgent("did:example:bob")
	fakes.Connect(alice, bob)
	w := new(agent.Waiters)
	svc := New(alice, w, nil)
	alice.Register(svc.Protocol(), reportproblem.New(w, nil).Protocol())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := svc.Ping(ctx, "did:example:bob")
	var p *reportproblem.Problem
	if !errors.As(err, &p) || p.Code != agent.CodeMsgUnsupported {
		t.Fatalf("Ping error %v, want problem %s", err, agent.CodeMsgUnsupported)
	}
	if ctx.Err() != nil {
		t.Error("Ping waited for its deadline instead of ending at the problem report")
	}
}

func TestPingAnswerFromStranger(t *testing.T) {
	_, err := pingWith(t, 0, response("did:example:mallory"))
	if agent.ErrorCode(err) != agent.CodeTrust {
		t.Fatalf("Ping error %v, want code %s", err, agent.CodeTrust)
	}
}

func TestPingTimeout(t *testing.T) {
	alice, _, svc := pair(t)
	alice.Drop(true)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := svc.Ping(ctx, "did:example:bob")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping error %v, want deadline exceeded", err)
	}
	// The late response finds nobody waiting.
	ping := alice.Sent()[0]
	if svc.waiters.Notify(&agent.Inbound{Message: agent.Message{Type: PingResponseType, ThID: ping.ID}}) {
		t.Error("waiter left behind after Ping gave up")
	}
}

func TestPingSendError(t *testing.T) {
	boom := errors.New("outbox full")
	var sent agent.Message
	svc := New(senderFunc(func(_ context.Context, m agent.Message) error { sent = m; return boom }), nil, nil)
	_, err := svc.Ping(context.Background(), "did:example:bob")
	if !errors.Is(err, boom) {
		t.Fatalf("Ping error %v, want %v", err, boom)
	}
	if svc.waiters.Notify(&agent.Inbound{Message: agent.Message{ThID: sent.ID}}) {
		t.Error("waiter left behind after a failed send")
	}
}

func TestPingBodyJSON(t *testing.T) {
	f := agent.FlexBool(false)
	for _, tc := range []struct {
		body PingBody
		want string
	}{
		{PingBody{}, `{}`},
		{PingBody{ResponseRequested: &f}, `{"response_requested":false}`},
	} {
		b, _ := json.Marshal(tc.body)
		if !bytes.Equal(b, []byte(tc.want)) {
			t.Errorf("%+v marshals to %s, want %s", tc.body, b, tc.want)
		}
	}
	// response_requested is read from a string too; anything else is refused.
	for in, want := range map[string]bool{`{}`: true, `{"response_requested":"false"}`: false,
		`{"response_requested":"true"}`: true, `{"response_requested":false}`: false} {
		var b PingBody
		if err := json.Unmarshal([]byte(in), &b); err != nil || b.WantsResponse() != want {
			t.Errorf("%s: wants response %v, %v", in, b.WantsResponse(), err)
		}
	}
	var b PingBody
	if err := json.Unmarshal([]byte(`{"response_requested":"no"}`), &b); err == nil {
		t.Error(`response_requested "no" accepted`)
	}
}
