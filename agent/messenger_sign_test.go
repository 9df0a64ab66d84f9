package agent_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/did/didtest"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/store/bolt"
)

// peer makes a did:peer:2 with an X25519 and an Ed25519 key held in an
// identity backed by a bolt key store.
func peer(t *testing.T) (*agent.Identity, string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "k.db"), bolt.Options{NoSync: true, MasterKey: bolt.Passphrase("test passphrase")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ks, err := db.Keys()
	if err != nil {
		t.Fatal(err)
	}
	p := didtest.NewPeer2(t)
	ks.Put(context.Background(), p.Agreement)
	ks.Put(context.Background(), p.Authentication)
	ident := agent.NewIdentity(ks)
	ident.AddDID(p.DID)
	return ident, p.DID
}

// Messages of the signed types are signed by the sender's authentication key
// and then encrypted; others are only encrypted. Encrypt packs without routing.
func TestMessengerSignsSignedTypes(t *testing.T) {
	ctx := context.Background()
	reg := did.NewDefaultRegistry(nil, nil)
	me, meDID := peer(t)
	them, themDID := peer(t)
	m := &agent.Messenger{Identity: me, Resolver: reg, Keys: did.NewKeyResolver(reg), Signs: func(t string) bool { return t == "https://example.org/p/1/signed" }}
	for _, tc := range []struct {
		typ    string
		signed bool
	}{{"https://example.org/p/1/signed", true}, {"https://example.org/p/1/plain", false}} {
		msg, _ := agent.NewMessage(tc.typ, map[string]string{"a": "b"})
		msg.To = []string{themDID}
		packed, err := m.Encrypt(ctx, msg, themDID)
		if err != nil {
			t.Fatal(err)
		}
		plain, md, err := envelope.Unpack(ctx, packed, envelope.UnpackOptions{Keys: did.NewKeyResolver(reg), Secrets: them})
		if err != nil {
			t.Fatal(err)
		}
		var got agent.Message
		json.Unmarshal(plain, &got)
		if got.From != meDID || !md.Encrypted || !md.Authenticated || md.NonRepudiation != tc.signed {
			t.Fatalf("%s: from %s, envelope %+v", tc.typ, got.From, md)
		}
		if tc.signed && agent.DIDOf(md.SignFrom) != meDID {
			t.Fatalf("signed by %s", md.SignFrom)
		}
	}
}
