package aip

import (
	"context"
	"time"
)

// Page asks for one page of a listing: NextToken is "" for the first page
// or the token a previous page returned; Limit is clamped to 1..MaxLimit
// (DefaultLimit when 0).
type Page struct {
	NextToken string
	Limit     int
}

// Paging limits.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Clamp returns the page's limit within bounds.
func (p Page) Clamp() int {
	switch {
	case p.Limit <= 0:
		return DefaultLimit
	case p.Limit > MaxLimit:
		return MaxLimit
	}
	return p.Limit
}

// ConnectionExchangeFilter selects connection exchanges; zero fields match all.
type ConnectionExchangeFilter struct {
	Role   ConnExRole
	States []ConnExState
}

// ConnectionFilter selects connections; zero fields match all.
type ConnectionFilter struct {
	ConnectionIDs    []string
	HasBasicMessages *bool
}

// CredentialFilter selects held credentials; zero fields match all.
type CredentialFilter struct {
	Formats    []CredentialFormat
	CredDefIDs []string
}

// CredentialExchangeFilter selects credential exchanges; zero fields match all.
type CredentialExchangeFilter struct {
	Role          CredExRole
	States        []CredExState
	ConnectionIDs []string
}

// ProofExchangeFilter selects proof exchanges; zero fields match all, list
// fields mean "any of", fields are AND-ed.
type ProofExchangeFilter struct {
	Role          ProofExRole
	States        []ProofExState
	ConnectionIDs []string
}

// Connections sets up connections and carries basic messages on them.
type Connections interface {
	// CreateInvitation makes a single-use Out-of-Band invitation and an
	// INVITER exchange in state INVITATION.
	CreateInvitation(ctx context.Context, alias, label string) (*ConnectionExchange, error)
	// AcceptInvitation accepts someone's invitation (URL, encoded or JSON):
	// an INVITEE exchange that answers the inviter.
	AcceptInvitation(ctx context.Context, alias, invitation string) (*ConnectionExchange, error)
	// ConnectionExchange returns an exchange, or an error wrapping agent.ErrNotFound.
	ConnectionExchange(ctx context.Context, id string) (*ConnectionExchange, error)
	ConnectionExchanges(ctx context.Context, p Page, f ConnectionExchangeFilter) (items []*ConnectionExchange, next string, err error)
	DeleteConnectionExchange(ctx context.Context, id string) error

	// Connection returns a connection, or an error wrapping agent.ErrNotFound.
	Connection(ctx context.Context, id string) (*Connection, error)
	// ConnectionByDID returns the connection with the peer DID (a DID URL's
	// DID part counts), or an error wrapping agent.ErrNotFound.
	ConnectionByDID(ctx context.Context, did string) (*Connection, error)
	Connections(ctx context.Context, p Page, f ConnectionFilter) (items []*Connection, next string, err error)
	// DeleteConnection deletes a connection and its basic messages.
	DeleteConnection(ctx context.Context, id string) error

	SendBasicMessage(ctx context.Context, connectionID, content string) (*BasicMessage, error)
	BasicMessages(ctx context.Context, connectionID string, p Page) (items []*BasicMessage, next string, err error)
	// DeleteBasicMessages deletes messages and returns the ids it deleted.
	DeleteBasicMessages(ctx context.Context, ids []string) ([]string, error)
	DeleteBasicMessagesForConnection(ctx context.Context, connectionID string) ([]string, error)
}

// Credentials is the agent's credential store (held credentials) and its
// AnonCreds issuer objects.
type Credentials interface {
	// Credential returns a held credential, or an error wrapping agent.ErrNotFound.
	Credential(ctx context.Context, id string) (*Credential, error)
	Credentials(ctx context.Context, p Page, f CredentialFilter) (items []*Credential, next string, err error)
	DeleteCredential(ctx context.Context, id string) error

	CreateAnoncredsSchema(ctx context.Context, name, version string, attributeNames []string) (*AnoncredsSchema, error)
	AnoncredsSchema(ctx context.Context, id string) (*AnoncredsSchema, error)
	AnoncredsSchemas(ctx context.Context, p Page, name, version string) (items []*AnoncredsSchema, next string, err error)
	CreateAnoncredsCredDef(ctx context.Context, schemaID, tag string, revocable bool) (*AnoncredsCredDef, error)
	AnoncredsCredDef(ctx context.Context, id string) (*AnoncredsCredDef, error)
	AnoncredsCredDefs(ctx context.Context, p Page, schemaID string) (items []*AnoncredsCredDef, next string, err error)
}

// CredentialOfferInput is what sendAipCredentialOffer sends: exactly one
// format.
type CredentialOfferInput struct {
	Comment           string
	Anoncreds         *AnoncredsCredentialPreview
	W3C               *W3CCredentialPreview
	AutoAcceptRequest bool
}

// CredentialExchanges issues and receives credentials (Issue Credential 3.0).
type CredentialExchanges interface {
	SendOffer(ctx context.Context, connectionID string, offer CredentialOfferInput) (*CredentialExchange, error)
	// AcceptOffer makes a HOLDER in state OFFER request the credential.
	AcceptOffer(ctx context.Context, id string) (*CredentialExchange, error)
	// AcceptRequest makes an ISSUER in state REQUEST issue.
	AcceptRequest(ctx context.Context, id string) (*CredentialExchange, error)
	CredentialExchange(ctx context.Context, id string) (*CredentialExchange, error)
	CredentialExchanges(ctx context.Context, p Page, f CredentialExchangeFilter) (items []*CredentialExchange, next string, err error)
	// DeleteCredentialExchange sends a problem report when the exchange is
	// not terminal, then deletes it.
	DeleteCredentialExchange(ctx context.Context, id string) error
}

// PresentationInput is what acceptAipProofRequest presents: exactly one
// format.
type PresentationInput struct {
	Comment   string
	Anoncreds *AnoncredsPresentationInput
	W3C       *W3CPresentationInput
}

// AnoncredsPresentationInput picks a held credential per referent.
type AnoncredsPresentationInput struct {
	CredentialsForReferents []AnoncredsCredentialForReferent
	SelfAttested            []Attribute // Name = referent
}

// AnoncredsCredentialForReferent answers a referent with a held credential;
// Revealed is ignored for predicate referents.
type AnoncredsCredentialForReferent struct {
	Referent     string
	CredentialID string
	Revealed     bool
}

// W3CPresentationInput picks a held credential per referent (input
// descriptor).
type W3CPresentationInput struct {
	CredentialsForReferents []W3CCredentialForReferent
}

// W3CCredentialForReferent answers an input descriptor with a held credential.
type W3CCredentialForReferent struct {
	Referent     string
	CredentialID string
}

// CredentialsForReferent lists the held credentials that can answer a
// referent; empty when none.
type CredentialsForReferent struct {
	Referent      string
	CredentialIDs []string
}

// ProofExchanges runs Present Proof 3.0 in both roles.
type ProofExchanges interface {
	// SendRequest starts a VERIFIER exchange by sending a proof request.
	SendRequest(ctx context.Context, connectionID string, req ProofRequest) (*ProofExchange, error)
	// RequestFromProposal answers a VERIFIER exchange in PROPOSAL with a
	// request (req; nil means the proposal as it is).
	RequestFromProposal(ctx context.Context, id string, req *ProofRequest) (*ProofExchange, error)
	// SendProposal starts a PROVER exchange by proposing a presentation.
	SendProposal(ctx context.Context, connectionID string, proposal ProofRequest) (*ProofExchange, error)
	ProofExchange(ctx context.Context, id string) (*ProofExchange, error)
	ProofExchanges(ctx context.Context, p Page, f ProofExchangeFilter) (items []*ProofExchange, next string, err error)
	// CredentialsFor lists, per referent of a PROVER exchange's request,
	// the held credentials that can answer it.
	CredentialsFor(ctx context.Context, id string) ([]CredentialsForReferent, error)
	// AcceptRequest presents: only a PROVER exchange in REQUEST.
	AcceptRequest(ctx context.Context, id string, in PresentationInput) (*ProofExchange, error)
	// Delete sends a problem report when the exchange is not terminal, then
	// deletes it.
	Delete(ctx context.Context, id string) error
}

// Topics of the events the services publish after each change.
const (
	TopicConnectionExchange = "aip_connection_exchange"
	TopicCredentialExchange = "aip_credential_exchange"
	TopicProofExchange      = "aip_proof_exchange"
	TopicBasicMessage       = "basic_message"
)

// Event is a change a service made: the record after the change.
type Event struct {
	ID      string    `json:"eventId"`
	Topic   string    `json:"topic"`
	Emitted time.Time `json:"emittedTimestamp"`
	// Record is one of *ConnectionExchange, *CredentialExchange,
	// *ProofExchange, *BasicMessage.
	Record any `json:"record"`
}

// Events hears of every change, after it committed (subscriptions).
// Webhooks are queued through the outbox in the change's own unit of work
// instead, so that none is lost.
type Events interface {
	Publish(e Event)
}
