package w3cvc

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentd/agentd/agent/keys"
	"github.com/piprate/json-gold/ld"
)

// Data Integrity proof suites.
const (
	// SuiteEd25519Signature2020 is the Ed25519Signature2020 proof type.
	SuiteEd25519Signature2020 = "Ed25519Signature2020"
	// SuiteEdDSARDFC2022 is DataIntegrityProof with cryptosuite
	// eddsa-rdfc-2022.
	SuiteEdDSARDFC2022 = "eddsa-rdfc-2022"
)

// canonicalize returns the RDFC-1.0 (URDNA2015) N-Quads of doc, in JSON-LD
// safe mode with the offline loader.
func canonicalize(doc map[string]any) (_ []byte, err error) {
	defer func() {
		// json-gold panics on some malformed input (and on non-JSON Go
		// values); a document must give an error, never a crash.
		if r := recover(); r != nil {
			err = fmt.Errorf("JSON-LD processing failed on malformed input: %v", r)
		}
	}()
	// Expansion in safe mode refuses terms the contexts do not define
	// (Normalize alone would drop them from what is signed).
	expanded, err := expand(doc)
	if err != nil {
		return nil, fmt.Errorf("JSON-LD expansion: %w", err)
	}
	opts := expandOptions()
	opts.SafeMode = false
	proc := ld.NewJsonLdProcessor()
	opts.Algorithm = ld.AlgorithmURDNA2015
	opts.Format = "application/n-quads"
	out, err := proc.Normalize(expanded, opts)
	if err != nil {
		return nil, fmt.Errorf("JSON-LD canonicalisation: %w", err)
	}
	s, ok := out.(string)
	if !ok {
		return nil, errors.New("JSON-LD canonicalisation gave no N-Quads")
	}
	if s == "" {
		return nil, errors.New("JSON-LD canonicalisation gave an empty dataset")
	}
	return []byte(s), nil
}

// proofHash is the data both suites sign: SHA-256 of the canonical proof
// options (the proof without its value, under the document's @context)
// followed by SHA-256 of the canonical document without its proof.
func proofHash(doc map[string]any, proof map[string]any) ([]byte, error) {
	opts := make(map[string]any, len(proof)+1)
	for k, v := range proof {
		if k == "proofValue" || k == "jws" || k == "signatureValue" {
			continue
		}
		opts[k] = v
	}
	opts["@context"] = doc["@context"]
	unsigned := make(map[string]any, len(doc))
	for k, v := range doc {
		if k != "proof" {
			unsigned[k] = v
		}
	}
	co, err := canonicalize(cloneMap(opts))
	if err != nil {
		return nil, fmt.Errorf("proof options: %w", err)
	}
	cd, err := canonicalize(cloneMap(unsigned))
	if err != nil {
		return nil, err
	}
	h1, h2 := sha256.Sum256(co), sha256.Sum256(cd)
	return append(h1[:], h2[:]...), nil
}

// addProof signs doc (which it changes: contexts, proof) with an Ed25519
// signer. purpose is assertionMethod or authentication.
func addProof(doc map[string]any, s Signer, suite, purpose, challenge, domain string, now time.Time) error {
	if s.Algorithm() != "EdDSA" {
		return fmt.Errorf("%s proofs need an Ed25519 key, the signer's algorithm is %s", suite, s.Algorithm())
	}
	proof := map[string]any{
		"created":            now.UTC().Format(time.RFC3339),
		"verificationMethod": s.KeyID(),
		"proofPurpose":       purpose,
	}
	switch suite {
	case SuiteEd25519Signature2020:
		proof["type"] = SuiteEd25519Signature2020
		ensureContext(doc, ContextEd25519Suite2020)
	case SuiteEdDSARDFC2022:
		proof["type"] = "DataIntegrityProof"
		proof["cryptosuite"] = SuiteEdDSARDFC2022
		if !isV2(doc) {
			ensureContext(doc, ContextDataIntegrityV2)
		}
	default:
		return fmt.Errorf("unknown proof suite %q", suite)
	}
	if challenge != "" {
		proof["challenge"] = challenge
	}
	if domain != "" {
		proof["domain"] = domain
	}
	delete(doc, "proof")
	h, err := proofHash(doc, proof)
	if err != nil {
		return err
	}
	sig, err := s.Sign(h)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	proof["proofValue"] = "z" + keys.Base58Encode(sig)
	doc["proof"] = proof
	return nil
}

// ensureContext appends url to doc's @context if it is not there.
func ensureContext(doc map[string]any, url string) {
	switch c := doc["@context"].(type) {
	case string:
		if c != url {
			doc["@context"] = []any{c, url}
		}
	case []any:
		for _, e := range c {
			if e == url {
				return
			}
		}
		doc["@context"] = append(c, url)
	case nil:
		doc["@context"] = []any{ContextV1, url}
	}
}

// ldProof is a parsed Data Integrity proof.
type ldProof struct {
	suite              string
	verificationMethod string
	purpose            string
	challenge, domain  string
	created, expires   time.Time
	raw                map[string]any
	sig                []byte
}

// parseProof reads doc's one proof.
func parseProof(doc map[string]any) (*ldProof, error) {
	var pm map[string]any
	switch p := doc["proof"].(type) {
	case map[string]any:
		pm = p
	case []any:
		if len(p) != 1 {
			return nil, newErr(ReasonMalformed, fmt.Sprintf("document has %d proofs; one is supported", len(p)))
		}
		pm, _ = p[0].(map[string]any)
	}
	if pm == nil {
		return nil, newErr(ReasonMalformed, "document has no proof object")
	}
	p := &ldProof{raw: pm}
	typ, _ := pm["type"].(string)
	switch typ {
	case SuiteEd25519Signature2020:
		p.suite = SuiteEd25519Signature2020
	case "DataIntegrityProof":
		if cs, _ := pm["cryptosuite"].(string); cs != SuiteEdDSARDFC2022 {
			return nil, newErr(ReasonMalformed, fmt.Sprintf("unsupported Data Integrity cryptosuite %.60q (supported: eddsa-rdfc-2022)", cs))
		}
		p.suite = SuiteEdDSARDFC2022
	default:
		return nil, newErr(ReasonMalformed, fmt.Sprintf("unsupported proof type %.60q (supported: Ed25519Signature2020, DataIntegrityProof eddsa-rdfc-2022)", typ))
	}
	p.verificationMethod, _ = pm["verificationMethod"].(string)
	p.purpose, _ = pm["proofPurpose"].(string)
	p.challenge, _ = pm["challenge"].(string)
	p.domain = domainOf(pm["domain"])
	if p.verificationMethod == "" || p.purpose == "" {
		return nil, newErr(ReasonMalformed, "proof lacks verificationMethod or proofPurpose")
	}
	var err error
	if p.created, err = docTime(pm, "created"); err != nil {
		return nil, err
	}
	if p.expires, err = docTime(pm, "expires"); err != nil {
		return nil, err
	}
	pv, _ := pm["proofValue"].(string)
	if !strings.HasPrefix(pv, "z") {
		return nil, newErr(ReasonMalformed, "proofValue is not multibase base58btc")
	}
	if p.sig, err = keys.Base58Decode(pv[1:]); err != nil {
		return nil, newErr(ReasonMalformed, "proofValue is not base58btc")
	}
	return p, nil
}

// domainOf reads a proof domain: a string, or a one-element array.
func domainOf(v any) string {
	switch d := v.(type) {
	case string:
		return d
	case []any:
		if len(d) == 1 {
			s, _ := d[0].(string)
			return s
		}
	}
	return ""
}
