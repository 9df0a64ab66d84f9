package discoverfeatures

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/internal/fakes"
	"github.com/agentd/agentd/protocols/reportproblem"
)

// The messages of the spec's "Discover Features Protocol 2.0" section. (The
// spec's disclose example still names version 1.0 in its type; its body is
// the 2.0 one.)
const (
	specQueries = `{
    "type": "https://didcomm.org/discover-features/2.0/queries",
    "id": "yWd8wfYzhmuXX3hmLNaV5bVbAjbWaU",
    "body": {
        "queries": [
            { "feature-type": "protocol", "match": "https://didcomm.org/tictactoe/1.*" },
            { "feature-type": "goal-code", "match": "org.didcomm.*" }
        ]
    }
}`
	specDisclose = `{
    "type": "https://didcomm.org/discover-features/1.0/disclose",
    "thid": "yWd8wfYzhmuXX3hmLNaV5bVbAjbWaU",
    "body":{
        "disclosures": [
            {
                "feature-type": "protocol",
                "id": "https://didcomm.org/tictactoe/1.0",
                "roles": ["player"]
            },
            {
                "feature-type": "goal-code",
                "id": "org.didcomm.sell.goods.consumer"
            }
        ]
    }
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

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// tictactoe is the agent of the spec's example: it plays tictactoe 1.0 and
// serves a goal code.
type tictactoe struct{}

func (tictactoe) Protocols() []agent.Protocol {
	return []agent.Protocol{
		{PIURI: "https://didcomm.org/tictactoe/1.0", Roles: []string{"player"}, GoalCodes: []string{"org.didcomm.sell.goods.consumer"}},
		{PIURI: "https://didcomm.org/trust-ping/2.0", Roles: []string{"sender", "receiver"}},
		{PIURI: "https://didcomm.org/tictactoe/1.0", Roles: []string{"player"}}, // registered twice
	}
}

func TestSpecMessages(t *testing.T) {
	q := decode(t, specQueries)
	var qb QueriesBody
	if err := q.DecodeBody(&qb); err != nil {
		t.Fatal(err)
	}
	wantQ := []Query{{"protocol", "https://didcomm.org/tictactoe/1.*"}, {"goal-code", "org.didcomm.*"}}
	if !reflect.DeepEqual(qb.Queries, wantQ) {
		t.Errorf("queries %+v, want %+v", qb.Queries, wantQ)
	}
	if b, _ := json.Marshal(qb); string(b) != compact(t, q.Body) {
		t.Errorf("queries body\n got %s\nwant %s", b, compact(t, q.Body))
	}

	// Our answer to the spec's query is the spec's disclosure.
	s := New(tictactoe{}, nil, nil, nil)
	q.From = "did:example:requester"
	replies, err := s.HandleMessage(context.Background(), &agent.Inbound{Message: q})
	if err != nil || len(replies) != 1 {
		t.Fatalf("HandleMessage = %v, %v", replies, err)
	}
	r := replies[0]
	want := decode(t, specDisclose)
	if r.Type != DiscloseType || r.ThID != want.ThID || !slices.Equal(r.To, []string{"did:example:requester"}) {
		t.Errorf("reply type %q thid %q to %v", r.Type, r.ThID, r.To)
	}
	if string(r.Body) != compact(t, want.Body) {
		t.Errorf("disclose body\n got %s\nwant %s", r.Body, compact(t, want.Body))
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, id string
		want        bool
	}{
		{"*", "https://didcomm.org/trust-ping/2.0", true},
		{"*", "", true},
		{"https://didcomm.org/trust-ping/2.*", "https://didcomm.org/trust-ping/2.0", true},
		{"https://didcomm.org/trust-ping/2.*", "https://didcomm.org/trust-ping/2.1", true},
		{"https://didcomm.org/trust-ping/2.*", "https://didcomm.org/trust-ping/1.0", false},
		{"https://didcomm.org/trust-ping/2.*", "https://didcomm.org/trust-ping/2", false},
		{"https://didcomm.org/trust-ping/2.0", "https://didcomm.org/trust-ping/2.0", true},
		{"https://didcomm.org/trust-ping/2.0", "https://didcomm.org/trust-ping/2.01", false},
		{"org.didcomm.*", "org.didcomm.sell.goods.consumer", true},
		{"org.didcomm.*", "orgxdidcomm.sell", false}, // '.' is literal
		{"*ping*", "https://didcomm.org/trust-ping/2.0", true},
		{"https://didcomm.org/*/2.0", "https://didcomm.org/trust-ping/2.0", true},
		{"https://didcomm.org/*/2.0", "https://didcomm.org/trust-ping/1.0", false},
		{"*ab", "aab", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a**", "a", true},
		{"a*", "", false},
		{"", "", true},
		{"", "a", false},
		{"?", "a", false}, // only * is special
	} {
		if got := Match(tc.pattern, tc.id); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.id, got, tc.want)
		}
	}
}

func TestMatchPathological(t *testing.T) {
	pattern := strings.Repeat("*a", MaxMatchLen/2-1) + "*b"
	id := strings.Repeat("a", 4096)
	done := make(chan bool)
	go func() { done <- Match(pattern, id) }()
	select {
	case got := <-done:
		if got {
			t.Error("matched an id without b")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Match takes exponential time")
	}
}

func TestDisclose(t *testing.T) {
	all := []Disclosure{
		{FeatureType: "protocol", ID: "https://didcomm.org/tictactoe/1.0", Roles: []string{"player"}},
		{FeatureType: "protocol", ID: "https://didcomm.org/trust-ping/2.0", Roles: []string{"sender", "receiver"}},
	}
	for _, tc := range []struct {
		name    string
		queries []Query
		want    []Disclosure
	}{
		{"all protocols", []Query{{"protocol", "*"}}, all},
		{"one protocol", []Query{{"protocol", "https://didcomm.org/trust-ping/2.*"}}, all[1:]},
		{"each once", []Query{{"protocol", "https://didcomm.org/trust-ping/*"}, {"protocol", "*"}}, []Disclosure{all[1], all[0]}},
		{"goal codes", []Query{{"goal-code", "*"}}, []Disclosure{{FeatureType: "goal-code", ID: "org.didcomm.sell.goods.consumer"}}},
		{"didcomm version", []Query{{"didcomm-version", "*"}}, []Disclosure{{FeatureType: "didcomm-version", ID: DIDCommV2}}},
		{"no match", []Query{{"protocol", "https://didcomm.org/chess/*"}}, []Disclosure{}},
		{"unknown type ignored", []Query{{"flavour", "*"}, {"header", "*"}, {"gov-fw", "*"}}, []Disclosure{}},
	} {
		got := Disclose(tictactoe{}, tc.queries)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Disclose = %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
	if got := Disclose(nil, []Query{{"protocol", "*"}}); len(got) != 0 {
		t.Errorf("Disclose(nil features) = %+v, want none", got)
	}
}

func TestEmptyDisclosureIsArray(t *testing.T) {
	s := New(tictactoe{}, nil, nil, nil)
	q, _ := agent.NewMessage(QueriesType, QueriesBody{Queries: []Query{{"protocol", "urn:nothing"}}})
	replies, err := s.HandleMessage(context.Background(), &agent.Inbound{Message: q})
	if err != nil || len(replies) != 1 {
		t.Fatalf("HandleMessage = %v, %v", replies, err)
	}
	if string(replies[0].Body) != `{"disclosures":[]}` {
		t.Errorf("body %s, want an empty disclosures array", replies[0].Body)
	}
}

func TestBadQueries(t *testing.T) {
	s := New(tictactoe{}, nil, nil, nil)
	for name, body := range map[string]string{
		"no queries":       `{}`,
		"empty queries":    `{"queries":[]}`,
		"no feature-type":  `{"queries":[{"match":"*"}]}`,
		"no match":         `{"queries":[{"feature-type":"protocol"}]}`,
		"match too long":   `{"queries":[{"feature-type":"protocol","match":"` + strings.Repeat("*", MaxMatchLen+1) + `"}]}`,
		"too many queries": `{"queries":[` + strings.Repeat(`{"feature-type":"protocol","match":"*"},`, MaxQueries) + `{"feature-type":"protocol","match":"*"}]}`,
		"not an object":    `[1]`,
		"wrong types":      `{"queries":[{"feature-type":1,"match":"*"}]}`,
	} {
		m := agent.Message{ID: "q", Type: QueriesType, From: "did:example:a", Body: json.RawMessage(body)}
		replies, err := s.HandleMessage(context.Background(), &agent.Inbound{Message: m})
		if agent.ErrorCode(err) != agent.CodeMsg || replies != nil {
			t.Errorf("%s: HandleMessage = %v, %v; want error %s", name, replies, err, agent.CodeMsg)
		}
	}
	_, err := s.HandleMessage(context.Background(), &agent.Inbound{Message: agent.Message{ID: "x", Type: PIURI + "/query"}})
	if agent.ErrorCode(err) != agent.CodeMsgUnsupported {
		t.Errorf("unknown message type: error %v, want %s", err, agent.CodeMsgUnsupported)
	}
}

func TestUnsolicitedDisclosure(t *testing.T) {
	s := New(tictactoe{}, nil, nil, nil)
	m := agent.Message{ID: "d", Type: DiscloseType, From: "did:example:a", Body: json.RawMessage(`{"disclosures":[]}`)}
	replies, err := s.HandleMessage(context.Background(), &agent.Inbound{Message: m})
	if replies != nil || err != nil {
		t.Errorf("HandleMessage = %v, %v; want nothing", replies, err)
	}
}

// pair wires alice and bob as fake agents with discover features, trust ping
// stand-in and report problem, alice's services sharing one Waiters.
func pair(t *testing.T, bobSpeaksDiscover bool) (alice, bob *fakes.Agent, svc *Service) {
	alice, bob = fakes.NewAgent("did:example:alice"), fakes.NewAgent("did:example:bob")
	fakes.Connect(alice, bob)
	w := new(agent.Waiters)
	svc = New(alice, alice, w, nil)
	alice.Register(svc.Protocol(), reportproblem.New(w, nil).Protocol())
	ping := agent.Protocol{PIURI: "https://didcomm.org/trust-ping/2.0", Roles: []string{"receiver"},
		Handler: agent.HandlerFunc(func(context.Context, *agent.Inbound) ([]agent.Message, error) { return nil, nil })}
	bob.Register(ping)
	if bobSpeaksDiscover {
		bob.Register(New(bob, bob, nil, nil).Protocol())
	}
	return alice, bob, svc
}

func TestQuery(t *testing.T) {
	alice, bob, svc := pair(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := svc.Query(ctx, "did:example:bob", Query{"protocol", "https://didcomm.org/trust-ping/2.*"}, Query{"protocol", "https://didcomm.org/discover-features/*"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Disclosure{
		{FeatureType: "protocol", ID: "https://didcomm.org/trust-ping/2.0", Roles: []string{"receiver"}},
		{FeatureType: "protocol", ID: PIURI, Roles: []string{RoleRequester, RoleResponder}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Query = %+v\nwant %+v", got, want)
	}
	if !Supports(got, "https://didcomm.org/trust-ping/2.*") || Supports(got, "https://didcomm.org/trust-ping/1.*") {
		t.Error("Supports disagrees with the disclosures")
	}
	sent := alice.Sent()
	if len(sent) != 1 || sent[0].Type != QueriesType || !slices.Equal(sent[0].To, []string{"did:example:bob"}) {
		t.Fatalf("alice sent %+v", sent)
	}
	if r := bob.Sent(); len(r) != 1 || r[0].ThID != sent[0].ID {
		t.Errorf("bob's disclose %+v is not in the query's thread", r)
	}
}

func TestQueryUnsupportedPeer(t *testing.T) {
	_, _, svc := pair(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := svc.Query(ctx, "did:example:bob", Query{"protocol", "*"})
	var p *reportproblem.Problem
	if !errors.As(err, &p) || p.Code != agent.CodeMsgUnsupported {
		t.Fatalf("Query error %v, want problem %s", err, agent.CodeMsgUnsupported)
	}
	if ctx.Err() != nil {
		t.Error("Query waited for its deadline instead of ending at the problem report")
	}
}

func TestQueryChecksQueriesFirst(t *testing.T) {
	alice, _, svc := pair(t, true)
	_, err := svc.Query(context.Background(), "did:example:bob", Query{FeatureType: "protocol"})
	if agent.ErrorCode(err) != agent.CodeMsg {
		t.Errorf("Query error %v, want %s", err, agent.CodeMsg)
	}
	if n := len(alice.Sent()); n != 0 {
		t.Errorf("an invalid query was sent (%d messages)", n)
	}
}

func TestQueryTimeoutAndStranger(t *testing.T) {
	alice, _, svc := pair(t, true)
	alice.Drop(true)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := svc.Query(ctx, "did:example:bob", Query{"protocol", "*"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Query error %v, want deadline exceeded", err)
	}

	// An answer in the thread from another DID is refused.
	w := new(agent.Waiters)
	var s *Service
	s = New(nil, senderFunc(func(_ context.Context, q agent.Message) error {
		r, _ := q.Reply(DiscloseType, DiscloseBody{Disclosures: []Disclosure{}})
		r.From = "did:example:mallory"
		_, err := s.HandleMessage(context.Background(), &agent.Inbound{Message: r})
		return err
	}), w, nil)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, err := s.Query(ctx2, "did:example:bob", Query{"protocol", "*"}); agent.ErrorCode(err) != agent.CodeTrust {
		t.Fatalf("Query error %v, want %s", err, agent.CodeTrust)
	}
}

type senderFunc func(ctx context.Context, m agent.Message) error

func (f senderFunc) Send(ctx context.Context, m agent.Message) error { return f(ctx, m) }
