package provecontrol

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent/keys"
)

func TestCredentialJWT(t *testing.T) {
	ctx := context.Background()
	issuer, holder := newParty(t, ""), newParty(t, "")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	doc, _ := resolver.Resolve(ctx, issuer.did)
	auth, _ := doc.Authentication()
	signer, err := issuer.id.PrivateKey(ctx, auth[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	jwt, claims, err := IssueCredential(signer, issuer.did, holder.did, Email, "ana@example.org", now, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(jwt, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]string
	json.Unmarshal(hb, &h)
	if h["alg"] != "EdDSA" || h["typ"] != "JWT" || h["kid"] != signer.ID {
		t.Fatalf("header %v", h)
	}
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var p map[string]any
	json.Unmarshal(pb, &p)
	vc := p["vc"].(map[string]any)
	cs := vc["credentialSubject"].(map[string]any)
	if p["iss"] != issuer.did || p["sub"] != holder.did || vc["issuer"] != issuer.did || cs["id"] != holder.did ||
		cs["verification_type"] != "Email" || cs["subject"] != "ana@example.org" ||
		vc["issuanceDate"] != "2026-03-01T12:00:00Z" || vc["expirationDate"] != "2026-03-03T12:00:00Z" ||
		!strings.HasPrefix(p["jti"].(string), "urn:uuid:") {
		t.Fatalf("payload %s", pb)
	}
	types := vc["type"].([]any)
	if len(types) != 2 || types[0] != "VerifiableCredential" || types[1] != CredentialType {
		t.Fatalf("types %v", types)
	}
	if ctxs := vc["@context"].([]any); ctxs[0] != ContextV1 {
		t.Fatalf("@context %v", ctxs)
	}
	got, err := VerifyCredential(ctx, jwt, resolver, now.Add(time.Hour))
	if err != nil || got.Jti != claims.Jti {
		t.Fatalf("verify: %v", err)
	}

	reencode := func(f func(map[string]any)) string {
		var c map[string]any
		json.Unmarshal(pb, &c)
		f(c)
		b, _ := json.Marshal(c)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	}
	other, _ := keys.Generate(keys.Ed25519, signer.ID)
	forged, _, _ := IssueCredential(other, issuer.did, holder.did, Email, "ana@example.org", now, time.Hour)
	for name, tc := range map[string]struct {
		jwt string
		at  time.Time
	}{
		"expired":       {jwt, now.Add(49 * time.Hour)},
		"not yet valid": {jwt, now.Add(-time.Hour)},
		"tampered subject": {reencode(func(c map[string]any) {
			c["vc"].(map[string]any)["credentialSubject"].(map[string]any)["subject"] = "eve@example.org"
		}), now},
		"tampered issuer": {reencode(func(c map[string]any) { c["iss"] = holder.did }), now},
		"bad signature":   {parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)), now},
		"forged":          {forged, now},
		"two parts":       {parts[0] + "." + parts[1], now},
		"not base64":      {"a.b!.c", now},
	} {
		if _, err := VerifyCredential(ctx, tc.jwt, resolver, tc.at); !errors.Is(err, ErrCredential) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A key agreement key can't issue.
	if _, _, err := IssueCredential(keys.PrivateKey{PublicKey: keys.PublicKey{ID: issuer.did + "#key-1", Curve: keys.X25519}}, issuer.did, holder.did, Email, "a@b.example", now, time.Hour); err == nil {
		t.Error("an X25519 key issued a credential")
	}
}
