package anoncreds

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// Sizes (bits) of the prover's random values, as in the CL scheme
// (anoncreds-clsignatures constants).
const (
	largeLinkSecret = 256
	largeVPrime     = 2128
	largeMVect      = 592
	largeETilde     = 456
	largeVTilde     = 3060
	largeUTilde     = 592
	largeM2Tilde    = 2432
	largeRTilde     = 672
	largeAlphaTilde = 2787
)

// LinkSecret is the holder's link secret (anoncreds "master_secret"): the
// hidden attribute that binds a holder's credentials together. Its value
// never appears in errors or in fmt output.
type LinkSecret struct {
	v *big.Int
}

// NewLinkSecret draws a fresh 256-bit link secret.
func NewLinkSecret() (LinkSecret, error) {
	v, err := randBits(largeLinkSecret)
	return LinkSecret{v}, err
}

// LinkSecretFromDecimal reads a link secret in the decimal form anoncreds-rs
// uses (LinkSecret.toString / fromString).
func LinkSecretFromDecimal(s string) (LinkSecret, error) {
	v, err := parseDecimal(s)
	if err != nil || v.Sign() <= 0 || v.BitLen() > 512 {
		return LinkSecret{}, errors.New("anoncreds: malformed link secret")
	}
	return LinkSecret{v}, nil
}

// Decimal returns the secret in decimal, for storage by the caller.
func (l LinkSecret) Decimal() string {
	if l.v == nil {
		return ""
	}
	return l.v.String()
}

// String redacts the secret.
func (l LinkSecret) String() string { return "anoncreds.LinkSecret(redacted)" }

// GoString redacts the secret.
func (l LinkSecret) GoString() string { return l.String() }

// Credential is a credential as the holder stores it after processing
// (the legacy AnonCreds JSON form, as anoncreds-rs's Credential.toJSON).
type Credential struct {
	// SchemaID names the schema.
	SchemaID string `json:"schema_id"`
	// CredDefID names the credential definition.
	CredDefID string `json:"cred_def_id"`
	// RevRegID names the revocation registry of a revocable credential.
	RevRegID *string `json:"rev_reg_id"`
	// Values maps attribute names to raw and encoded values.
	Values map[string]AttributeValue `json:"values"`
	// Signature is the CL signature (secret: it lets anyone present the credential
	// together with the link secret).
	Signature CredentialSignature `json:"signature"`
	// SignatureCorrectnessProof is the issuer's proof of the signature.
	SignatureCorrectnessProof json.RawMessage `json:"signature_correctness_proof,omitempty"`
	// RevReg is the revocation registry state, kept opaque (not supported yet).
	RevReg json.RawMessage `json:"rev_reg"`
	// Witness is the revocation witness, kept opaque (not supported yet).
	Witness json.RawMessage `json:"witness"`
}

// CredentialSignature is the CL signature of a credential.
type CredentialSignature struct {
	// PCredential is the primary signature.
	PCredential PrimaryCredentialSignature `json:"p_credential"`
	// RCredential is the non-revocation signature, kept opaque.
	RCredential json.RawMessage `json:"r_credential"`
}

// PrimaryCredentialSignature is the CL signature (A, e, v) and the
// credential context m2.
type PrimaryCredentialSignature struct {
	// M2 is the credential context (a hash of the credential's identity).
	M2 *BigInt `json:"m_2"`
	// A is the signature value.
	A *BigInt `json:"a"`
	// E is the signature's prime exponent.
	E *BigInt `json:"e"`
	// V is the signature's blinding exponent (after processing, v' + v'').
	V *BigInt `json:"v"`
}

// ParseCredential parses a processed credential and checks its shape.
func ParseCredential(data []byte) (*Credential, error) {
	var c Credential
	if err := decodeJSON(data, &c, "credential"); err != nil {
		return nil, err
	}
	p := c.Signature.PCredential
	if p.M2 == nil || p.A == nil || p.E == nil || p.V == nil {
		return nil, fmt.Errorf("%w: credential signature incomplete", ErrMalformed)
	}
	if len(c.Values) == 0 || len(c.Values) > MaxAttributes {
		return nil, fmt.Errorf("%w: credential has %d values", ErrMalformed, len(c.Values))
	}
	for name, v := range c.Values {
		_, err := parseDecimal(v.Encoded)
		if err != nil {
			return nil, fmt.Errorf("%w: credential value %q: encoded is not a decimal number", ErrMalformed, shortName(name))
		}
	}
	return &c, nil
}

// randBits returns a uniform random number below 2^bits.
func randBits(bits int) (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(bigOne, uint(bits)))
}
