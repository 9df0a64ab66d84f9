package provecontrol

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/agentd/agentd/agent"
)

// PIURI is the protocol identifier of Prove Control 1.
const PIURI = "https://fmgp.app/provecontrol/1"

// Message types of Prove Control 1.
const (
	RequestVerificationType   = PIURI + "/requestverification"
	VerificationChallengeType = PIURI + "/verificationchallenge"
	ProveType                 = PIURI + "/prove"
	ConfirmVerificationType   = PIURI + "/confirmverification"
)

// Roles of Prove Control.
const (
	RoleVerifier = "verifier"
	RoleUser     = "user"
)

// SignedTypes are the message types that must be signed before they are
// encrypted: the confirmation is the verifier's statement, which the user
// keeps. The protocol declares them when it registers (agent.Protocol.Signed).
var SignedTypes = []string{ConfirmVerificationType}

// VerificationType names the kind of identity whose control is proved. Its
// values are the names of scala-did's enum.
type VerificationType string

// The verification types, in the order of scala-did's enum.
const (
	Email   VerificationType = "Email"
	DID     VerificationType = "DID"
	Discord VerificationType = "Discord"
	Tel     VerificationType = "Tel"
	Domain  VerificationType = "Domain"
	IP      VerificationType = "IP"
	Address VerificationType = "Address"
)

// VerificationTypes lists every verification type.
var VerificationTypes = []VerificationType{Email, DID, Discord, Tel, Domain, IP, Address}

// Valid reports whether t is one of the verification types (exact spelling).
func (t VerificationType) Valid() bool {
	for _, v := range VerificationTypes {
		if t == v {
			return true
		}
	}
	return false
}

// ParseVerificationType returns the verification type spelled s, or an
// error with code CodeVerificationType.
func ParseVerificationType(s string) (VerificationType, error) {
	t := VerificationType(s)
	if !t.Valid() {
		return "", agent.Errorf(CodeVerificationType, "verification_type %q is not one of Email, Domain, DID, Discord, Tel, IP, Address", clip(s, 40))
	}
	return t, nil
}

// Limits on body members, against oversized input.
const (
	maxSubjectLen = 512
	maxSecretLen  = 512
	maxIDLen      = 200
)

// RequestVerificationBody is the body of requestverification.
type RequestVerificationBody struct {
	VerificationType VerificationType `json:"verification_type"`
	Subject          string           `json:"subject"`
}

// VerificationChallengeBody is the body of verificationchallenge. Secret must
// only ever travel encrypted to the user.
type VerificationChallengeBody struct {
	VerificationType VerificationType `json:"verification_type"`
	Subject          string           `json:"subject"`
	Secret           string           `json:"secret"`
}

// ProveBody is the body of prove.
type ProveBody struct {
	VerificationType VerificationType `json:"verification_type"`
	Subject          string           `json:"subject"`
	Proof            string           `json:"proof"`
}

// ConfirmVerificationBody is the body of confirmverification.
type ConfirmVerificationBody struct {
	VerificationType VerificationType `json:"verification_type"`
	Subject          string           `json:"subject"`
}

// RequestVerification is a requestverification message: the user From asks
// the verifier To for a challenge about Subject.
type RequestVerification struct {
	ID               string
	To               string
	From             string
	VerificationType VerificationType
	Subject          string
}

// VerificationChallenge is a verificationchallenge message from the verifier
// From to the user To. ThID is the id of the request it answers, if any.
type VerificationChallenge struct {
	ID               string
	To               string
	From             string
	ThID             string
	VerificationType VerificationType
	Subject          string
	Secret           string
}

// Prove is a prove message from the user From to the verifier To; ThID is
// the id of the challenge it answers.
type Prove struct {
	ID               string
	To               string
	From             string
	ThID             string
	VerificationType VerificationType
	Subject          string
	Proof            string
}

// ConfirmVerification is a confirmverification message from the verifier
// From to the user To; ThID is the id of the challenge, and Attachments
// carry the credential.
type ConfirmVerification struct {
	ID               string
	To               string
	From             string
	ThID             string
	VerificationType VerificationType
	Subject          string
	Attachments      []agent.Attachment
}

// Message renders r as a plaintext message (a fresh id when ID is empty).
func (r RequestVerification) Message() (agent.Message, error) {
	return build(RequestVerificationType, r.ID, r.To, r.From, "", RequestVerificationBody{r.VerificationType, r.Subject}, nil)
}

// Message renders c as a plaintext message (a fresh id when ID is empty).
func (c VerificationChallenge) Message() (agent.Message, error) {
	return build(VerificationChallengeType, c.ID, c.To, c.From, c.ThID, VerificationChallengeBody{c.VerificationType, c.Subject, c.Secret}, nil)
}

// Proof computes the proof that answers c (see CalculateProof).
func (c VerificationChallenge) Proof() string {
	return CalculateProof(c.From, c.To, c.VerificationType, c.Subject, c.Secret)
}

// Prove builds the prove message that answers c.
func (c VerificationChallenge) Prove() Prove {
	return Prove{To: c.From, From: c.To, ThID: c.ID, VerificationType: c.VerificationType, Subject: c.Subject, Proof: c.Proof()}
}

// Message renders p as a plaintext message (a fresh id when ID is empty).
func (p Prove) Message() (agent.Message, error) {
	return build(ProveType, p.ID, p.To, p.From, p.ThID, ProveBody{p.VerificationType, p.Subject, p.Proof}, nil)
}

// Message renders c as a plaintext message (a fresh id when ID is empty).
func (c ConfirmVerification) Message() (agent.Message, error) {
	return build(ConfirmVerificationType, c.ID, c.To, c.From, c.ThID, ConfirmVerificationBody{c.VerificationType, c.Subject}, c.Attachments)
}

func build(typ, id, to, from, thid string, body any, att []agent.Attachment) (agent.Message, error) {
	m, err := agent.NewMessage(typ, body)
	if err != nil {
		return agent.Message{}, err
	}
	if id != "" {
		m.ID = id
	}
	m.To, m.From, m.ThID, m.Attachments = []string{to}, from, thid, att
	return m, nil
}

// ParseRequestVerification reads a requestverification message.
func ParseRequestVerification(m agent.Message) (RequestVerification, error) {
	h, err := header(m, RequestVerificationType, false)
	if err != nil {
		return RequestVerification{}, err
	}
	var b struct {
		VerificationType *string `json:"verification_type"`
		Subject          *string `json:"subject"`
	}
	if err := decodeBody(m, &b); err != nil {
		return RequestVerification{}, err
	}
	t, s, err := typeAndSubject(b.VerificationType, b.Subject)
	if err != nil {
		return RequestVerification{}, err
	}
	return RequestVerification{ID: m.ID, To: h.to, From: h.from, VerificationType: t, Subject: s}, nil
}

// ParseVerificationChallenge reads a verificationchallenge message.
func ParseVerificationChallenge(m agent.Message) (VerificationChallenge, error) {
	h, err := header(m, VerificationChallengeType, false)
	if err != nil {
		return VerificationChallenge{}, err
	}
	var b struct {
		VerificationType *string `json:"verification_type"`
		Subject          *string `json:"subject"`
		Secret           *string `json:"secret"`
	}
	if err := decodeBody(m, &b); err != nil {
		return VerificationChallenge{}, err
	}
	t, s, err := typeAndSubject(b.VerificationType, b.Subject)
	if err != nil {
		return VerificationChallenge{}, err
	}
	if b.Secret == nil || *b.Secret == "" || len(*b.Secret) > maxSecretLen {
		return VerificationChallenge{}, agent.Errorf(CodeBody, "secret must be a non-empty string of at most %d bytes", maxSecretLen)
	}
	return VerificationChallenge{ID: m.ID, To: h.to, From: h.from, ThID: m.ThID, VerificationType: t, Subject: s, Secret: *b.Secret}, nil
}

// ParseProve reads a prove message; thid is required.
func ParseProve(m agent.Message) (Prove, error) {
	h, err := header(m, ProveType, true)
	if err != nil {
		return Prove{}, err
	}
	var b struct {
		VerificationType *string `json:"verification_type"`
		Subject          *string `json:"subject"`
		Proof            *string `json:"proof"`
	}
	if err := decodeBody(m, &b); err != nil {
		return Prove{}, err
	}
	t, s, err := typeAndSubject(b.VerificationType, b.Subject)
	if err != nil {
		return Prove{}, err
	}
	if b.Proof == nil || *b.Proof == "" || len(*b.Proof) > maxSecretLen {
		return Prove{}, agent.Errorf(CodeBody, "body member proof is required (at most %d bytes)", maxSecretLen)
	}
	// A proof is lowercase hex; uppercase hex is taken as the same proof.
	// Any other text is a wrong proof, not a malformed message, as in scala-did.
	proof := *b.Proof
	if isHex(proof) {
		proof = strings.ToLower(proof)
	}
	return Prove{ID: m.ID, To: h.to, From: h.from, ThID: m.ThID, VerificationType: t, Subject: s, Proof: proof}, nil
}

// ParseConfirmVerification reads a confirmverification message; thid is
// required. Members of the body other than verification_type and subject
// are ignored, as scala-did does.
func ParseConfirmVerification(m agent.Message) (ConfirmVerification, error) {
	h, err := header(m, ConfirmVerificationType, true)
	if err != nil {
		return ConfirmVerification{}, err
	}
	var b struct {
		VerificationType *string `json:"verification_type"`
		Subject          *string `json:"subject"`
	}
	if err := decodeBody(m, &b); err != nil {
		return ConfirmVerification{}, err
	}
	t, s, err := typeAndSubject(b.VerificationType, b.Subject)
	if err != nil {
		return ConfirmVerification{}, err
	}
	return ConfirmVerification{ID: m.ID, To: h.to, From: h.from, ThID: m.ThID, VerificationType: t, Subject: s, Attachments: m.Attachments}, nil
}

type hdr struct{ to, from string }

// header checks what every Prove Control message needs: its type, exactly
// one DID in to, a from, and for prove and confirmverification a thid.
func header(m agent.Message, typ string, needThread bool) (hdr, error) {
	if m.Type != typ {
		return hdr{}, agent.Errorf(agent.CodeMsg, "not a %s message", typ[strings.LastIndexByte(typ, '/')+1:])
	}
	if len(m.To) != 1 || m.To[0] == "" {
		return hdr{}, agent.Errorf(CodeTo, "to must hold exactly one DID, not %d", len(m.To))
	}
	if m.From == "" {
		return hdr{}, agent.Errorf(CodeFrom, "from is required")
	}
	if needThread && m.ThID == "" {
		return hdr{}, agent.Errorf(CodeThread, "thid (the id of the verificationchallenge) is required")
	}
	if len(m.ID) > maxIDLen || len(m.ThID) > maxIDLen {
		return hdr{}, agent.Errorf(CodeBody, "id and thid must be at most %d bytes", maxIDLen)
	}
	return hdr{to: agent.DIDOf(m.To[0]), from: agent.DIDOf(m.From)}, nil
}

func decodeBody(m agent.Message, v any) error {
	if len(m.Body) == 0 {
		return agent.Errorf(CodeBody, "body is required")
	}
	if err := json.Unmarshal(m.Body, v); err != nil {
		return agent.Wrap(CodeBody, err, "malformed body: members must be strings")
	}
	return nil
}

func typeAndSubject(t, s *string) (VerificationType, string, error) {
	if t == nil {
		return "", "", agent.Errorf(CodeBody, "body member verification_type is required")
	}
	vt, err := ParseVerificationType(*t)
	if err != nil {
		return "", "", err
	}
	if s == nil || *s == "" {
		return "", "", agent.Errorf(CodeBody, "body member subject is required")
	}
	if len(*s) > maxSubjectLen || !utf8.ValidString(*s) {
		return "", "", agent.Errorf(CodeSubject, "subject must be valid UTF-8 of at most %d bytes", maxSubjectLen)
	}
	return vt, *s, nil
}

func isHex(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// clip shortens untrusted text for an error comment.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// String returns the type's name.
func (t VerificationType) String() string { return string(t) }
