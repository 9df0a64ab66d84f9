package aip

import "time"

// ConnectionExchange is the agent's progress in setting up a connection
// through an Out-of-Band invitation. When it reaches DONE a Connection
// with the same id exists.
type ConnectionExchange struct {
	ID         string      `json:"id"`
	MyRole     ConnExRole  `json:"myRole"`
	State      ConnExState `json:"state"`
	Alias      string      `json:"alias"`
	TheirLabel string      `json:"theirLabel,omitempty"`
	Invitation *Invitation `json:"invitation,omitempty"`
	// TheirDID is the peer's DID once known (INVITEE: from the invitation;
	// INVITER: from the first answer).
	TheirDID string `json:"theirDid,omitempty"`
	// ErrorMessage says why an exchange was abandoned.
	ErrorMessage string    `json:"errorMessage,omitempty"`
	Created      time.Time `json:"createdTimestamp"`
	Modified     time.Time `json:"modifiedTimestamp"`
}

// Invitation is the Out-of-Band invitation of a connection exchange. Label
// is ours when the agent is the inviter, theirs otherwise.
type Invitation struct {
	MessageID       string `json:"messageId"`
	Label           string `json:"label"`
	ServiceEndpoint string `json:"serviceEndpoint,omitempty"`
	// URL is the invitation as a URL to hand to the invitee.
	URL string `json:"invitationUrl,omitempty"`
}

// Connection is a DIDComm v2 relationship with one peer DID. Messages from
// that DID belong to it.
type Connection struct {
	ID         string    `json:"id"`
	Alias      string    `json:"alias"`
	TheirLabel string    `json:"theirLabel,omitempty"`
	TheirDID   string    `json:"theirDid"`
	MyDID      string    `json:"myDid"`
	Created    time.Time `json:"createdTimestamp"`
	Modified   time.Time `json:"modifiedTimestamp"`
}

// Direction tells whether a basic message was received or sent.
type Direction string

// Basic message directions.
const (
	Inbound  Direction = "INBOUND"
	Outbound Direction = "OUTBOUND"
)

// BasicMessage is a Basic Message 2.0 message on a connection.
type BasicMessage struct {
	ID           string    `json:"id"`
	ConnectionID string    `json:"connectionId"`
	Content      string    `json:"content"`
	Timestamp    time.Time `json:"timestamp"`
	Direction    Direction `json:"direction"`
}

// CredentialFormat is the format family of a held credential.
type CredentialFormat string

// Credential formats.
const (
	FormatAnoncreds CredentialFormat = "ANONCREDS"
	FormatW3C       CredentialFormat = "W3C"
)

// Credential is a credential the agent holds.
type Credential struct {
	ID     string           `json:"id"`
	Format CredentialFormat `json:"format"`
	// ConnectionID is the connection it was issued on, if any.
	ConnectionID string `json:"connectionId,omitempty"`
	// CredentialJSON is the W3C credential as received: the JSON-LD
	// document, or the compact JWT (as a JSON string).
	CredentialJSON string `json:"credentialJson,omitempty"`
	// W3CFormat is the DIF claim format of a W3C credential (jwt_vc_json,
	// ldp_vc).
	W3CFormat string `json:"w3cFormat,omitempty"`
	// Attributes, CredDefID and SchemaID describe an AnonCreds credential.
	Attributes []Attribute `json:"attributes,omitempty"`
	CredDefID  string      `json:"credDefId,omitempty"`
	SchemaID   string      `json:"schemaId,omitempty"`
	Created    time.Time   `json:"createdTimestamp"`
}

// Attribute is a name and its value.
type Attribute struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// AnoncredsSchema is an AnonCreds schema the agent created or imported.
type AnoncredsSchema struct {
	ID             string   `json:"id"`
	IssuerID       string   `json:"issuerId"`
	Name           string   `json:"name"`
	Version        string   `json:"version"`
	AttributeNames []string `json:"attributeNames"`
}

// AnoncredsCredDef is an AnonCreds credential definition the agent created
// (it holds the private key, sealed) or imported.
type AnoncredsCredDef struct {
	ID          string `json:"id"`
	SchemaID    string `json:"schemaId"`
	Tag         string `json:"tag"`
	IsRevocable bool   `json:"isRevocable"`
}

// CredentialExchange is the agent's progress in issuing or receiving a
// credential over Issue Credential 3.0.
type CredentialExchange struct {
	ID           string               `json:"id"`
	ThreadID     string               `json:"threadId"`
	ConnectionID string               `json:"connectionId"`
	MyRole       CredExRole           `json:"myRole"`
	State        CredExState          `json:"state"`
	Messages     CredExchangeMessages `json:"messages"`
	// AutoAcceptRequest makes an issuer issue as soon as the request comes.
	AutoAcceptRequest bool      `json:"autoAcceptRequest,omitempty"`
	ErrorMessage      string    `json:"errorMessage,omitempty"`
	Created           time.Time `json:"createdTimestamp"`
	Modified          time.Time `json:"modifiedTimestamp"`
}

// CredExchangeMessages are the messages of a credential exchange so far.
type CredExchangeMessages struct {
	Proposal *CredentialPreview `json:"proposal,omitempty"`
	Offer    *CredentialPreview `json:"offer,omitempty"`
	// Issued is the id of the held credential (HOLDER) or a copy of what
	// was issued (ISSUER).
	Issued *IssuedCredential `json:"issued,omitempty"`
}

// CredentialPreview is what a proposal or offer says will be issued.
type CredentialPreview struct {
	Comment string `json:"comment,omitempty"`
	// Anoncreds: the credential definition and the attribute values.
	Anoncreds *AnoncredsCredentialPreview `json:"anoncreds,omitempty"`
	// W3C: the credential to be issued, as JSON.
	W3C *W3CCredentialPreview `json:"w3c,omitempty"`
}

// AnoncredsCredentialPreview names an AnonCreds credential's definition and values.
type AnoncredsCredentialPreview struct {
	CredDefID  string      `json:"credDefId"`
	SchemaID   string      `json:"schemaId,omitempty"`
	Attributes []Attribute `json:"attributes"`
}

// W3CCredentialPreview is a W3C credential to be issued and how it is secured.
type W3CCredentialPreview struct {
	CredentialJSON    string `json:"credentialJson"`
	SecuringMechanism string `json:"securingMechanism"` // JWT | LINKED_DATA_PROOF
}

// IssuedCredential is the credential an exchange produced.
type IssuedCredential struct {
	CredentialID   string           `json:"credentialId,omitempty"`
	Format         CredentialFormat `json:"format"`
	CredentialJSON string           `json:"credentialJson,omitempty"`
	Attributes     []Attribute      `json:"attributes,omitempty"`
	CredDefID      string           `json:"credDefId,omitempty"`
}

// ProofExchange is the agent's progress in a Present Proof 3.0 exchange.
type ProofExchange struct {
	ID           string        `json:"id"`
	ThreadID     string        `json:"threadId"`
	ConnectionID string        `json:"connectionId"`
	MyRole       ProofExRole   `json:"myRole"`
	State        ProofExState  `json:"state"`
	Messages     ProofMessages `json:"messages"`
	ErrorMessage string        `json:"errorMessage,omitempty"`
	Created      time.Time     `json:"createdTimestamp"`
	Modified     time.Time     `json:"modifiedTimestamp"`
}

// ProofMessages are the messages of a proof exchange so far.
type ProofMessages struct {
	Proposal     *ProofRequest      `json:"proposal,omitempty"`
	Request      *ProofRequest      `json:"request,omitempty"`
	Presentation *ProofPresentation `json:"presentation,omitempty"`
}

// ProofRequest is a proof request (or proposal): exactly one of Anoncreds
// and W3C is set.
type ProofRequest struct {
	Comment   string                 `json:"comment,omitempty"`
	Anoncreds *AnoncredsProofRequest `json:"anoncreds,omitempty"`
	W3C       *W3CProofNegotiation   `json:"w3c,omitempty"`
}

// AnoncredsProofRequest is an AnonCreds presentation request in the API's
// shape: one attribute group per referent.
type AnoncredsProofRequest struct {
	Name            string                    `json:"name,omitempty"`
	Version         string                    `json:"version,omitempty"`
	Nonce           string                    `json:"nonce,omitempty"`
	AttributeGroups []AnoncredsAttributeGroup `json:"attributeGroups"`
}

// AnoncredsAttributeGroup is one referent: attributes from one credential,
// or a predicate when its restrictions carry one.
type AnoncredsAttributeGroup struct {
	Referent       string                 `json:"referent"`
	AttributeNames []string               `json:"attributeNames"`
	Restrictions   []AnoncredsRestriction `json:"restrictions,omitempty"`
}

// AnoncredsRestriction restricts which credentials may answer a group (the
// restrictions of a group are alternatives). NonRevoked and Predicate are
// group-level in AnonCreds: all restrictions of a group carry the same.
type AnoncredsRestriction struct {
	SchemaID        string              `json:"schemaId,omitempty"`
	SchemaIssuerID  string              `json:"schemaIssuerId,omitempty"`
	SchemaName      string              `json:"schemaName,omitempty"`
	SchemaVersion   string              `json:"schemaVersion,omitempty"`
	CredDefID       string              `json:"credDefId,omitempty"`
	IssuerID        string              `json:"issuerId,omitempty"`
	AttributeNames  []string            `json:"attributeNames,omitempty"`
	AttributeValues []Attribute         `json:"attributeValues,omitempty"`
	NonRevoked      *NonRevokedInterval `json:"nonRevoked,omitempty"`
	Predicate       *Predicate          `json:"predicate,omitempty"`
}

// NonRevokedInterval is an AnonCreds non-revocation interval, Unix seconds.
type NonRevokedInterval struct {
	From *int64 `json:"from,omitempty"`
	To   *int64 `json:"to,omitempty"`
}

// PredicateOperator is an AnonCreds predicate type.
type PredicateOperator string

// Predicate operators (p_type >=, >, <=, <).
const (
	GreaterThanOrEqual PredicateOperator = "GREATER_THAN_OR_EQUAL"
	GreaterThan        PredicateOperator = "GREATER_THAN"
	LessThanOrEqual    PredicateOperator = "LESS_THAN_OR_EQUAL"
	LessThan           PredicateOperator = "LESS_THAN"
)

// Predicate is an AnonCreds predicate on a group's one attribute.
type Predicate struct {
	Operator  PredicateOperator `json:"operator"`
	Threshold int64             `json:"threshold"`
}

// W3CProofNegotiation is a W3C proof request in the API's shape: a
// flattened DIF presentation definition, one attribute group per input
// descriptor (referent = descriptor id).
type W3CProofNegotiation struct {
	AttributeGroups            []W3CAttributeGroup `json:"attributeGroups"`
	SubmissionRequirementJSONs []string            `json:"submissionRequirementJsons,omitempty"`
	Challenge                  string              `json:"challenge,omitempty"`
	Domain                     string              `json:"domain,omitempty"`
	// PresentationDefinitionJSON is the DIF presentation_definition as it
	// went on the wire (lossless where the groups are not).
	PresentationDefinitionJSON string `json:"presentationDefinitionJson,omitempty"`
}

// W3CAttributeGroup is one input descriptor.
type W3CAttributeGroup struct {
	Referent   string         `json:"referent"`
	Attributes []W3CAttribute `json:"attributes"`
}

// W3CAttribute is one constraint field.
type W3CAttribute struct {
	AttributePaths    []string                 `json:"attributePaths"`
	ValueRestrictions *W3CValueRestrictions    `json:"valueRestrictions,omitempty"`
	IsHolderSubject   bool                     `json:"isHolderSubject"`
	PresentationType  W3CAttributePresentation `json:"presentationType"`
}

// W3CAttributePresentation says whether a value is disclosed or only proved.
type W3CAttributePresentation string

// Presentation types.
const (
	PresentValue     W3CAttributePresentation = "VALUE"
	PresentPredicate W3CAttributePresentation = "PREDICATE"
)

// W3CValueRestrictions is a field's filter (a JSON Schema subset).
type W3CValueRestrictions struct {
	DataFormat         *string  `json:"dataFormat,omitempty"` // STRING NUMBER INTEGER BOOLEAN DATE DATE_TIME
	Pattern            *string  `json:"pattern,omitempty"`
	InSet              []string `json:"inSet,omitempty"`
	NotInSet           []string `json:"notInSet,omitempty"`
	Equal              *string  `json:"equal,omitempty"`
	NotEqual           *string  `json:"notEqual,omitempty"`
	MinLength          *int     `json:"minLength,omitempty"`
	MaxLength          *int     `json:"maxLength,omitempty"`
	LessThan           *string  `json:"lessThan,omitempty"`
	LessThanOrEqual    *string  `json:"lessThanOrEqual,omitempty"`
	GreaterThan        *string  `json:"greaterThan,omitempty"`
	GreaterThanOrEqual *string  `json:"greaterThanOrEqual,omitempty"`
}

// VerificationResult is a verifier's verdict on a presentation.
type VerificationResult string

// Verification results.
const (
	Verified    VerificationResult = "VERIFIED"
	NotVerified VerificationResult = "NOT_VERIFIED"
)

// ProofPresentation is a presentation sent or received: exactly one of
// Anoncreds and W3C is set. VerificationResult is set by a verifier once
// verification has run.
type ProofPresentation struct {
	Comment            string                      `json:"comment,omitempty"`
	Anoncreds          *AnoncredsProofPresentation `json:"anoncreds,omitempty"`
	W3C                *W3CProofPresentation       `json:"w3c,omitempty"`
	VerificationResult VerificationResult          `json:"verificationResult,omitempty"`
	VerificationErrors []string                    `json:"verificationErrors,omitempty"`
}

// AnoncredsProofPresentation is an AnonCreds presentation, per referent.
type AnoncredsProofPresentation struct {
	Groups    []AnoncredsPresentedGroup `json:"groups"`
	ProofJSON string                    `json:"proofJson,omitempty"`
}

// PresentedGroupKind is how a referent was answered.
type PresentedGroupKind string

// Presented group kinds.
const (
	GroupRevealed     PresentedGroupKind = "REVEALED"
	GroupUnrevealed   PresentedGroupKind = "UNREVEALED"
	GroupSelfAttested PresentedGroupKind = "SELF_ATTESTED"
	GroupPredicate    PresentedGroupKind = "PREDICATE"
)

// AnoncredsPresentedGroup is how one referent was answered.
type AnoncredsPresentedGroup struct {
	Referent   string             `json:"referent"`
	Kind       PresentedGroupKind `json:"kind"`
	Attributes []Attribute        `json:"attributes"`
	SchemaID   string             `json:"schemaId,omitempty"`
	CredDefID  string             `json:"credDefId,omitempty"`
}

// W3CProofPresentation is a W3C verifiable presentation.
type W3CProofPresentation struct {
	// PresentationJSON is the VP: the JSON-LD document or the compact JWT.
	PresentationJSON        string                 `json:"presentationJson"`
	CredentialsForReferents []W3CPresentedReferent `json:"credentialsForReferents"`
}

// W3CPresentedReferent maps a referent (input descriptor id) to the path of
// the credential that answers it, from the descriptor map.
type W3CPresentedReferent struct {
	Referent string `json:"referent"`
	Path     string `json:"path"`
}
