package anoncreds

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParse: the JSON model (and the key-correctness check of an offer)
// never panics on malformed input.
func FuzzParse(f *testing.F) {
	for _, c := range loadCases(f) {
		f.Add(c.presJSON)
		f.Add(c.reqJSON)
	}
	f.Add(readFile(f, "testdata", "generated", "set1-ge", "cred_def.json"))
	f.Add(readFile(f, "testdata", "generated", "set1-ge", "schema.json"))
	f.Add([]byte(`{"nonce":"1","requested_attributes":{"a":{"name":"x","restrictions":[{"$or":[{"$not":{"schema_id":"1"}}]}]}}}`))
	for _, f2 := range []string{"credential.json", "cred_offer.json", "cred_request_metadata.json"} {
		f.Add(readFile(f, "testdata", "generated", "set1-ge", f2))
	}
	cd, err := ParseCredentialDefinition(readFile(f, "testdata", "generated", "set1-ge", "cred_def.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseSchema(data)
		_, _ = ParseCredentialDefinition(data)
		_, _ = ParsePresentationRequest(data)
		_, _ = ParsePresentation(data)
		_, _ = ParseCredential(data)
		_, _ = ParseCredentialRequestMetadata(data)
		if o, err := ParseCredentialOffer(data); err == nil {
			_ = o.KeyCorrectnessProof.Verify(cd)
		}
	})
}

// FuzzVerify: a mutated presentation or request gives an error or a
// verdict, never a panic, and never more than a bounded time.
func FuzzVerify(f *testing.F) {
	cases := loadCases(f)
	for _, c := range cases {
		f.Add(c.presJSON, c.reqJSON)
	}
	base := cases[0]
	f.Fuzz(func(t *testing.T, presJSON, reqJSON []byte) {
		pres, err := ParsePresentation(presJSON)
		if err != nil {
			return
		}
		req, err := ParsePresentationRequest(reqJSON)
		if err != nil {
			return
		}
		start := time.Now()
		_ = VerifyPresentation(pres, req, base.schemas, base.credDefs)
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("verification took %v", d)
		}
	})
}

// TestBounds: oversized numbers are refused at parse time; the largest
// accepted exponent keeps verification fast; non-invertible values are
// errors, not panics.
func TestBounds(t *testing.T) {
	c := set1(t)
	e := c.pres.Proof.Proofs[0].PrimaryProof.EqProof.E.String()
	huge := bytes.Replace(c.presJSON, []byte(`"`+e+`"`), []byte(`"`+strings.Repeat("9", maxBigIntDigits+1)+`"`), 1)
	if _, err := ParsePresentation(huge); !errors.Is(err, ErrMalformed) {
		t.Fatalf("huge number: %v", err)
	}
	for _, bad := range []string{`"1e5"`, `"0x10"`, `"-"`, `""`, `12`, `"1 2"`, `"+1"`} {
		mal := bytes.Replace(c.presJSON, []byte(`"`+e+`"`), []byte(bad), 1)
		if _, err := ParsePresentation(mal); !errors.Is(err, ErrMalformed) {
			t.Errorf("number %s: %v", bad, err)
		}
	}
	// The largest accepted exponent, everywhere it can be: bounded time.
	big8192 := `"` + strings.Repeat("9", maxBigIntDigits-2) + `"`
	p := c.presJSON
	for _, sp := range c.pres.Proof.Proofs {
		p = bytes.Replace(p, []byte(`"`+sp.PrimaryProof.EqProof.V.String()+`"`), []byte(big8192), 1)
		for _, ge := range sp.PrimaryProof.GeProofs {
			p = bytes.Replace(p, []byte(`"`+ge.Alpha.String()+`"`), []byte(big8192), 1)
		}
	}
	pres, err := ParsePresentation(p)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := VerifyPresentation(pres, c.req, c.schemas, c.credDefs); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("want ErrInvalidProof, got %v", err)
	}
	t.Logf("8192-bit exponents: %v", time.Since(start))
	// A zero commitment cannot be inverted.
	pres, _ = ParsePresentation(c.presJSON)
	pres.Proof.Proofs[0].PrimaryProof.GeProofs[0].T["0"].SetInt64(0)
	if err := VerifyPresentation(pres, c.req, c.schemas, c.credDefs); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("zero T: %v", err)
	}
	// Missing members.
	for _, member := range []string{`"a_prime"`, `"c_hash"`, `"mj"`, `"DELTA"`} {
		mal := bytes.Replace(c.presJSON, []byte(member), []byte(`"zz`+member[1:]), 1)
		if _, err := ParsePresentation(mal); !errors.Is(err, ErrMalformed) {
			t.Errorf("without %s: %v", member, err)
		}
	}
}

// BenchmarkVerify: one whole presentation verification per valid vector
// (the agent-level checks and the CL proof).
func BenchmarkVerify(b *testing.B) {
	for _, c := range loadCases(b) {
		if c.Expect != "valid" {
			continue
		}
		b.Run(c.Dir[len("generated/"):], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := VerifyPresentation(c.pres, c.req, c.schemas, c.credDefs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
