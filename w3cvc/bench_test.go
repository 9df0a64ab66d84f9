package w3cvc

import (
	"testing"

	"github.com/agentd/agentd/agent/keys"
)

func benchPresentation(b *testing.B, format string) {
	iss, holder := newKeyParty(b, keys.Ed25519), newKeyParty(b, keys.Ed25519)
	issue := IssueJWT
	if format == FormatLDPVP {
		issue = IssueLDP
	}
	raw, err := issue(sampleVC(holder.DID), iss.Signer)
	if err != nil {
		b.Fatal(err)
	}
	c, err := ParseCredential(raw)
	if err != nil {
		b.Fatal(err)
	}
	vp, err := Present([]*Credential{c}, holder.Auth, format, "challenge", "verifier.example", nil)
	if err != nil {
		b.Fatal(err)
	}
	v := newTestVerifier(b, VerifierConfig{})
	chk := PresentationCheck{Challenge: "challenge", Domain: "verifier.example", Holders: []string{holder.DID}}
	if _, err := v.VerifyPresentation(ctx(), vp, chk); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.VerifyPresentation(ctx(), vp, chk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyJWTPresentation verifies a VP-JWT with one VC-JWT
// (did:key Ed25519 issuer and holder, no status list).
func BenchmarkVerifyJWTPresentation(b *testing.B) { benchPresentation(b, FormatJWTVP) }

// BenchmarkVerifyLDPPresentation verifies an LDP VP (Ed25519Signature2020)
// with one LDP VC: four RDFC-1.0 canonicalisations, contexts embedded
// and parsed once, no network.
func BenchmarkVerifyLDPPresentation(b *testing.B) { benchPresentation(b, FormatLDPVP) }
