package provecontrol

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
)

// The credential a confirmverification carries is a W3C Verifiable
// Credential (data model 1.1) secured as a JWT (VC-JWT): header {alg, typ
// "JWT", kid}, claims {iss, sub, nbf, iat, exp, jti, vc}.
const (
	// CredentialType is the credential's type beside VerifiableCredential.
	CredentialType = "ProveControlCredential"
	// CredentialFormat is the attachment format of the credential.
	CredentialFormat = "jwt_vc_json"
	// CredentialMediaType is the attachment media type of the credential.
	CredentialMediaType = "application/jwt"
	// ContextV1 is the W3C VC 1.1 JSON-LD context.
	ContextV1 = "https://www.w3.org/2018/credentials/v1"
	// vocab is the IRI base of the Prove Control terms.
	vocab = PIURI + "#"
	// maxClockSkew tolerates a verifier clock slightly ahead of ours.
	maxClockSkew = 5 * time.Minute
	// maxJWTLen bounds a credential JWT.
	maxJWTLen = 16 << 10
)

// proveControlContext defines the credential's own terms, so that the
// credential is valid JSON-LD.
var proveControlContext = map[string]string{
	CredentialType:      vocab + CredentialType,
	"verification_type": vocab + "verification_type",
	"subject":           vocab + "subject",
}

// CredentialSubject is what the credential states: the DID ID controls
// Subject, of type VerificationType.
type CredentialSubject struct {
	ID               string           `json:"id"`
	VerificationType VerificationType `json:"verification_type"`
	Subject          string           `json:"subject"`
}

// VC is the vc claim of the credential JWT.
type VC struct {
	Context           []any             `json:"@context"`
	ID                string            `json:"id,omitempty"`
	Type              []string          `json:"type"`
	Issuer            string            `json:"issuer"`
	IssuanceDate      string            `json:"issuanceDate"`
	ExpirationDate    string            `json:"expirationDate,omitempty"`
	CredentialSubject CredentialSubject `json:"credentialSubject"`
}

// CredentialClaims are the JWT claims of a Prove Control credential.
type CredentialClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Nbf int64  `json:"nbf"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Jti string `json:"jti"`
	VC  VC     `json:"vc"`
}

// IssueCredential makes the credential JWT by which issuer (the verifier's
// DID) states that user controls subject of type t, valid from now for
// validity, signed with signer (a key of issuer's DID; its id is the kid).
func IssueCredential(signer keys.PrivateKey, issuer, user string, t VerificationType, subject string, now time.Time, validity time.Duration) (string, CredentialClaims, error) {
	alg := signer.Curve.JWSAlg()
	if alg == "" {
		return "", CredentialClaims{}, fmt.Errorf("provecontrol: %s keys cannot sign", signer.Curve)
	}
	if agent.DIDOf(signer.ID) != issuer {
		return "", CredentialClaims{}, fmt.Errorf("provecontrol: key %s is not a key of the issuer %s", signer.ID, issuer)
	}
	now = now.UTC().Truncate(time.Second)
	exp := now.Add(validity)
	id := "urn:uuid:" + agent.NewID()
	c := CredentialClaims{
		Iss: issuer, Sub: user, Nbf: now.Unix(), Iat: now.Unix(), Exp: exp.Unix(), Jti: id,
		VC: VC{
			Context: []any{ContextV1, proveControlContext}, ID: id,
			Type:   []string{"VerifiableCredential", CredentialType},
			Issuer: issuer, IssuanceDate: now.Format(time.RFC3339), ExpirationDate: exp.Format(time.RFC3339),
			CredentialSubject: CredentialSubject{ID: user, VerificationType: t, Subject: subject},
		},
	}
	header, err := json.Marshal(map[string]string{"alg": alg, "typ": "JWT", "kid": signer.ID})
	if err != nil {
		return "", CredentialClaims{}, err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", CredentialClaims{}, err
	}
	input := b64(header) + "." + b64(payload)
	sig, err := signer.Sign([]byte(input))
	if err != nil {
		return "", CredentialClaims{}, fmt.Errorf("provecontrol: signing the credential: %w", err)
	}
	return input + "." + b64(sig), c, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// ErrCredential is wrapped by every error of VerifyCredential.
var ErrCredential = errors.New("invalid credential")

// VerifyCredential checks a credential JWT: its structure, the signature
// by a key that the issuer's DID document (resolved with resolver) lists
// under authentication or assertionMethod, the validity period at now, and
// the claims (iss = vc.issuer = the kid's DID, sub = credentialSubject.id,
// the types). It returns the claims; the caller checks that they say what
// it expects. Errors wrap ErrCredential.
func VerifyCredential(ctx context.Context, jwt string, resolver did.Resolver, now time.Time) (*CredentialClaims, error) {
	bad := func(format string, args ...any) (*CredentialClaims, error) {
		return nil, fmt.Errorf("%w: %s", ErrCredential, fmt.Sprintf(format, args...))
	}
	if len(jwt) > maxJWTLen {
		return bad("the JWT is longer than %d bytes", maxJWTLen)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return bad("not a compact JWS (three parts)")
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return bad("bad base64url")
	}
	var h struct {
		Alg  string          `json:"alg"`
		Typ  string          `json:"typ"`
		Kid  string          `json:"kid"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return bad("the header is not a JSON object")
	}
	if h.Crit != nil {
		return bad("crit is not supported")
	}
	if h.Typ != "" && h.Typ != "JWT" {
		return bad("typ %q is not JWT", clip(h.Typ, 30))
	}
	var c CredentialClaims
	dec := json.NewDecoder(bytes.NewReader(pb))
	if err := dec.Decode(&c); err != nil {
		return bad("the claims are malformed")
	}
	if c.Iss == "" || h.Kid == "" || agent.DIDOf(h.Kid) != c.Iss {
		return bad("the kid must be a key of the issuer (iss)")
	}
	doc, err := resolver.Resolve(ctx, c.Iss)
	if err != nil {
		return bad("cannot resolve the issuer %s: %v", c.Iss, err)
	}
	var key *keys.PublicKey
	auth, _ := doc.Authentication()
	assert, _ := doc.AssertionMethod()
	for _, k := range append(auth, assert...) {
		if k.ID == h.Kid || doc.AbsoluteURL(k.ID) == h.Kid {
			key = &k
			break
		}
	}
	if key == nil {
		return bad("the issuer's DID document has no authentication or assertion key %s", h.Kid)
	}
	if key.Curve.JWSAlg() != h.Alg {
		return bad("alg %q does not fit the key's curve %s", clip(h.Alg, 20), key.Curve)
	}
	if err := key.Verify([]byte(parts[0]+"."+parts[1]), sig); err != nil {
		return bad("the signature does not verify")
	}
	switch {
	case c.Exp == 0 || now.Unix() >= c.Exp:
		return bad("expired or without exp")
	case c.Nbf > now.Add(maxClockSkew).Unix():
		return bad("not valid yet (nbf)")
	case c.VC.Issuer != c.Iss:
		return bad("vc.issuer is not iss")
	case c.Sub == "" || c.VC.CredentialSubject.ID != c.Sub:
		return bad("credentialSubject.id is not sub")
	case !slices.Contains(c.VC.Type, "VerifiableCredential") || !slices.Contains(c.VC.Type, CredentialType):
		return bad("type must hold VerifiableCredential and %s", CredentialType)
	case !c.VC.CredentialSubject.VerificationType.Valid() || c.VC.CredentialSubject.Subject == "":
		return bad("credentialSubject needs verification_type and subject")
	}
	return &c, nil
}

// credentialAttachment wraps a credential JWT as a DIDComm attachment.
func credentialAttachment(jwt string) agent.Attachment {
	return agent.Attachment{
		ID: "credential", Description: "Prove Control credential (W3C VC as JWT)",
		MediaType: CredentialMediaType, Format: CredentialFormat,
		Data: agent.AttachmentData{Base64: base64.RawURLEncoding.EncodeToString([]byte(jwt))},
	}
}

// credentialFromAttachments finds the credential JWT among attachments: the
// first of format jwt_vc_json or media type application/jwt (or
// application/vc+jwt), inline as base64 or as a JSON string.
func credentialFromAttachments(atts []agent.Attachment) (string, error) {
	for _, a := range atts {
		if a.Format != CredentialFormat && a.MediaType != CredentialMediaType && a.MediaType != "application/vc+jwt" {
			continue
		}
		if a.Data.Base64 != "" {
			for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
				if b, err := enc.DecodeString(a.Data.Base64); err == nil {
					return string(b), nil
				}
			}
			return "", errors.New("the credential attachment is not base64")
		}
		var s string
		if len(a.Data.JSON) > 0 && json.Unmarshal(a.Data.JSON, &s) == nil && s != "" {
			return s, nil
		}
		return "", errors.New("the credential attachment has no inline data")
	}
	return "", errors.New("no credential attachment (format " + CredentialFormat + ")")
}
