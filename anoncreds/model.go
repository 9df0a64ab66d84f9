package anoncreds

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxJSONSize bounds the size of each JSON document the Parse functions accept.
const MaxJSONSize = 4 << 20

// Limits on counts, so that the work of a verification is bounded.
const (
	// MaxAttributes bounds the attributes of a schema (Indy's limit is 125).
	MaxAttributes = 256
	// MaxReferents bounds the requested attributes plus requested predicates.
	MaxReferents = 256
	// MaxSubProofs bounds the credentials used in one presentation.
	MaxSubProofs = 64
)

// Schema is an AnonCreds schema: a named, versioned list of attribute names.
type Schema struct {
	// Name is the schema name.
	Name string `json:"name"`
	// Version is the schema version, e.g. "1.0".
	Version string `json:"version"`
	// AttrNames are the attribute names of credentials of this schema.
	AttrNames []string `json:"attrNames"`
	// IssuerID is the schema issuer's identifier (a DID, or an unqualified Indy DID).
	IssuerID string `json:"issuerId"`
}

// CredentialDefinition is an AnonCreds CL credential definition (public part).
type CredentialDefinition struct {
	// SchemaID names the schema (for legacy Indy objects, the schema's ledger sequence number).
	SchemaID string `json:"schemaId"`
	// Type is the signature type; only "CL" exists.
	Type string `json:"type"`
	// Tag distinguishes definitions of one issuer for one schema.
	Tag string `json:"tag"`
	// Value holds the public keys.
	Value CredentialDefinitionValue `json:"value"`
	// IssuerID is the issuer's identifier.
	IssuerID string `json:"issuerId"`
}

// CredentialDefinitionValue holds the CL public keys of a credential definition.
type CredentialDefinitionValue struct {
	// Primary is the CL primary public key.
	Primary PrimaryPublicKey `json:"primary"`
	// Revocation is the CKS revocation public key, kept opaque: present when
	// the definition supports revocation.
	Revocation json.RawMessage `json:"revocation,omitempty"`
}

// SupportsRevocation tells whether credentials of this definition can be revoked.
func (v CredentialDefinitionValue) SupportsRevocation() bool {
	r := bytes.TrimSpace(v.Revocation)
	return len(r) > 0 && !bytes.Equal(r, []byte("null"))
}

// PrimaryPublicKey is the issuer's CL public key: the RSA modulus N and the
// bases S, Z, Rctxt (link secret) and R (one per attribute, canonical names,
// plus "master_secret").
type PrimaryPublicKey struct {
	// N is the RSA modulus (product of two safe primes).
	N *BigInt `json:"n"`
	// S generates the group; the other bases are powers of it.
	S *BigInt `json:"s"`
	// R maps canonical attribute names (and "master_secret") to bases.
	R map[string]*BigInt `json:"r"`
	// Rctxt is the base of the credential context m2.
	Rctxt *BigInt `json:"rctxt"`
	// Z is the base the signature equation equals.
	Z *BigInt `json:"z"`
}

// NonRevokedInterval is the non_revoked member of a presentation request.
type NonRevokedInterval struct {
	// From is the start of the interval (Unix seconds), if any.
	From *uint64 `json:"from,omitempty"`
	// To is the end of the interval (Unix seconds), if any.
	To *uint64 `json:"to,omitempty"`
}

// PresentationRequest is an AnonCreds presentation (proof) request.
type PresentationRequest struct {
	// Nonce is a decimal number (80 bits in practice) hashed into the proof.
	Nonce string `json:"nonce"`
	// Name is a free-form name of the request.
	Name string `json:"name"`
	// Version is a free-form version of the request.
	Version string `json:"version"`
	// RequestedAttributes maps referents to requested attributes.
	RequestedAttributes map[string]AttributeInfo `json:"requested_attributes"`
	// RequestedPredicates maps referents to requested predicates.
	RequestedPredicates map[string]PredicateInfo `json:"requested_predicates"`
	// NonRevoked is the default non-revocation interval of every referent.
	NonRevoked *NonRevokedInterval `json:"non_revoked,omitempty"`
	// Ver is the request format version ("1.0" or "2.0"), if given.
	Ver string `json:"ver,omitempty"`
}

// AttributeInfo is one requested attribute (Name) or group of attributes
// from one credential (Names).
type AttributeInfo struct {
	// Name is the requested attribute, when a single one is requested.
	Name string `json:"name,omitempty"`
	// Names are the attributes requested together from one credential.
	Names []string `json:"names,omitempty"`
	// Restrictions is the WQL query the credential must match, if any.
	Restrictions *Query `json:"restrictions,omitempty"`
	// NonRevoked overrides the request's interval for this referent.
	NonRevoked *NonRevokedInterval `json:"non_revoked,omitempty"`
}

// PredicateInfo is one requested predicate: attribute p_type p_value.
type PredicateInfo struct {
	// Name is the attribute the predicate is about.
	Name string `json:"name"`
	// PType is one of ">=", ">", "<=", "<".
	PType string `json:"p_type"`
	// PValue is the bound.
	PValue int32 `json:"p_value"`
	// Restrictions is the WQL query the credential must match, if any.
	Restrictions *Query `json:"restrictions,omitempty"`
	// NonRevoked overrides the request's interval for this referent.
	NonRevoked *NonRevokedInterval `json:"non_revoked,omitempty"`
}

// Presentation is an AnonCreds v1 presentation (legacy JSON form).
type Presentation struct {
	// Proof is the CL proof.
	Proof Proof `json:"proof"`
	// RequestedProof maps the request's referents to the answers.
	RequestedProof RequestedProof `json:"requested_proof"`
	// Identifiers names the schema and credential definition of each sub-proof, in order.
	Identifiers []Identifier `json:"identifiers"`
}

// Proof is the CL proof of a presentation.
type Proof struct {
	// Proofs holds one sub-proof per credential used.
	Proofs []SubProof `json:"proofs"`
	// AggregatedProof holds the challenge and the hashed commitments.
	AggregatedProof AggregatedProof `json:"aggregated_proof"`
}

// SubProof is the proof about one credential.
type SubProof struct {
	// PrimaryProof proves possession of the signature, revealed values and predicates.
	PrimaryProof PrimaryProof `json:"primary_proof"`
	// NonRevocProof is the non-revocation proof, kept opaque (not supported yet).
	NonRevocProof json.RawMessage `json:"non_revoc_proof,omitempty"`
}

func (s SubProof) hasNonRevocProof() bool {
	r := bytes.TrimSpace(s.NonRevocProof)
	return len(r) > 0 && !bytes.Equal(r, []byte("null"))
}

// PrimaryProof is an equality proof and one inequality proof per predicate.
type PrimaryProof struct {
	// EqProof is the equality proof.
	EqProof EqProof `json:"eq_proof"`
	// GeProofs are the predicate proofs.
	GeProofs []GeProof `json:"ge_proofs"`
}

// EqProof is the CL equality proof of a sub-proof.
type EqProof struct {
	// RevealedAttrs maps canonical attribute names to revealed encoded values.
	RevealedAttrs map[string]*BigInt `json:"revealed_attrs"`
	// APrime is the randomised signature A'.
	APrime *BigInt `json:"a_prime"`
	// E is the response ê.
	E *BigInt `json:"e"`
	// V is the response v̂.
	V *BigInt `json:"v"`
	// M maps unrevealed attribute names (and master_secret) to responses m̂.
	M map[string]*BigInt `json:"m"`
	// M2 is the response for the credential context.
	M2 *BigInt `json:"m2"`
}

// GeProof is the CL inequality (predicate) proof.
type GeProof struct {
	// U are the responses for the four squares ("0".."3").
	U map[string]*BigInt `json:"u"`
	// R are the responses for the randomness ("0".."3", "DELTA").
	R map[string]*BigInt `json:"r"`
	// Mj is the response for the attribute (equal to the equality proof's).
	Mj *BigInt `json:"mj"`
	// Alpha is the response α̂.
	Alpha *BigInt `json:"alpha"`
	// T are the commitments ("0".."3", "DELTA").
	T map[string]*BigInt `json:"t"`
	// Predicate is what is proven.
	Predicate Predicate `json:"predicate"`
}

// Predicate is a proven predicate, with p_type GE, GT, LE or LT.
type Predicate struct {
	// AttrName is the canonical attribute name.
	AttrName string `json:"attr_name"`
	// PType is "GE", "GT", "LE" or "LT".
	PType string `json:"p_type"`
	// Value is the bound.
	Value int32 `json:"value"`
}

// AggregatedProof holds the challenge and the list of hashed commitments.
type AggregatedProof struct {
	// CHash is the Fiat–Shamir challenge.
	CHash *BigInt `json:"c_hash"`
	// CList are the commitments, hashed before the tau values' check.
	CList []ByteString `json:"c_list"`
}

// RequestedProof maps the request's referents to answers.
type RequestedProof struct {
	// RevealedAttrs answers single-name attribute referents with revealed values.
	RevealedAttrs map[string]RevealedAttrInfo `json:"revealed_attrs"`
	// RevealedAttrGroups answers names attribute referents.
	RevealedAttrGroups map[string]RevealedAttrGroupInfo `json:"revealed_attr_groups,omitempty"`
	// SelfAttestedAttrs answers referents without restrictions with self-attested values.
	SelfAttestedAttrs map[string]string `json:"self_attested_attrs"`
	// UnrevealedAttrs answers referents with a credential whose value is not revealed.
	UnrevealedAttrs map[string]SubProofReferent `json:"unrevealed_attrs"`
	// Predicates answers predicate referents.
	Predicates map[string]SubProofReferent `json:"predicates"`
}

// RevealedAttrInfo is one revealed value.
type RevealedAttrInfo struct {
	// SubProofIndex is the index of the sub-proof (credential) that reveals it.
	SubProofIndex uint32 `json:"sub_proof_index"`
	// Raw is the raw value.
	Raw string `json:"raw"`
	// Encoded is the encoded value (decimal), as signed.
	Encoded string `json:"encoded"`
}

// RevealedAttrGroupInfo is one revealed group of attributes from one credential.
type RevealedAttrGroupInfo struct {
	// SubProofIndex is the index of the sub-proof that reveals them.
	SubProofIndex uint32 `json:"sub_proof_index"`
	// Values maps the requested names to values.
	Values map[string]AttributeValue `json:"values"`
}

// AttributeValue is a raw value and its encoding.
type AttributeValue struct {
	// Raw is the raw value.
	Raw string `json:"raw"`
	// Encoded is the encoded value (decimal).
	Encoded string `json:"encoded"`
}

// SubProofReferent points to a sub-proof.
type SubProofReferent struct {
	// SubProofIndex is the index of the sub-proof.
	SubProofIndex uint32 `json:"sub_proof_index"`
}

// Identifier names the schema and credential definition of one sub-proof.
type Identifier struct {
	// SchemaID is the schema identifier.
	SchemaID string `json:"schema_id"`
	// CredDefID is the credential definition identifier.
	CredDefID string `json:"cred_def_id"`
	// RevRegID is the revocation registry, for revocable credentials.
	RevRegID *string `json:"rev_reg_id,omitempty"`
	// Timestamp is the time of the revocation state used, if any.
	Timestamp *uint64 `json:"timestamp,omitempty"`
}

// ErrMalformed wraps every error about the shape of an input.
var ErrMalformed = errors.New("anoncreds: malformed input")

func decodeJSON(data []byte, v any, what string) error {
	if len(data) > MaxJSONSize {
		return fmt.Errorf("%w: %s larger than %d bytes", ErrMalformed, what, MaxJSONSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, what, trimErr(err))
	}
	if dec.More() {
		return fmt.Errorf("%w: %s: trailing data", ErrMalformed, what)
	}
	return nil
}

// trimErr keeps error messages short (a JSON error may quote input).
func trimErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// ParseSchema parses and checks a schema.
func ParseSchema(data []byte) (*Schema, error) {
	var s Schema
	if err := decodeJSON(data, &s, "schema"); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks a schema: at least one attribute, at most MaxAttributes,
// no two with the same canonical name, none named master_secret.
func (s *Schema) Validate() error {
	if len(s.AttrNames) == 0 || len(s.AttrNames) > MaxAttributes {
		return fmt.Errorf("%w: schema has %d attributes (1..%d allowed)", ErrMalformed, len(s.AttrNames), MaxAttributes)
	}
	seen := make(map[string]bool, len(s.AttrNames))
	for _, a := range s.AttrNames {
		c := CanonicalAttrName(a)
		if c == "" || c == linkSecretName {
			return fmt.Errorf("%w: schema attribute name %q not allowed", ErrMalformed, a)
		}
		if seen[c] {
			return fmt.Errorf("%w: schema attribute %q repeated", ErrMalformed, a)
		}
		seen[c] = true
	}
	return nil
}

// ParseCredentialDefinition parses and checks a credential definition.
func ParseCredentialDefinition(data []byte) (*CredentialDefinition, error) {
	var c CredentialDefinition
	if err := decodeJSON(data, &c, "credential definition"); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks the public key: a modulus of 1,024 to 4,096 bits and
// every base in 1..N-1.
func (c *CredentialDefinition) Validate() error {
	if c.Type != "" && c.Type != "CL" {
		return fmt.Errorf("%w: credential definition type %q is not CL", ErrMalformed, c.Type)
	}
	p := c.Value.Primary
	if p.N == nil || p.N.Sign() <= 0 || p.N.BitLen() < 1024 || p.N.BitLen() > 4096 || p.N.Bit(0) == 0 {
		return fmt.Errorf("%w: credential definition modulus missing or not an odd 1024..4096-bit number", ErrMalformed)
	}
	check := func(name string, v *BigInt) error {
		if v == nil || v.Sign() <= 0 || v.Cmp(&p.N.Int) >= 0 {
			return fmt.Errorf("%w: credential definition key %s missing or out of range", ErrMalformed, name)
		}
		return nil
	}
	if err := check("s", p.S); err != nil {
		return err
	}
	if err := check("z", p.Z); err != nil {
		return err
	}
	if err := check("rctxt", p.Rctxt); err != nil {
		return err
	}
	if len(p.R) == 0 || len(p.R) > MaxAttributes+1 {
		return fmt.Errorf("%w: credential definition has %d attribute keys", ErrMalformed, len(p.R))
	}
	if _, ok := p.R[linkSecretName]; !ok {
		return fmt.Errorf("%w: credential definition has no master_secret key", ErrMalformed)
	}
	for k, v := range p.R {
		if err := check("r["+shortName(k)+"]", v); err != nil {
			return err
		}
	}
	return nil
}

// ParsePresentationRequest parses and checks a presentation request.
func ParsePresentationRequest(data []byte) (*PresentationRequest, error) {
	var r PresentationRequest
	if err := decodeJSON(data, &r, "presentation request"); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

var predicateTypes = map[string]string{">=": "GE", ">": "GT", "<=": "LE", "<": "LT"}

// Validate checks a request: a decimal nonce, name or names (not both) in
// each attribute referent, a known p_type in each predicate, ordered
// intervals, and no referent used twice.
func (r *PresentationRequest) Validate() error {
	if len(r.Nonce) == 0 || len(r.Nonce) > 100 {
		return fmt.Errorf("%w: request nonce must be 1..100 decimal digits", ErrMalformed)
	}
	for i := 0; i < len(r.Nonce); i++ {
		if r.Nonce[i] < '0' || r.Nonce[i] > '9' {
			return fmt.Errorf("%w: request nonce is not a decimal number", ErrMalformed)
		}
	}
	if n := len(r.RequestedAttributes) + len(r.RequestedPredicates); n > MaxReferents {
		return fmt.Errorf("%w: request has %d referents (at most %d)", ErrMalformed, n, MaxReferents)
	}
	if err := r.NonRevoked.validate("request"); err != nil {
		return err
	}
	for ref, a := range r.RequestedAttributes {
		if _, dup := r.RequestedPredicates[ref]; dup {
			return fmt.Errorf("%w: referent %q is both an attribute and a predicate", ErrMalformed, shortName(ref))
		}
		switch {
		case a.Name != "" && len(a.Names) > 0:
			return fmt.Errorf("%w: attribute referent %q has both name and names", ErrMalformed, shortName(ref))
		case a.Name == "" && len(a.Names) == 0:
			return fmt.Errorf("%w: attribute referent %q has neither name nor names", ErrMalformed, shortName(ref))
		case len(a.Names) > MaxAttributes:
			return fmt.Errorf("%w: attribute referent %q has too many names", ErrMalformed, shortName(ref))
		}
		for _, n := range a.Names {
			if CanonicalAttrName(n) == "" {
				return fmt.Errorf("%w: attribute referent %q has an empty name", ErrMalformed, shortName(ref))
			}
		}
		if err := a.NonRevoked.validate("referent " + shortName(ref)); err != nil {
			return err
		}
	}
	for ref, p := range r.RequestedPredicates {
		if _, ok := predicateTypes[p.PType]; !ok {
			return fmt.Errorf("%w: predicate referent %q has unknown p_type %q", ErrMalformed, shortName(ref), shortName(p.PType))
		}
		if CanonicalAttrName(p.Name) == "" {
			return fmt.Errorf("%w: predicate referent %q has no name", ErrMalformed, shortName(ref))
		}
		if err := p.NonRevoked.validate("referent " + shortName(ref)); err != nil {
			return err
		}
	}
	return nil
}

func (n *NonRevokedInterval) validate(where string) error {
	if n != nil && n.From != nil && n.To != nil && *n.From > *n.To {
		return fmt.Errorf("%w: non_revoked interval of %s has from > to", ErrMalformed, where)
	}
	return nil
}

// ParsePresentation parses a presentation and checks its shape (counts and
// required members); the proof itself is checked by VerifyPresentation.
func ParsePresentation(data []byte) (*Presentation, error) {
	var p Presentation
	if err := decodeJSON(data, &p, "presentation"); err != nil {
		return nil, err
	}
	if err := p.validateShape(); err != nil {
		return nil, err
	}
	return &p, nil
}

func (p *Presentation) validateShape() error {
	if len(p.Proof.Proofs) != len(p.Identifiers) {
		return fmt.Errorf("%w: presentation has %d sub-proofs but %d identifiers", ErrMalformed, len(p.Proof.Proofs), len(p.Identifiers))
	}
	if len(p.Proof.Proofs) > MaxSubProofs {
		return fmt.Errorf("%w: presentation has %d sub-proofs (at most %d)", ErrMalformed, len(p.Proof.Proofs), MaxSubProofs)
	}
	if p.Proof.AggregatedProof.CHash == nil {
		return fmt.Errorf("%w: presentation has no c_hash", ErrMalformed)
	}
	if n := len(p.Proof.AggregatedProof.CList); n > 64*MaxReferents {
		return fmt.Errorf("%w: presentation c_list has %d entries", ErrMalformed, n)
	}
	for i, sp := range p.Proof.Proofs {
		eq := sp.PrimaryProof.EqProof
		if eq.APrime == nil || eq.E == nil || eq.V == nil || eq.M2 == nil {
			return fmt.Errorf("%w: sub-proof %d: equality proof incomplete", ErrMalformed, i)
		}
		if len(eq.M) > MaxAttributes+1 || len(eq.RevealedAttrs) > MaxAttributes {
			return fmt.Errorf("%w: sub-proof %d: too many attributes", ErrMalformed, i)
		}
		if len(sp.PrimaryProof.GeProofs) > MaxReferents {
			return fmt.Errorf("%w: sub-proof %d: too many predicate proofs", ErrMalformed, i)
		}
		for j, ge := range sp.PrimaryProof.GeProofs {
			if ge.Mj == nil || ge.Alpha == nil {
				return fmt.Errorf("%w: sub-proof %d predicate %d: mj or alpha missing", ErrMalformed, i, j)
			}
			for _, k := range geKeys[:4] {
				if ge.U[k] == nil || ge.R[k] == nil || ge.T[k] == nil {
					return fmt.Errorf("%w: sub-proof %d predicate %d: u, r or t %s missing", ErrMalformed, i, j, k)
				}
			}
			if ge.R["DELTA"] == nil || ge.T["DELTA"] == nil {
				return fmt.Errorf("%w: sub-proof %d predicate %d: DELTA missing", ErrMalformed, i, j)
			}
		}
	}
	return nil
}

var geKeys = [5]string{"0", "1", "2", "3", "DELTA"}

// linkSecretName is the name of the link secret in the CL keys and proofs.
const linkSecretName = "master_secret"

// CanonicalAttrName is the attribute name as AnonCreds compares it: spaces
// removed, lower case.
func CanonicalAttrName(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, " ", ""))
}

// shortName quotes at most 64 bytes of a name in an error.
func shortName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
