package w3cvc

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent/keys"
)

// issued returns a verified-shaped credential of each format for holder.
func issued(t *testing.T, iss, holder *party) (jwt, ldp *Credential) {
	t.Helper()
	j, err := IssueJWT(sampleVC(holder.DID), iss.Signer)
	if err != nil {
		t.Fatal(err)
	}
	l, err := IssueLDP(sampleVC(holder.DID), iss.Signer)
	if err != nil {
		t.Fatal(err)
	}
	jc, err := ParseCredential(j)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := ParseCredential(l)
	if err != nil {
		t.Fatal(err)
	}
	return jc, lc
}

func TestPresentationRoundTrips(t *testing.T) {
	iss := newKeyParty(t, keys.Ed25519)
	v := newTestVerifier(t, VerifierConfig{})
	for _, holder := range []*party{newKeyParty(t, keys.Ed25519), newPeerParty(t)} {
		jc, lc := issued(t, iss, holder)
		for _, tc := range []struct {
			format string
			creds  []*Credential
		}{
			{FormatJWTVP, []*Credential{jc}},
			{FormatJWTVP, []*Credential{jc, lc}},
			{FormatLDPVP, []*Credential{lc}},
		} {
			raw, err := Present(tc.creds, holder.Auth, tc.format, "nonce-1", "verifier.example", nil)
			if err != nil {
				t.Fatal(err)
			}
			chk := PresentationCheck{Challenge: "nonce-1", Domain: "verifier.example", Holders: []string{holder.DID}}
			p, err := v.VerifyPresentation(ctx(), raw, chk)
			if err != nil {
				t.Fatalf("%s %d creds, holder %.20s: %v", tc.format, len(tc.creds), holder.DID, err)
			}
			if p.Holder != holder.DID || p.Format != tc.format || len(p.Credentials) != len(tc.creds) {
				t.Fatalf("presentation %+v", p)
			}
			for i, c := range p.Credentials {
				if c.Format != tc.creds[i].Format || c.Subject != holder.DID {
					t.Fatalf("credential %d: %+v", i, c)
				}
			}

			_, err = v.VerifyPresentation(ctx(), raw, PresentationCheck{Challenge: "nonce-2", Domain: "verifier.example"})
			mustReason(t, err, ReasonChallenge)
			_, err = v.VerifyPresentation(ctx(), raw, PresentationCheck{Challenge: "nonce-1", Domain: "other.example"})
			mustReason(t, err, ReasonDomain)
			_, err = v.VerifyPresentation(ctx(), raw, PresentationCheck{Holders: []string{iss.DID}})
			mustReason(t, err, ReasonHolder)
		}
	}
	if _, err := Present([]*Credential{{Format: FormatJWTVC, Raw: []byte("a.b.c")}}, iss.Signer, FormatLDPVP, "", "", nil); err == nil {
		t.Fatal("JWT credential in an LDP VP")
	}
}

func TestTamperedPresentationRefused(t *testing.T) {
	iss := newKeyParty(t, keys.Ed25519)
	holder := newKeyParty(t, keys.Ed25519)
	thief := newKeyParty(t, keys.Ed25519)
	v := newTestVerifier(t, VerifierConfig{})
	jc, lc := issued(t, iss, holder)

	// JWT VP with a changed nonce.
	raw, err := Present([]*Credential{jc}, holder.Auth, FormatJWTVP, "n", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(raw), ".")
	var claims map[string]any
	p, _ := b64.DecodeString(parts[1])
	_ = json.Unmarshal(p, &claims)
	claims["nonce"] = "m"
	parts[1] = b64.EncodeToString(mustJSON(t, claims))
	_, err = v.VerifyPresentation(ctx(), []byte(strings.Join(parts, ".")), PresentationCheck{Challenge: "m"})
	mustReason(t, err, ReasonSignature)

	// LDP VP with a changed challenge.
	raw, err = Present([]*Credential{lc}, holder.Auth, FormatLDPVP, "n", "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(raw), `"challenge":"n"`, `"challenge":"m"`, 1)
	if tampered == string(raw) {
		t.Fatal("challenge not found in the VP")
	}
	_, err = v.VerifyPresentation(ctx(), []byte(tampered), PresentationCheck{Challenge: "m"})
	mustReason(t, err, ReasonSignature)

	// A tampered credential inside a valid VP.
	var doc map[string]any
	_ = json.Unmarshal(lc.Raw, &doc)
	doc["credentialSubject"].(map[string]any)["name"] = "Mallory"
	bad, _ := ParseCredential(mustJSON(t, doc))
	raw, err = Present([]*Credential{bad}, holder.Auth, FormatLDPVP, "n", "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyPresentation(ctx(), raw, PresentationCheck{Challenge: "n"})
	mustReason(t, err, ReasonSignature)

	// Someone else's VP claiming the holder: LDP holder != signer.
	raw, err = Present([]*Credential{lc}, forgedSigner{thief.Auth, holder.DID, thief.Auth.KeyID()}, FormatLDPVP, "n", "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyPresentation(ctx(), raw, PresentationCheck{Challenge: "n"})
	mustReason(t, err, ReasonHolder)
	// JWT VP whose iss is the holder but signed by the thief's key.
	raw, err = Present([]*Credential{jc}, forgedSigner{thief.Auth, holder.DID, holder.Auth.KeyID()}, FormatJWTVP, "n", "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyPresentation(ctx(), raw, PresentationCheck{Challenge: "n"})
	mustReason(t, err, ReasonSignature)
}

func TestExpiredPresentation(t *testing.T) {
	iss := newKeyParty(t, keys.Ed25519)
	holder := newKeyParty(t, keys.Ed25519)
	jc, _ := issued(t, iss, holder)
	raw, err := Present([]*Credential{jc}, holder.Auth, FormatJWTVP, "n", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	later := func() time.Time { return time.Now().Add(presentationLifetime + time.Minute) }
	_, err = newTestVerifier(t, VerifierConfig{Now: later}).VerifyPresentation(ctx(), raw, PresentationCheck{Challenge: "n"})
	mustReason(t, err, ReasonExpired)
}
