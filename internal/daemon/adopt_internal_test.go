package daemon

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/protocols/credstore"
	"github.com/agentd/agentd/protocols/provecontrol"
	"github.com/agentd/agentd/store/bolt"
	"github.com/agentd/agentd/store/seal"
	"github.com/agentd/agentd/w3cvc"
)

// TestAdoptProveControlCredentials: credentials Prove Control received
// before the credential store held them are put into it once, under their
// ids, also when one of them is already there; a second start reads
// nothing and adds nothing.
func TestAdoptProveControlCredentials(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "agentd.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := agent.Store{Records: db.Records(), Committer: db}
	raw := make([]byte, 32)
	rand.Read(raw)
	key, err := seal.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := credstore.New(credstore.Config{Store: store, Sealer: key, IssuerDID: func() string { return "did:example:me" }})
	if err != nil {
		t.Fatal(err)
	}
	pc := &proveControlParts{service: provecontrol.New(provecontrol.Config{Store: store})}
	parts := &aipParts{store: cs}

	issuer, err := keys.Generate(keys.Ed25519, "")
	if err != nil {
		t.Fatal(err)
	}
	iss := did.KeyDID(issuer.Public())
	ids := []string{"0b1c6f4e-0000-4000-8000-000000000001", "0b1c6f4e-0000-4000-8000-000000000002", "0b1c6f4e-0000-4000-8000-000000000003"}
	jwts := map[string]string{}
	for i, id := range ids {
		jwt, err := w3cvc.IssueJWT(map[string]any{
			"@context": []any{w3cvc.ContextV1}, "id": "urn:uuid:" + id, "type": []any{"VerifiableCredential", "ProveControlCredential"},
			"issuer": iss, "issuanceDate": "2026-01-01T00:00:00Z", "credentialSubject": map[string]any{"id": "did:example:me"},
		}, w3cvc.KeySigner(iss, issuer))
		if err != nil {
			t.Fatal(err)
		}
		jwts[id] = string(jwt)
		c := provecontrol.Credential{ID: id, Issuer: iss, JWT: string(jwt), Received: time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC)}
		b, _ := json.Marshal(c)
		if err := store.Records.Put(ctx, provecontrol.KindCredential, id, b); err != nil {
			t.Fatal(err)
		}
	}
	// One already reached the store (a credential received once the store existed).
	if err := store.Update(ctx, func(w *agent.Work) error {
		return cs.Put(w, &aip.Credential{ID: ids[1], Format: aip.FormatW3C, CredentialJSON: jwts[ids[1]]}, nil)
	}); err != nil {
		t.Fatal(err)
	}

	count := func() int {
		items, next, err := cs.Credentials(ctx, aip.Page{Limit: 100}, aip.CredentialFilter{})
		if err != nil || next != "" {
			t.Fatal(err, next)
		}
		for _, c := range items {
			if c.CredentialJSON != jwts[c.ID] || c.W3CFormat != w3cvc.FormatJWTVC {
				t.Fatalf("held %s: %+v", c.ID, c)
			}
		}
		return len(items)
	}
	if err := adoptProveControlCredentials(ctx, pc, parts, store); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d held credentials after adoption, want 3", n)
	}
	// A credential that appears afterwards in Prove Control's records only
	// (it would have reached the store through Held) is not looked for
	// again: the adoption ran once.
	late := provecontrol.Credential{ID: "0b1c6f4e-0000-4000-8000-000000000004", JWT: jwts[ids[0]]}
	b, _ := json.Marshal(late)
	store.Records.Put(ctx, provecontrol.KindCredential, late.ID, b)
	if err := adoptProveControlCredentials(ctx, pc, parts, store); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d held credentials after a second start, want 3", n)
	}
}
