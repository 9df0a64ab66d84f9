package daemon_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/internal/veramo"
)

// These tests run agentd with Veramo 7 (@veramo/did-comm) as a second
// third-party peer: Veramo signs (in both JWS serializations), anoncrypts
// without apv, writes created_time as an ISO 8601 string, and routes a
// message through agentd as its mediator. Veramo's authcrypt (A256GCM with
// ECDH-1PU draft 3) is refused.

// openAsClient unpacks what agentd sent with the keys of its recipient,
// resolving the sender as agentd does (did:key, did:peer).
func openAsClient(t *testing.T, packed []byte, ks ...keys.PrivateKey) (map[string]any, envelope.Metadata) {
	t.Helper()
	pt, md, err := envelope.Unpack(context.Background(), packed, envelope.UnpackOptions{
		Keys:    did.NewKeyResolver(did.NewDefaultRegistry(nil, nil)),
		Secrets: keys.NewMemoryStore(ks...),
	})
	if err != nil {
		t.Fatalf("cannot open what agentd sent: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(pt, &m); err != nil {
		t.Fatal(err)
	}
	return m, md
}

type veramoFixture struct {
	agentd *running
	doc    any
	v      *veramo.Peer
}

func newVeramoFixture(t *testing.T) *veramoFixture {
	t.Helper()
	a := start(t, testConfig(t, t.TempDir()))
	return &veramoFixture{agentd: a, doc: didDocJSON(t, a.base), v: veramo.Start(t)}
}

// ping is a trust ping from Veramo's DID with created_time as Veramo's own
// messages carry it: an ISO 8601 string.
func (f *veramoFixture) ping(returnRoute string) map[string]any {
	m := map[string]any{
		"id": agent.NewID(), "type": "https://didcomm.org/trust-ping/2.0/ping",
		"from": f.v.DID, "to": []string{f.agentd.DID()},
		"created_time": time.Now().UTC().Format(time.RFC3339Nano),
		"body":         map[string]any{"response_requested": true},
	}
	if returnRoute != "" {
		m["return_route"] = returnRoute
	}
	return m
}

func reason(body []byte) string {
	var e struct{ Error, Reason string }
	json.Unmarshal(body, &e)
	return e.Reason
}

func TestInteropVeramoSignedPing(t *testing.T) {
	f := newVeramoFixture(t)
	for _, form := range []string{"flattened", "general"} {
		t.Run(form, func(t *testing.T) {
			pick := func(flat, general string) string {
				if form == "flattened" {
					return flat
				}
				return general
			}
			// Without return_route: accepted, answered through the outbox.
			ping := f.ping("")
			flat, general, err := f.v.PackSigned(ping, []any{f.doc})
			if err != nil {
				t.Fatal(err)
			}
			jws := pick(flat, general)
			if isFlat := !strings.Contains(jws, `"signatures"`); isFlat != (form == "flattened") {
				t.Fatalf("Veramo's %s JWS: %s", form, jws)
			}
			if code, _, body := post(t, f.agentd.base+"/didcomm", agent.MediaTypeSigned, []byte(jws)); code != http.StatusAccepted {
				t.Fatalf("status %d %s, want 202", code, body)
			}
			// With return_route the ping-response comes back on the connection.
			ping = f.ping("all")
			flat, general, err = f.v.PackSigned(ping, []any{f.doc})
			if err != nil {
				t.Fatal(err)
			}
			code, ct, body := post(t, f.agentd.base+"/didcomm", agent.MediaTypeSigned, []byte(pick(flat, general)))
			if code != http.StatusOK || ct != agent.MediaTypeEncrypted {
				t.Fatalf("status %d %s %s, want 200 with the ping-response", code, ct, body)
			}
			msg, md := openAsClient(t, body, f.v.Keys()...)
			if msg["type"] != "https://didcomm.org/trust-ping/2.0/ping-response" || msg["thid"] != ping["id"] || msg["from"] != f.agentd.DID() {
				t.Fatalf("reply %v", msg)
			}
			if to, _ := msg["to"].([]any); len(to) != 1 || to[0] != f.v.DID {
				t.Fatalf("reply addressed to %v, want Veramo's %s", msg["to"], f.v.DID)
			}
			if !md.Encrypted || len(md.EncryptedTo) != 1 || md.EncryptedTo[0] != f.v.Agreement.ID || !strings.HasPrefix(md.EncryptedFrom, f.agentd.DID()+"#") {
				t.Fatalf("reply envelope %+v, want authcrypted from agentd to Veramo's key agreement key", md)
			}
			// The answer lists Veramo's created_time as a number again.
			if _, isNum := msg["created_time"].(float64); !isNum {
				t.Fatalf("reply created_time %v", msg["created_time"])
			}
		})
	}
	// A created_time that is neither a number nor an RFC 3339 string: 400 with the reason.
	ping := f.ping("all")
	ping["created_time"] = "next tuesday"
	flat, _, err := f.v.PackSigned(ping, []any{f.doc})
	if err != nil {
		t.Fatal(err)
	}
	code, _, body := post(t, f.agentd.base+"/didcomm", agent.MediaTypeSigned, []byte(flat))
	if code != http.StatusBadRequest || !strings.Contains(reason(body), "created_time") {
		t.Fatalf("garbage created_time: status %d reason %q, want 400 naming created_time", code, reason(body))
	}
	// Tampered flattened JWS: refused.
	ping = f.ping("all")
	flat, _, err = f.v.PackSigned(ping, []any{f.doc})
	if err != nil {
		t.Fatal(err)
	}
	var jws map[string]any
	json.Unmarshal([]byte(flat), &jws)
	sig, _ := base64.RawURLEncoding.DecodeString(jws["signature"].(string))
	sig[0] ^= 1
	jws["signature"] = base64.RawURLEncoding.EncodeToString(sig)
	bad, _ := json.Marshal(jws)
	if code, _, body := post(t, f.agentd.base+"/didcomm", agent.MediaTypeSigned, bad); code != http.StatusBadRequest || !strings.Contains(reason(body), "signature") {
		t.Fatalf("tampered flattened JWS: status %d reason %q", code, reason(body))
	}
}

func TestInteropVeramoAnoncryptPing(t *testing.T) {
	f := newVeramoFixture(t)
	for _, enc := range []string{"A256GCM", "A256CBC-HS512", "XC20P"} {
		ping := f.ping("all")
		packed, err := f.v.Pack(ping, veramo.PackingAnoncrypt, map[string]any{"enc": enc}, []any{f.doc})
		if err != nil {
			t.Fatal(err)
		}
		if hdr := protectedHeader(t, packed); hdr["apv"] != nil {
			t.Fatalf("Veramo wrote apv %v; this test is about its JWEs without one", hdr["apv"])
		}
		code, _, body := post(t, f.agentd.base+"/didcomm", agent.MediaTypeEncrypted, []byte(packed))
		if code != http.StatusOK {
			t.Fatalf("%s: status %d %s", enc, code, body)
		}
		msg, _ := openAsClient(t, body, f.v.Keys()...)
		if msg["thid"] != ping["id"] {
			t.Fatalf("%s: reply %v", enc, msg)
		}
	}
}

func TestInteropVeramoAuthcryptRefused(t *testing.T) {
	f := newVeramoFixture(t)
	ping := f.ping("all")
	packed, err := f.v.Pack(ping, veramo.PackingAuthcrypt, nil, []any{f.doc})
	if err != nil {
		t.Fatal(err)
	}
	hdr := protectedHeader(t, packed)
	if hdr["alg"] != "ECDH-1PU+A256KW" || hdr["enc"] != "A256GCM" {
		t.Fatalf("Veramo's authcrypt header %v", hdr)
	}
	code, _, body := post(t, f.agentd.base+"/didcomm", agent.MediaTypeEncrypted, []byte(packed))
	r := reason(body)
	if code != http.StatusBadRequest || !strings.Contains(r, "A256GCM") || !strings.Contains(r, "A256CBC-HS512") {
		t.Fatalf("Veramo authcrypt: status %d reason %q, want 400 explaining that authcrypt uses A256CBC-HS512", code, r)
	}
}

func protectedHeader(t *testing.T, packed string) map[string]any {
	t.Helper()
	var jwe struct{ Protected string }
	if err := json.Unmarshal([]byte(packed), &jwe); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(jwe.Protected)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	json.Unmarshal(raw, &h)
	return h
}

// TestInteropVeramoForwardThroughMediator: a didcomm-node wallet gets
// mediation from agentd and registers a DID routed through it; Veramo sends
// that DID a message the way its sendDIDCommMessage does (anoncrypt, wrapped
// in a forward anoncrypted to the routing key, neither with apv); agentd
// queues it and the wallet picks it up with Pickup 3.0: the delivered
// message is the one Veramo packed, and it opens to what Veramo was given.
func TestInteropVeramoForwardThroughMediator(t *testing.T) {
	f := newMediatorFixture(t, nil)
	v := veramo.Start(t)
	f.grant(t, coord3)
	if r := f.register(t, coord3, "recipient-update", f.inbox.did); r != "success" {
		t.Fatalf("register: %s", r)
	}
	m := map[string]any{
		"id": agent.NewID(), "type": "https://didcomm.org/basicmessage/2.0/message",
		"from": v.DID, "to": []string{f.inbox.did},
		"created_time": time.Now().UTC().Format(time.RFC3339Nano),
		"body":         map[string]any{"content": "hello from Veramo"},
	}
	inner, sent, err := v.Send(m, veramo.PackingAnoncrypt, nil, f.docs(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || sent[0].Endpoint != f.med.cfg.Endpoint() {
		t.Fatalf("Veramo sent %+v, want one message to the mediator's endpoint %s", sent, f.med.cfg.Endpoint())
	}
	outer := sent[0].Message
	if kids := outerKids(t, outer); len(kids) != 1 || kids[0] != f.routingKey {
		t.Fatalf("forward encrypted to %v, want the routing key %s", kids, f.routingKey)
	}
	if hdr := protectedHeader(t, outer); hdr["apv"] != nil || hdr["alg"] != "ECDH-ES+A256KW" {
		t.Fatalf("Veramo's forward header %v: this test is about anoncrypt without apv", hdr)
	}
	if kids := outerKids(t, inner); len(kids) != 1 || kids[0] != f.inbox.secrets[0].ID {
		t.Fatalf("inner message encrypted to %v, want %s", kids, f.inbox.secrets[0].ID)
	}
	if code, _, body := post(t, sent[0].Endpoint, agent.MediaTypeEncrypted, []byte(outer)); code != http.StatusAccepted {
		t.Fatalf("forward: status %d %s, want 202", code, body)
	}
	st := f.request(t, f.wallet, pickup+"status-request", map[string]any{"recipient_did": f.inbox.did})
	if st["type"] != pickup+"status" || body(st)["message_count"] != 1.0 {
		t.Fatalf("status %v, want one queued message", st)
	}
	d := f.request(t, f.wallet, pickup+"delivery-request", map[string]any{"limit": 10, "recipient_did": f.inbox.did})
	if d["type"] != pickup+"delivery" {
		t.Fatalf("delivery-request answered %v", d)
	}
	atts, _ := d["attachments"].([]any)
	if len(atts) != 1 {
		t.Fatalf("%d messages delivered, want 1", len(atts))
	}
	att := atts[0].(map[string]any)
	data := att["data"].(map[string]any)
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(data["base64"].(string), "="))
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != inner {
		t.Fatalf("delivered %s\nVeramo packed %s", raw, inner)
	}
	// The wallet opens it (agentd's envelope code as the client side).
	got, md := openAsClient(t, raw, f.inbox.secrets...)
	sameJSON(t, got, m)
	if !md.AnonymousSender || md.EncryptedTo[0] != f.inbox.secrets[0].ID {
		t.Fatalf("delivered message envelope %+v", md)
	}
	st = f.request(t, f.wallet, pickup+"messages-received", map[string]any{"message_id_list": []string{att["id"].(string)}})
	if st["type"] != pickup+"status" || body(st)["message_count"] != 0.0 {
		t.Fatalf("after messages-received %v", st)
	}
}
