package w3cvc

import (
	"encoding/json"
	"fmt"
	"time"
)

// presentationLifetime is how long a JWT VP is valid after its creation.
const presentationLifetime = 10 * time.Minute

// Present makes a verifiable presentation of creds signed by the holder s:
// FormatJWTVP (iss = holder, nonce = challenge, aud = domain, vp claim) or
// FormatLDPVP (a Data Integrity proof, Ed25519Signature2020, with purpose
// authentication, challenge and domain). sub, when not nil, is written as
// presentation_submission. A JWT VP carries JWT credentials as strings and
// JSON-LD ones as objects; an LDP VP takes JSON-LD credentials only.
func Present(creds []*Credential, s Signer, format, challenge, domain string, sub *Submission) ([]byte, error) {
	if len(creds) > MaxCredentialsPerPresentation {
		return nil, fmt.Errorf("%d credentials, at most %d per presentation", len(creds), MaxCredentialsPerPresentation)
	}
	vcs := make([]any, 0, len(creds))
	for i, c := range creds {
		if c == nil {
			return nil, fmt.Errorf("credential %d is nil", i)
		}
		switch c.Format {
		case FormatJWTVC:
			if format == FormatLDPVP {
				return nil, fmt.Errorf("credential %d is a JWT: an %s presentation takes JSON-LD credentials only", i, FormatLDPVP)
			}
			vcs = append(vcs, string(c.Raw))
		case FormatLDPVC:
			doc, err := decodeObject(c.Raw)
			if err != nil {
				return nil, fmt.Errorf("credential %d: %w", i, err)
			}
			vcs = append(vcs, doc)
		default:
			return nil, fmt.Errorf("credential %d has unknown format %q", i, c.Format)
		}
	}
	vp := map[string]any{
		"@context":             []any{ContextV1},
		"type":                 []any{"VerifiablePresentation"},
		"holder":               s.DID(),
		"verifiableCredential": vcs,
	}
	if sub != nil {
		b, err := json.Marshal(sub)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		vp["@context"] = []any{ContextV1, ContextSubmission}
		vp["type"] = []any{"VerifiablePresentation", "PresentationSubmission"}
		vp["presentation_submission"] = m
	}
	t := now()
	switch format {
	case FormatJWTVP:
		claims := map[string]any{
			"iss": s.DID(), "jti": newURN(), "vp": vp,
			"nbf": t.Unix(), "iat": t.Unix(), "exp": t.Add(presentationLifetime).Unix(),
		}
		if challenge != "" {
			claims["nonce"] = challenge
		}
		if domain != "" {
			claims["aud"] = domain
		}
		return signJWT(claims, s)
	case FormatLDPVP:
		vp["id"] = newURN()
		if err := addProof(vp, s, SuiteEd25519Signature2020, "authentication", challenge, domain, t); err != nil {
			return nil, err
		}
		return json.Marshal(vp)
	}
	return nil, fmt.Errorf("unknown presentation format %q (want %s or %s)", format, FormatJWTVP, FormatLDPVP)
}
