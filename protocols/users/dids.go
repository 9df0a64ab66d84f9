package users

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/agentd/agentd/agent"
)

// A user registers another DID (their wallet's) with a DIDComm message of
// this protocol, sent from the user's did:key (so that the router
// attributes it to the user, agent.Inbound.User): "register", whose first
// attachment is a message signed by the other DID, of type "prove-control",
// with the body {"user_did": "<the user's did:key>"}. Both sides consent:
// the user's did:key authenticates the request, the other DID signs that it
// belongs to that user.
const (
	// PIURI is the protocol identifier of DID registration.
	PIURI = "https://agentd.dev/protocols/user-did/1.0"
	// TypeRegister is the user's request.
	TypeRegister = PIURI + "/register"
	// TypeProveControl is the other DID's signed statement.
	TypeProveControl = PIURI + "/prove-control"
	// TypeRegistered answers a registration.
	TypeRegistered = PIURI + "/registered"
	// proofMaxAge bounds the age of the signed statement.
	proofMaxAge = 10 * time.Minute
)

// SignedVerifier unpacks a signed DIDComm message (a JWS), checking its
// signature with the signer DID's keys; it returns the plaintext and the
// signer's DID (the DID of the JWS kid).
type SignedVerifier func(ctx context.Context, jws []byte) (plain []byte, signer string, err error)

// DIDView is a DID registered to an account.
type DIDView struct {
	DID        string    `json:"did"`
	Registered time.Time `json:"registered"`
}

// Protocol is the DID-registration protocol for the router; verify checks
// the signed statements.
func (s *Service) Protocol(verify SignedVerifier) agent.Protocol {
	return agent.Protocol{PIURI: PIURI, Roles: []string{"registrar"}, Handler: agent.HandlerFunc(
		func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
			if in.Message.Type != TypeRegister {
				return nil, agent.Errorf(agent.CodeMsgUnsupported, "unsupported message type %s", in.Message.Type)
			}
			other, err := s.register(ctx, in, verify)
			if err != nil {
				return nil, err
			}
			reply, err := in.Message.Reply(TypeRegistered, map[string]string{"did": other})
			if err != nil {
				return nil, err
			}
			return []agent.Message{reply}, nil
		})}
}

// register checks the request and stages the registration in in.Work.
func (s *Service) register(ctx context.Context, in *agent.Inbound, verify SignedVerifier) (string, error) {
	if in.User == "" {
		return "", agent.Errorf(agent.CodeForbidden, "the sender is not a user's DID: send from your did:key, authenticated")
	}
	if len(in.Message.Attachments) == 0 {
		return "", agent.Errorf(agent.CodeMsg, "attachments: the signed prove-control message is missing")
	}
	d := in.Message.Attachments[0].Data
	jws := []byte(d.JSON)
	if len(jws) == 0 && d.Base64 != "" {
		b, err := base64.StdEncoding.DecodeString(d.Base64)
		if err != nil {
			if b, err = base64.RawURLEncoding.DecodeString(d.Base64); err != nil {
				return "", agent.Errorf(agent.CodeMsg, "attachments: data.base64 is not base64")
			}
		}
		jws = b
	}
	if len(jws) == 0 || len(jws) > 64<<10 {
		return "", agent.Errorf(agent.CodeMsg, "attachments: the signed prove-control message is missing or too large")
	}
	plain, signer, err := verify(ctx, jws)
	if err != nil {
		return "", agent.Wrap(agent.CodeTrustCrypto, err, "attachments: the prove-control message is not validly signed: "+agent.ErrorComment(err))
	}
	proof, err := agent.ParseMessage(plain)
	if err != nil {
		return "", agent.Errorf(agent.CodeMsg, "attachments: the prove-control message is not a DIDComm message")
	}
	var body struct {
		UserDID string `json:"user_did"`
	}
	json.Unmarshal(proof.Body, &body)
	now := s.now()
	created := time.Unix(proof.CreatedTime, 0)
	switch {
	case proof.Type != TypeProveControl:
		return "", agent.Errorf(agent.CodeMsg, "attachments: the signed message must be of type %s", TypeProveControl)
	case proof.From == "" || agent.DIDOf(signer) != proof.From:
		return "", agent.Errorf(agent.CodeTrust, "attachments: the prove-control message is not signed by its from")
	case body.UserDID != in.Message.From:
		return "", agent.Errorf(agent.CodeTrust, "attachments: the prove-control message names another user (user_did)")
	case proof.CreatedTime == 0 || now.Sub(created) > proofMaxAge || created.Sub(now) > 5*time.Minute:
		return "", agent.Errorf(agent.CodeMsgExpired, "attachments: the prove-control message must be created within the last %s", proofMaxAge)
	case proof.From == in.Message.From:
		return "", agent.Errorf(agent.CodeMsg, "attachments: the DID to register is the user's own did:key")
	}
	other := proof.From
	w := in.Work
	var dx didIndex
	switch err := getIn(ctx, w, KindDID, other, &dx); {
	case err == nil && dx.AccountID != in.User:
		return "", agent.Errorf(agent.CodeConflict, "this DID belongs to another account")
	case err == nil:
		return other, nil // registered already
	case !isNotFound(err):
		return "", err
	}
	var acc Account
	if err := getIn(ctx, w, KindAccount, in.User, &acc); err != nil {
		return "", err
	}
	if acc.State != AccountActive {
		return "", agent.Errorf(agent.CodeConflict, "the account is %s", acc.State)
	}
	if len(acc.DIDs) >= maxDIDs {
		return "", agent.Errorf(agent.CodeMeResStorage, "an account has at most %d other DIDs", maxDIDs)
	}
	acc.DIDs = append(acc.DIDs, DIDView{DID: other, Registered: now})
	acc.Updated = now
	if err := w.PutJSON(KindAccount, acc.ID, &acc); err != nil {
		return "", err
	}
	if err := w.PutJSON(KindDID, other, &didIndex{AccountID: acc.ID}); err != nil {
		return "", err
	}
	w.AfterCommit(func() { s.log.InfoContext(ctx, "user DID registered", "account", acc.ID, "did", other) })
	return other, nil
}

// maxDIDs bounds the other DIDs of an account.
const maxDIDs = 20
