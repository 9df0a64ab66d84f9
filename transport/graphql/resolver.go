package graphql

import (
	"context"
	"errors"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	gen "github.com/agentd/agentd/transport/graphql/internal/generated"
)

// EventSource hears of the services' changes after they committed (the
// aipevents broker is one): Subscribe returns a channel of the events of a
// topic that is closed once ctx is done.
type EventSource interface {
	Subscribe(ctx context.Context, topic string) <-chan aip.Event
}

// Resolver resolves the schema onto the aip services. A nil service leaves
// the schema whole: its operations answer an error with extensions.code
// UNSUPPORTED.
type Resolver struct {
	Connections         aip.Connections
	Credentials         aip.Credentials
	CredentialExchanges aip.CredentialExchanges
	ProofExchanges      aip.ProofExchanges
	// Events feeds the subscriptions; nil makes them UNSUPPORTED.
	Events EventSource
	// Signer signs standalone credentials (signCredential); nil makes it
	// UNSUPPORTED.
	Signer CredentialSigner
}

// CredentialSigner signs W3C credentials as a DID the agent controls.
type CredentialSigner interface {
	// SignW3C signs credential, a W3C VC JSON object without a proof, as
	// signer with mechanism (the W3CSecuringMechanism: "JWT" or
	// "LINKED_DATA_PROOF"). It returns the credential as signed (issuer and
	// defaults filled in) and its secured form: the compact VC-JWT, or the
	// JSON-LD document with its proof. A signer the agent does not sign for
	// is an agent.CodeMsg error; a mechanism it does not support an
	// agent.CodeMsgUnsupported one.
	SignW3C(ctx context.Context, signer string, credential []byte, mechanism string) (credentialJSON, secured string, err error)
}

// unsupported says that a part of the API is not enabled on this agent.
type unsupported string

func (u unsupported) Error() string { return string(u) }

var (
	errNoConnections = unsupported("connections are not enabled on this agent")
	errNoCredentials = unsupported("the credential store is not enabled on this agent")
	errNoCredEx      = unsupported("credential exchanges are not enabled on this agent")
	errNoProofEx     = unsupported("proof exchanges are not enabled on this agent")
	errNoEvents      = unsupported("subscriptions are not enabled on this agent")
	errNoSigning     = unsupported("standalone credential signing (signCredential) is not available on this agent")
)

// notFound reports whether err says the record does not exist: single
// object queries answer null for it.
func notFound(err error) bool {
	return errors.Is(err, agent.ErrNotFound) || agent.HasCode(err, agent.CodeNotFound)
}

func (r *Resolver) root() gen.ResolverRoot { return rootResolver{r} }

type rootResolver struct{ s *Resolver }

func (r rootResolver) Query() gen.QueryResolver       { return queryResolver{r.s} }
func (r rootResolver) Mutation() gen.MutationResolver { return mutationResolver{r.s} }
func (r rootResolver) Subscription() gen.SubscriptionResolver {
	return subscriptionResolver{r.s}
}
func (r rootResolver) Connection() gen.ConnectionResolver { return connectionResolver{r.s} }
func (r rootResolver) AnoncredsCredential() gen.AnoncredsCredentialResolver {
	return anoncredsCredentialResolver{r.s}
}
func (r rootResolver) AnoncredsCredDef() gen.AnoncredsCredDefResolver {
	return anoncredsCredDefResolver{r.s}
}

// ---------------------------------------------------------------- field resolvers

type connectionResolver struct{ s *Resolver }

func (r connectionResolver) BasicMessages(ctx context.Context, c *gen.Connection, p *gen.PageInput) (*gen.BasicMessagesPage, error) {
	return queryResolver(r).BasicMessages(ctx, p, gen.BasicMessagesFilter{ConnectionID: c.ID})
}

type anoncredsCredentialResolver struct{ s *Resolver }

func (r anoncredsCredentialResolver) CredDef(ctx context.Context, c *gen.AnoncredsCredential) (*gen.AnoncredsCredDef, error) {
	if c.CredDefID == "" {
		return nil, nil
	}
	return queryResolver(r).AnoncredsCredDef(ctx, c.CredDefID)
}

type anoncredsCredDefResolver struct{ s *Resolver }

func (r anoncredsCredDefResolver) Schema(ctx context.Context, d *gen.AnoncredsCredDef) (*gen.AnoncredsSchema, error) {
	if d.SchemaID == "" {
		return nil, nil
	}
	return queryResolver(r).AnoncredsSchema(ctx, d.SchemaID)
}

// ---------------------------------------------------------------- queries

type queryResolver struct{ s *Resolver }

func (r queryResolver) Connection(ctx context.Context, id string) (*gen.Connection, error) {
	if r.s.Connections == nil {
		return nil, errNoConnections
	}
	c, err := r.s.Connections.Connection(ctx, id)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return connectionOut(c), nil
}

func (r queryResolver) Connections(ctx context.Context, p *gen.PageInput, f *gen.ConnectionsFilter) (*gen.ConnectionsPage, error) {
	if r.s.Connections == nil {
		return nil, errNoConnections
	}
	var filter aip.ConnectionFilter
	if f != nil {
		filter = aip.ConnectionFilter{ConnectionIDs: f.ConnectionIds, HasBasicMessages: f.HasBasicMessages}
	}
	items, next, err := r.s.Connections.Connections(ctx, page(p), filter)
	if err != nil {
		return nil, err
	}
	out := &gen.ConnectionsPage{Items: make([]*gen.Connection, len(items)), NextToken: nextToken(next)}
	for i, c := range items {
		out.Items[i] = connectionOut(c)
	}
	return out, nil
}

func (r queryResolver) BasicMessages(ctx context.Context, p *gen.PageInput, f gen.BasicMessagesFilter) (*gen.BasicMessagesPage, error) {
	if r.s.Connections == nil {
		return nil, errNoConnections
	}
	if blank(f.ConnectionID) {
		return nil, agent.Errorf(agent.CodeMsg, "filter.connectionId is required")
	}
	items, next, err := r.s.Connections.BasicMessages(ctx, f.ConnectionID, page(p))
	if err != nil {
		return nil, err
	}
	out := &gen.BasicMessagesPage{Items: make([]*gen.BasicMessage, len(items)), NextToken: nextToken(next)}
	for i, m := range items {
		out.Items[i] = basicMessageOut(m)
	}
	return out, nil
}

func (r queryResolver) Credential(ctx context.Context, id string) (gen.Credential, error) {
	if r.s.Credentials == nil {
		return nil, errNoCredentials
	}
	c, err := r.s.Credentials.Credential(ctx, id)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return credentialOut(c), nil
}

func (r queryResolver) Credentials(ctx context.Context, p *gen.PageInput, f *gen.CredentialsFilter) (*gen.CredentialsPage, error) {
	if r.s.Credentials == nil {
		return nil, errNoCredentials
	}
	var filter aip.CredentialFilter
	if f != nil {
		for _, x := range f.Formats {
			filter.Formats = append(filter.Formats, aip.CredentialFormat(x))
		}
		filter.CredDefIDs = f.CredDefIds
	}
	items, next, err := r.s.Credentials.Credentials(ctx, page(p), filter)
	if err != nil {
		return nil, err
	}
	out := &gen.CredentialsPage{Items: []gen.Credential{}, NextToken: nextToken(next)}
	for _, c := range items {
		if x := credentialOut(c); x != nil {
			out.Items = append(out.Items, x)
		}
	}
	return out, nil
}

func (r queryResolver) AnoncredsSchema(ctx context.Context, id string) (*gen.AnoncredsSchema, error) {
	if r.s.Credentials == nil {
		return nil, errNoCredentials
	}
	s, err := r.s.Credentials.AnoncredsSchema(ctx, id)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return schemaOut(s), nil
}

func (r queryResolver) AnoncredsSchemas(ctx context.Context, p *gen.PageInput, f *gen.AnoncredsSchemasFilter) (*gen.AnoncredsSchemasPage, error) {
	if r.s.Credentials == nil {
		return nil, errNoCredentials
	}
	var name, version string
	if f != nil {
		name, version = str(f.Name), str(f.Version)
	}
	items, next, err := r.s.Credentials.AnoncredsSchemas(ctx, page(p), name, version)
	if err != nil {
		return nil, err
	}
	out := &gen.AnoncredsSchemasPage{Items: make([]*gen.AnoncredsSchema, len(items)), NextToken: nextToken(next)}
	for i, s := range items {
		out.Items[i] = schemaOut(s)
	}
	return out, nil
}

func (r queryResolver) AnoncredsCredDef(ctx context.Context, id string) (*gen.AnoncredsCredDef, error) {
	if r.s.Credentials == nil {
		return nil, errNoCredentials
	}
	d, err := r.s.Credentials.AnoncredsCredDef(ctx, id)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return credDefOut(d), nil
}

func (r queryResolver) AnoncredsCredDefs(ctx context.Context, p *gen.PageInput, f *gen.AnoncredsCredDefsFilter) (*gen.AnoncredsCredDefsPage, error) {
	if r.s.Credentials == nil {
		return nil, errNoCredentials
	}
	var schemaID string
	if f != nil {
		schemaID = str(f.SchemaID)
	}
	items, next, err := r.s.Credentials.AnoncredsCredDefs(ctx, page(p), schemaID)
	if err != nil {
		return nil, err
	}
	out := &gen.AnoncredsCredDefsPage{Items: make([]*gen.AnoncredsCredDef, len(items)), NextToken: nextToken(next)}
	for i, d := range items {
		out.Items[i] = credDefOut(d)
	}
	return out, nil
}

func (r queryResolver) AipConnectionExchange(ctx context.Context, id string) (*gen.AIPConnectionExchange, error) {
	if r.s.Connections == nil {
		return nil, errNoConnections
	}
	x, err := r.s.Connections.ConnectionExchange(ctx, id)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return connectionExchangeOut(x), nil
}

func (r queryResolver) AipConnectionExchanges(ctx context.Context, p *gen.PageInput, f *gen.AIPConnectionExchangesFilter) (*gen.AIPConnectionExchangesPage, error) {
	if r.s.Connections == nil {
		return nil, errNoConnections
	}
	items, next, err := r.s.Connections.ConnectionExchanges(ctx, page(p), connExFilterIn(f))
	if err != nil {
		return nil, err
	}
	out := &gen.AIPConnectionExchangesPage{Items: make([]*gen.AIPConnectionExchange, len(items)), NextToken: nextToken(next)}
	for i, x := range items {
		out.Items[i] = connectionExchangeOut(x)
	}
	return out, nil
}

func (r queryResolver) AipCredentialExchange(ctx context.Context, id string) (*gen.AIPCredentialExchange, error) {
	if r.s.CredentialExchanges == nil {
		return nil, errNoCredEx
	}
	x, err := r.s.CredentialExchanges.CredentialExchange(ctx, id)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return credentialExchangeOut(x), nil
}

func (r queryResolver) AipCredentialExchanges(ctx context.Context, p *gen.PageInput, f *gen.AIPCredentialExchangesFilter) (*gen.AIPCredentialExchangesPage, error) {
	if r.s.CredentialExchanges == nil {
		return nil, errNoCredEx
	}
	items, next, err := r.s.CredentialExchanges.CredentialExchanges(ctx, page(p), credExFilterIn(f))
	if err != nil {
		return nil, err
	}
	out := &gen.AIPCredentialExchangesPage{Items: make([]*gen.AIPCredentialExchange, len(items)), NextToken: nextToken(next)}
	for i, x := range items {
		out.Items[i] = credentialExchangeOut(x)
	}
	return out, nil
}

func (r queryResolver) AipProofExchange(ctx context.Context, id string) (*gen.AIPProofExchange, error) {
	if r.s.ProofExchanges == nil {
		return nil, errNoProofEx
	}
	x, err := r.s.ProofExchanges.ProofExchange(ctx, id)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return proofExchangeOut(x), nil
}

func (r queryResolver) AipProofExchanges(ctx context.Context, p *gen.PageInput, f *gen.AIPProofExchangesFilter) (*gen.AIPProofExchangesPage, error) {
	if r.s.ProofExchanges == nil {
		return nil, errNoProofEx
	}
	items, next, err := r.s.ProofExchanges.ProofExchanges(ctx, page(p), proofFilterIn(f))
	if err != nil {
		return nil, err
	}
	out := &gen.AIPProofExchangesPage{Items: make([]*gen.AIPProofExchange, len(items)), NextToken: nextToken(next)}
	for i, x := range items {
		out.Items[i] = proofExchangeOut(x)
	}
	return out, nil
}
