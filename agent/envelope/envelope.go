// Package envelope packs and unpacks DIDComm v2 envelopes: JWE (General JSON
// serialization) for authcrypt (ECDH-1PU+A256KW) and anoncrypt (ECDH-ES+A256KW),
// and JWS (General JSON serialization) for signed messages. The functions are
// pure over keys: callers pass keys in, and Unpack looks keys up through the
// KeyResolver and SecretResolver it is given. The one piece of state is a
// bounded in-memory cache of the agent's own NIST-curve key-agreement private
// keys in parsed form (see staticAgreeKey), which halves the cost of ECDH.
//
// The wire format follows the DIDComm v2 spec and its reference
// implementation didcomm-rust: typ values, protected headers (skid, apu =
// BASE64URL(skid), apv = BASE64URL(SHA-256 of the sorted recipient kids
// joined with '.'), one shared epk), ECDH-1PU draft-04 with the tag in the
// KDF, and a JWS protected header of typ and alg with the kid unprotected.
package envelope

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentd/agentd/agent/keys"
)

// Enc names a content encryption algorithm (JWE "enc").
type Enc string

// The content encryption algorithms DIDComm v2 uses.
const (
	A256CBCHS512 Enc = "A256CBC-HS512"
	A256GCM      Enc = "A256GCM"
	XC20P        Enc = "XC20P"
)

// Key wrapping algorithms (JWE "alg").
const (
	AlgAuthcrypt = "ECDH-1PU+A256KW"
	AlgAnoncrypt = "ECDH-ES+A256KW"
)

// Errors returned by Unpack (and, where they fit, by the Pack functions). They
// are wrapped with detail; test with errors.Is. Each Unpack error wraps exactly
// one of them, except failures of the SecretResolver itself (other than
// keys.ErrNotFound), which are returned as they are. Error texts name kids and
// algorithms but never contain key material.
var (
	ErrMalformed      = errors.New("malformed envelope")            // not JSON, missing members, bad base64, bad structure
	ErrUnsupported    = errors.New("unsupported algorithm")         // unknown alg, enc, curve or typ
	ErrNoRecipientKey = errors.New("no recipient key held")         // none of the recipient kids is ours
	ErrDecrypt        = errors.New("decryption failed")             // wrong key, tampered ciphertext, tag, AAD or wrapped key
	ErrSenderKey      = errors.New("sender key cannot be resolved") // skid or signer kid can't be resolved
	ErrSenderMismatch = errors.New("sender mismatch")               // from does not match skid's DID or the signer's DID, or apu/skid disagree
	ErrBadSignature   = errors.New("signature verification failed")
	ErrFormMismatch   = errors.New("form is not the one declared") // see UnpackOptions.Form and FormMismatchError
)

// FormMismatchError is the error of Unpack for a message whose outermost
// form is not the one its transport declared (UnpackOptions.Form). It
// matches ErrFormMismatch.
type FormMismatchError struct {
	Got, Declared Form
}

func (e *FormMismatchError) Error() string {
	return fmt.Sprintf("the message is %s but was declared %s", e.Got.describe(), e.Declared.describe())
}

// Is reports whether target is ErrFormMismatch.
func (e *FormMismatchError) Is(target error) bool { return target == ErrFormMismatch }

// describe names form in refusals.
func (f Form) describe() string {
	switch f {
	case FormEncrypted:
		return "an encrypted message (JWE, " + string(f) + ")"
	case FormSigned:
		return "a signed message (JWS, " + string(f) + ")"
	case FormPlain:
		return "a plaintext message (" + string(f) + ")"
	}
	return fmt.Sprintf("%q", string(f))
}

// KeyResolver resolves a key id (an absolute DID URL) to its public key,
// usually by DID resolution. It returns an error wrapping keys.ErrNotFound
// when the key does not exist. Unpack keeps the resolver's error in the chain
// of the ErrSenderKey it returns. Implement PurposeKeyResolver as well to have
// verification relationships checked.
type KeyResolver interface {
	PublicKey(ctx context.Context, kid string) (keys.PublicKey, error)
}

// KeyPurpose is the verification relationship a key must have in its DID
// document for the use Unpack makes of it.
type KeyPurpose int

// The purposes Unpack resolves keys for.
const (
	// PurposeKeyAgreement is for the skid of an authcrypt JWE (keyAgreement).
	PurposeKeyAgreement KeyPurpose = iota + 1
	// PurposeAuthentication is for the signer of a JWS and the issuer of a
	// from_prior JWT (authentication).
	PurposeAuthentication
)

// String returns the DID document property name of the purpose.
func (p KeyPurpose) String() string {
	switch p {
	case PurposeKeyAgreement:
		return "keyAgreement"
	case PurposeAuthentication:
		return "authentication"
	}
	return "unknown"
}

// PurposeKeyResolver is a KeyResolver that can also check the verification
// relationship. Unpack uses PublicKeyFor instead of PublicKey when its
// KeyResolver implements this interface, so that, for example, a key listed
// only under keyAgreement cannot sign a message. PublicKeyFor returns an error
// wrapping keys.ErrNotFound when the key exists but not for that purpose.
type PurposeKeyResolver interface {
	KeyResolver
	PublicKeyFor(ctx context.Context, kid string, purpose KeyPurpose) (keys.PublicKey, error)
}

// SecretResolver returns the agent's own private keys. PrivateKey returns an
// error wrapping keys.ErrNotFound for a kid the agent does not hold.
type SecretResolver interface {
	PrivateKey(ctx context.Context, kid string) (keys.PrivateKey, error)
}

// Metadata describes how an unpacked message was protected.
type Metadata struct {
	Encrypted          bool     `json:"encrypted"`
	Authenticated      bool     `json:"authenticated"`
	NonRepudiation     bool     `json:"non_repudiation"`
	AnonymousSender    bool     `json:"anonymous_sender"`
	ReWrappedInForward bool     `json:"re_wrapped_in_forward,omitempty"`
	EncryptedFrom      string   `json:"encrypted_from_kid,omitempty"` // skid of the authcrypt layer
	EncryptedTo        []string `json:"encrypted_to_kids,omitempty"`  // recipient kids of the outermost JWE
	SignFrom           string   `json:"sign_from,omitempty"`          // kid of the signer
	EncAlgAuth         string   `json:"enc_alg_auth,omitempty"`       // enc+alg as didcomm-python spells it: "A256CBC-HS512+ECDH-1PU+A256KW"
	EncAlgAnon         string   `json:"enc_alg_anon,omitempty"`       // e.g. "XC20P+ECDH-ES+A256KW"
	SignAlg            string   `json:"sign_alg,omitempty"`           // JWS alg: EdDSA, ES256, ES256K, ES384, ES512
	// FromPriorIssuerKid is the kid that signed the plaintext's from_prior
	// JWT, and FromPrior its verified claims; both are empty without from_prior.
	FromPriorIssuerKid string     `json:"from_prior_issuer_kid,omitempty"`
	FromPrior          *FromPrior `json:"from_prior,omitempty"`
	// SignedMessage is the JWS when the message was signed, kept for
	// non-repudiation.
	SignedMessage []byte `json:"-"`
}

// FromPrior holds the claims of a verified from_prior JWT, by which a sender
// announces a DID rotation: Iss is the prior DID, Sub the new one (the
// message's from).
type FromPrior struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud,omitempty"`
	Exp int64  `json:"exp,omitempty"`
	Nbf int64  `json:"nbf,omitempty"`
	Iat int64  `json:"iat,omitempty"`
	Jti string `json:"jti,omitempty"`
}

// UnpackOptions are the key lookups Unpack needs. Either resolver may be nil
// when the message turns out not to need it.
type UnpackOptions struct {
	// Keys resolves the sender's and signer's public keys (skid, JWS kid,
	// from_prior issuer).
	Keys KeyResolver
	// Secrets gives access to the agent's own private keys.
	Secrets SecretResolver
	// Form, when set, is the form the transport declared for the message
	// (HTTP's Content-Type): Unpack refuses an outermost layer of another
	// form with a *FormMismatchError before it decrypts anything. It spares
	// a transport a scan of its own (FormOf) before Unpack's.
	Form Form
}
