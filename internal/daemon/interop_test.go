package daemon_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/didcommnode"
)

// These tests talk to a running agentd with didcomm-node 0.4.1, the DIDComm v2
// reference implementation, as the wallet: it packs every request and unpacks
// every answer, so both directions of the envelope layer meet a third party.

type peerFixture struct {
	agentd  *running
	node    *didcommnode.Peer
	wallet  *wallet
	docs    []any
	secrets []any
}

func newPeerFixture(t *testing.T) *peerFixture {
	t.Helper()
	a := start(t, testConfig(t, t.TempDir()))
	agentDoc := didDocJSON(t, a.base)
	w := newWallet(t, "")
	return &peerFixture{agentd: a, node: didcommnode.Start(t), wallet: w,
		docs: []any{agentDoc, docJSON(t, w.doc)}, secrets: w.secretJSON()}
}

func (f *peerFixture) ping(returnRoute string) map[string]any {
	m := map[string]any{
		"id": agent.NewID(), "typ": "application/didcomm-plain+json",
		"type": "https://didcomm.org/trust-ping/2.0/ping",
		"from": f.wallet.did, "to": []string{f.agentd.DID()},
		"created_time": time.Now().Unix(),
		"body":         map[string]any{"response_requested": true},
	}
	if returnRoute != "" {
		m["return_route"] = returnRoute
	}
	return m
}

// send posts a packed message and unpacks the reply in the HTTP body with didcomm-node.
func (f *peerFixture) send(t *testing.T, contentType, packed string) (int, map[string]any, map[string]any) {
	t.Helper()
	code, ct, body := post(t, f.agentd.base+"/didcomm", contentType, []byte(packed))
	if code != http.StatusOK {
		return code, nil, nil
	}
	if ct != agent.MediaTypeEncrypted {
		t.Fatalf("reply content type %q", ct)
	}
	msg, meta, err := f.node.Unpack(string(body), nil, f.docs, f.secrets)
	if err != nil {
		t.Fatalf("didcomm-node could not unpack agentd's reply: %v\n%s", err, body)
	}
	return code, msg, meta
}

func TestInteropAuthcryptPingReturnRoute(t *testing.T) {
	f := newPeerFixture(t)
	ping := f.ping("all")
	packed, _, err := f.node.PackEncrypted(ping, f.agentd.DID(), f.wallet.did, "", map[string]any{"forward": false}, f.docs, f.secrets)
	if err != nil {
		t.Fatal(err)
	}
	code, msg, meta := f.send(t, agent.MediaTypeEncrypted, packed)
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200 with the ping-response", code)
	}
	if msg["type"] != "https://didcomm.org/trust-ping/2.0/ping-response" || msg["thid"] != ping["id"] {
		t.Fatalf("reply %v", msg)
	}
	if msg["from"] != f.agentd.DID() || meta["authenticated"] != true || meta["encrypted"] != true {
		t.Fatalf("reply from %v, metadata %v: want authcrypt from the agent", msg["from"], meta)
	}
}

func TestInteropAnoncryptPingAllEncs(t *testing.T) {
	f := newPeerFixture(t)
	for _, enc := range []string{didcommnode.EncAlgAnonXC20P, didcommnode.EncAlgAnonA256GCM, didcommnode.EncAlgAnonA256CBCHS512} {
		ping := f.ping("all")
		packed, _, err := f.node.PackEncrypted(ping, f.agentd.DID(), "", "", map[string]any{"forward": false, "enc_alg_anon": enc}, f.docs, f.secrets)
		if err != nil {
			t.Fatal(err)
		}
		code, msg, _ := f.send(t, agent.MediaTypeEncrypted, packed)
		if code != http.StatusOK || msg["thid"] != ping["id"] {
			t.Fatalf("%s: status %d reply %v", enc, code, msg)
		}
	}
}

func TestInteropSignedPing(t *testing.T) {
	f := newPeerFixture(t)
	ping := f.ping("all")
	packed, _, err := f.node.PackSigned(ping, f.wallet.did, f.docs, f.secrets)
	if err != nil {
		t.Fatal(err)
	}
	code, msg, _ := f.send(t, agent.MediaTypeSigned, packed)
	if code != http.StatusOK || msg["thid"] != ping["id"] {
		t.Fatalf("status %d reply %v", code, msg)
	}
	// Signed then encrypted, and protect_sender.
	for _, opts := range []map[string]any{{"forward": false}, {"forward": false, "protect_sender": true}} {
		ping := f.ping("all")
		signBy := ""
		if opts["protect_sender"] == nil {
			signBy = f.wallet.did
		}
		packed, _, err := f.node.PackEncrypted(ping, f.agentd.DID(), f.wallet.did, signBy, opts, f.docs, f.secrets)
		if err != nil {
			t.Fatal(err)
		}
		code, msg, _ := f.send(t, agent.MediaTypeEncrypted, packed)
		if code != http.StatusOK || msg["thid"] != ping["id"] {
			t.Fatalf("%v: status %d reply %v", opts, code, msg)
		}
	}
}

func TestInteropDiscoverFeatures(t *testing.T) {
	f := newPeerFixture(t)
	q := map[string]any{
		"id": agent.NewID(), "type": "https://didcomm.org/discover-features/2.0/queries",
		"from": f.wallet.did, "to": []string{f.agentd.DID()}, "return_route": "all",
		"body": map[string]any{"queries": []any{map[string]any{"feature-type": "protocol", "match": "https://didcomm.org/*"}}},
	}
	packed, _, err := f.node.PackEncrypted(q, f.agentd.DID(), f.wallet.did, "", map[string]any{"forward": false}, f.docs, f.secrets)
	if err != nil {
		t.Fatal(err)
	}
	code, msg, _ := f.send(t, agent.MediaTypeEncrypted, packed)
	if code != http.StatusOK || msg["type"] != "https://didcomm.org/discover-features/2.0/disclose" {
		t.Fatalf("status %d reply %v", code, msg)
	}
	b, _ := json.Marshal(msg["body"])
	for _, want := range []string{"https://didcomm.org/trust-ping/2.0", "https://didcomm.org/discover-features/2.0", "https://didcomm.org/report-problem/2.0"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("disclosures lack %s: %s", want, b)
		}
	}
}

func TestInteropUnknownTypeGetsProblemReport(t *testing.T) {
	f := newPeerFixture(t)
	m := map[string]any{
		"id": agent.NewID(), "type": "https://example.org/no-such-protocol/1.0/hello",
		"from": f.wallet.did, "to": []string{f.agentd.DID()}, "return_route": "all", "body": map[string]any{},
	}
	packed, _, err := f.node.PackEncrypted(m, f.agentd.DID(), f.wallet.did, "", map[string]any{"forward": false}, f.docs, f.secrets)
	if err != nil {
		t.Fatal(err)
	}
	code, msg, _ := f.send(t, agent.MediaTypeEncrypted, packed)
	if code != http.StatusOK || msg["type"] != "https://didcomm.org/report-problem/2.0/problem-report" || msg["pthid"] != m["id"] {
		t.Fatalf("status %d reply %v", code, msg)
	}
	body := msg["body"].(map[string]any)
	if body["code"] != "e.p.msg.unsupported" {
		t.Fatalf("problem code %v", body["code"])
	}
}

func TestInteropReplyThroughOutboxWithoutReturnRoute(t *testing.T) {
	// The wallet has an endpoint of its own: without return_route the
	// ping-response is delivered there by the outbox.
	got := make(chan []byte, 1)
	srv := newCapture(t, got)
	f := newPeerFixture(t)
	f.wallet = newWallet(t, srv+"/inbox")
	f.docs[1] = docJSON(t, f.wallet.doc)
	f.secrets = f.wallet.secretJSON()
	ping := f.ping("")
	packed, _, err := f.node.PackEncrypted(ping, f.agentd.DID(), f.wallet.did, "", map[string]any{"forward": false}, f.docs, f.secrets)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, body := post(t, f.agentd.base+"/didcomm", agent.MediaTypeEncrypted, []byte(packed)); code != http.StatusAccepted {
		t.Fatalf("status %d %s, want 202", code, body)
	}
	select {
	case b := <-got:
		msg, _, err := f.node.Unpack(string(b), nil, f.docs, f.secrets)
		if err != nil || msg["thid"] != ping["id"] {
			t.Fatalf("delivered reply %v, %v", msg, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ping-response was not delivered to the wallet's endpoint")
	}
	// Replaying the same ping is dropped: no second response.
	if code, _, _ := post(t, f.agentd.base+"/didcomm", agent.MediaTypeEncrypted, []byte(packed)); code != http.StatusAccepted {
		t.Fatalf("replay status %d", code)
	}
	select {
	case <-got:
		t.Fatal("a replayed ping was answered again")
	case <-time.After(500 * time.Millisecond):
	}
}
