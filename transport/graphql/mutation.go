package graphql

import (
	"context"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	gen "github.com/agentd/agentd/transport/graphql/internal/generated"
)

type mutationResolver struct{ s *Resolver }

func (r mutationResolver) CreateAipConnectionInvitation(ctx context.Context, alias string, label *string) (*gen.AIPConnectionExchange, error) {
	if r.s.Connections == nil {
		return nil, errNoConnections
	}
	x, err := r.s.Connections.CreateInvitation(ctx, alias, str(label))
	if err != nil {
		return nil, err
	}
	return connectionExchangeOut(x), nil
}

func (r mutationResolver) AcceptAipConnectionInvitation(ctx context.Context, alias, invitation string) (*gen.AIPConnectionExchange, error) {
	if r.s.Connections == nil {
		return nil, errNoConnections
	}
	if blank(invitation) {
		return nil, agent.Errorf(agent.CodeMsg, "invitationUrl is empty")
	}
	x, err := r.s.Connections.AcceptInvitation(ctx, alias, invitation)
	if err != nil {
		return nil, err
	}
	return connectionExchangeOut(x), nil
}

func (r mutationResolver) DeleteAipConnectionExchange(ctx context.Context, id string) (string, error) {
	if r.s.Connections == nil {
		return "", errNoConnections
	}
	return id, r.s.Connections.DeleteConnectionExchange(ctx, id)
}

func (r mutationResolver) DeleteConnection(ctx context.Context, id string) (string, error) {
	if r.s.Connections == nil {
		return "", errNoConnections
	}
	return id, r.s.Connections.DeleteConnection(ctx, id)
}

func (r mutationResolver) SendBasicMessage(ctx context.Context, connectionID, content string) (*gen.BasicMessage, error) {
	if r.s.Connections == nil {
		return nil, errNoConnections
	}
	m, err := r.s.Connections.SendBasicMessage(ctx, connectionID, content)
	if err != nil {
		return nil, err
	}
	return basicMessageOut(m), nil
}

// BroadcastBasicMessage sends to each connection and answers those it was
// sent to; it fails only when it could send to none.
func (r mutationResolver) BroadcastBasicMessage(ctx context.Context, connectionIDs []string, content string) (*gen.BroadcastBasicMessageResult, error) {
	if r.s.Connections == nil {
		return nil, errNoConnections
	}
	out := &gen.BroadcastBasicMessageResult{ConnectionIds: []string{}}
	var first error
	for _, id := range connectionIDs {
		if _, err := r.s.Connections.SendBasicMessage(ctx, id, content); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		out.ConnectionIds = append(out.ConnectionIds, id)
	}
	if len(out.ConnectionIds) == 0 && first != nil {
		return nil, first
	}
	return out, nil
}

func (r mutationResolver) DeleteBasicMessages(ctx context.Context, ids []string) (*gen.DeleteBasicMessagesResult, error) {
	if r.s.Connections == nil {
		return nil, errNoConnections
	}
	deleted, err := r.s.Connections.DeleteBasicMessages(ctx, ids)
	if err != nil {
		return nil, err
	}
	return &gen.DeleteBasicMessagesResult{MessageIds: nonNil(deleted)}, nil
}

func (r mutationResolver) DeleteBasicMessagesForConnection(ctx context.Context, connectionID string) (*gen.DeleteBasicMessagesResult, error) {
	if r.s.Connections == nil {
		return nil, errNoConnections
	}
	deleted, err := r.s.Connections.DeleteBasicMessagesForConnection(ctx, connectionID)
	if err != nil {
		return nil, err
	}
	return &gen.DeleteBasicMessagesResult{MessageIds: nonNil(deleted)}, nil
}

func (r mutationResolver) DeleteCredential(ctx context.Context, id string) (string, error) {
	if r.s.Credentials == nil {
		return "", errNoCredentials
	}
	return id, r.s.Credentials.DeleteCredential(ctx, id)
}

func (r mutationResolver) CreateAnoncredsSchema(ctx context.Context, args gen.CreateAnoncredsSchemaArgs) (*gen.AnoncredsSchema, error) {
	if r.s.Credentials == nil {
		return nil, errNoCredentials
	}
	s, err := r.s.Credentials.CreateAnoncredsSchema(ctx, args.Name, args.Version, args.AttributeNames)
	if err != nil {
		return nil, err
	}
	return schemaOut(s), nil
}

func (r mutationResolver) CreateAnoncredsCredDef(ctx context.Context, args gen.CreateAnoncredsCredDefArgs) (*gen.AnoncredsCredDef, error) {
	if r.s.Credentials == nil {
		return nil, errNoCredentials
	}
	d, err := r.s.Credentials.CreateAnoncredsCredDef(ctx, args.SchemaID, args.Tag, args.IsRevocable)
	if err != nil {
		return nil, err
	}
	return credDefOut(d), nil
}

// SignCredential signs a standalone W3C credential as a DID the agent
// controls (Resolver.Signer).
func (r mutationResolver) SignCredential(ctx context.Context, input gen.SignCredentialInput) (gen.SignCredentialResult, error) {
	if r.s.Signer == nil {
		return nil, errNoSigning
	}
	if input.Format == nil || input.Format.W3C == nil {
		return nil, agent.Errorf(agent.CodeMsg, "format: exactly one of format.w3c must be set")
	}
	w := input.Format.W3C
	if w.SecuringMechanism == gen.W3CSecuringMechanismSdJwt {
		return nil, agent.Errorf(agent.CodeMsgUnsupported, "securingMechanism: SD_JWT is not supported (JWT and LINKED_DATA_PROOF are)")
	}
	plain, secured, err := r.s.Signer.SignW3C(ctx, input.Signer, []byte(w.CredentialJSON), string(w.SecuringMechanism))
	if err != nil {
		return nil, err
	}
	return gen.SignW3CCredentialResult{CredentialJSON: plain, SecuredCredentialJSON: secured}, nil
}

func (r mutationResolver) SendAipCredentialOffer(ctx context.Context, connectionID string, offer gen.AIPCredentialOfferInput) (*gen.AIPCredentialExchange, error) {
	if r.s.CredentialExchanges == nil {
		return nil, errNoCredEx
	}
	in, err := credentialOfferIn(offer)
	if err != nil {
		return nil, err
	}
	x, err := r.s.CredentialExchanges.SendOffer(ctx, connectionID, in)
	if err != nil {
		return nil, err
	}
	return credentialExchangeOut(x), nil
}

func (r mutationResolver) AcceptAipCredentialOffer(ctx context.Context, id string) (*gen.AIPCredentialExchange, error) {
	if r.s.CredentialExchanges == nil {
		return nil, errNoCredEx
	}
	x, err := r.s.CredentialExchanges.AcceptOffer(ctx, id)
	if err != nil {
		return nil, err
	}
	return credentialExchangeOut(x), nil
}

func (r mutationResolver) AcceptAipCredentialRequest(ctx context.Context, id string) (*gen.AIPCredentialExchange, error) {
	if r.s.CredentialExchanges == nil {
		return nil, errNoCredEx
	}
	x, err := r.s.CredentialExchanges.AcceptRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	return credentialExchangeOut(x), nil
}

func (r mutationResolver) DeleteAipCredentialExchange(ctx context.Context, id string) (string, error) {
	if r.s.CredentialExchanges == nil {
		return "", errNoCredEx
	}
	return id, r.s.CredentialExchanges.DeleteCredentialExchange(ctx, id)
}

func (r mutationResolver) SendAipProofRequest(ctx context.Context, connectionID string, request gen.AIPProofRequestInput) (*gen.AIPProofExchange, error) {
	if r.s.ProofExchanges == nil {
		return nil, errNoProofEx
	}
	req, err := proofRequestIn("request", &request)
	if err != nil {
		return nil, err
	}
	x, err := r.s.ProofExchanges.SendRequest(ctx, connectionID, req)
	if err != nil {
		return nil, err
	}
	return proofExchangeOut(x), nil
}

func (r mutationResolver) SendAipProofProposal(ctx context.Context, connectionID string, proposal gen.AIPProofRequestInput) (*gen.AIPProofExchange, error) {
	if r.s.ProofExchanges == nil {
		return nil, errNoProofEx
	}
	p, err := proofRequestIn("proposal", &proposal)
	if err != nil {
		return nil, err
	}
	x, err := r.s.ProofExchanges.SendProposal(ctx, connectionID, p)
	if err != nil {
		return nil, err
	}
	return proofExchangeOut(x), nil
}

func (r mutationResolver) AcceptAipProofProposal(ctx context.Context, id string, request *gen.AIPProofRequestInput) (*gen.AIPProofExchange, error) {
	if r.s.ProofExchanges == nil {
		return nil, errNoProofEx
	}
	var req *aip.ProofRequest
	if request != nil {
		x, err := proofRequestIn("request", request)
		if err != nil {
			return nil, err
		}
		req = &x
	}
	x, err := r.s.ProofExchanges.RequestFromProposal(ctx, id, req)
	if err != nil {
		return nil, err
	}
	return proofExchangeOut(x), nil
}

func (r mutationResolver) CredentialsForAipProofExchange(ctx context.Context, id string) (*gen.AIPProofExchangeCredentials, error) {
	if r.s.ProofExchanges == nil {
		return nil, errNoProofEx
	}
	refs, err := r.s.ProofExchanges.CredentialsFor(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &gen.AIPProofExchangeCredentials{CredentialsForReferents: make([]*gen.CredentialsForReferent, len(refs))}
	for i, c := range refs {
		out.CredentialsForReferents[i] = &gen.CredentialsForReferent{Referent: c.Referent, CredentialIds: nonNil(c.CredentialIDs)}
	}
	return out, nil
}

func (r mutationResolver) AcceptAipProofRequest(ctx context.Context, id string, presentation gen.AIPProofPresentationInput) (*gen.AIPProofExchange, error) {
	if r.s.ProofExchanges == nil {
		return nil, errNoProofEx
	}
	in, err := presentationIn(presentation)
	if err != nil {
		return nil, err
	}
	x, err := r.s.ProofExchanges.AcceptRequest(ctx, id, in)
	if err != nil {
		return nil, err
	}
	return proofExchangeOut(x), nil
}

// DeleteAipProofExchange takes the documented argument credExId (sic) or
// proofExId: exactly one.
func (r mutationResolver) DeleteAipProofExchange(ctx context.Context, credExID, proofExID *string) (string, error) {
	if r.s.ProofExchanges == nil {
		return "", errNoProofEx
	}
	if (credExID == nil) == (proofExID == nil) {
		return "", agent.Errorf(agent.CodeMsg, "exactly one of credExId and proofExId must be given")
	}
	id := str(credExID) + str(proofExID)
	return id, r.s.ProofExchanges.Delete(ctx, id)
}
