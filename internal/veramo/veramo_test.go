package veramo_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/did/didtest"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/internal/veramo"
)

// These tests meet Veramo 7 at the envelope layer, without a daemon: what
// Veramo packs must open with agentd's envelope package, and what agentd's
// envelope package packs for Veramo's did:key must open in Veramo.

// party is an agentd-side did:peer:2 with its keys.
type party struct {
	did     string
	doc     any
	secrets *keys.MemoryStore
	x, e    keys.PrivateKey
}

func newParty(t *testing.T) *party {
	t.Helper()
	p := didtest.NewPeer2(t)
	x, e := p.Agreement, p.Authentication
	b, _ := json.Marshal(p.Doc)
	var generic any
	json.Unmarshal(b, &generic)
	return &party{did: p.DID, doc: generic, secrets: keys.NewMemoryStore(x, e), x: x, e: e}
}

func resolver() envelope.KeyResolver {
	return did.NewKeyResolver(did.NewDefaultRegistry(nil, nil))
}

func ping(from, to string) map[string]any {
	return map[string]any{
		"id": agent.NewID(), "type": "https://didcomm.org/trust-ping/2.0/ping",
		"from": from, "to": []string{to},
		"created_time": time.Now().UTC().Format(time.RFC3339Nano),
		"body":         map[string]any{"response_requested": true},
	}
}

func sameMessage(t *testing.T, pt []byte, want map[string]any) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(pt, &got); err != nil {
		t.Fatal(err)
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("got %s\nwant %s", g, w)
	}
}

func TestVeramoSignedBothForms(t *testing.T) {
	v := veramo.Start(t)
	bob := newParty(t)
	m := ping(v.DID, bob.did)
	flat, general, err := v.PackSigned(m, []any{bob.doc})
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]json.RawMessage
	json.Unmarshal([]byte(flat), &f)
	if f["signature"] == nil || f["protected"] == nil || f["signatures"] != nil {
		t.Fatalf("Veramo's JWS is not in the Flattened serialization: %s", flat)
	}
	for name, jws := range map[string]string{"flattened": flat, "general": general} {
		pt, md, err := envelope.Unpack(context.Background(), []byte(jws), envelope.UnpackOptions{Keys: resolver()})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameMessage(t, pt, m)
		if md.SignFrom != v.Signing.ID || md.SignAlg != "EdDSA" || !md.NonRepudiation {
			t.Fatalf("%s: metadata %+v", name, md)
		}
		msg, err := agent.ParseMessage(pt)
		if err != nil || msg.CreatedTime == 0 {
			t.Fatalf("%s: ISO created_time not read: %v %+v", name, err, msg)
		}
	}
}

func TestVeramoAnoncryptWithoutAPV(t *testing.T) {
	v := veramo.Start(t)
	bob := newParty(t)
	m := ping(v.DID, bob.did)
	for _, enc := range []string{"A256GCM", "A256CBC-HS512", "XC20P"} {
		packed, err := v.Pack(m, veramo.PackingAnoncrypt, map[string]any{"enc": enc}, []any{bob.doc})
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		var jwe struct{ Protected string }
		json.Unmarshal([]byte(packed), &jwe)
		if hdr := string(mustB64(t, jwe.Protected)); strings.Contains(hdr, `"apv"`) || !strings.Contains(hdr, `"enc":"`+enc+`"`) {
			t.Fatalf("%s: Veramo's protected header %s: want no apv (the case this test is about)", enc, hdr)
		}
		pt, md, err := envelope.Unpack(context.Background(), []byte(packed), envelope.UnpackOptions{Keys: resolver(), Secrets: bob.secrets})
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		sameMessage(t, pt, m)
		if !md.AnonymousSender || md.EncAlgAnon != enc+"+ECDH-ES+A256KW" || len(md.EncryptedTo) != 1 || md.EncryptedTo[0] != bob.x.ID {
			t.Fatalf("%s: metadata %+v", enc, md)
		}
	}
	// Sign then encrypt: Veramo's flattened JWS inside an anoncrypt JWE of ours.
	flat, _, err := v.PackSigned(m, []any{bob.doc})
	if err != nil {
		t.Fatal(err)
	}
	jwe, err := envelope.PackAnoncrypt([]byte(flat), []keys.PublicKey{bob.x.PublicKey}, envelope.A256CBCHS512)
	if err != nil {
		t.Fatal(err)
	}
	pt, md, err := envelope.Unpack(context.Background(), jwe, envelope.UnpackOptions{Keys: resolver(), Secrets: bob.secrets})
	if err != nil || md.SignFrom != v.Signing.ID || !md.Encrypted {
		t.Fatalf("nested flattened JWS: %v %+v", err, md)
	}
	sameMessage(t, pt, m)
}

func TestVeramoAuthcryptRefused(t *testing.T) {
	v := veramo.Start(t)
	bob := newParty(t)
	m := ping(v.DID, bob.did)
	for _, enc := range []string{"A256GCM", "A256CBC-HS512"} {
		packed, err := v.Pack(m, veramo.PackingAuthcrypt, map[string]any{"enc": enc}, []any{bob.doc})
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		_, _, err = envelope.Unpack(context.Background(), []byte(packed), envelope.UnpackOptions{Keys: resolver(), Secrets: bob.secrets})
		if err == nil {
			t.Fatalf("%s: Veramo's authcrypt (ECDH-1PU draft 3) was accepted", enc)
		}
		want := envelope.ErrMalformed // A256CBC-HS512: no apv (and a draft 3 KDF)
		if enc == "A256GCM" {
			want = envelope.ErrUnsupported
			if !strings.Contains(err.Error(), `enc "A256GCM" with ECDH-1PU+A256KW`) {
				t.Fatalf("%s: error %q does not name the reason", enc, err)
			}
		}
		if !errors.Is(err, want) {
			t.Fatalf("%s: error %v, want %v", enc, err, want)
		}
	}
}

// TestVeramoOpensWhatAgentdPacks: agentd's anoncrypt (with apv) for
// Veramo's did:key opens in Veramo, with every enc.
func TestVeramoOpensWhatAgentdPacks(t *testing.T) {
	v := veramo.Start(t)
	alice := newParty(t)
	m := ping(alice.did, v.DID)
	m["created_time"] = time.Now().Unix()
	plain, _ := json.Marshal(m)
	jws, err := envelope.Sign(plain, alice.e)
	if err != nil {
		t.Fatal(err)
	}
	// Veramo 7 reads the signer's kid from the protected header only;
	// agentd writes it in the unprotected per-signature header, as
	// didcomm-rust and the spec's vectors do. Recorded here (and in the
	// README) so that a Veramo update that fixes it is noticed.
	if _, _, err := v.Unpack(string(jws), []any{alice.doc}); err == nil || !strings.Contains(err.Error(), "does not match the `kid`") {
		t.Fatalf("Veramo on a JWS with the kid in the unprotected header: %v", err)
	}
	ka, err := did.ResolveKey(v.DID)
	if err != nil {
		t.Fatal(err)
	}
	kas, _ := ka.KeyAgreement()
	if len(kas) != 1 || kas[0].ID != v.Agreement.ID {
		t.Fatalf("agentd resolves %s to key agreement %v, Veramo's key is %s", v.DID, kas, v.Agreement.ID)
	}
	for _, enc := range []envelope.Enc{envelope.A256CBCHS512, envelope.A256GCM, envelope.XC20P} {
		jwe, err := envelope.PackAnoncrypt(plain, []keys.PublicKey{v.Agreement.PublicKey}, enc)
		if err != nil {
			t.Fatal(err)
		}
		got, meta, err := v.Unpack(string(jwe), []any{alice.doc})
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if meta["packing"] != "anoncrypt" || got["id"] != m["id"] {
			t.Fatalf("%s: Veramo unpacked %v %v", enc, got, meta)
		}
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	out, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		t.Fatal(err)
	}
	return out
}
