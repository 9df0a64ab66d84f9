package w3cvc

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/piprate/json-gold/ld"
)

// canonicalizeUncached is canonicalize with json-gold's own expansion: the
// reference the cached-context path must agree with.
func canonicalizeUncached(doc map[string]any) ([]byte, error) {
	proc := ld.NewJsonLdProcessor()
	expanded, err := proc.Expand(doc, expandOptions())
	if err != nil {
		return nil, err
	}
	opts := expandOptions()
	opts.SafeMode = false
	opts.Algorithm = ld.AlgorithmURDNA2015
	opts.Format = "application/n-quads"
	out, err := proc.Normalize(expanded, opts)
	if err != nil {
		return nil, err
	}
	return []byte(out.(string)), nil
}

func ldDocuments() map[string]map[string]any {
	vc2 := sampleVC("did:example:holder")
	vc2["@context"] = []any{ContextV2}
	vc2["credentialSubject"] = map[string]any{"id": "did:example:holder", "name": "Alice"}
	delete(vc2, "issuanceDate")
	vc2["validFrom"] = "2024-01-01T00:00:00Z"
	nested := sampleVC("did:example:holder")
	nested["credentialSubject"].(map[string]any)["@context"] = map[string]any{"nick": "https://example.org/examples#nick"}
	nested["credentialSubject"].(map[string]any)["nick"] = "Al"
	single := sampleVC("did:example:holder")
	single["@context"] = ContextV1
	single["credentialSubject"] = map[string]any{"id": "did:example:holder"}
	single["type"] = "VerifiableCredential"
	proofOpts := map[string]any{
		"@context": []any{ContextV1, ContextEd25519Suite2020}, "type": SuiteEd25519Signature2020,
		"created": "2024-01-01T00:00:00Z", "proofPurpose": "assertionMethod",
		"verificationMethod": "did:key:z6Mk#z6Mk",
	}
	return map[string]map[string]any{
		"vc 1.1 with an inline term": sampleVC("did:example:holder"),
		"vc 2.0":                     vc2,
		"nested @context":            nested,
		"a single context URL":       single,
		"proof options":              proofOpts,
	}
}

// TestCachedExpansionAgrees: canonicalising through the context cache
// gives the N-Quads json-gold gives, cold and warm, and refuses what it
// refuses (safe mode: an undefined term).
func TestCachedExpansionAgrees(t *testing.T) {
	for name, doc := range ldDocuments() {
		want, err := canonicalizeUncached(cloneMap(doc))
		if err != nil {
			t.Fatalf("%s: reference: %v", name, err)
		}
		for round := 0; round < 2; round++ {
			got, err := canonicalize(cloneMap(doc))
			if err != nil {
				t.Fatalf("%s round %d: %v", name, round, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s round %d:\n got %s\nwant %s", name, round, got, want)
			}
		}
	}
	bad := sampleVC("did:example:holder")
	bad["credentialSubject"].(map[string]any)["undefinedTerm"] = "x"
	if _, err := canonicalizeUncached(cloneMap(bad)); err == nil {
		t.Fatal("reference accepted an undefined term")
	}
	for round := 0; round < 2; round++ {
		if _, err := canonicalize(cloneMap(bad)); err == nil || !strings.Contains(err.Error(), "expansion") {
			t.Fatalf("round %d: undefined term: %v", round, err)
		}
	}
}

// TestCachedExpansionConcurrent: one cached context serves concurrent
// expansions (run with -race), and the cache stays bounded.
func TestCachedExpansionConcurrent(t *testing.T) {
	docs := ldDocuments()
	want := map[string][]byte{}
	for name, doc := range docs {
		b, err := canonicalizeUncached(cloneMap(doc))
		if err != nil {
			t.Fatal(err)
		}
		want[name] = b
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				for name, doc := range docs {
					got, err := canonicalize(cloneMap(doc))
					if err != nil || !bytes.Equal(got, want[name]) {
						errs <- fmt.Errorf("%s: %v", name, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := 0; i < maxCachedContexts+10; i++ {
		doc := sampleVC("did:example:holder")
		doc["@context"] = []any{ContextV1, ContextExamplesV1, map[string]any{"age": fmt.Sprintf("https://example.org/examples#age%d", i)}}
		ref, err := canonicalizeUncached(cloneMap(doc))
		if err != nil {
			t.Fatal(err)
		}
		got, err := canonicalize(doc)
		if err != nil || !bytes.Equal(got, ref) {
			t.Fatalf("inline context %d: %v\n got %s\nwant %s", i, err, got, ref)
		}
	}
	contexts.Lock()
	n := len(contexts.m)
	contexts.Unlock()
	if n > maxCachedContexts {
		t.Fatalf("%d cached contexts", n)
	}
}
