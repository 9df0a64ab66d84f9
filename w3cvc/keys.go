package w3cvc

import (
	"context"
	"fmt"
	"strings"

	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
)

// Verification relationships the signing keys are looked up in.
const (
	relAssertion      = "assertionMethod"
	relAuthentication = "authentication"
)

// signerKeys returns the keys of subject's DID document, in relationship
// rel, that may have made a signature with kid (a DID URL, relative or
// empty for "any") and JWS algorithm alg ("" for any). unresolved is the
// Reason when the DID does not resolve.
func (v *Verifier) signerKeys(ctx context.Context, subject, kid, rel, alg, unresolved string) ([]keys.PublicKey, error) {
	if v.cfg.Resolver == nil {
		return nil, newErr(unresolved, "the verifier has no DID resolver")
	}
	if _, _, err := did.ParseDID(subject); err != nil {
		return nil, wrapErr(unresolved, fmt.Sprintf("%.120q is not a DID", subject), err)
	}
	doc, err := v.cfg.Resolver.Resolve(ctx, subject)
	if err != nil {
		return nil, wrapErr(unresolved, "resolve "+truncate(subject), err)
	}
	var ks []keys.PublicKey
	if rel == relAssertion {
		ks, err = doc.AssertionMethod()
	} else {
		ks, err = doc.Authentication()
	}
	if err != nil {
		return nil, wrapErr(unresolved, "DID document of "+truncate(subject), err)
	}
	if kid != "" {
		abs := kid
		if strings.HasPrefix(kid, "#") {
			abs = subject + kid
		}
		if d, _ := did.SplitDIDURL(abs); d != subject {
			return nil, newErr(ReasonSignature, fmt.Sprintf("signing key %s is not a key of %s", truncate(abs), truncate(subject)))
		}
		abs = doc.AbsoluteURL(abs)
		var found []keys.PublicKey
		for _, k := range ks {
			if k.ID == abs {
				found = append(found, k)
			}
		}
		if len(found) == 0 {
			return nil, newErr(ReasonSignature, fmt.Sprintf("signing key %s is not in the %s of %s", truncate(abs), rel, truncate(subject)))
		}
		ks = found
	}
	var out []keys.PublicKey
	for _, k := range ks {
		if alg == "" || k.Curve.JWSAlg() == alg || (alg == "Ed25519" && k.Curve == keys.Ed25519) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, newErr(ReasonSignature, fmt.Sprintf("%s has no %s key for algorithm %s", truncate(subject), rel, alg))
	}
	return out, nil
}

// verifyJWS checks j's signature with a key of subject in rel.
func (v *Verifier) verifyJWS(ctx context.Context, j *jws, subject, rel, unresolved string) error {
	ks, err := v.signerKeys(ctx, subject, j.kid, rel, j.alg, unresolved)
	if err != nil {
		return err
	}
	for _, k := range ks {
		if k.Verify(j.signingInput, j.sig) == nil {
			return nil
		}
	}
	return newErr(ReasonSignature, "JWS signature does not verify with the keys of "+truncate(subject))
}

// verifyLDProof checks doc's Data Integrity proof (already parsed as p)
// with a key of subject in rel.
func (v *Verifier) verifyLDProof(ctx context.Context, doc map[string]any, p *ldProof, subject, rel, unresolved string) error {
	if p.purpose != rel {
		return newErr(ReasonSignature, fmt.Sprintf("proof purpose is %.40q, want %s", p.purpose, rel))
	}
	ks, err := v.signerKeys(ctx, subject, p.verificationMethod, rel, "EdDSA", unresolved)
	if err != nil {
		return err
	}
	h, err := proofHash(doc, p.raw)
	if err != nil {
		return wrapErr(ReasonMalformed, "JSON-LD", err)
	}
	for _, k := range ks {
		if k.Verify(h, p.sig) == nil {
			return nil
		}
	}
	return newErr(ReasonSignature, "proof does not verify with the key "+truncate(p.verificationMethod))
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}
