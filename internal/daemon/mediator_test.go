package daemon_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/did/didtest"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/didcommnode"
)

// These tests run agentd as a mediator with didcomm-node 0.4.1 as the
// wallet: the wallet asks for mediation and registers a DID whose service
// routes through the mediator, a second didcomm-node party packs a message
// for that DID (didcomm-node wraps it in a forward for the routing key by
// itself), and the wallet picks it up over HTTP and over a live WebSocket and
// unpacks exactly what was sent.

const (
	coord3 = "https://didcomm.org/coordinate-mediation/3.0/"
	coord2 = "https://didcomm.org/coordinate-mediation/2.0/"
	pickup = "https://didcomm.org/messagepickup/3.0/"
)

type mediatorFixture struct {
	med        *running
	node       *didcommnode.Peer
	medDoc     any
	wallet     *wallet // the wallet's own DID, which asks for mediation
	routing    string  // the mediator's routing DID
	routingKey string
	routingDoc any
	inbox      *wallet // the wallet's DID routed through the mediator
	sender     *wallet // a party that writes to the wallet
}

func newMediatorFixture(t *testing.T, tweak func(*config.Config)) *mediatorFixture {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.Mediator.Enabled = true
	if tweak != nil {
		tweak(&cfg)
	}
	m := start(t, cfg)
	return &mediatorFixture{med: m, node: didcommnode.Start(t), medDoc: didDocJSON(t, m.base), wallet: newWallet(t, ""), sender: newWallet(t, "")}
}

// routedWallet is a party whose DIDComm service is the mediator's endpoint
// with the mediator's routing key.
func routedWallet(t *testing.T, endpoint, routingKey string) *wallet {
	t.Helper()
	svc := did.Service{ID: "#didcomm", Type: did.ServiceTypeDIDCommMessaging, ServiceEndpoint: did.ServiceEndpoint{
		URI: endpoint, Accept: []string{"didcomm/v2"}, RoutingKeys: []string{routingKey}}}
	p := didtest.NewPeer2(t, svc)
	return &wallet{did: p.DID, doc: p.Doc, secrets: p.Keys()}
}

func (f *mediatorFixture) docs(t *testing.T) []any {
	out := []any{f.medDoc, docJSON(t, f.wallet.doc), docJSON(t, f.sender.doc)}
	if f.routingDoc != nil {
		out = append(out, f.routingDoc)
	}
	if f.inbox != nil {
		out = append(out, docJSON(t, f.inbox.doc))
	}
	return out
}

// msg builds a request from w to the mediator asking for the answer on the connection.
func (f *mediatorFixture) msg(w *wallet, typ string, body any) map[string]any {
	if body == nil {
		body = map[string]any{}
	}
	return map[string]any{
		"id": agent.NewID(), "type": typ, "from": w.did, "to": []string{f.med.DID()},
		"created_time": time.Now().Unix(), "return_route": "all", "body": body,
	}
}

func (f *mediatorFixture) pack(t *testing.T, w *wallet, m map[string]any) string {
	t.Helper()
	packed, _, err := f.node.PackEncrypted(m, f.med.DID(), w.did, "", map[string]any{"forward": false}, f.docs(t), w.secretJSON())
	if err != nil {
		t.Fatal(err)
	}
	return packed
}

// request sends a request from w over HTTP and unpacks the answer.
func (f *mediatorFixture) request(t *testing.T, w *wallet, typ string, body any) map[string]any {
	t.Helper()
	m := f.msg(w, typ, body)
	code, ct, resp := post(t, f.med.base+"/didcomm", agent.MediaTypeEncrypted, []byte(f.pack(t, w, m)))
	if code != http.StatusOK || ct != agent.MediaTypeEncrypted {
		t.Fatalf("%s: status %d %s %s", typ, code, ct, resp)
	}
	ans, _, err := f.node.Unpack(string(resp), nil, f.docs(t), w.secretJSON())
	if err != nil {
		t.Fatalf("didcomm-node cannot unpack the answer to %s: %v", typ, err)
	}
	if ans["thid"] != m["id"] && ans["pthid"] != m["id"] {
		t.Fatalf("answer %v is not in the request's thread", ans)
	}
	return ans
}

func body(m map[string]any) map[string]any {
	b, _ := m["body"].(map[string]any)
	return b
}

// grant gets mediation for the wallet and creates its routed DID.
func (f *mediatorFixture) grant(t *testing.T, prefix string) {
	t.Helper()
	f.granted(t, prefix, f.request(t, f.wallet, prefix+"mediate-request", nil))
}

// granted checks the answer to a mediate-request and creates the wallet's
// routed DID.
func (f *mediatorFixture) granted(t *testing.T, prefix string, ans map[string]any) {
	t.Helper()
	if ans["type"] != prefix+"mediate-grant" {
		t.Fatalf("mediate-request answered %v", ans)
	}
	switch rd := body(ans)["routing_did"].(type) {
	case string: // 2.0
		f.routing = rd
	case []any: // 3.0
		f.routing = rd[0].(string)
	}
	if !strings.HasPrefix(f.routing, "did:peer:2.") {
		t.Fatalf("routing_did %v", body(ans)["routing_did"])
	}
	doc, err := did.ResolvePeer2(f.routing)
	if err != nil {
		t.Fatal(err)
	}
	ka, _ := doc.KeyAgreement()
	svcs := doc.DIDCommServices()
	if len(ka) != 1 || len(svcs) != 2 || svcs[0].ServiceEndpoint.URI != f.med.cfg.Endpoint() || svcs[1].ServiceEndpoint.URI != f.med.cfg.WebSocketEndpoint() {
		t.Fatalf("routing DID document %+v", doc)
	}
	f.routingKey, f.routingDoc = ka[0].ID, docJSON(t, doc)
	f.inbox = routedWallet(t, f.med.cfg.Endpoint(), f.routingKey)
}

// register adds a recipient DID and returns the result.
func (f *mediatorFixture) register(t *testing.T, prefix, update, value string) string {
	t.Helper()
	ans := f.request(t, f.wallet, prefix+update, map[string]any{"updates": []any{map[string]any{"recipient_did": value, "action": "add"}}})
	up, _ := body(ans)["updated"].([]any)
	if len(up) != 1 {
		t.Fatalf("update answered %v", ans)
	}
	return up[0].(map[string]any)["result"].(string)
}

// send has the sender pack a message for the wallet's routed DID (didcomm-node
// wraps the forward itself) and post it where didcomm-node says.
func (f *mediatorFixture) send(t *testing.T, text string, fwdHeaders map[string]any) (map[string]any, int, []byte) {
	t.Helper()
	m := map[string]any{
		"id": agent.NewID(), "typ": agent.MediaTypePlain, "type": "https://didcomm.org/basicmessage/2.0/message",
		"from": f.sender.did, "to": []string{f.inbox.did}, "created_time": time.Now().Unix(),
		"body": map[string]any{"content": text},
	}
	opts := map[string]any{}
	if fwdHeaders != nil {
		opts["forward_headers"] = fwdHeaders
	}
	packed, meta, err := f.node.PackEncrypted(m, f.inbox.did, f.sender.did, "", opts, f.docs(t), f.sender.secretJSON())
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := meta["messaging_service"].(map[string]any)
	if svc == nil || svc["service_endpoint"] != f.med.cfg.Endpoint() {
		t.Fatalf("didcomm-node did not route through the mediator: %v", meta)
	}
	if kids := outerKids(t, packed); len(kids) != 1 || kids[0] != f.routingKey {
		t.Fatalf("forward encrypted to %v, want the routing key %s", kids, f.routingKey)
	}
	code, _, resp := post(t, svc["service_endpoint"].(string), agent.MediaTypeEncrypted, []byte(packed))
	return m, code, resp
}

func outerKids(t *testing.T, packed string) []string {
	var jwe struct {
		Recipients []struct {
			Header struct {
				KID string `json:"kid"`
			} `json:"header"`
		} `json:"recipients"`
	}
	if err := json.Unmarshal([]byte(packed), &jwe); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range jwe.Recipients {
		out = append(out, r.Header.KID)
	}
	return out
}

// openDelivery unpacks the messages attached to a delivery as the routed
// wallet and returns them with their attachment ids.
func (f *mediatorFixture) openDelivery(t *testing.T, delivery map[string]any) ([]string, []map[string]any) {
	t.Helper()
	atts, _ := delivery["attachments"].([]any)
	var ids []string
	var msgs []map[string]any
	for _, a := range atts {
		att := a.(map[string]any)
		data := att["data"].(map[string]any)
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(data["base64"].(string), "="))
		if err != nil {
			t.Fatal(err)
		}
		m, meta, err := f.node.Unpack(string(raw), nil, f.docs(t), f.inbox.secretJSON())
		if err != nil {
			t.Fatalf("didcomm-node cannot unpack the delivered message: %v", err)
		}
		if meta["authenticated"] != true || meta["encrypted_from_kid"] != f.sender.secrets[0].ID {
			t.Fatalf("delivered message metadata %v", meta)
		}
		ids = append(ids, att["id"].(string))
		msgs = append(msgs, m)
	}
	return ids, msgs
}

func sameJSON(t *testing.T, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	var gv, wv any
	json.Unmarshal(g, &gv)
	json.Unmarshal(w, &wv)
	g, _ = json.Marshal(gv)
	w, _ = json.Marshal(wv)
	if string(g) != string(w) {
		t.Fatalf("got %s\nwant %s", g, w)
	}
}

func problemCode(t *testing.T, m map[string]any) string {
	t.Helper()
	if m["type"] != agent.ProblemReportType {
		t.Fatalf("want a problem report, got %v", m)
	}
	c, _ := body(m)["code"].(string)
	return c
}

func TestMediatorInteropHTTPPickup(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, update string
		// byKeyID registers the routed DID's key id, as 2.0 wallets do.
		byKeyID bool
	}{
		{"3.0", coord3, "recipient-update", false},
		{"2.0", coord2, "keylist-update", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newMediatorFixture(t, nil)
			f.grant(t, tc.prefix)
			value := f.inbox.did
			if tc.byKeyID {
				value = f.inbox.secrets[0].ID
			}
			if r := f.register(t, tc.prefix, tc.update, value); r != "success" {
				t.Fatalf("register: %s", r)
			}
			if r := f.register(t, tc.prefix, tc.update, value); r != "no_change" {
				t.Fatalf("register again: %s", r)
			}
			query := "recipient-query"
			list := "dids"
			if tc.prefix == coord2 {
				query, list = "keylist-query", "keys"
			}
			q := f.request(t, f.wallet, tc.prefix+query, map[string]any{"paginate": map[string]any{"limit": 10, "offset": 0}})
			entries, _ := body(q)[list].([]any)
			if len(entries) != 1 || entries[0].(map[string]any)["recipient_did"] != value || body(q)["pagination"] == nil {
				t.Fatalf("%s answered %v", query, q)
			}

			sent1, code, resp := f.send(t, "hello", map[string]any{"expires_time": time.Now().Add(time.Hour).Unix()})
			if code != http.StatusAccepted {
				t.Fatalf("forward: %d %s", code, resp)
			}
			sent2, code, _ := f.send(t, "second", nil)
			if code != http.StatusAccepted {
				t.Fatalf("forward: %d", code)
			}
			st := f.request(t, f.wallet, pickup+"status-request", nil)
			if st["type"] != pickup+"status" || body(st)["message_count"] != 2.0 || body(st)["live_delivery"] != false {
				t.Fatalf("status %v", st)
			}
			for _, k := range []string{"total_bytes", "oldest_received_time", "newest_received_time", "longest_waited_seconds"} {
				if _, ok := body(st)[k]; !ok {
					t.Errorf("status lacks %s", k)
				}
			}
			st = f.request(t, f.wallet, pickup+"status-request", map[string]any{"recipient_did": f.inbox.did})
			if body(st)["message_count"] != 2.0 || body(st)["recipient_did"] != f.inbox.did {
				t.Fatalf("filtered status %v", st)
			}

			d := f.request(t, f.wallet, pickup+"delivery-request", map[string]any{"limit": 1})
			if d["type"] != pickup+"delivery" {
				t.Fatalf("delivery-request answered %v", d)
			}
			ids, msgs := f.openDelivery(t, d)
			if len(msgs) != 1 {
				t.Fatalf("%d messages delivered, want the limit of 1", len(msgs))
			}
			sameJSON(t, msgs[0], sent1)
			d = f.request(t, f.wallet, pickup+"delivery-request", map[string]any{"limit": 10, "recipient_did": f.inbox.did})
			ids2, msgs := f.openDelivery(t, d)
			if len(msgs) != 2 || ids2[0] != ids[0] || body(d)["recipient_did"] != f.inbox.did {
				t.Fatalf("second delivery: %d messages; delivered messages must stay until messages-received", len(msgs))
			}
			sameJSON(t, msgs[1], sent2)

			st = f.request(t, f.wallet, pickup+"messages-received", map[string]any{"message_id_list": []string{ids[0]}})
			if st["type"] != pickup+"status" || body(st)["message_count"] != 1.0 {
				t.Fatalf("after messages-received %v", st)
			}
			st = f.request(t, f.wallet, pickup+"messages-received", map[string]any{"message_id_list": ids2})
			if body(st)["message_count"] != 0.0 {
				t.Fatalf("after the second messages-received %v", st)
			}
			d = f.request(t, f.wallet, pickup+"delivery-request", map[string]any{"limit": 10})
			if d["type"] != pickup+"status" {
				t.Fatalf("delivery-request of an empty queue answered %v", d)
			}
			// Live mode needs a WebSocket.
			pr := f.request(t, f.wallet, pickup+"live-delivery-change", map[string]any{"live_delivery": true})
			if c := problemCode(t, pr); c != "e.m.live-mode-not-supported" {
				t.Fatalf("live over HTTP: %s", c)
			}
		})
	}
}

func TestMediatorInteropLiveWebSocket(t *testing.T) {
	f := newMediatorFixture(t, nil)
	f.grant(t, coord3)
	if r := f.register(t, coord3, "recipient-update", f.inbox.did); r != "success" {
		t.Fatal(r)
	}
	// A message waiting before the socket opens.
	early, code, _ := f.send(t, "waiting", nil)
	if code != http.StatusAccepted {
		t.Fatal(code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+f.med.Addr()+"/didcomm", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	frames := make(chan map[string]any, 16)
	go func() {
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				close(frames)
				return
			}
			m, _, err := f.node.Unpack(string(b), nil, f.docs(t), f.wallet.secretJSON())
			if err != nil {
				t.Errorf("didcomm-node cannot unpack a frame: %v", err)
				continue
			}
			frames <- m
		}
	}()
	next := func() map[string]any {
		t.Helper()
		select {
		case m, ok := <-frames:
			if !ok {
				t.Fatal("socket closed")
			}
			return m
		case <-time.After(15 * time.Second):
			t.Fatal("no frame")
		}
		return nil
	}
	wsRequest := func(typ string, b any) map[string]any {
		t.Helper()
		m := f.msg(f.wallet, typ, b)
		if err := conn.Write(ctx, websocket.MessageText, []byte(f.pack(t, f.wallet, m))); err != nil {
			t.Fatal(err)
		}
		ans := next()
		if ans["thid"] != m["id"] {
			t.Fatalf("answer %v out of thread", ans)
		}
		return ans
	}

	st := wsRequest(pickup+"live-delivery-change", map[string]any{"live_delivery": true})
	if st["type"] != pickup+"status" || body(st)["live_delivery"] != true || body(st)["message_count"] != 1.0 {
		t.Fatalf("live-delivery-change answered %v", st)
	}
	// Messages queued before live mode still need a delivery-request.
	d := wsRequest(pickup+"delivery-request", map[string]any{"limit": 10})
	ids, msgs := f.openDelivery(t, d)
	if len(msgs) != 1 {
		t.Fatalf("delivery %v", d)
	}
	sameJSON(t, msgs[0], early)
	wsRequest(pickup+"messages-received", map[string]any{"message_id_list": ids})

	// A new forward is pushed as it arrives.
	sent, code, _ := f.send(t, "live!", nil)
	if code != http.StatusAccepted {
		t.Fatal(code)
	}
	push := next()
	if push["type"] != pickup+"delivery" || push["from"] != f.med.DID() {
		t.Fatalf("push %v", push)
	}
	ids, msgs = f.openDelivery(t, push)
	if len(msgs) != 1 {
		t.Fatalf("push carried %d messages", len(msgs))
	}
	sameJSON(t, msgs[0], sent)
	// Pushed is not received: the message stays queued until named.
	st = wsRequest(pickup+"status-request", nil)
	if body(st)["message_count"] != 1.0 || body(st)["live_delivery"] != true {
		t.Fatalf("status after the push %v", st)
	}
	st = wsRequest(pickup+"messages-received", map[string]any{"message_id_list": ids})
	if body(st)["message_count"] != 0.0 {
		t.Fatalf("after messages-received %v", st)
	}

	// A socket that dies loses nothing: the next push goes nowhere, the
	// message waits for a delivery-request.
	conn.Close(websocket.StatusNormalClosure, "")
	time.Sleep(100 * time.Millisecond)
	lost, code, _ := f.send(t, "after the socket died", nil)
	if code != http.StatusAccepted {
		t.Fatal(code)
	}
	d = f.request(t, f.wallet, pickup+"delivery-request", map[string]any{"limit": 10})
	_, msgs = f.openDelivery(t, d)
	if len(msgs) != 1 {
		t.Fatalf("after the socket died: %v", d)
	}
	sameJSON(t, msgs[0], lost)
}

func TestMediatorProblemCodes(t *testing.T) {
	f := newMediatorFixture(t, func(c *config.Config) { c.Mediator.QuotaMessages = 2 })

	// Not granted: the wallet registers before asking for mediation.
	pr := f.request(t, f.wallet, coord3+"recipient-update", map[string]any{"updates": []any{map[string]any{"recipient_did": f.wallet.did, "action": "add"}}})
	if c := problemCode(t, pr); c != "e.p.req.not-granted" {
		t.Fatalf("update without a grant: %s", c)
	}
	pr = f.request(t, f.wallet, pickup+"delivery-request", map[string]any{"limit": 1})
	if c := problemCode(t, pr); c != "e.p.req.not-granted" {
		t.Fatalf("pickup without a grant: %s", c)
	}

	f.grant(t, coord3)
	// Unknown recipient: the routed DID is not registered yet.
	_, code, resp := f.send(t, "too early", nil)
	if code != http.StatusBadRequest || !strings.Contains(string(resp), "e.p.req.unknown-recipient") {
		t.Fatalf("forward to an unregistered DID: %d %s", code, resp)
	}
	if r := f.register(t, coord3, "recipient-update", f.inbox.did); r != "success" {
		t.Fatal(r)
	}
	// Malformed pickup requests.
	pr = f.request(t, f.wallet, pickup+"delivery-request", map[string]any{})
	if c := problemCode(t, pr); c != agent.CodeMsg {
		t.Fatalf("delivery-request without limit: %s", c)
	}
	pr = f.request(t, f.wallet, pickup+"status-request", map[string]any{"recipient_did": f.sender.did})
	if c := problemCode(t, pr); c != agent.CodeForbidden {
		t.Fatalf("status for a DID not registered: %s", c)
	}
	// Quota: two messages fit, the third is refused with 507.
	for i := range 2 {
		if _, code, resp := f.send(t, "fits", nil); code != http.StatusAccepted {
			t.Fatalf("forward %d: %d %s", i, code, resp)
		}
	}
	_, code, resp = f.send(t, "over quota", nil)
	if code != http.StatusInsufficientStorage || !strings.Contains(string(resp), "e.p.me.res.storage") {
		t.Fatalf("forward over the quota: %d %s", code, resp)
	}
	// A forward that already expired is refused; so is one replayed.
	_, code, resp = f.send(t, "expired", map[string]any{"expires_time": time.Now().Add(-time.Minute).Unix()})
	if code != http.StatusBadRequest || !strings.Contains(string(resp), agent.CodeMsgExpired) {
		t.Fatalf("expired forward: %d %s", code, resp)
	}
	st := f.request(t, f.wallet, pickup+"status-request", nil)
	if body(st)["message_count"] != 2.0 {
		t.Fatalf("refused forwards changed the queue: %v", st)
	}
	// Garbage on the endpoint is a 4xx, never a 500.
	for _, bad := range []string{`{"protected":"x"}`, `{}`, `[]`} {
		if code, _, _ := post(t, f.med.base+"/didcomm", agent.MediaTypeEncrypted, []byte(bad)); code < 400 || code >= 500 {
			t.Fatalf("malformed input %s answered %d", bad, code)
		}
	}
}

// TestMediatorReplayedForward: the same forward posted twice is queued once,
// and the second post is acknowledged (it was accepted before).
func TestMediatorReplayedForward(t *testing.T) {
	f := newMediatorFixture(t, nil)
	f.grant(t, coord3)
	f.register(t, coord3, "recipient-update", f.inbox.did)
	m := map[string]any{"id": agent.NewID(), "type": "https://didcomm.org/basicmessage/2.0/message", "from": f.sender.did,
		"to": []string{f.inbox.did}, "body": map[string]any{"content": "once"}}
	packed, _, err := f.node.PackEncrypted(m, f.inbox.did, f.sender.did, "", nil, f.docs(t), f.sender.secretJSON())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if code, _, resp := post(t, f.med.base+"/didcomm", agent.MediaTypeEncrypted, []byte(packed)); code != http.StatusAccepted {
			t.Fatalf("%d %s", code, resp)
		}
	}
	st := f.request(t, f.wallet, pickup+"status-request", nil)
	if body(st)["message_count"] != 1.0 {
		t.Fatalf("a replayed forward was queued twice: %v", st)
	}
}

// TestMediatorAdminAndInvitationPolicy: under the invitation policy only
// the holder of an operator's invitation is granted; the admin API lists,
// grants and revokes.
func TestMediatorAdminAndInvitationPolicy(t *testing.T) {
	f := newMediatorFixture(t, func(c *config.Config) { c.Mediator.Policy = "invitation" })
	tok := f.med.AdminToken()
	ans := f.request(t, f.wallet, coord3+"mediate-request", nil)
	if ans["type"] != coord3+"mediate-deny" {
		t.Fatalf("request without an invitation: %v", ans)
	}
	var inv struct {
		Invitation map[string]any `json:"invitation"`
		URL        string         `json:"url"`
	}
	if code := adminPost(t, f.med, "/admin/mediation/invitations", "", &inv); code != http.StatusCreated || inv.Invitation["from"] != f.med.DID() {
		t.Fatalf("invitation: %d %+v", code, inv)
	}
	m := f.msg(f.wallet, coord3+"mediate-request", nil)
	m["pthid"] = inv.Invitation["id"]
	code, _, resp := post(t, f.med.base+"/didcomm", agent.MediaTypeEncrypted, []byte(f.pack(t, f.wallet, m)))
	if code != http.StatusOK {
		t.Fatal(code)
	}
	got, _, err := f.node.Unpack(string(resp), nil, f.docs(t), f.wallet.secretJSON())
	if err != nil || got["type"] != coord3+"mediate-grant" {
		t.Fatalf("request with the invitation: %v %v", got, err)
	}
	// The invitation is used up.
	other := newWallet(t, "")
	m = f.msg(other, coord3+"mediate-request", nil)
	m["pthid"] = inv.Invitation["id"]
	f.wallet, other = other, f.wallet
	ans = f.request(t, f.wallet, coord3+"mediate-request", nil)
	if ans["type"] != coord3+"mediate-deny" {
		t.Fatalf("second holder: %v", ans)
	}
	f.wallet, other = other, f.wallet

	var list struct {
		Grants []map[string]any `json:"grants"`
	}
	if code := getJSON(t, f.med.base+"/admin/mediation/grants", tok, &list); code != 200 || len(list.Grants) != 1 || list.Grants[0]["client_did"] != f.wallet.did {
		t.Fatalf("grants: %d %v", code, list)
	}
	var q map[string]any
	if code := getJSON(t, f.med.base+"/admin/mediation/queue", tok, &q); code != 200 || q["clients"] != 1.0 || !strings.HasPrefix(q["routing_did"].(string), "did:peer:2.") {
		t.Fatalf("queue: %d %v", code, q)
	}
	// The operator grants the other wallet, then revokes it.
	if code := adminPost(t, f.med, "/admin/mediation/grants", `{"did":"`+other.did+`"}`, nil); code != http.StatusCreated {
		t.Fatalf("grant: %d", code)
	}
	f.wallet, other = other, f.wallet
	if ans := f.request(t, f.wallet, coord3+"mediate-request", nil); ans["type"] != coord3+"mediate-grant" {
		t.Fatalf("request after the operator's grant: %v", ans)
	}
	req, _ := http.NewRequest("DELETE", f.med.base+"/admin/mediation/grants/"+f.wallet.did, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp2, err := http.DefaultClient.Do(req)
	if err != nil || resp2.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %v %v", err, resp2)
	}
	resp2.Body.Close()
	if ans := f.request(t, f.wallet, coord3+"mediate-request", nil); ans["type"] != coord3+"mediate-deny" {
		t.Fatalf("request after revoke: %v", ans)
	}
	if code := getJSON(t, f.med.base+"/admin/mediation/grants/did:example:nobody", tok, nil); code != http.StatusNotFound {
		t.Fatalf("unknown grant: %d", code)
	}
	if !strings.Contains(metricsText(t, f.med), "agentd_mediator_queue_messages 0") {
		t.Error("metrics lack the mediator queue")
	}
}

func adminPost(t *testing.T, r *running, path, body string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("POST", r.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode
}

// TestTwoAgentdOneMediatesTheOther: agentd B uses agentd A as its mediator
// (mediation_client.invitation is A's invitation): B publishes a DID routed
// through A, and a third agentd C pings B through A and B pings C back, B
// picking up over its live WebSocket to A. After a restart B keeps its
// mediated DID.
func TestTwoAgentdOneMediatesTheOther(t *testing.T) {
	aCfg := testConfig(t, t.TempDir())
	aCfg.Mediator.Enabled = true
	a := start(t, aCfg)
	var inv struct {
		URL string `json:"url"`
	}
	getJSON(t, a.base+"/invitation", "", &inv)

	bCfg := testConfig(t, t.TempDir())
	bCfg.MediationClient.Invitation = inv.URL
	b := start(t, bCfg)
	mediated := waitMediated(t, b, a)

	c := start(t, testConfig(t, t.TempDir()))
	pingVia := func(from *running, to string) {
		t.Helper()
		var res map[string]any
		code := adminPostJSON(t, from, "/admin/ping", map[string]string{"to": to}, &res)
		if code != http.StatusOK {
			t.Fatalf("ping %s: %d %v", to, code, res)
		}
	}
	pingVia(c, mediated) // C -> A (forward) -> B (live pickup); B answers C directly
	pingVia(b, c.DID())  // B -> C; C answers B's mediated DID through A

	// B confirms what it handled (messages-received) just after handling it.
	var q map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		getJSON(t, a.base+"/admin/mediation/queue", a.AdminToken(), &q)
		if q["messages"] == 0.0 || time.Now().After(deadline) {
			break
		}
	}
	if q["clients"] != 1.0 || q["recipients"] != 1.0 || q["messages"] != 0.0 || q["live_sessions"] != 1.0 {
		t.Fatalf("mediator state %v: want one client, one recipient, one live session, nothing left queued", q)
	}

	// A restart keeps the mediated DID and picks up again.
	b.Shutdown(context.Background())
	b2 := start(t, bCfg)
	if b2.DID() != mediated {
		t.Fatalf("mediated DID changed across a restart: %s -> %s", mediated, b2.DID())
	}
	pingVia(c, mediated)
}

// waitMediated waits until b publishes a DID routed through a's routing key.
func waitMediated(t *testing.T, b, a *running) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var got struct {
			DID         string  `json:"did"`
			DIDDocument did.Doc `json:"didDocument"`
		}
		getJSON(t, b.base+"/did", "", &got)
		svcs := got.DIDDocument.DIDCommServices()
		if len(svcs) == 1 && len(svcs[0].ServiceEndpoint.RoutingKeys) == 1 {
			if svcs[0].ServiceEndpoint.URI != a.cfg.Endpoint() {
				t.Fatalf("mediated DID's endpoint %s, want the mediator's %s", svcs[0].ServiceEndpoint.URI, a.cfg.Endpoint())
			}
			return got.DID
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("agentd did not publish a mediated DID")
	return ""
}

func adminPostJSON(t *testing.T, r *running, path string, body, v any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	return adminPost(t, r, path, string(b), v)
}

// TestMediatorRelay: with relay on, a forward for a DID that is not
// registered here is passed on to that DID's own endpoint; one for a DID
// routed through this mediator but not registered is still refused.
func TestMediatorRelay(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Mediator.Enabled, cfg.Mediator.Relay = true, true
	m := start(t, cfg)
	var q map[string]any
	getJSON(t, m.base+"/admin/mediation/queue", m.AdminToken(), &q)
	doc, err := did.ResolvePeer2(q["routing_did"].(string))
	if err != nil {
		t.Fatal(err)
	}
	w := newGoWallet(t, m.base)
	if w.routingKA, err = doc.KeyAgreement(); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	far := newWallet(t, newCapture(t, got)+"/inbox")
	if code, _, resp := post(t, m.base+"/didcomm", agent.MediaTypeEncrypted, w.forward(t, far.did, "relayed", 600)); code != http.StatusAccepted {
		t.Fatalf("relayed forward: %d %s", code, resp)
	}
	select {
	case b := <-got:
		var inner struct {
			IV string `json:"iv"`
		}
		if err := json.Unmarshal(b, &inner); err != nil || inner.IV != "relayed" {
			t.Fatalf("relayed message %s", b)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the forward was not relayed")
	}
	routed := routedWallet(t, m.cfg.Endpoint(), w.routingKA[0].ID)
	code, _, resp := post(t, m.base+"/didcomm", agent.MediaTypeEncrypted, w.forward(t, routed.did, "loop", 600))
	if code != http.StatusBadRequest || !strings.Contains(string(resp), "e.p.req.unknown-recipient") {
		t.Fatalf("forward for an unregistered DID routed here: %d %s", code, resp)
	}
}
