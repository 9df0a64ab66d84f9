package w3cvc

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// jws is a parsed compact JWS whose payload is a JSON object.
type jws struct {
	alg, kid, typ string
	claims        map[string]any
	signingInput  []byte
	sig           []byte
}

var b64 = base64.RawURLEncoding

// parseJWS splits and decodes a compact JWS; it does not verify it.
func parseJWS(s string) (*jws, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, newErr(ReasonMalformed, "not a compact JWS (want three dot-separated parts)")
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, newErr(ReasonMalformed, "JWS header is not base64url")
	}
	var h map[string]any
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, newErr(ReasonMalformed, "JWS header is not a JSON object")
	}
	if _, ok := h["crit"]; ok {
		return nil, newErr(ReasonMalformed, "JWS header has crit, which is not supported")
	}
	pb, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, newErr(ReasonMalformed, "JWS payload is not base64url")
	}
	claims, err := decodeObject(pb)
	if err != nil {
		return nil, newErr(ReasonMalformed, "JWT claims are not a JSON object")
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return nil, newErr(ReasonMalformed, "JWS signature is not base64url")
	}
	j := &jws{claims: claims, sig: sig, signingInput: []byte(parts[0] + "." + parts[1])}
	j.alg, _ = h["alg"].(string)
	j.kid, _ = h["kid"].(string)
	j.typ, _ = h["typ"].(string)
	if j.alg == "" || j.alg == "none" {
		return nil, newErr(ReasonMalformed, "JWS has no signature algorithm")
	}
	return j, nil
}

// signJWT signs claims as a compact JWS with the signer's key.
func signJWT(claims map[string]any, s Signer) ([]byte, error) {
	h, err := json.Marshal(map[string]any{"alg": s.Algorithm(), "typ": "JWT", "kid": s.KeyID()})
	if err != nil {
		return nil, err
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("JWT claims: %w", err)
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	sig, err := s.Sign([]byte(input))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return []byte(input + "." + b64.EncodeToString(sig)), nil
}
