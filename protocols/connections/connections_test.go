package connections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/protocols/oob"
	"github.com/agentd/agentd/protocols/trustping"
)

var ctx = context.Background()

// connect makes a connection from inviter to invitee and returns both
// exchanges after the messages have flowed.
func connect(t *testing.T, n *network, inviter, invitee *node) (*aip.ConnectionExchange, *aip.ConnectionExchange) {
	t.Helper()
	ex, err := inviter.svc.CreateInvitation(ctx, "to "+invitee.did, "")
	if err != nil {
		t.Fatal(err)
	}
	if ex.State != aip.ConnExInvitation || ex.MyRole != aip.ConnExInviter || ex.Invitation.URL == "" {
		t.Fatalf("invitation exchange: %+v", ex)
	}
	iex, err := invitee.svc.AcceptInvitation(ctx, "inviter", ex.Invitation.URL)
	if err != nil {
		t.Fatal(err)
	}
	if iex.State != aip.ConnExRequest || iex.MyRole != aip.ConnExInvitee || iex.TheirDID != inviter.did {
		t.Fatalf("invitee exchange: %+v", iex)
	}
	n.pump(t)
	a, err := inviter.svc.ConnectionExchange(ctx, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := invitee.svc.ConnectionExchange(ctx, iex.ID)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestConnectionExchangeBothSides(t *testing.T) {
	n := newNetwork()
	alice, bob := n.add(t, "alice"), n.add(t, "bob")
	ex, err := alice.svc.CreateInvitation(ctx, "bob", "Alice Inc")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := oob.Parse(ex.Invitation.URL)
	if err != nil || inv.Body.Label != "Alice Inc" || inv.From != alice.did || inv.Body.GoalCode != GoalCode || inv.ID != ex.Invitation.MessageID {
		t.Fatalf("invitation %+v %v", inv, err)
	}
	iex, err := bob.svc.AcceptInvitation(ctx, "alice", ex.Invitation.URL)
	if err != nil {
		t.Fatal(err)
	}
	if iex.TheirLabel != "Alice Inc" {
		t.Errorf("their label %q", iex.TheirLabel)
	}
	// The ping left with the exchange, in one unit of work.
	outs := bob.store.Outbound()
	var ping agent.Message
	for _, o := range outs {
		if o.MessageType == trustping.PingType {
			json.Unmarshal(o.Payload, &ping)
		}
	}
	var body pingBody
	ping.DecodeBody(&body)
	if ping.PThID != inv.ID || !body.ResponseRequested || body.Label != "BOB" {
		t.Fatalf("ping %+v body %+v", ping, body)
	}
	// Accepting again gives the same exchange and sends nothing more.
	again, err := bob.svc.AcceptInvitation(ctx, "alice", ex.Invitation.URL)
	if err != nil || again.ID != iex.ID || len(bob.store.Outbound()) != len(outs) {
		t.Fatalf("second accept: %+v %v", again, err)
	}
	n.pump(t)
	a, _ := alice.svc.ConnectionExchange(ctx, ex.ID)
	b, _ := bob.svc.ConnectionExchange(ctx, iex.ID)
	if a.State != aip.ConnExDone || b.State != aip.ConnExDone || a.TheirDID != bob.did || a.TheirLabel != "BOB" {
		t.Fatalf("states %+v / %+v", a, b)
	}
	ca, err := alice.svc.Connection(ctx, a.ID)
	if err != nil || ca.TheirDID != bob.did || ca.MyDID != alice.did || ca.Alias != "bob" || ca.TheirLabel != "BOB" {
		t.Fatalf("alice's connection %+v %v", ca, err)
	}
	cb, err := bob.svc.ConnectionByDID(ctx, alice.did+"#key-1")
	if err != nil || cb.ID != b.ID || cb.TheirDID != alice.did || cb.TheirLabel != "Alice Inc" {
		t.Fatalf("bob's connection %+v %v", cb, err)
	}
	// Events: alice INVITATION then DONE; bob REQUEST then DONE.
	for _, c := range []struct {
		nd   *node
		want []aip.ConnExState
	}{{alice, []aip.ConnExState{aip.ConnExInvitation, aip.ConnExDone}}, {bob, []aip.ConnExState{aip.ConnExRequest, aip.ConnExDone}}} {
		var got []aip.ConnExState
		for _, e := range c.nd.drain() {
			got = append(got, e.Record.(*aip.ConnectionExchange).State)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s events %v, want %v", c.nd.did, got, c.want)
		}
	}
	// A webhook per change went to the outbox.
	hooks := 0
	for _, o := range alice.store.Outbound() {
		if o.Endpoint == "webhook+https://app.example/alice/topics/"+aip.TopicConnectionExchange {
			hooks++
			var ev aip.Event
			if json.Unmarshal(o.Payload, &ev) != nil || ev.ID == "" || ev.Topic != aip.TopicConnectionExchange {
				t.Errorf("webhook body %s", o.Payload)
			}
		}
	}
	if hooks != 2 {
		t.Errorf("%d webhooks", hooks)
	}
}

func TestInvitationIsSingleUse(t *testing.T) {
	n := newNetwork()
	alice, bob, carol := n.add(t, "alice"), n.add(t, "bob"), n.add(t, "carol")
	ex, err := alice.svc.CreateInvitation(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.svc.AcceptInvitation(ctx, "", ex.Invitation.URL); err != nil {
		t.Fatal(err)
	}
	n.pump(t)
	before := alice.store.Records.Len(KindConnection)
	cex, err := carol.svc.AcceptInvitation(ctx, "", ex.Invitation.URL)
	if err != nil {
		t.Fatal(err)
	}
	n.pump(t)
	if got := alice.store.Records.Len(KindConnection); got != before {
		t.Errorf("alice has %d connections, had %d", got, before)
	}
	a, _ := alice.svc.ConnectionExchange(ctx, ex.ID)
	if a.State != aip.ConnExDone || a.TheirDID != bob.did {
		t.Errorf("alice's exchange changed: %+v", a)
	}
	c, _ := carol.svc.ConnectionExchange(ctx, cex.ID)
	if c.State != aip.ConnExAbandoned || c.ErrorMessage == "" {
		t.Errorf("carol's exchange: %+v", c)
	}
	if _, err := carol.svc.ConnectionByDID(ctx, alice.did); !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("carol has a connection: %v", err)
	}
	// Bob talks on after the exchange: his messages still pass.
	conn, _ := bob.svc.ConnectionByDID(ctx, alice.did)
	if _, err := bob.svc.SendBasicMessage(ctx, conn.ID, "still here"); err != nil {
		t.Fatal(err)
	}
	n.pump(t)
	msgs, _, _ := alice.svc.BasicMessages(ctx, a.ID, aip.Page{})
	if len(msgs) != 1 || msgs[0].Content != "still here" {
		t.Errorf("messages %+v", msgs)
	}
}

func TestWithdrawnInvitationRefusesAnswers(t *testing.T) {
	n := newNetwork()
	alice, bob := n.add(t, "alice"), n.add(t, "bob")
	ex, _ := alice.svc.CreateInvitation(ctx, "", "")
	if err := alice.svc.DeleteConnectionExchange(ctx, ex.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.svc.ConnectionExchange(ctx, ex.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("not deleted: %v", err)
	}
	var states []aip.ConnExState
	for _, e := range alice.drain() {
		states = append(states, e.Record.(*aip.ConnectionExchange).State)
	}
	if !slices.Equal(states, []aip.ConnExState{aip.ConnExInvitation, aip.ConnExAbandoned}) {
		t.Errorf("events %v", states)
	}
	bex, _ := bob.svc.AcceptInvitation(ctx, "", ex.Invitation.URL)
	n.pump(t)
	b, _ := bob.svc.ConnectionExchange(ctx, bex.ID)
	if b.State != aip.ConnExAbandoned || alice.store.Records.Len(KindConnection) != 0 {
		t.Errorf("bob %+v, alice connections %d", b, alice.store.Records.Len(KindConnection))
	}
}

func TestUnauthenticatedAnswerRefused(t *testing.T) {
	n := newNetwork()
	alice := n.add(t, "alice")
	ex, _ := alice.svc.CreateInvitation(ctx, "", "")
	ping, _ := trustping.NewPing(alice.did, true)
	ping.From, ping.PThID = "did:example:mallory", ex.Invitation.MessageID
	if err := alice.receive(t, ping, false); agent.ErrorCode(err) != agent.CodeTrust {
		t.Fatalf("got %v", err)
	}
	a, _ := alice.svc.ConnectionExchange(ctx, ex.ID)
	if a.State != aip.ConnExInvitation || alice.store.Records.Len(KindConnection) != 0 {
		t.Fatalf("changed: %+v", a)
	}
}

func TestStatesNeverGoBack(t *testing.T) {
	n := newNetwork()
	alice, bob := n.add(t, "alice"), n.add(t, "bob")
	_, b := connect(t, n, alice, bob)
	// A late problem report on the ping does not undo DONE.
	pr := agent.ProblemReport(agent.Message{ID: b.ID, From: bob.did}, agent.Errorf(agent.CodeMe, "x"))
	e, _ := readJSON[exchange](ctx, &bob.store.Records, KindExchange, b.ID)
	pr.PThID, pr.From, pr.To = e.PingID, alice.did, []string{bob.did}
	bob.receive(t, pr, true)
	got, _ := bob.svc.ConnectionExchange(ctx, b.ID)
	if got.State != aip.ConnExDone {
		t.Fatalf("state went %s", got.State)
	}
}

func TestBasicMessages(t *testing.T) {
	n := newNetwork()
	alice, bob, eve := n.add(t, "alice"), n.add(t, "bob"), n.add(t, "eve")
	a, b := connect(t, n, alice, bob)
	alice.drain()
	for i := range 5 {
		if _, err := alice.svc.SendBasicMessage(ctx, a.ID, fmt.Sprint("hello ", i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := bob.svc.SendBasicMessage(ctx, b.ID, "hi alice"); err != nil {
		t.Fatal(err)
	}
	n.pump(t)
	got, next, err := bob.svc.BasicMessages(ctx, b.ID, aip.Page{Limit: 4})
	if err != nil || len(got) != 4 || next == "" {
		t.Fatalf("page 1: %d %q %v", len(got), next, err)
	}
	// Bob's own message left before alice's arrived: newest first by when bob stored them.
	if got[0].Direction != aip.Inbound || got[0].Content != "hello 4" || got[1].Content != "hello 3" {
		t.Fatalf("order: %+v %+v", got[0], got[1])
	}
	rest, next2, _ := bob.svc.BasicMessages(ctx, b.ID, aip.Page{Limit: 4, NextToken: next})
	if len(rest) != 2 || next2 != "" || rest[0].Content != "hello 0" || rest[1].Direction != aip.Outbound || rest[1].Content != "hi alice" {
		t.Fatalf("page 2: %+v %q", rest, next2)
	}
	ev := alice.drain()
	if len(ev) != 1 || ev[0].Topic != aip.TopicBasicMessage || ev[0].Record.(*aip.BasicMessage).Content != "hi alice" {
		t.Fatalf("alice's events %+v", ev)
	}
	// Filter by having messages.
	yes, no := true, false
	if cs, _, _ := alice.svc.Connections(ctx, aip.Page{}, aip.ConnectionFilter{HasBasicMessages: &yes}); len(cs) != 1 {
		t.Errorf("with messages: %d", len(cs))
	}
	// Eve has no connection with alice: refused, nothing stored.
	m, _ := agent.NewMessage(BasicMessageType, BasicMessageBody{Content: "spam"})
	m.From, m.To = eve.did, []string{alice.did}
	before := alice.store.Records.Len(KindBasicMessage)
	if err := alice.receive(t, m, true); agent.ErrorCode(err) != agent.CodeForbidden {
		t.Fatalf("eve: %v", err)
	}
	if alice.store.Records.Len(KindBasicMessage) != before {
		t.Fatal("eve's message stored")
	}
	// Delete by ids, then all, then the connection.
	del, err := bob.svc.DeleteBasicMessages(ctx, []string{got[0].ID, "nope", got[1].ID})
	if err != nil || !slices.Equal(del, []string{got[0].ID, got[1].ID}) {
		t.Fatalf("deleted %v %v", del, err)
	}
	all, err := bob.svc.DeleteBasicMessagesForConnection(ctx, b.ID)
	if err != nil || len(all) != 4 {
		t.Fatalf("deleted all: %v %v", all, err)
	}
	if cs, _, _ := bob.svc.Connections(ctx, aip.Page{}, aip.ConnectionFilter{HasBasicMessages: &no}); len(cs) != 1 {
		t.Errorf("without messages: %d", len(cs))
	}
	if err := alice.svc.DeleteConnection(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if alice.store.Records.Len(KindBasicMessage) != 0 || alice.store.Records.Len(KindBasicMsgIndex) != 0 || alice.store.Records.Len(KindConnIndex) != 0 {
		t.Fatal("left-overs after deleting the connection")
	}
	if _, err := alice.svc.Connection(ctx, a.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatal(err)
	}
}

func TestPagingIsStableUnderInserts(t *testing.T) {
	n := newNetwork()
	alice := n.add(t, "alice")
	var ids []string
	for range 7 {
		ex, err := alice.svc.CreateInvitation(ctx, "", "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ex.ID)
	}
	p1, next, err := alice.svc.ConnectionExchanges(ctx, aip.Page{Limit: 3}, aip.ConnectionExchangeFilter{})
	if err != nil || len(p1) != 3 || p1[0].ID != ids[6] {
		t.Fatal(err, len(p1))
	}
	alice.svc.CreateInvitation(ctx, "", "") // a newer one does not shift the pages
	var seen []string
	for _, e := range p1 {
		seen = append(seen, e.ID)
	}
	for next != "" {
		var p []*aip.ConnectionExchange
		p, next, err = alice.svc.ConnectionExchanges(ctx, aip.Page{Limit: 3, NextToken: next}, aip.ConnectionExchangeFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p {
			seen = append(seen, e.ID)
		}
	}
	slices.Reverse(ids)
	if !slices.Equal(seen, ids) {
		t.Fatalf("seen %v\nwant %v", seen, ids)
	}
	// Filters use their indexes; a bad token is refused.
	got, _, _ := alice.svc.ConnectionExchanges(ctx, aip.Page{}, aip.ConnectionExchangeFilter{Role: aip.ConnExInvitee})
	if len(got) != 0 {
		t.Errorf("invitee exchanges: %d", len(got))
	}
	got, _, _ = alice.svc.ConnectionExchanges(ctx, aip.Page{}, aip.ConnectionExchangeFilter{Role: aip.ConnExInviter, States: []aip.ConnExState{aip.ConnExDone, aip.ConnExInvitation}})
	if len(got) != 8 {
		t.Errorf("inviter exchanges: %d", len(got))
	}
	if _, _, err := alice.svc.ConnectionExchanges(ctx, aip.Page{NextToken: "!!"}, aip.ConnectionExchangeFilter{}); agent.ErrorCode(err) != agent.CodeMsg {
		t.Errorf("bad token: %v", err)
	}
}

func TestDeletionRunsAgainWhenAMessageArrivesMeanwhile(t *testing.T) {
	n := newNetwork()
	alice, bob := n.add(t, "alice"), n.add(t, "bob")
	a, _ := connect(t, n, alice, bob)
	bob.svc.SendBasicMessage(ctx, mustConn(t, bob, alice.did), "one")
	n.pump(t)
	// A message stored between the deletion's listing and its commit
	// makes the commit conflict; Update's second run deletes it too.
	w := alice.store.Agent().New()
	ids, err := alice.svc.deleteMessagesOf(ctx, w, a.ID)
	if err != nil || len(ids) != 1 {
		t.Fatal(ids, err)
	}
	bob.svc.SendBasicMessage(ctx, mustConn(t, bob, alice.did), "two")
	n.pump(t)
	if err := alice.store.Agent().Commit(ctx, w); !errors.Is(err, agent.ErrConflict) {
		t.Fatalf("commit after a new message: %v", err)
	}
	if err := alice.svc.DeleteConnection(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if alice.store.Records.Len(KindBasicMessage) != 0 {
		t.Fatal("a message outlived its connection")
	}
}

func TestNewestConnectionOfADIDWins(t *testing.T) {
	n := newNetwork()
	alice, bob := n.add(t, "alice"), n.add(t, "bob")
	first, _ := connect(t, n, alice, bob)
	time.Sleep(time.Millisecond)
	second, _ := connect(t, n, alice, bob)
	got, err := alice.svc.ConnectionOf(ctx, alice.store.Agent().New(), bob.did+"#x")
	if err != nil || got.ID != second.ID || got.ID == first.ID {
		t.Fatalf("got %+v %v, want %s", got, err, second.ID)
	}
	if err := alice.svc.DeleteConnection(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := alice.svc.ConnectionByDID(ctx, bob.did); got == nil || got.ID != first.ID {
		t.Fatalf("after delete: %+v", got)
	}
	cs, _, _ := alice.svc.Connections(ctx, aip.Page{}, aip.ConnectionFilter{ConnectionIDs: []string{first.ID, "nope", second.ID}})
	if len(cs) != 1 || cs[0].ID != first.ID {
		t.Fatalf("by ids: %+v", cs)
	}
}

func mustConn(t *testing.T, nd *node, peer string) string {
	t.Helper()
	c, err := nd.svc.ConnectionByDID(ctx, peer)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}
