package iden3auth

import (
	"context"
	"strings"
	"testing"

	"github.com/iden3/iden3comm/v2/protocol"

	"github.com/agentd/agentd/protocols/iden3auth/iden3test"
)

// The recorded JWS-packed response (go-iden3-auth TestVerifier_FullVerify_JWS,
// testdata/jws_sigv2_token.txt): one SigV2 proof, signed (ES256K-R) by an
// Ethereum account named with a did:pkh.
const (
	jwsVerifier  = "did:polygonid:polygon:mumbai:2qLPqvayNQz9TA2r5VPxUugoF18teGU583zJ859wfy"
	jwsUser      = "did:pkh:poly:0x7141E4d20F7644DC8c0AdCA8a520EC83C6cABD65"
	jwsSchemaURL = "https://raw.githubusercontent.com/iden3/claim-schema-vocab/main/schemas/json-ld/kyc-v4.jsonld"
)

func jwsScope() []protocol.ZeroKnowledgeProofRequest {
	opt := true
	return []protocol.ZeroKnowledgeProofRequest{{
		ID: 1, CircuitID: "credentialAtomicQuerySigV2", Optional: &opt,
		Query: map[string]any{
			"allowedIssuers":    []any{"*"},
			"context":           jwsSchemaURL,
			"credentialSubject": map[string]any{"birthday": map[string]any{"$lt": 20000101}},
			"type":              "KYCAgeCredential",
		},
	}}
}

// TestVerifyRecordedJWS: a JWS-packed response is verified through the same
// path as a JWZ (the signer's did:pkh resolved locally, its signature
// recovered to the account); a signature that does not match is refused
// and changes nothing.
func TestVerifyRecordedJWS(t *testing.T) {
	c := iden3test.Start(t)
	c.SetPermissive(true) // the SigV2 issuer's states are the latest
	f := newFixture(t, c, func(cfg *Config) { cfg.Chains[0].VerifierDID = jwsVerifier })
	token := string(readFile(t, "jws_sigv2_token.txt"))

	f.create(t, vecThread, CreateRequest{Reason: "reason", Scope: jwsScope(), Chain: "polygon:mumbai"})
	before := f.stored(t, vecThread)
	parts := strings.Split(token, ".")
	sig := []byte(parts[2])
	sig[10] ^= 0x01 // another signature: recovers another address, or none
	forged := parts[0] + "." + parts[1] + "." + string(sig)
	if _, err := f.svc.Verify(context.Background(), vecThread, []byte(forged)); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a forged signature: %v", err)
	}
	if f.stored(t, vecThread) != before {
		t.Fatal("a refused JWS changed the session")
	}

	s, err := f.svc.Verify(context.Background(), vecThread, []byte(token))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if s.State != StateVerified || s.Result.UserDID != jwsUser || len(s.Result.Scopes) != 1 {
		t.Fatalf("session %+v result %+v", s, s.Result)
	}
	if sc := s.Result.Scopes[0]; sc.ID != 1 || sc.CircuitID != "credentialAtomicQuerySigV2" || sc.ProofKind != ProofKindSig {
		t.Fatalf("scope %+v", sc)
	}
	if thid, err := ThreadOf([]byte(token)); err != nil || thid != vecThread {
		t.Fatalf("ThreadOf a JWS: %q %v", thid, err)
	}
}

func TestPKHDocument(t *testing.T) {
	for did, account := range map[string]string{
		"did:pkh:eip155:1:0xb9c5714089478a327f09197987f16f9e5d936e8a":     "eip155:1:0xb9c5714089478a327f09197987f16f9e5d936e8a",
		"did:pkh:poly:0x7141E4d20F7644DC8c0AdCA8a520EC83C6cABD65":         "eip155:137:0x7141E4d20F7644DC8c0AdCA8a520EC83C6cABD65",
		"did:pkh:eth:0x7141E4d20F7644DC8c0AdCA8a520EC83C6cABD65":          "eip155:1:0x7141E4d20F7644DC8c0AdCA8a520EC83C6cABD65",
		"did:pkh:eip155:80002:0x7141E4d20F7644DC8c0AdCA8a520EC83C6cABD65": "eip155:80002:0x7141E4d20F7644DC8c0AdCA8a520EC83C6cABD65",
	} {
		doc, err := pkhDocument(did)
		if err != nil {
			t.Fatalf("%s: %v", did, err)
		}
		if doc.ID != did || len(doc.VerificationMethod) != 1 || doc.VerificationMethod[0].BlockchainAccountID != account ||
			doc.VerificationMethod[0].Type != "EcdsaSecp256k1RecoveryMethod2020" || len(doc.Authentication) != 1 {
			t.Fatalf("%s: %+v", did, doc)
		}
	}
	for _, did := range []string{
		"did:ethr:0x7141E4d20F7644DC8c0AdCA8a520EC83C6cABD65", // another method: never resolved over a network
		"did:polygonid:polygon:amoy:2qV9QXdhXXmN5sKjN1YueMjxgRbnJcEGK2kGpvk3cq",
		"did:pkh:eip155:1:0x7141E4d20F7644DC8c0AdCA8a520EC83C6cABD6", // 39 hex digits
		"did:pkh:solana:4sGjMW1sUnHzSxGspuhpqLDx6wiyjNtZ:CKg5d12Jhpej1JqtmxLJgaFqqeYjxgPqToJ4LBdvG9Ev",
		"did:pkh:eip155:x:0x7141E4d20F7644DC8c0AdCA8a520EC83C6cABD65",
	} {
		if _, err := pkhDocument(did); err == nil {
			t.Errorf("%s resolved", did)
		}
	}
}
