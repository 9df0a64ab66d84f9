package envelope

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/agentd/agentd/agent/keys"
)

// Sign signs payload (normally a DIDComm plaintext message) with the signer's
// key and returns a JWS in General JSON serialization:
//
//	{"payload":..., "signatures":[{"protected":..., "signature":..., "header":{"kid":...}}]}
//
// The protected header holds typ (application/didcomm-signed+json) and alg
// only, and the kid is in the unprotected per-signature header, as in the
// DIDComm spec's vectors and didcomm-rust. alg follows the key's curve:
// EdDSA, ES256, ES384, ES512 or ES256K.
func Sign(payload []byte, signer keys.PrivateKey) ([]byte, error) {
	if err := checkKid(signer.ID, "signer"); err != nil {
		return nil, err
	}
	alg := signer.Curve.JWSAlg()
	if alg == "" {
		return nil, fmt.Errorf("%w: %s keys cannot sign", ErrUnsupported, signer.Curve)
	}
	prot := appendB64(nil, []byte(`{"typ":"`+TypSigned+`","alg":"`+alg+`"}`))
	pl := b64.EncodedLen(len(payload))
	input := make([]byte, 0, len(prot)+1+pl)
	input = append(append(input, prot...), '.')
	input = appendB64(input, payload)
	sig, err := signer.Sign(input)
	if err != nil {
		return nil, fmt.Errorf("envelope: signing with %s: %w", signer.ID, err)
	}
	out := make([]byte, 0, len(input)+len(signer.ID)+b64.EncodedLen(len(sig))+80)
	out = append(out, `{"payload":"`...)
	out = append(out, input[len(prot)+1:]...)
	out = append(out, `","signatures":[{"protected":"`...)
	out = append(out, prot...)
	out = append(out, `","signature":"`...)
	out = appendB64(out, sig)
	out = append(out, `","header":{"kid":`...)
	out = appendJSONString(out, signer.ID)
	out = append(out, `}}]}`...)
	return out, nil
}

// jwsAlgs are the JWS algorithms Unpack verifies.
var jwsAlgs = map[string]bool{"EdDSA": true, "ES256": true, "ES384": true, "ES512": true, "ES256K": true}

type jwsSignature struct {
	Protected *string `json:"protected"`
	Signature *string `json:"signature"`
	Header    *struct {
		Kid *string `json:"kid"`
	} `json:"header"`
}

type jwsHeader struct {
	Typ  *string         `json:"typ"`
	Alg  string          `json:"alg"`
	Kid  *string         `json:"kid"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

// verifiedJWS is the outcome of verifyJWS.
type verifiedJWS struct {
	payload []byte
	kid     string
	alg     string
}

// verifyJWS checks a JWS with exactly one signature, in General or Flattened
// JSON serialization (the DIDComm v2 spec makes recipients accept both):
// structure, header, the signer's key (resolved with purpose authentication)
// and the signature.
func verifyJWS(ctx context.Context, env *rawEnvelope, kr KeyResolver) (*verifiedJWS, error) {
	payloadB64, err := requiredString(env.Payload, "payload")
	if err != nil {
		return nil, err
	}
	s, err := jwsSignatureOf(env)
	if err != nil {
		return nil, err
	}
	hdrJSON, err := decodeB64String(*s.Protected, "signature protected header")
	if err != nil {
		return nil, err
	}
	var h jwsHeader
	if err := json.Unmarshal(hdrJSON, &h); err != nil {
		return nil, fmt.Errorf("%w: JWS protected header is not a JSON object of the expected shape", ErrMalformed)
	}
	if h.Typ != nil && *h.Typ != TypSigned && *h.Typ != strings.TrimPrefix(TypSigned, "application/") {
		return nil, fmt.Errorf("%w: JWS typ %q", ErrUnsupported, *h.Typ)
	}
	if !isNull(h.Crit) || !isNull(h.B64) {
		return nil, fmt.Errorf("%w: JWS crit or b64 header", ErrUnsupported)
	}
	if !jwsAlgs[h.Alg] {
		return nil, fmt.Errorf("%w: JWS alg %q", ErrUnsupported, h.Alg)
	}
	var kid string
	if s.Header != nil && s.Header.Kid != nil {
		kid = *s.Header.Kid
	}
	if h.Kid != nil {
		if kid != "" && kid != *h.Kid {
			return nil, fmt.Errorf("%w: protected and unprotected kid differ", ErrMalformed)
		}
		kid = *h.Kid
	}
	if kid == "" {
		return nil, fmt.Errorf("%w: signature has no kid", ErrMalformed)
	}
	sig, err := decodeB64String(*s.Signature, "signature")
	if err != nil {
		return nil, err
	}
	payload, err := decodeB64String(payloadB64, "payload")
	if err != nil {
		return nil, err
	}
	key, err := resolveKey(ctx, kr, kid, PurposeAuthentication)
	if err != nil {
		return nil, err
	}
	if key.Curve.JWSAlg() != h.Alg {
		return nil, fmt.Errorf("%w: alg %s does not fit signer key %s (%s)", ErrBadSignature, h.Alg, kid, key.Curve)
	}
	input := make([]byte, 0, len(*s.Protected)+1+len(payloadB64))
	input = append(append(append(input, *s.Protected...), '.'), payloadB64...)
	if err := key.Verify(input, sig); err != nil {
		if errors.Is(err, keys.ErrBadSignature) {
			return nil, fmt.Errorf("%w: signature by %s", ErrBadSignature, kid)
		}
		return nil, fmt.Errorf("%w: signer key %s is unusable", ErrSenderKey, kid)
	}
	return &verifiedJWS{payload: payload, kid: kid, alg: h.Alg}, nil
}

// jwsSignatureOf returns the one signature of a JWS: the only element of
// signatures (General JSON serialization), or protected, header and signature
// from the top level (Flattened JSON serialization). A JWS that mixes the two
// forms is malformed.
func jwsSignatureOf(env *rawEnvelope) (jwsSignature, error) {
	var s jwsSignature
	if isNull(env.Signatures) {
		if isNull(env.Signature) {
			return s, fmt.Errorf("%w: signatures is missing", ErrMalformed)
		}
		prot, err := requiredString(env.Protected, "protected")
		if err != nil {
			return s, err
		}
		sig, err := requiredString(env.Signature, "signature")
		if err != nil {
			return s, err
		}
		s.Protected, s.Signature = &prot, &sig
		if !isNull(env.Header) {
			if err := json.Unmarshal(env.Header, &s.Header); err != nil || env.Header[0] != '{' {
				return s, fmt.Errorf("%w: JWS header is not a JSON object of the expected shape", ErrMalformed)
			}
		}
		return s, nil
	}
	if env.Signature != nil || env.Protected != nil || env.Header != nil {
		return s, fmt.Errorf("%w: JWS has both signatures and top-level protected, header or signature", ErrMalformed)
	}
	var sigs []jwsSignature
	if err := json.Unmarshal(env.Signatures, &sigs); err != nil {
		return s, fmt.Errorf("%w: signatures is not an array of signature objects", ErrMalformed)
	}
	switch {
	case len(sigs) == 0:
		return s, fmt.Errorf("%w: JWS has no signature", ErrMalformed)
	case len(sigs) > 1:
		return s, fmt.Errorf("%w: JWS with %d signatures (DIDComm signs with one key)", ErrUnsupported, len(sigs))
	}
	s = sigs[0]
	if s.Protected == nil || s.Signature == nil {
		return s, fmt.Errorf("%w: signature lacks protected or signature", ErrMalformed)
	}
	return s, nil
}

// resolveKey resolves a sender-side key (skid, signer, from_prior issuer),
// using PurposeKeyResolver when the resolver implements it. Every failure
// wraps ErrSenderKey and keeps the resolver's error in the chain.
func resolveKey(ctx context.Context, kr KeyResolver, kid string, purpose KeyPurpose) (keys.PublicKey, error) {
	if kr == nil {
		return keys.PublicKey{}, fmt.Errorf("%w: %s: no key resolver configured", ErrSenderKey, kid)
	}
	var (
		k   keys.PublicKey
		err error
	)
	if pr, ok := kr.(PurposeKeyResolver); ok {
		k, err = pr.PublicKeyFor(ctx, kid, purpose)
	} else {
		k, err = kr.PublicKey(ctx, kid)
	}
	if err != nil {
		return keys.PublicKey{}, fmt.Errorf("%w: %s: %w", ErrSenderKey, kid, err)
	}
	return k, nil
}

// verifyCompactJWS verifies a compact-serialized JWS such as the from_prior JWT and
// returns its protected header fields and payload. wantTyp, when not empty, is
// the required typ.
func verifyCompactJWS(ctx context.Context, jws string, kr KeyResolver, wantTyp string) (payload []byte, kid string, err error) {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return nil, "", fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	hdrJSON, err := decodeB64String(parts[0], "JWS header")
	if err != nil {
		return nil, "", err
	}
	var h jwsHeader
	if err := json.Unmarshal(hdrJSON, &h); err != nil {
		return nil, "", fmt.Errorf("%w: JWS header is not a JSON object of the expected shape", ErrMalformed)
	}
	if wantTyp != "" && (h.Typ == nil || *h.Typ != wantTyp) {
		return nil, "", fmt.Errorf("%w: JWS typ must be %s", ErrMalformed, wantTyp)
	}
	if !isNull(h.Crit) || !isNull(h.B64) {
		return nil, "", fmt.Errorf("%w: JWS crit or b64 header", ErrUnsupported)
	}
	if !jwsAlgs[h.Alg] {
		return nil, "", fmt.Errorf("%w: JWS alg %q", ErrUnsupported, h.Alg)
	}
	if h.Kid == nil || *h.Kid == "" {
		return nil, "", fmt.Errorf("%w: JWS header has no kid", ErrMalformed)
	}
	kid = *h.Kid
	sig, err := decodeB64String(parts[2], "JWS signature")
	if err != nil {
		return nil, "", err
	}
	if payload, err = decodeB64String(parts[1], "JWS payload"); err != nil {
		return nil, "", err
	}
	key, err := resolveKey(ctx, kr, kid, PurposeAuthentication)
	if err != nil {
		return nil, "", err
	}
	if key.Curve.JWSAlg() != h.Alg {
		return nil, "", fmt.Errorf("%w: alg %s does not fit key %s (%s)", ErrBadSignature, h.Alg, kid, key.Curve)
	}
	if err := key.Verify([]byte(jws[:len(parts[0])+1+len(parts[1])]), sig); err != nil {
		if errors.Is(err, keys.ErrBadSignature) {
			return nil, "", fmt.Errorf("%w: JWS by %s", ErrBadSignature, kid)
		}
		return nil, "", fmt.Errorf("%w: key %s is unusable", ErrSenderKey, kid)
	}
	return payload, kid, nil
}
