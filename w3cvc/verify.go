package w3cvc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/agentd/agentd/agent/did"
)

// Presentation is a verified presentation.
type Presentation struct {
	// Raw is the presentation as received.
	Raw []byte
	// Format is FormatJWTVP or FormatLDPVP.
	Format string
	// Holder is the DID that signed the presentation.
	Holder string
	// Credentials are the verified credentials, in verifiableCredential
	// order.
	Credentials []*Credential
	// Submission is the presentation_submission, nil when absent.
	Submission *Submission
	// Document is the presentation as JSON (for a JWT, the vp claim).
	Document map[string]any
}

// PresentationCheck is what VerifyPresentation checks beyond signatures.
type PresentationCheck struct {
	// Challenge and Domain are the request's: a JWT VP's nonce and aud, an
	// LDP VP's proof.challenge and proof.domain. Empty means not checked.
	Challenge, Domain string
	// Holders are the DIDs allowed as holder; empty means any.
	Holders []string
	// Definition, when set, must be satisfied by the submission.
	Definition *Definition
}

// VerifyCredential verifies a credential (VC-JWT or JSON-LD): its signature
// with a key of the issuer's assertionMethod, its validity period and its
// status.
func (v *Verifier) VerifyCredential(ctx context.Context, raw []byte) (*Credential, error) {
	return v.verifyCredential(ctx, raw, true)
}

func (v *Verifier) verifyCredential(ctx context.Context, raw []byte, checkStatus bool) (*Credential, error) {
	c, err := ParseCredential(raw)
	if err != nil {
		return nil, err
	}
	switch c.Format {
	case FormatJWTVC:
		j, err := parseJWS(string(c.Raw))
		if err != nil {
			return nil, err
		}
		if iss, ok := j.claims["iss"].(string); ok && iss != c.Issuer {
			return nil, newErr(ReasonMalformed, "JWT iss differs from the credential's issuer")
		}
		if err := v.verifyJWS(ctx, j, c.Issuer, relAssertion, ReasonIssuerUnresolved); err != nil {
			return nil, err
		}
	case FormatLDPVC:
		p, err := parseProof(c.Document)
		if err != nil {
			return nil, err
		}
		if d, _ := did.SplitDIDURL(p.verificationMethod); d != c.Issuer {
			return nil, newErr(ReasonSignature, "proof verificationMethod "+truncate(p.verificationMethod)+" is not the issuer's")
		}
		if err := v.verifyLDProof(ctx, c.Document, p, c.Issuer, relAssertion, ReasonIssuerUnresolved); err != nil {
			return nil, err
		}
		if err := v.checkValidity("credential proof", p.created.Add(-maxClockSkew), p.expires); err != nil {
			return nil, err
		}
	}
	if err := v.checkValidity("credential", c.IssuedAt, c.ExpiresAt); err != nil {
		return nil, err
	}
	if checkStatus {
		if err := v.checkStatus(ctx, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// VerifyPresentation verifies a presentation (VP-JWT or JSON-LD): its
// signature with a key of the holder's authentication relationship (the
// holder is the JWT's iss, or the LDP VP's holder, which must control the
// proof's verificationMethod), chk's challenge, domain and holders, every
// credential as VerifyCredential does, and, when chk.Definition is set, the
// presentation_submission against it.
func (v *Verifier) VerifyPresentation(ctx context.Context, raw []byte, chk PresentationCheck) (*Presentation, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > MaxPresentationSize {
		return nil, newErr(ReasonMalformed, fmt.Sprintf("presentation is %d bytes, more than %d", len(raw), MaxPresentationSize))
	}
	if len(raw) == 0 {
		return nil, newErr(ReasonMalformed, "empty presentation")
	}
	var (
		p   *Presentation
		err error
	)
	if raw[0] == '{' {
		p, err = v.verifyLDPVP(ctx, raw, chk)
	} else {
		p, err = v.verifyJWTVP(ctx, raw, chk)
	}
	if err != nil {
		return nil, err
	}
	if len(chk.Holders) > 0 && !contains(chk.Holders, p.Holder) {
		return nil, newErr(ReasonHolder, "holder "+truncate(p.Holder)+" is not one of the expected holders")
	}
	if err := v.presentationCredentials(ctx, p); err != nil {
		return nil, err
	}
	if sub, ok := p.Document["presentation_submission"]; ok {
		b, _ := json.Marshal(sub)
		var s Submission
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, wrapErr(ReasonMalformed, "presentation_submission", err)
		}
		p.Submission = &s
	}
	if chk.Definition != nil {
		if err := EvaluateSubmission(chk.Definition, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (v *Verifier) verifyJWTVP(ctx context.Context, raw []byte, chk PresentationCheck) (*Presentation, error) {
	j, err := parseJWS(string(raw))
	if err != nil {
		return nil, err
	}
	holder, _ := j.claims["iss"].(string)
	vp, ok := j.claims["vp"].(map[string]any)
	if holder == "" || !ok {
		return nil, newErr(ReasonMalformed, "VP-JWT lacks iss or the vp claim")
	}
	if h := idOf(vp["holder"]); h != "" && h != holder {
		return nil, newErr(ReasonHolder, "vp.holder differs from the JWT's iss")
	}
	if err := v.verifyJWS(ctx, j, holder, relAuthentication, ReasonHolder); err != nil {
		return nil, err
	}
	if chk.Challenge != "" {
		if n, _ := j.claims["nonce"].(string); n != chk.Challenge {
			return nil, newErr(ReasonChallenge, "VP nonce is not the request's challenge")
		}
	}
	if chk.Domain != "" && !contains(audience(j.claims["aud"]), chk.Domain) {
		return nil, newErr(ReasonDomain, "VP aud does not name the request's domain")
	}
	for _, c := range []string{"nbf", "exp"} {
		if _, ok := j.claims[c]; ok {
			if _, err := numericDate(c, j.claims[c]); err != nil {
				return nil, err
			}
		}
	}
	nbf, _ := j.claims["nbf"].(float64)
	exp, _ := j.claims["exp"].(float64)
	if err := v.checkValidity("presentation", unixOrZero(nbf).Add(-maxClockSkew), unixOrZero(exp)); err != nil {
		return nil, err
	}
	doc := cloneMap(vp)
	doc["holder"] = holder
	return &Presentation{Raw: bytes.Clone(raw), Format: FormatJWTVP, Holder: holder, Document: doc}, nil
}

func (v *Verifier) verifyLDPVP(ctx context.Context, raw []byte, chk PresentationCheck) (*Presentation, error) {
	doc, err := decodeObject(raw)
	if err != nil {
		return nil, wrapErr(ReasonMalformed, "presentation is not a JSON object", err)
	}
	if !contains(stringList(doc["type"]), "VerifiablePresentation") {
		return nil, newErr(ReasonMalformed, "presentation type does not include VerifiablePresentation")
	}
	p, err := parseProof(doc)
	if err != nil {
		return nil, err
	}
	signer, _ := did.SplitDIDURL(p.verificationMethod)
	holder := idOf(doc["holder"])
	if holder == "" {
		holder = signer
	}
	if signer != holder {
		return nil, newErr(ReasonHolder, "the presentation is signed by "+truncate(signer)+", not by its holder "+truncate(holder))
	}
	if err := v.verifyLDProof(ctx, doc, p, holder, relAuthentication, ReasonHolder); err != nil {
		return nil, err
	}
	if chk.Challenge != "" && p.challenge != chk.Challenge {
		return nil, newErr(ReasonChallenge, "proof challenge is not the request's")
	}
	if chk.Domain != "" && p.domain != chk.Domain {
		return nil, newErr(ReasonDomain, "proof domain is not the request's")
	}
	if err := v.checkValidity("presentation proof", p.created.Add(-maxClockSkew), p.expires); err != nil {
		return nil, err
	}
	return &Presentation{Raw: bytes.Clone(raw), Format: FormatLDPVP, Holder: holder, Document: doc}, nil
}

// presentationCredentials verifies p's verifiableCredential entries.
func (v *Verifier) presentationCredentials(ctx context.Context, p *Presentation) error {
	var list []any
	switch vc := p.Document["verifiableCredential"].(type) {
	case nil:
	case []any:
		list = vc
	default:
		list = []any{vc}
	}
	if len(list) > MaxCredentialsPerPresentation {
		return newErr(ReasonMalformed, fmt.Sprintf("%d credentials, more than %d", len(list), MaxCredentialsPerPresentation))
	}
	for i, e := range list {
		var raw []byte
		switch t := e.(type) {
		case string:
			raw = []byte(t)
		case map[string]any:
			raw, _ = json.Marshal(t)
		default:
			return newErr(ReasonMalformed, fmt.Sprintf("verifiableCredential[%d] is neither a JWT nor an object", i))
		}
		c, err := v.VerifyCredential(ctx, raw)
		if err != nil {
			if e, ok := err.(*Error); ok {
				return &Error{Reason: e.Reason, Msg: fmt.Sprintf("verifiableCredential[%d]: %s", i, e.Msg), err: e}
			}
			return err
		}
		p.Credentials = append(p.Credentials, c)
	}
	return nil
}

// audience reads an aud claim: a string or an array of strings.
func audience(v any) []string { return stringList(v) }
