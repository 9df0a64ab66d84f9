package w3cvc

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent/keys"
)

func TestIssueVerifyRoundTrips(t *testing.T) {
	holder := newKeyParty(t, keys.Ed25519)
	issuers := map[string]*party{
		"did:key Ed25519":   newKeyParty(t, keys.Ed25519),
		"did:key P-256":     newKeyParty(t, keys.P256),
		"did:key secp256k1": newKeyParty(t, keys.Secp256k1),
		"did:peer:2":        newPeerParty(t),
	}
	v := newTestVerifier(t, VerifierConfig{})
	for name, iss := range issuers {
		for _, format := range []string{FormatJWTVC, FormatLDPVC, "v2 " + FormatLDPVC} {
			if format != FormatJWTVC && iss.Key.Curve != keys.Ed25519 {
				continue
			}
			t.Run(name+" "+format, func(t *testing.T) {
				vc := sampleVC(holder.DID)
				var raw []byte
				var err error
				switch format {
				case FormatJWTVC:
					raw, err = IssueJWT(vc, iss.Signer)
				case FormatLDPVC:
					raw, err = IssueLDP(vc, iss.Signer)
				default:
					vc["@context"] = []any{ContextV2, ContextUndefinedTermsV2}
					delete(vc, "issuanceDate")
					vc["validFrom"] = "2024-01-01T00:00:00Z"
					raw, err = IssueLDP(vc, iss.Signer)
				}
				if err != nil {
					t.Fatal(err)
				}
				c, err := v.VerifyCredential(ctx(), raw)
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				if c.Issuer != iss.DID || c.Subject != holder.DID || c.ID != vc["id"] {
					t.Fatalf("credential issuer %q subject %q id %q", c.Issuer, c.Subject, c.ID)
				}
				if got := c.Types; len(got) != 2 || got[1] != "UniversityDegreeCredential" {
					t.Fatalf("types %v", got)
				}
				if c.IssuedAt.IsZero() || c.IssuedAt.Year() != 2024 {
					t.Fatalf("issued at %v", c.IssuedAt)
				}
				if name := c.Document["credentialSubject"].(map[string]any)["name"]; name != "Alice" {
					t.Fatalf("document subject name %v", name)
				}
				if strings.HasPrefix(format, "v2") {
					if p := c.Document["proof"].(map[string]any); p["cryptosuite"] != SuiteEdDSARDFC2022 {
						t.Fatalf("v2 credential proof %v", p)
					}
				}
				// ParseCredential gives the same view without verifying.
				pc, err := ParseCredential(raw)
				if err != nil || pc.Format != c.Format || pc.Subject != c.Subject {
					t.Fatalf("parse: %v %+v", err, pc)
				}
			})
		}
	}
}

func TestIssueLDPBothSuites(t *testing.T) {
	iss := newKeyParty(t, keys.Ed25519)
	v := newTestVerifier(t, VerifierConfig{})
	for _, suite := range []string{SuiteEd25519Signature2020, SuiteEdDSARDFC2022} {
		raw, err := IssueLDPSuite(sampleVC("did:example:alice"), iss.Signer, suite)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.VerifyCredential(ctx(), raw); err != nil {
			t.Fatalf("%s: %v", suite, err)
		}
		tampered := strings.Replace(string(raw), "Alice", "Alicf", 1)
		_, err = v.VerifyCredential(ctx(), []byte(tampered))
		mustReason(t, err, ReasonSignature)
	}
}

func TestTamperedCredentialRefused(t *testing.T) {
	iss := newKeyParty(t, keys.Ed25519)
	other := newKeyParty(t, keys.Ed25519)
	v := newTestVerifier(t, VerifierConfig{})

	jwt, err := IssueJWT(sampleVC("did:example:alice"), iss.Signer)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(jwt), ".")
	var claims map[string]any
	p, _ := b64.DecodeString(parts[1])
	_ = json.Unmarshal(p, &claims)
	claims["vc"].(map[string]any)["credentialSubject"].(map[string]any)["age"] = 99
	parts[1] = b64.EncodeToString(mustJSON(t, claims))
	_, err = v.VerifyCredential(ctx(), []byte(strings.Join(parts, ".")))
	mustReason(t, err, ReasonSignature)

	// Signed by another key claiming the issuer's DID.
	forged, err := IssueJWT(sampleVC("did:example:alice"), forgedSigner{other.Signer, iss.DID, iss.Signer.KeyID()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyCredential(ctx(), forged)
	mustReason(t, err, ReasonSignature)

	ldp, err := IssueLDP(sampleVC("did:example:alice"), iss.Signer)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	_ = json.Unmarshal(ldp, &doc)
	doc["credentialSubject"].(map[string]any)["age"] = 35
	_, err = v.VerifyCredential(ctx(), mustJSON(t, doc))
	mustReason(t, err, ReasonSignature)

	// A term no context defines is refused, not left unsigned.
	_ = json.Unmarshal(ldp, &doc)
	doc["@context"] = []any{ContextV1, ContextEd25519Suite2020}
	_, err = v.VerifyCredential(ctx(), mustJSON(t, doc))
	mustReason(t, err, ReasonMalformed)
	if !strings.Contains(err.Error(), "JSON-LD") {
		t.Fatalf("undefined term error: %v", err)
	}
	// An unknown context is an error, never fetched.
	_ = json.Unmarshal(ldp, &doc)
	doc["@context"] = append(doc["@context"].([]any), "https://example.com/unknown/v1")
	_, err = v.VerifyCredential(ctx(), mustJSON(t, doc))
	if err == nil || !strings.Contains(err.Error(), "is not known") {
		t.Fatalf("unknown context: %v", err)
	}
}

// forgedSigner signs with one key under another identity.
type forgedSigner struct {
	Signer
	did, kid string
}

func (f forgedSigner) DID() string   { return f.did }
func (f forgedSigner) KeyID() string { return f.kid }

func TestExpiry(t *testing.T) {
	iss := newKeyParty(t, keys.Ed25519)
	now = at("2024-01-01T00:00:00Z")
	t.Cleanup(func() { now = time.Now })
	vc := sampleVC("did:example:alice")
	vc["expirationDate"] = "2025-01-01T00:00:00Z"
	for _, issue := range []func(map[string]any, Signer) ([]byte, error){IssueJWT, IssueLDP} {
		raw, err := issue(vc, iss.Signer)
		if err != nil {
			t.Fatal(err)
		}
		_, err = newTestVerifier(t, VerifierConfig{Now: at("2024-06-01T00:00:00Z")}).VerifyCredential(ctx(), raw)
		if err != nil {
			t.Fatalf("within validity: %v", err)
		}
		_, err = newTestVerifier(t, VerifierConfig{Now: at("2025-01-01T00:00:01Z")}).VerifyCredential(ctx(), raw)
		mustReason(t, err, ReasonExpired)
		_, err = newTestVerifier(t, VerifierConfig{Now: at("2023-12-31T00:00:00Z")}).VerifyCredential(ctx(), raw)
		mustReason(t, err, ReasonExpired)
	}
}

func TestIssuerChecks(t *testing.T) {
	iss := newKeyParty(t, keys.Ed25519)
	vc := sampleVC("did:example:alice")
	vc["issuer"] = "did:example:someone-else"
	if _, err := IssueJWT(vc, iss.Signer); err == nil {
		t.Fatal("issued for another issuer")
	}
	p256 := newKeyParty(t, keys.P256)
	if _, err := IssueLDP(sampleVC("x"), p256.Signer); err == nil || !strings.Contains(err.Error(), "Ed25519") {
		t.Fatalf("LDP with a P-256 key: %v", err)
	}
	// Unresolvable issuer.
	raw, err := IssueJWT(sampleVC("x"), forgedSigner{iss.Signer, "did:web:unreachable.invalid", "did:web:unreachable.invalid#k"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newTestVerifier(t, VerifierConfig{}).VerifyCredential(ctx(), raw)
	mustReason(t, err, ReasonIssuerUnresolved)
}
