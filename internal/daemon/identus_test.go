package daemon_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/protocols/oob"
)

// What the wallets of the Identus ecosystem look for in a mediator: the
// WebSocket address in the DID document, live-delivery-change with a
// string boolean (and POST /didcomm/, tested in transport/http).

// wsClient is a wallet's DIDComm WebSocket to the mediator: requests are
// packed by didcomm-node as the wallet, and what arrives is unpacked.
type wsClient struct {
	t      *testing.T
	f      *mediatorFixture
	ctx    context.Context
	conn   *websocket.Conn
	frames chan map[string]any
}

func (f *mediatorFixture) dialWebSocket(t *testing.T, ctx context.Context, u string) *wsClient {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dialling %s: %v", u, err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	c := &wsClient{t: t, f: f, ctx: ctx, conn: conn, frames: make(chan map[string]any, 16)}
	go func() {
		defer close(c.frames)
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				return
			}
			m, _, err := f.node.Unpack(string(b), nil, f.docs(t), f.wallet.secretJSON())
			if err != nil {
				t.Errorf("didcomm-node cannot unpack a frame: %v", err)
				continue
			}
			c.frames <- m
		}
	}()
	return c
}

// next returns the next message on the socket.
func (c *wsClient) next() map[string]any {
	c.t.Helper()
	select {
	case m, ok := <-c.frames:
		if !ok {
			c.t.Fatal("socket closed")
		}
		return m
	case <-time.After(15 * time.Second):
		c.t.Fatal("nothing arrived on the socket")
	}
	return nil
}

// request sends a request from the wallet on the socket and returns the answer.
func (c *wsClient) request(typ string, body any) map[string]any {
	c.t.Helper()
	m := c.f.msg(c.f.wallet, typ, body)
	if err := c.conn.Write(c.ctx, websocket.MessageText, []byte(c.f.pack(c.t, c.f.wallet, m))); err != nil {
		c.t.Fatal(err)
	}
	ans := c.next()
	if ans["thid"] != m["id"] {
		c.t.Fatalf("answer %v out of the thread of %s", ans, typ)
	}
	return ans
}

// webSocketService returns the uri of the first DIDCommMessaging service of
// doc whose scheme is ws or wss, as a wallet that takes the WebSocket from
// the DID document looks for it.
func webSocketService(t *testing.T, doc *did.Doc) string {
	t.Helper()
	for _, s := range doc.DIDCommServices() {
		if u, err := url.Parse(s.ServiceEndpoint.URI); err == nil && (u.Scheme == "ws" || u.Scheme == "wss") {
			return s.ServiceEndpoint.URI
		}
	}
	t.Fatalf("%s has no WebSocket DIDComm service: %+v", doc.ID, doc.DIDCommServices())
	return ""
}

// A client that knows only the mediator's invitation: it resolves the
// inviter's DID, opens the WebSocket the document names, gets mediation and
// registers its routed DID over it, switches live mode on with the string
// "true", and receives a message forwarded to it on that socket.
func TestMediatorWebSocketFromDIDDocument(t *testing.T) {
	f := newMediatorFixture(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var invitation struct {
		URL string `json:"url"`
	}
	if code := getJSON(t, f.med.base+"/invitation", "", &invitation); code != 200 {
		t.Fatalf("GET /invitation: %d", code)
	}
	inv, err := oob.Parse(invitation.URL)
	if err != nil {
		t.Fatal(err)
	}
	resolver := did.NewDefaultRegistry(nil, nil)
	doc, err := resolver.Resolve(ctx, inv.From)
	if err != nil {
		t.Fatal(err)
	}
	wsURL := webSocketService(t, doc)
	if wsURL != "ws://"+f.med.Addr()+"/didcomm" {
		t.Fatalf("WebSocket service %s, want the endpoint's ws URL", wsURL)
	}
	c := f.dialWebSocket(t, ctx, wsURL)

	f.granted(t, coord3, c.request(coord3+"mediate-request", nil))
	rdoc, err := resolver.Resolve(ctx, f.routing)
	if err != nil {
		t.Fatal(err)
	}
	if u := webSocketService(t, rdoc); u != wsURL {
		t.Fatalf("routing DID's WebSocket service %s, want %s", u, wsURL)
	}
	up := c.request(coord3+"recipient-update", map[string]any{"updates": []any{map[string]any{"recipient_did": f.inbox.did, "action": "add"}}})
	if res, _ := body(up)["updated"].([]any); len(res) != 1 || res[0].(map[string]any)["result"] != "success" {
		t.Fatalf("recipient-update answered %v", up)
	}
	st := c.request(pickup+"live-delivery-change", map[string]any{"live_delivery": "true"})
	if st["type"] != pickup+"status" || body(st)["live_delivery"] != true {
		t.Fatalf(`live-delivery-change "true" answered %v`, st)
	}

	sent, code, _ := f.send(t, "found you through your DID document", nil)
	if code != http.StatusAccepted {
		t.Fatalf("forward: %d", code)
	}
	push := c.next()
	if push["type"] != pickup+"delivery" {
		t.Fatalf("pushed %v", push)
	}
	ids, msgs := f.openDelivery(t, push)
	if len(msgs) != 1 {
		t.Fatalf("push carried %d messages", len(msgs))
	}
	sameJSON(t, msgs[0], sent)
	if st := c.request(pickup+"messages-received", map[string]any{"message_id_list": ids}); body(st)["message_count"] != 0.0 {
		t.Fatalf("after messages-received %v", st)
	}
	// "false" switches live mode off again.
	if st := c.request(pickup+"live-delivery-change", map[string]any{"live_delivery": "false"}); body(st)["live_delivery"] != false {
		t.Fatalf(`live-delivery-change "false" answered %v`, st)
	}
}

// An agent whose DIDs were made without the WebSocket service (an older
// data directory, or the setting off) gets new ones with it, and keeps
// answering the old ones; switching the setting off again does the same
// the other way.
func TestWebSocketServiceKeepsOldDIDs(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Mediator.Enabled = true
	cfg.HTTP.PublishWebSocketService = false
	routingDID := func(r *running) string {
		var q struct {
			RoutingDID string `json:"routing_did"`
		}
		getJSON(t, r.base+"/admin/mediation/queue", r.AdminToken(), &q)
		return q.RoutingDID
	}
	services := func(id string) []did.Service {
		doc, err := did.ResolvePeer2(id)
		if err != nil {
			t.Fatal(err)
		}
		return doc.DIDCommServices()
	}
	answered := func(r *running, to string) int {
		ping := `{"id":"` + agent.NewID() + `","type":"` + trustPing + `","to":["` + to + `"],"body":{"response_requested":"false"}}`
		code, _, _ := post(t, r.base+"/didcomm", agent.MediaTypePlain, []byte(ping))
		return code
	}

	a := start(t, cfg)
	oldDID, oldRouting := a.DID(), routingDID(a)
	if len(services(oldDID)) != 1 || len(services(oldRouting)) != 1 {
		t.Fatalf("with the setting off: %+v, routing %+v", services(oldDID), services(oldRouting))
	}
	a.Shutdown(context.Background())

	cfg.HTTP.PublishWebSocketService = true
	b := start(t, cfg)
	newDID, newRouting := b.DID(), routingDID(b)
	if newDID == oldDID || newRouting == oldRouting {
		t.Fatal("publishing the WebSocket service must give new DIDs")
	}
	for _, id := range []string{newDID, newRouting} {
		if s := services(id); len(s) != 2 || s[1].ServiceEndpoint.URI != cfg.WebSocketEndpoint() {
			t.Fatalf("%s services %+v", id, s)
		}
	}
	var inv struct {
		Invitation map[string]any `json:"invitation"`
	}
	if getJSON(t, b.base+"/invitation", "", &inv); inv.Invitation["from"] != newDID {
		t.Fatalf("the standing invitation is from %v, want the new DID", inv.Invitation["from"])
	}
	for _, id := range []string{oldDID, oldRouting, newDID, newRouting} {
		if code := answered(b, id); code != http.StatusAccepted {
			t.Fatalf("a message to %s: %d", id, code)
		}
	}
	if code := answered(b, "did:example:stranger"); code == http.StatusAccepted {
		t.Fatal("a message to a DID the agent does not own was accepted: the check above proves nothing")
	}
	b.Shutdown(context.Background())

	// Same settings: same DIDs. Off again: new DIDs without it, all the
	// earlier ones answered.
	c := start(t, cfg)
	if c.DID() != newDID || routingDID(c) != newRouting {
		t.Fatal("DIDs changed across a restart with the same settings")
	}
	c.Shutdown(context.Background())
	cfg.HTTP.PublishWebSocketService = false
	d := start(t, cfg)
	if d.DID() == newDID || d.DID() == oldDID || len(services(d.DID())) != 1 || strings.Contains(d.DID(), "ws:") {
		t.Fatalf("with the setting off again: %s %+v", d.DID(), services(d.DID()))
	}
	for _, id := range []string{oldDID, oldRouting, newDID, newRouting} {
		if code := answered(d, id); code != http.StatusAccepted {
			t.Fatalf("after switching off, a message to %s: %d", id, code)
		}
	}
}
