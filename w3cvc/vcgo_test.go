package w3cvc

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	tbdid "github.com/trustbloc/did-go/doc/did"
	"github.com/trustbloc/vc-go/dataintegrity"
	"github.com/trustbloc/vc-go/dataintegrity/models"
	"github.com/trustbloc/vc-go/dataintegrity/suite/eddsa2022"

	"github.com/agentd/agentd/agent/keys"
)

// TestVCGoVerifiesOurEdDSARDFC2022 has trustbloc/vc-go's Data Integrity
// verifier (eddsa-rdfc-2022 suite) check our proofs: an independent
// implementation of the proof hashing and of RDFC-1.0 use.
func TestVCGoVerifiesOurEdDSARDFC2022(t *testing.T) {
	iss := newKeyParty(t, keys.Ed25519)
	vc := sampleVC("did:example:alice")
	vc["@context"] = []any{ContextV2, ContextUndefinedTermsV2}
	delete(vc, "issuanceDate")
	vc["validFrom"] = "2024-01-01T00:00:00Z"
	raw, err := IssueLDPSuite(vc, iss.Signer, SuiteEdDSARDFC2022)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dataintegrity.NewVerifier(&dataintegrity.Options{},
		eddsa2022.NewVerifierInitializer(&eddsa2022.VerifierInitializerOptions{LDDocumentLoader: loader}))
	if err != nil {
		t.Fatal(err)
	}
	verify := func(doc []byte) error {
		return v.VerifyProof(doc, &models.ProofOptions{
			Purpose:              "assertionMethod",
			VerificationMethodID: iss.Signer.KeyID(),
			ProofType:            models.DataIntegrityProof,
			VerificationMethod:   tbdid.NewVerificationMethodFromBytes(iss.Signer.KeyID(), "Ed25519VerificationKey2020", iss.DID, iss.Key.PublicKey.Raw),
		})
	}
	if err := verify(raw); err != nil {
		t.Fatalf("vc-go refuses our eddsa-rdfc-2022 proof: %v", err)
	}
	tampered := strings.Replace(string(raw), `"Alice"`, `"Alicf"`, 1)
	if tampered == string(raw) {
		t.Fatal("nothing tampered")
	}
	if err := verify([]byte(tampered)); err == nil {
		t.Fatal("vc-go accepts a tampered credential")
	}
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	if created, _ := time.Parse(time.RFC3339, doc["proof"].(map[string]any)["created"].(string)); created.IsZero() {
		t.Fatal("proof has no created time")
	}
}
