package issuecredential

import (
	"context"
	"encoding/json"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
	"github.com/agentd/agentd/w3cvc"
)

// issue makes the issue-credential message of an ISSUER exchange whose
// request has come, and what the exchange records of it.
func (s *Service) issue(ctx context.Context, e *exchange) (agent.Message, *aip.IssuedCredential, error) {
	var att agent.Attachment
	var issued *aip.IssuedCredential
	var err error
	switch e.Family {
	case famAnoncreds:
		att, issued, err = s.issueAnoncreds(ctx, e)
	case famJWT, famLDP:
		att, issued, err = s.issueW3C(ctx, e)
	default:
		err = agent.Errorf(agent.CodeMe, "exchange %s has no credential format", e.ID)
	}
	if err != nil {
		return agent.Message{}, nil, err
	}
	msg, err := agent.NewMessage(IssueType, IssueBody{})
	if err != nil {
		return agent.Message{}, nil, err
	}
	msg.From, msg.To, msg.ThID, msg.Attachments = e.MyDID, []string{e.TheirDID}, e.ThreadID, []agent.Attachment{att}
	msg.PleaseAck = []string{"outcome"}
	return msg, issued, nil
}

func (s *Service) issueAnoncreds(ctx context.Context, e *exchange) (agent.Attachment, *aip.IssuedCredential, error) {
	offer, err := anoncreds.ParseCredentialOffer(e.Offer)
	if err != nil {
		return agent.Attachment{}, nil, err
	}
	req, err := anoncreds.ParseCredentialRequest(e.Request)
	if err != nil {
		return agent.Attachment{}, nil, agent.Wrap(agent.CodeMsg, err, "the credential request is malformed")
	}
	keys, err := s.cfg.Credentials.IssuerKeys(ctx, offer.CredDefID)
	if err != nil {
		return agent.Attachment{}, nil, err
	}
	sc, err := s.cfg.Credentials.ResolveSchema(ctx, keys.SchemaID)
	if err != nil {
		return agent.Attachment{}, nil, err
	}
	var attrs []aip.Attribute
	if p := e.Messages.Offer; p != nil && p.Anoncreds != nil {
		attrs = p.Anoncreds.Attributes
	}
	values, err := valuesFor(sc, attrs)
	if err != nil {
		return agent.Attachment{}, nil, err
	}
	cred, err := anoncreds.IssueCredential(keys.CredDef, keys.Private, offer, req, values)
	if err != nil {
		return agent.Attachment{}, nil, agent.Wrap(agent.CodeMsg, err, "the credential request is refused: "+err.Error())
	}
	format := FormatAnoncredsCred
	if e.RequestFormat == FormatHLIndyRequest {
		format = FormatHLIndyCred
	}
	att, err := jsonAttachment(format, cred)
	if err != nil {
		return agent.Attachment{}, nil, err
	}
	return att, &aip.IssuedCredential{Format: aip.FormatAnoncreds, Attributes: attrs, CredDefID: offer.CredDefID}, nil
}

func (s *Service) issueW3C(ctx context.Context, e *exchange) (agent.Attachment, *aip.IssuedCredential, error) {
	if s.cfg.Signer == nil {
		return agent.Attachment{}, nil, agent.Errorf(agent.CodeMsg, "this agent does not issue W3C credentials (no signing key)")
	}
	signer, err := s.cfg.Signer(ctx)
	if err != nil {
		return agent.Attachment{}, nil, err
	}
	// What is issued is what was offered: the holder's request only
	// repeats it.
	var d LDProofDetail
	if err := json.Unmarshal(e.Offer, &d); err != nil || d.Credential == nil {
		return agent.Attachment{}, nil, agent.Errorf(agent.CodeMe, "exchange %s: the offered credential is unreadable", e.ID)
	}
	vc := d.Credential
	subj, _ := vc["credentialSubject"].(map[string]any)
	if subj == nil {
		subj = map[string]any{}
	}
	subj["id"] = e.TheirDID
	vc["credentialSubject"] = subj
	vc["issuer"] = signer.DID()
	if _, ok := vc["id"]; !ok {
		vc["id"] = "urn:uuid:" + agent.NewID()
	}
	var raw []byte
	var att agent.Attachment
	if e.Family == famJWT {
		if raw, err = w3cvc.IssueJWT(vc, signer); err != nil {
			return agent.Attachment{}, nil, agent.Wrap(agent.CodeMe, err, "could not sign the credential")
		}
		att, err = jsonAttachment(FormatJWTVC, string(raw))
	} else {
		if raw, err = w3cvc.IssueLDP(vc, signer); err != nil {
			return agent.Attachment{}, nil, agent.Wrap(agent.CodeMe, err, "could not sign the credential")
		}
		att = agent.Attachment{ID: agent.NewID(), MediaType: "application/json", Format: FormatLDProofVC, Data: agent.AttachmentData{JSON: raw}}
	}
	if err != nil {
		return agent.Attachment{}, nil, err
	}
	return att, &aip.IssuedCredential{Format: aip.FormatW3C, CredentialJSON: string(raw)}, nil
}
