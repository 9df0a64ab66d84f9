package oob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
)

// resolverFunc is a did.Resolver.
type resolverFunc func(ctx context.Context, d string) (*did.Doc, error)

func (f resolverFunc) Resolve(ctx context.Context, d string) (*did.Doc, error) { return f(ctx, d) }

// inbound records what it receives and refuses types in refuse.
type inbound struct {
	got    []agent.Message
	refuse string
}

func (in *inbound) Receive(_ context.Context, transport string, raw []byte) (*agent.Reply, error) {
	if transport != "oob" {
		return nil, fmt.Errorf("transport %q", transport)
	}
	var m agent.Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	in.got = append(in.got, m)
	if m.Type == in.refuse {
		return nil, agent.Errorf(agent.CodeMsg, "refused")
	}
	return nil, nil
}

// Accept resolves the inviter first, records the connection, and hands the
// attached messages to the router once; a refused message is not an error.
func TestAcceptorAccept(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	in := &inbound{refuse: "https://didcomm.org/x/1.0/refused"}
	resolved := 0
	a := NewAcceptor(AcceptorConfig{Service: s, Inbound: in, Logger: slog.New(slog.DiscardHandler),
		Resolver: resolverFunc(func(_ context.Context, d string) (*did.Doc, error) {
			resolved++
			switch {
			case strings.HasPrefix(d, "did:unknown:"):
				return nil, did.ErrUnsupportedMethod
			case d == "did:example:gone":
				return nil, errors.New("not found")
			}
			return &did.Doc{ID: d}, nil
		})})
	m1, _ := agent.NewMessage("https://didcomm.org/x/1.0/y", nil)
	m2, _ := agent.NewMessage("https://didcomm.org/x/1.0/refused", nil)
	inv, err := NewInvitation("did:example:them", WithMessage(m1), WithMessage(m2))
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Accept(ctx, inv.URL("https://them.example"))
	if err != nil {
		t.Fatal(err)
	}
	if c.TheirDID != "did:example:them" || c.Existing || len(in.got) != 2 || in.got[0].ID != m1.ID || in.got[0].PThID != inv.ID || resolved != 1 {
		t.Fatalf("connection %+v, received %d, resolved %d", c, len(in.got), resolved)
	}
	c, err = a.Accept(ctx, inv.Encode())
	if err != nil || !c.Existing || len(in.got) != 2 {
		t.Fatalf("accepted again: %+v %v, received %d", c, err, len(in.got))
	}

	for _, tc := range []struct{ from, code string }{
		{"did:unknown:x", agent.CodeDIDUnsupported},
		{"did:example:gone", agent.CodeDIDUnresolved},
	} {
		inv, _ := NewInvitation(tc.from)
		if _, err := a.Accept(ctx, inv.Encode()); agent.ErrorCode(err) != tc.code {
			t.Errorf("from %s: error %v, want %s", tc.from, err, tc.code)
		}
		if _, err := s.Connection(ctx, inv.ID); !errors.Is(err, agent.ErrNotFound) {
			t.Errorf("from %s: connection recorded", tc.from)
		}
	}
	if _, err := a.Accept(ctx, "not an invitation"); agent.ErrorCode(err) != agent.CodeMsg {
		t.Errorf("garbage: %v", err)
	}
}

// The standing invitation stays the same until the DID changes.
func TestStanding(t *testing.T) {
	ctx := context.Background()
	s, records := newService(t)
	a, err := s.Standing(ctx, "did:example:us")
	if err != nil {
		t.Fatal(err)
	}
	if a.Body.GoalCode != "connect" || a.From != "did:example:us" {
		t.Fatalf("%+v", a)
	}
	b, _ := s.Standing(ctx, "did:example:us")
	if b.ID != a.ID {
		t.Fatalf("standing invitation changed: %s, %s", a.ID, b.ID)
	}
	raw, err := records.Get(ctx, "agent", "standing-invitation")
	if err != nil || string(raw) != `"`+a.ID+`"` {
		t.Fatalf("record %s %v", raw, err)
	}
	c, _ := s.Standing(ctx, "did:example:new")
	if c.ID == a.ID || c.From != "did:example:new" {
		t.Fatalf("after a new DID: %+v", c)
	}
}
