package daemon_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/agent/keys"
)

// TestMalformedInputRefused sends each kind of bad input the HTTP endpoint
// must refuse with a 4xx and a short reason, and checks that nothing changed:
// the outbox stays empty and the message id was not recorded, so the valid
// message with the same id is still processed afterwards.
func TestMalformedInputRefused(t *testing.T) {
	f := newPeerFixture(t)
	ping := f.ping("all")
	valid, _, err := f.node.PackEncrypted(ping, f.agentd.DID(), f.wallet.did, "", map[string]any{"forward": false}, f.docs, f.secrets)
	if err != nil {
		t.Fatal(err)
	}
	var jwe map[string]any
	json.Unmarshal([]byte(valid), &jwe)
	mutate := func(fn func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal([]byte(valid), &m)
		fn(m)
		b, _ := json.Marshal(m)
		return b
	}
	flip := func(field string) []byte {
		return mutate(func(m map[string]any) {
			raw, _ := base64.RawURLEncoding.DecodeString(m[field].(string))
			raw[len(raw)/2] ^= 0x01
			m[field] = base64.RawURLEncoding.EncodeToString(raw)
		})
	}
	protectedWith := func(key, value string) []byte {
		return mutate(func(m map[string]any) {
			raw, _ := base64.RawURLEncoding.DecodeString(m["protected"].(string))
			var h map[string]any
			json.Unmarshal(raw, &h)
			h[key] = value
			b, _ := json.Marshal(h)
			m["protected"] = base64.RawURLEncoding.EncodeToString(b)
		})
	}

	// A message the wallet encrypted to itself: no recipient key of ours.
	selfPing := f.ping("all")
	selfPing["to"] = []string{f.wallet.did}
	notForUs, _, err := f.node.PackEncrypted(selfPing, f.wallet.did, f.wallet.did, "", map[string]any{"forward": false}, f.docs, f.secrets)
	if err != nil {
		t.Fatal(err)
	}
	// The sender claims another DID in from than the one whose key encrypted it.
	agentKA := agentKeyAgreement(t, f)
	walletKey := f.wallet.secrets[0]
	spoof := f.ping("all")
	spoof["from"] = newWallet(t, "").did
	spoofPlain, _ := json.Marshal(spoof)
	spoofed, err := envelope.PackAuthcrypt(spoofPlain, walletKey, agentKA)
	if err != nil {
		t.Fatal(err)
	}
	// A skid whose DID resolves but does not hold that key.
	ghost := walletKey
	ghost.ID = f.wallet.did + "#key-9"
	ghostPlain, _ := json.Marshal(f.ping("all"))
	unresolvable, _ := envelope.PackAuthcrypt(ghostPlain, ghost, agentKA)
	// A sender on a DID method agentd does not resolve.
	exampleKey, _ := keys.Generate(keys.X25519, "did:example:mallory#key-1")
	exPing := f.ping("all")
	exPing["from"] = "did:example:mallory"
	exPlain, _ := json.Marshal(exPing)
	unsupportedMethod, _ := envelope.PackAuthcrypt(exPlain, exampleKey, agentKA)
	// Encrypted to our key but addressed to someone else.
	other := f.ping("all")
	other["to"] = []string{newWallet(t, "").did}
	otherPlain, _ := json.Marshal(other)
	addressedElsewhere, _ := envelope.PackAuthcrypt(otherPlain, walletKey, agentKA)
	// An expired message.
	expired := f.ping("all")
	expired["expires_time"] = time.Now().Add(-time.Minute).Unix()
	expiredPacked, _, err := f.node.PackEncrypted(expired, f.agentd.DID(), f.wallet.did, "", map[string]any{"forward": false}, f.docs, f.secrets)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name        string
		contentType string
		body        []byte
		status      int
		reason      string
	}{
		{"wrong content type", "text/plain", []byte(valid), 415, "content type"},
		{"not JSON", agent.MediaTypeEncrypted, []byte("{nope"), 400, "JSON"},
		{"unknown alg", agent.MediaTypeEncrypted, protectedWith("alg", "ECDH-XX+A128KW"), 400, "alg"},
		{"unknown enc", agent.MediaTypeEncrypted, protectedWith("enc", "A128GCM"), 400, "enc"},
		{"tampered ciphertext", agent.MediaTypeEncrypted, flip("ciphertext"), 400, "decryption failed"},
		{"tampered tag", agent.MediaTypeEncrypted, flip("tag"), 400, "decryption failed"},
		{"tampered iv", agent.MediaTypeEncrypted, flip("iv"), 400, "decryption failed"},
		{"recipient kid not ours", agent.MediaTypeEncrypted, []byte(notForUs), 400, "recipient"},
		{"from does not match skid", agent.MediaTypeEncrypted, spoofed, 400, "from"},
		{"unresolvable skid", agent.MediaTypeEncrypted, unresolvable, 400, "key"},
		{"unsupported DID method", agent.MediaTypeEncrypted, unsupportedMethod, 400, "method"},
		{"addressed to another DID", agent.MediaTypeEncrypted, addressedElsewhere, 400, "not addressed"},
		{"expired", agent.MediaTypeEncrypted, []byte(expiredPacked), 400, "expired"},
		{"over the size limit", agent.MediaTypeEncrypted, bytes.Repeat([]byte(" "), 1<<20+1), 413, "limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := post(t, f.agentd.base+"/didcomm", tc.contentType, tc.body)
			var e struct{ Error, Reason string }
			json.Unmarshal(body, &e)
			if code != tc.status || !strings.Contains(strings.ToLower(e.Reason), strings.ToLower(tc.reason)) {
				t.Fatalf("status %d reason %q (%s), want %d mentioning %q", code, e.Reason, e.Error, tc.status, tc.reason)
			}
		})
	}
	var depth map[string]int
	getJSON(t, f.agentd.base+"/admin/outbox", f.agentd.AdminToken(), &depth)
	if depth["pending"] != 0 || depth["dead"] != 0 {
		t.Fatalf("refused input changed the outbox: %v", depth)
	}
	// The refused copies did not burn the message id: the valid message is answered.
	code, msg, _ := f.send(t, agent.MediaTypeEncrypted, valid)
	if code != http.StatusOK || msg["thid"] != ping["id"] {
		t.Fatalf("valid message after refused ones: status %d reply %v", code, msg)
	}
}

func agentKeyAgreement(t *testing.T, f *peerFixture) []keys.PublicKey {
	t.Helper()
	return abuseKA(t, f.agentd.base)
}
