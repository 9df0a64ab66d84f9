package w3cvc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Formats: the DIF claim-format designations used in descriptor_map entries
// and attachment formats.
const (
	FormatJWTVC = "jwt_vc_json"
	FormatJWTVP = "jwt_vp_json"
	FormatLDPVC = "ldp_vc"
	FormatLDPVP = "ldp_vp"
)

// Credential is a verified or held W3C credential.
type Credential struct {
	// Raw is the credential as received: a compact JWT, or the JSON-LD
	// document.
	Raw []byte
	// Format is FormatJWTVC or FormatLDPVC.
	Format string
	// ID is the credential id (jti for a JWT), Issuer the issuer's id,
	// Subject credentialSubject.id ("" if none).
	ID, Issuer, Subject string
	// Types are the credential's types.
	Types []string
	// IssuedAt and ExpiresAt are the validity period's ends, zero when absent.
	IssuedAt, ExpiresAt time.Time
	// Document is the credential as JSON: for a JWT, the vc claim merged
	// with iss, sub, nbf, exp and jti as VCDM 1.1 would have it. Presentation
	// Exchange paths are evaluated on it.
	Document map[string]any
}

// ParseCredential reads a credential, a compact VC-JWT or a JSON-LD
// document, without checking its signature: for holders storing what they
// received.
func ParseCredential(raw []byte) (*Credential, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > MaxCredentialSize {
		return nil, newErr(ReasonMalformed, fmt.Sprintf("credential is %d bytes, more than %d", len(raw), MaxCredentialSize))
	}
	if len(raw) == 0 {
		return nil, newErr(ReasonMalformed, "empty credential")
	}
	if raw[0] == '{' {
		doc, err := decodeObject(raw)
		if err != nil {
			return nil, wrapErr(ReasonMalformed, "credential is not a JSON object", err)
		}
		return credentialFromDocument(raw, FormatLDPVC, doc)
	}
	if raw[0] == '"' { // a JWT as a JSON string
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, wrapErr(ReasonMalformed, "credential string", err)
		}
		raw = []byte(s)
	}
	j, err := parseJWS(string(raw))
	if err != nil {
		return nil, err
	}
	doc, err := jwtVCDocument(j.claims)
	if err != nil {
		return nil, err
	}
	return credentialFromDocument(raw, FormatJWTVC, doc)
}

// credentialFromDocument fills a Credential from its VC document.
func credentialFromDocument(raw []byte, format string, doc map[string]any) (*Credential, error) {
	c := &Credential{Raw: bytes.Clone(raw), Format: format, Document: doc}
	c.ID, _ = doc["id"].(string)
	c.Issuer = idOf(doc["issuer"])
	if c.Issuer == "" {
		return nil, newErr(ReasonMalformed, "credential has no issuer")
	}
	c.Types = stringList(doc["type"])
	if !contains(c.Types, "VerifiableCredential") {
		return nil, newErr(ReasonMalformed, "credential type does not include VerifiableCredential")
	}
	switch s := doc["credentialSubject"].(type) {
	case map[string]any:
		c.Subject, _ = s["id"].(string)
	case []any:
		if len(s) == 0 {
			return nil, newErr(ReasonMalformed, "credential has an empty credentialSubject")
		}
		if m, ok := s[0].(map[string]any); ok {
			c.Subject, _ = m["id"].(string)
		}
	default:
		return nil, newErr(ReasonMalformed, "credential has no credentialSubject object")
	}
	var err error
	if c.IssuedAt, err = docTime(doc, "validFrom", "issuanceDate"); err != nil {
		return nil, err
	}
	if c.ExpiresAt, err = docTime(doc, "validUntil", "expirationDate"); err != nil {
		return nil, err
	}
	return c, nil
}

// docTime reads the first present of the named date-time members.
func docTime(doc map[string]any, names ...string) (time.Time, error) {
	for _, n := range names {
		v, ok := doc[n]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return time.Time{}, newErr(ReasonMalformed, n+" is not a string")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, newErr(ReasonMalformed, fmt.Sprintf("%s %.40q is not an RFC 3339 date-time", n, s))
		}
		return t, nil
	}
	return time.Time{}, nil
}

// jwtVCDocument turns VC-JWT claims into the VCDM 1.1 document: the vc claim
// with iss, sub, nbf, exp and jti moved into it.
func jwtVCDocument(claims map[string]any) (map[string]any, error) {
	vc, ok := claims["vc"].(map[string]any)
	if !ok {
		return nil, newErr(ReasonMalformed, "JWT has no vc claim object")
	}
	doc := cloneMap(vc)
	if iss, ok := claims["iss"].(string); ok && iss != "" {
		if m, ok := doc["issuer"].(map[string]any); ok {
			m = cloneMap(m)
			m["id"] = iss
			doc["issuer"] = m
		} else {
			doc["issuer"] = iss
		}
	}
	if sub, ok := claims["sub"].(string); ok && sub != "" {
		switch s := doc["credentialSubject"].(type) {
		case map[string]any:
			s = cloneMap(s)
			s["id"] = sub
			doc["credentialSubject"] = s
		case nil:
			doc["credentialSubject"] = map[string]any{"id": sub}
		}
	}
	if jti, ok := claims["jti"].(string); ok && jti != "" {
		doc["id"] = jti
	}
	key := func(v2, v1 string) string {
		if isV2(doc) {
			return v2
		}
		return v1
	}
	for claim, names := range map[string][2]string{"nbf": {"validFrom", "issuanceDate"}, "exp": {"validUntil", "expirationDate"}} {
		v, ok := claims[claim]
		if !ok {
			continue
		}
		t, err := numericDate(claim, v)
		if err != nil {
			return nil, err
		}
		doc[key(names[0], names[1])] = t.UTC().Format(time.RFC3339)
	}
	if _, ok := doc["issuanceDate"]; !ok && !isV2(doc) {
		if v, ok := claims["iat"]; ok {
			t, err := numericDate("iat", v)
			if err != nil {
				return nil, err
			}
			doc["issuanceDate"] = t.UTC().Format(time.RFC3339)
		}
	}
	return doc, nil
}

func numericDate(claim string, v any) (time.Time, error) {
	f, ok := v.(float64)
	if !ok || f < 0 || f > 1<<40 {
		return time.Time{}, newErr(ReasonMalformed, claim+" is not a NumericDate")
	}
	return time.Unix(int64(f), 0).UTC(), nil
}

// ContextV2 is the VCDM 2.0 base context; ContextV1 the VCDM 1.1 one.
const (
	ContextV1 = "https://www.w3.org/2018/credentials/v1"
	ContextV2 = "https://www.w3.org/ns/credentials/v2"
)

func isV2(doc map[string]any) bool {
	ctx := doc["@context"]
	if l, ok := ctx.([]any); ok && len(l) > 0 {
		ctx = l[0]
	}
	return ctx == ContextV2
}

func decodeObject(b []byte) (map[string]any, error) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	if m == nil {
		return nil, fmt.Errorf("null")
	}
	return m, nil
}

// idOf returns v if it is a string, or v.id if it is an object.
func idOf(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case map[string]any:
		s, _ := t["id"].(string)
		return s
	}
	return ""
}

func stringList(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

// cloneMap copies m deeply (JSON values).
func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return cloneMap(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}
