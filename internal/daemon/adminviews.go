package daemon

import (
	"github.com/agentd/agentd/protocols/mediation"
	"github.com/agentd/agentd/protocols/oob"
	"github.com/agentd/agentd/protocols/provecontrol"
	httptransport "github.com/agentd/agentd/transport/http"
)

// The admin API's typed answers are the transport's own structs (the
// transport imports no protocol); these turn the protocols' views into them.

func invitationOut(inv oob.Invitation) httptransport.Invitation {
	return httptransport.Invitation{Type: inv.Type, ID: inv.ID, From: inv.From, CreatedTime: inv.CreatedTime,
		ExpiresTime: inv.ExpiresTime, Attachments: inv.Attachments,
		Body: httptransport.InvitationBody{GoalCode: inv.Body.GoalCode, Goal: inv.Body.Goal, Accept: inv.Body.Accept, Label: inv.Body.Label}}
}

func grantOut(g mediation.Grant) httptransport.MediationGrant {
	return httptransport.MediationGrant{ClientDID: g.ClientDID, State: string(g.State), Version: g.Version,
		MediatorDID: g.MediatorDID, RoutingDID: g.RoutingDID, GrantedAt: g.GrantedAt, UpdatedAt: g.UpdatedAt,
		Invitation: g.Invitation}
}

func recipientsOut(rs []mediation.Recipient) []httptransport.MediationRecipient {
	var out []httptransport.MediationRecipient
	for _, r := range rs {
		out = append(out, httptransport.MediationRecipient{ClientDID: r.ClientDID, Registered: r.Registered, AddedAt: r.AddedAt})
	}
	return out
}

func challengeOut(c provecontrol.ChallengeView) httptransport.Challenge {
	return httptransport.Challenge{ID: c.ID, Verifier: c.Verifier, User: c.User, VerificationType: string(c.VerificationType),
		Subject: c.Subject, RequestID: c.RequestID, State: string(c.State), Channel: c.Channel, Created: c.Created,
		Expires: c.Expires, Updated: c.Updated, Attempts: c.Attempts, AttemptsRemaining: c.AttemptsRemaining,
		Reason: c.Reason, CredentialID: c.CredentialID}
}

func verificationOut(v provecontrol.Verification) httptransport.Verification {
	return httptransport.Verification{ID: v.ID, ChallengeID: v.ChallengeID, Verifier: v.Verifier, User: v.User,
		VerificationType: string(v.VerificationType), Subject: v.Subject, Confirmed: v.Confirmed, Expires: v.Expires,
		Credential: v.Credential}
}

func letterOut(l provecontrol.LetterView) httptransport.Letter {
	return httptransport.Letter{ID: l.ID, User: l.User, Address: l.Address, Created: l.Created, Expires: l.Expires,
		Sent: l.Sent, Bytes: l.Bytes, ChallengeState: string(l.ChallengeState)}
}

func requestOut(r provecontrol.Request) httptransport.VerificationRequest {
	return httptransport.VerificationRequest{ID: r.ID, Verifier: r.Verifier, User: r.User,
		VerificationType: string(r.VerificationType), Subject: r.Subject, Sent: r.Sent, ChallengeID: r.ChallengeID,
		Problem: r.Problem, ProblemComment: r.ProblemComment}
}

func receivedOut(r provecontrol.ReceivedView) httptransport.ReceivedChallenge {
	v := httptransport.ReceivedChallenge{ID: r.ID, Verifier: r.Verifier, User: r.User,
		VerificationType: string(r.VerificationType), Subject: r.Subject, RequestID: r.RequestID, Requested: r.Requested,
		State: string(r.State), Received: r.Received, Expires: r.Expires, Transport: r.Transport, Proves: r.Proves,
		Problem: r.Problem, ProblemComment: r.ProblemComment, CredentialID: r.CredentialID}
	if r.DNSRecord != nil {
		v.DNSRecord = &httptransport.TXTRecord{Name: r.DNSRecord.Name, Type: r.DNSRecord.Type, Value: r.DNSRecord.Value}
	}
	return v
}

func credentialOut(c provecontrol.Credential) httptransport.Credential {
	return httptransport.Credential{ID: c.ID, Issuer: c.Issuer, Holder: c.Holder, VerificationType: string(c.VerificationType),
		Subject: c.Subject, Types: c.Types, Format: c.Format, IssuedAt: c.IssuedAt, Expires: c.Expires,
		ChallengeID: c.ChallengeID, Received: c.Received, JWT: c.JWT, Confirmation: c.Confirmation}
}

func problemOut(p *provecontrol.Problem) *httptransport.Problem {
	if p == nil {
		return nil
	}
	return &httptransport.Problem{Code: p.Code, Comment: p.Comment}
}

func requestOutcomeOut(o provecontrol.RequestOutcome) httptransport.RequestOutcome {
	out := httptransport.RequestOutcome{Request: requestOut(o.Request), Problem: problemOut(o.Problem)}
	if o.Challenge != nil {
		c := receivedOut(*o.Challenge)
		out.Challenge = &c
	}
	return out
}

func proveOutcomeOut(o provecontrol.ProveOutcome) httptransport.ProveOutcome {
	out := httptransport.ProveOutcome{Challenge: receivedOut(o.Challenge), Answered: o.Answered, Problem: problemOut(o.Problem)}
	if o.Credential != nil {
		c := credentialOut(*o.Credential)
		out.Credential = &c
	}
	return out
}

// convAll returns f applied to every item of a list result, keeping its
// error: convAll(f)(svc.List(...)).
func convAll[A, B any](f func(A) B) func([]A, error) ([]B, error) {
	return func(in []A, err error) ([]B, error) {
		out := make([]B, 0, len(in))
		for _, v := range in {
			out = append(out, f(v))
		}
		return out, err
	}
}

// conv returns f applied to a result, keeping its error: conv(f)(svc.Get(...)).
func conv[A, B any](f func(A) B) func(A, error) (B, error) {
	return func(in A, err error) (B, error) { return f(in), err }
}
