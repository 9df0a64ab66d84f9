package anoncreds

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestStoredIssuance: the stored issuer's key-correctness proof verifies,
// and processing the stored issued credential with the stored metadata and
// link secret gives anoncreds-rs's processed credential.
func TestStoredIssuance(t *testing.T) {
	dir := []string{"testdata", "generated", "set1-ge"}
	rd := func(f string) []byte { return readFile(t, append(dir, f)...) }
	cred, ls, c := holderSet1(t)
	cd := c.credDefs[cred.CredDefID]
	offer, err := ParseCredentialOffer(rd("cred_offer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := offer.KeyCorrectnessProof.Verify(cd); err != nil {
		t.Fatalf("key correctness proof: %v", err)
	}
	bad := offer.KeyCorrectnessProof
	bad.XzCap = &BigInt{}
	bad.XzCap.SetInt64(5)
	if err := bad.Verify(cd); !errors.Is(err, ErrCorrectnessProof) {
		t.Fatalf("tampered key correctness proof: %v", err)
	}
	meta, err := ParseCredentialRequestMetadata(rd("cred_request_metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ParseCredential(rd("credential_issued.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ProcessCredential(issued, meta, ls, cd)
	if err != nil {
		t.Fatalf("process: %v", err)
	}
	if got.Signature.PCredential.V.Cmp(&cred.Signature.PCredential.V.Int) != 0 {
		t.Fatal("processed v differs from anoncreds-rs's")
	}
	// Wrong link secret, tampered value: refused.
	other, _ := NewLinkSecret()
	if _, err := ProcessCredential(issued, meta, other, cd); !errors.Is(err, ErrCorrectnessProof) {
		t.Fatalf("other link secret: %v", err)
	}
	tampered := *issued
	tampered.Values = map[string]AttributeValue{}
	for k, v := range issued.Values {
		tampered.Values[k] = v
	}
	tampered.Values["age"] = AttributeValue{Raw: "29", Encoded: "29"}
	if _, err := ProcessCredential(&tampered, meta, ls, cd); !errors.Is(err, ErrCorrectnessProof) {
		t.Fatalf("tampered value: %v", err)
	}
	// A fresh request has the anoncreds-rs shape.
	req, m, err := CreateCredentialRequest(offer, cd, ls, "holder-1", "master_secret")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(req)
	var shape map[string]any
	_ = json.Unmarshal(b, &shape)
	for _, k := range []string{"entropy", "cred_def_id", "blinded_ms", "blinded_ms_correctness_proof", "nonce"} {
		if shape[k] == nil {
			t.Errorf("request lacks %s", k)
		}
	}
	if m.Nonce != req.Nonce || m.LinkSecretBlindingData.VPrime == nil {
		t.Error("metadata inconsistent")
	}
}
