package w3cvc

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"
)

// now is the clock of issuance and presentation; tests replace it.
var now = time.Now

// prepareVC copies vc and fills what the signer determines: the default
// context and type, the issuer (which must be the signer's DID when given)
// and, for VCDM 1.1, the issuance date.
func prepareVC(vc map[string]any, s Signer) (map[string]any, error) {
	if vc == nil {
		return nil, fmt.Errorf("credential is nil")
	}
	// A JSON round trip gives JSON values (float64, []any...) whatever Go
	// types vc was built with.
	b, err := json.Marshal(vc)
	if err != nil {
		return nil, fmt.Errorf("credential is not JSON: %w", err)
	}
	doc, err := decodeObject(b)
	if err != nil {
		return nil, fmt.Errorf("credential: %w", err)
	}
	if _, ok := doc["@context"]; !ok {
		doc["@context"] = []any{ContextV1}
	}
	if _, ok := doc["type"]; !ok {
		doc["type"] = []any{"VerifiableCredential"}
	}
	if !contains(stringList(doc["type"]), "VerifiableCredential") {
		return nil, fmt.Errorf("credential type must include VerifiableCredential")
	}
	switch iss := idOf(doc["issuer"]); iss {
	case "":
		if doc["issuer"] != nil {
			return nil, fmt.Errorf("credential issuer has no id")
		}
		doc["issuer"] = s.DID()
	case s.DID():
	default:
		return nil, fmt.Errorf("credential issuer %.120s is not the signer's DID %.120s", iss, s.DID())
	}
	if _, ok := doc["credentialSubject"].(map[string]any); !ok {
		if _, ok := doc["credentialSubject"].([]any); !ok {
			return nil, fmt.Errorf("credential has no credentialSubject object")
		}
	}
	if !isV2(doc) {
		if _, ok := doc["issuanceDate"]; !ok {
			doc["issuanceDate"] = now().UTC().Format(time.RFC3339)
		}
	}
	if _, err := credentialFromDocument(nil, FormatLDPVC, doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// IssueJWT signs vc (a VCDM 1.1 or 2.0 credential as JSON) as a VC-JWT with
// the VCDM 1.1 claims: iss (the issuer), sub (credentialSubject.id), nbf
// (issuanceDate or validFrom), exp (expirationDate or validUntil), jti (id)
// and vc (the credential). The issuer, when vc names one, must be the
// signer's DID; it is set otherwise, as are a missing @context, type and
// issuanceDate.
func IssueJWT(vc map[string]any, s Signer) ([]byte, error) {
	doc, err := prepareVC(vc, s)
	if err != nil {
		return nil, err
	}
	c, err := credentialFromDocument(nil, FormatJWTVC, doc)
	if err != nil {
		return nil, err
	}
	claims := map[string]any{"iss": c.Issuer, "vc": doc}
	if c.Subject != "" {
		claims["sub"] = c.Subject
	}
	if c.ID != "" {
		claims["jti"] = c.ID
	}
	if !c.IssuedAt.IsZero() {
		claims["nbf"] = c.IssuedAt.Unix()
	}
	if !c.ExpiresAt.IsZero() {
		claims["exp"] = c.ExpiresAt.Unix()
	}
	return signJWT(claims, s)
}

// IssueLDP signs vc as a JSON-LD credential with a Data Integrity proof:
// Ed25519Signature2020 for a VCDM 1.1 credential, DataIntegrityProof
// eddsa-rdfc-2022 for a VCDM 2.0 one (see IssueLDPSuite). The signer must
// hold an Ed25519 key. Completion of vc is as for IssueJWT; the suite's
// context is added when missing.
func IssueLDP(vc map[string]any, s Signer) ([]byte, error) {
	suite := SuiteEd25519Signature2020
	if isV2(vc) {
		suite = SuiteEdDSARDFC2022
	}
	return IssueLDPSuite(vc, s, suite)
}

// IssueLDPSuite is IssueLDP with the proof suite chosen:
// SuiteEd25519Signature2020 or SuiteEdDSARDFC2022.
func IssueLDPSuite(vc map[string]any, s Signer, suite string) ([]byte, error) {
	doc, err := prepareVC(vc, s)
	if err != nil {
		return nil, err
	}
	if err := addProof(doc, s, suite, "assertionMethod", "", "", now()); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// newURN returns a random urn:uuid.
func newURN() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
