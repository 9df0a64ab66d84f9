package keys

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// JWK is a JSON Web Key (RFC 7517) for the key types the agent uses: OKP
// (Ed25519, X25519) and EC (P-256, P-384, P-521, secp256k1).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	D   string `json:"d,omitempty"`
	Kid string `json:"kid,omitempty"`
}

// b64 is strict: non-canonical trailing bits are refused, as the DIDComm
// reference implementations do.
var b64 = base64.RawURLEncoding.Strict()

// JWK returns the public key as a JWK (without kid).
func (k PublicKey) JWK() JWK {
	switch k.Curve {
	case Ed25519, X25519:
		return JWK{Kty: "OKP", Crv: string(k.Curve), X: b64.EncodeToString(k.Raw)}
	}
	x, y, err := k.XY()
	if err != nil {
		return JWK{Kty: "EC", Crv: string(k.Curve)}
	}
	return JWK{Kty: "EC", Crv: string(k.Curve), X: b64.EncodeToString(x), Y: b64.EncodeToString(y)}
}

// PrivateJWK returns the key pair as a JWK including the secret d. Handle the
// result as a secret.
func (k PrivateKey) PrivateJWK() JWK {
	j := k.PublicKey.JWK()
	j.D = b64.EncodeToString(k.D)
	return j
}

// MarshalJSON encodes only the public part, so a private key serialised by
// mistake does not leak its secret.
func (k PrivateKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.PublicKey.JWK()) }

func decodeB64(field, s string) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("jwk %s: not base64url: %w", field, err)
	}
	return b, nil
}

// PublicKey parses the public part of the JWK, giving it the id kid.
func (j JWK) PublicKey(kid string) (PublicKey, error) {
	c := Curve(j.Crv)
	x, err := decodeB64("x", j.X)
	if err != nil {
		return PublicKey{}, err
	}
	switch j.Kty {
	case "OKP":
		if c != Ed25519 && c != X25519 {
			return PublicKey{}, fmt.Errorf("%w: OKP curve %q", ErrUnsupportedCurve, j.Crv)
		}
		return NewPublic(c, kid, x)
	case "EC":
		n := c.byteSize()
		if n == 0 || c == Ed25519 || c == X25519 {
			return PublicKey{}, fmt.Errorf("%w: EC curve %q", ErrUnsupportedCurve, j.Crv)
		}
		y, err := decodeB64("y", j.Y)
		if err != nil {
			return PublicKey{}, err
		}
		if len(x) != n || len(y) != n {
			return PublicKey{}, fmt.Errorf("jwk: %s coordinates must be %d bytes", c, n)
		}
		raw := append(append([]byte{4}, x...), y...)
		return NewPublic(c, kid, raw)
	}
	return PublicKey{}, fmt.Errorf("%w: key type %q", ErrUnsupportedCurve, j.Kty)
}

// PrivateKey parses a private JWK and checks that d matches the public key.
func (j JWK) PrivateKey(kid string) (PrivateKey, error) {
	pub, err := j.PublicKey(kid)
	if err != nil {
		return PrivateKey{}, err
	}
	d, err := decodeB64("d", j.D)
	if err != nil {
		return PrivateKey{}, err
	}
	priv, err := FromPrivate(pub.Curve, kid, d)
	if err != nil {
		return PrivateKey{}, err
	}
	if !priv.PublicKey.Equal(pub) {
		return PrivateKey{}, fmt.Errorf("jwk: private key does not match its public key")
	}
	return priv, nil
}
