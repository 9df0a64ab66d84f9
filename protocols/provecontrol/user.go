package provecontrol

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/protocols/reportproblem"
)

// Problem is a verifier's problem report, as the user's calls return it.
type Problem struct {
	Code    string `json:"code"`
	Comment string `json:"comment,omitempty"`
}

// RequestOutcome is what RequestVerification returns: the request, and the
// challenge or the verifier's problem if one came within the wait.
type RequestOutcome struct {
	Request   Request       `json:"request"`
	Challenge *ReceivedView `json:"challenge,omitempty"`
	Problem   *Problem      `json:"problem,omitempty"`
}

// RequestVerification sends a requestverification to the verifier DID for
// subject of type t, from the agent's DID, and waits up to wait for the
// answer that comes over DIDComm: the challenge (Domain, or DID when the
// subject is ours) or a problem report. Challenges that come another way
// (mail, SMS, ...) show up later among the received challenges.
func (s *Service) RequestVerification(ctx context.Context, verifier string, t VerificationType, subject string, wait time.Duration) (RequestOutcome, error) {
	if _, _, err := did.ParseDID(verifier); err != nil {
		return RequestOutcome{}, agent.Errorf(agent.CodeMsg, "verifier must be a DID: %v", err)
	}
	if s.cfg.Identity.Owns(verifier) {
		return RequestOutcome{}, agent.Errorf(agent.CodeMsg, "the verifier is this agent itself")
	}
	if !t.Valid() {
		_, err := ParseVerificationType(string(t))
		return RequestOutcome{}, err
	}
	subject, err := NormalizeSubject(t, subject, SubjectOptions{AllowPrivateIPs: true})
	if err != nil {
		return RequestOutcome{}, err
	}
	user := s.cfg.Identity.DID()
	msg, err := RequestVerification{To: verifier, From: user, VerificationType: t, Subject: subject}.Message()
	if err != nil {
		return RequestOutcome{}, err
	}
	r := Request{ID: msg.ID, Verifier: verifier, User: user, VerificationType: t, Subject: subject, Sent: s.now()}
	outs, err := s.cfg.Messenger.Outbound(ctx, msg)
	if err != nil {
		return RequestOutcome{}, err
	}
	waitFn, cancel := s.cfg.Waiters.Expect(msg.ID)
	defer cancel()
	// The request and the message that makes it are stored together.
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		w.Enqueue(outs...)
		return w.PutJSON(KindRequest, r.ID, &r)
	})
	if err != nil {
		return RequestOutcome{}, storeError(err, "could not store the request")
	}
	s.log.InfoContext(ctx, "verification requested", "request", r.ID, "verifier", verifier, "type", t)
	out := RequestOutcome{Request: r}
	if wait <= 0 {
		return out, nil
	}
	wctx, wcancel := context.WithTimeout(ctx, wait)
	defer wcancel()
	in, err := waitFn(wctx)
	if err != nil {
		return out, nil // no answer yet: the challenge may come another way
	}
	if pr := problemOf(in.Message); pr != nil {
		out.Problem = pr
		err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
			if err := getIn(ctx, w, KindRequest, r.ID, &r); err != nil {
				return err
			}
			r.Problem, r.ProblemComment = pr.Code, pr.Comment
			return w.PutJSON(KindRequest, r.ID, &r)
		})
		if err != nil {
			s.log.WarnContext(ctx, "could not record the verifier's problem with the request", "request", r.ID, "err", err)
		}
		out.Request = r
		return out, nil
	}
	if in.Message.Type == VerificationChallengeType {
		var rec Received
		if s.st.get(ctx, KindReceived, in.Message.ID, &rec) == nil {
			v := rec.view()
			out.Challenge = &v
		}
		_ = s.st.get(ctx, KindRequest, r.ID, &out.Request)
	}
	return out, nil
}

// problemOf returns the problem a problem report carries, or nil for
// another message.
func problemOf(m agent.Message) *Problem {
	if m.Type != agent.ProblemReportType {
		return nil
	}
	p, err := reportproblem.Decode(m)
	if err != nil {
		return &Problem{Code: agent.CodeMsg, Comment: "malformed problem report"}
	}
	return &Problem{Code: p.Code, Comment: p.Comment}
}

// handleChallenge keeps a verificationchallenge sent to one of our DIDs:
// it must have been encrypted; if it answers a request of ours it must
// match it. The proof is computed now and kept instead of the secret.
func (s *Service) handleChallenge(ctx context.Context, in *agent.Inbound) error {
	c, err := ParseVerificationChallenge(in.Message)
	if err != nil {
		return err
	}
	if !in.Envelope.Encrypted {
		return agent.Errorf(CodeUnencrypted, "a verificationchallenge must be encrypted: its secret was exposed, ask for a new one")
	}
	if !s.cfg.Identity.Owns(c.To) {
		return agent.Errorf(agent.CodeNotForUs, "the challenge is not for one of this agent's DIDs")
	}
	w := in.Work
	var old Received
	switch err := getIn(ctx, w, KindReceived, c.ID, &old); {
	case err == nil:
		if old.Verifier == c.From && old.Proof == c.Proof() {
			return nil // the same challenge again, by another way
		}
		return agent.Errorf(agent.CodeMsg, "a different challenge with id %s is held already", clip(c.ID, 60))
	case !isNotFound(err):
		return agent.Wrap(agent.CodeMe, err, "internal error")
	}
	now := s.now()
	rec := Received{
		ID: c.ID, Verifier: c.From, User: c.To, VerificationType: c.VerificationType, Subject: c.Subject,
		State: HeldReceived, Received: now, Updated: now, Transport: in.Transport, Proof: c.Proof(),
	}
	if in.Message.ExpiresTime != 0 {
		rec.Expires = time.Unix(in.Message.ExpiresTime, 0).UTC()
	}
	var req Request
	if c.ThID != "" {
		switch err := getIn(ctx, w, KindRequest, c.ThID, &req); {
		case err == nil:
			if req.Verifier != c.From || req.VerificationType != c.VerificationType || !sameSubject(c.VerificationType, req.Subject, c.Subject) {
				return agent.Errorf(CodeRequestMismatch, "the challenge does not match request %s (verifier, verification_type or subject)", clip(c.ThID, 60))
			}
			rec.RequestID, rec.Requested = req.ID, true
		case !isNotFound(err):
			return agent.Wrap(agent.CodeMe, err, "internal error")
		}
	}
	if err := w.PutJSON(KindReceived, rec.ID, &rec); err != nil {
		return agent.Wrap(agent.CodeMe, err, "could not store the challenge")
	}
	if rec.Requested {
		req.ChallengeID = rec.ID
		if err := w.PutJSON(KindRequest, req.ID, &req); err != nil {
			return agent.Wrap(agent.CodeMe, err, "could not store the challenge")
		}
	}
	w.AfterCommit(func() {
		s.log.InfoContext(ctx, "challenge received", "challenge", rec.ID, "verifier", rec.Verifier, "type", rec.VerificationType,
			"transport", rec.Transport, "requested", rec.Requested)
		if rec.Requested {
			s.cfg.Waiters.NotifyThread(rec.RequestID, in)
		}
	})
	return nil
}

func sameSubject(t VerificationType, a, b string) bool {
	if a == b {
		return true
	}
	na, err1 := NormalizeSubject(t, a, SubjectOptions{AllowPrivateIPs: true})
	nb, err2 := NormalizeSubject(t, b, SubjectOptions{AllowPrivateIPs: true})
	return err1 == nil && err2 == nil && na == nb
}

// ProveOutcome is what Prove returns: the challenge after the prove, and
// the credential or the verifier's problem if one came within the wait.
type ProveOutcome struct {
	Challenge  ReceivedView `json:"challenge"`
	Answered   bool         `json:"answered"`
	Credential *Credential  `json:"credential,omitempty"`
	Problem    *Problem     `json:"problem,omitempty"`
}

// Prove sends the prove for a received challenge to its verifier and waits
// up to wait for the confirmation (stored as a credential) or a problem
// report. For a Domain challenge, publish its DNSRecord first. An "e.m"
// problem leaves the challenge proved (fix it and prove again); an "e.p"
// problem rejects it.
func (s *Service) Prove(ctx context.Context, id string, wait time.Duration) (ProveOutcome, error) {
	waitFn, cancel := s.cfg.Waiters.Expect(id)
	defer cancel()
	var rec Received
	// The challenge's move to proved and the prove message commit together.
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		if err := getIn(ctx, w, KindReceived, id, &rec); err != nil {
			if isNotFound(err) {
				return notFound("received challenge", id)
			}
			return err
		}
		now := s.now()
		if !rec.Expires.IsZero() && !now.Before(rec.Expires) {
			return agent.Errorf(CodeExpired, "challenge %s expired at %s", rec.ID, rec.Expires.Format(time.RFC3339))
		}
		if err := rec.moveTo(HeldProved, now); err != nil {
			return agent.Errorf(agent.CodeMsg, "challenge %s is %s: there is nothing to prove", rec.ID, rec.State)
		}
		p := Prove{To: rec.Verifier, From: rec.User, ThID: rec.ID, VerificationType: rec.VerificationType, Subject: rec.Subject, Proof: rec.Proof}
		msg, err := p.Message()
		if err != nil {
			return err
		}
		outs, err := s.cfg.Messenger.Outbound(ctx, msg)
		if err != nil {
			return err
		}
		w.Enqueue(outs...)
		rec.Proves++
		rec.Problem, rec.ProblemComment = "", ""
		return w.PutJSON(KindReceived, rec.ID, &rec)
	})
	if err != nil {
		if isNotFound(err) {
			return ProveOutcome{}, err
		}
		return ProveOutcome{}, storeError(err, "could not send the prove")
	}
	s.log.InfoContext(ctx, "prove sent", "challenge", rec.ID, "verifier", rec.Verifier, "type", rec.VerificationType)
	out := ProveOutcome{Challenge: rec.view()}
	if wait <= 0 {
		return out, nil
	}
	wctx, wcancel := context.WithTimeout(ctx, wait)
	defer wcancel()
	in, err := waitFn(wctx)
	if err != nil {
		return out, nil
	}
	out.Answered = true
	if pr := problemOf(in.Message); pr != nil {
		out.Problem = pr
		err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
			if err := getIn(ctx, w, KindReceived, id, &rec); err != nil {
				return err
			}
			rec.Problem, rec.ProblemComment = pr.Code, clip(pr.Comment, 500)
			if strings.HasPrefix(pr.Code, "e.p.") && rec.State.CanMoveTo(HeldRejected) {
				_ = rec.moveTo(HeldRejected, s.now())
			}
			return w.PutJSON(KindReceived, id, &rec)
		})
		if err != nil {
			s.log.WarnContext(ctx, "could not record the verifier's problem with the prove", "challenge", id, "err", err)
		}
		out.Challenge = rec.view()
		return out, nil
	}
	if s.st.get(ctx, KindReceived, id, &rec) == nil {
		out.Challenge = rec.view()
		if rec.CredentialID != "" {
			var c Credential
			if s.st.get(ctx, KindCredential, rec.CredentialID, &c) == nil {
				out.Credential = &c
			}
		}
	}
	return out, nil
}

// handleConfirm checks a confirmverification and stores its credential: it
// must be signed by its from, the verifier of a challenge we proved, match
// it, and carry a credential that verifies and states the same.
func (s *Service) handleConfirm(ctx context.Context, in *agent.Inbound) error {
	c, err := ParseConfirmVerification(in.Message)
	if err != nil {
		return err
	}
	if !in.Envelope.NonRepudiation || agent.DIDOf(in.Envelope.SignFrom) != c.From {
		return agent.Errorf(CodeUnsigned, "a confirmverification must be signed by the verifier")
	}
	w := in.Work
	var rec Received
	if err := getIn(ctx, w, KindReceived, c.ThID, &rec); err != nil {
		if isNotFound(err) {
			return agent.Errorf(CodeUnknownChallenge, "no challenge %s is held", clip(c.ThID, 60))
		}
		return agent.Wrap(agent.CodeMe, err, "internal error")
	}
	switch {
	case c.From != rec.Verifier:
		return agent.Errorf(CodeWrongVerifier, "challenge %s came from another verifier", rec.ID)
	case c.To != rec.User:
		return agent.Errorf(CodeTo, "challenge %s was for another DID", rec.ID)
	case rec.State == HeldConfirmed:
		// The verifier confirmed again (a prove was sent again, or its
		// answer delivered twice): the credential is held already.
		s.log.InfoContext(ctx, "confirmation of a confirmed challenge ignored", "challenge", rec.ID)
		w.AfterCommit(func() { s.cfg.Waiters.Notify(in) })
		return nil
	case rec.State != HeldProved:
		return agent.Errorf(CodeNotProved, "challenge %s is %s, not proved", rec.ID, rec.State)
	case c.VerificationType != rec.VerificationType:
		return agent.Errorf(CodeTypeMismatch, "challenge %s is of type %s, not %s", rec.ID, rec.VerificationType, c.VerificationType)
	case c.Subject != rec.Subject:
		return agent.Errorf(CodeSubjectMismatch, "the subject is not the challenge's subject")
	}
	jwt, err := credentialFromAttachments(c.Attachments)
	if err != nil {
		return agent.Wrap(CodeCredential, err, err.Error())
	}
	now := s.now()
	claims, err := VerifyCredential(ctx, jwt, s.cfg.Resolver, now)
	if err != nil {
		return agent.Wrap(CodeCredential, err, err.Error())
	}
	cs := claims.VC.CredentialSubject
	if claims.Iss != rec.Verifier || claims.Sub != rec.User || cs.VerificationType != rec.VerificationType || cs.Subject != rec.Subject {
		return agent.Errorf(CodeCredential, "%v: the credential does not state what was proved", ErrCredential)
	}
	cred := Credential{
		ID: strings.TrimPrefix(claims.Jti, "urn:uuid:"), Issuer: claims.Iss, Holder: claims.Sub,
		VerificationType: cs.VerificationType, Subject: cs.Subject, Types: claims.VC.Type, Format: CredentialFormat,
		IssuedAt: time.Unix(claims.Nbf, 0).UTC(), Expires: time.Unix(claims.Exp, 0).UTC(),
		ChallengeID: rec.ID, Received: now, JWT: jwt, Confirmation: in.Envelope.SignedMessage,
	}
	if cred.ID == "" {
		cred.ID = agent.NewID()
	}
	if err := rec.moveTo(HeldConfirmed, now); err != nil {
		return agent.Wrap(agent.CodeMe, err, "internal error")
	}
	rec.CredentialID = cred.ID
	if err := w.PutJSON(KindCredential, cred.ID, &cred); err != nil {
		return agent.Wrap(agent.CodeMe, err, "could not store the credential")
	}
	if s.cfg.Held != nil {
		if err := s.cfg.Held.Put(w, HeldCredential(cred), nil); err != nil {
			return agent.Wrap(agent.CodeMe, err, "could not store the credential")
		}
	}
	if err := w.PutJSON(KindReceived, rec.ID, &rec); err != nil {
		return agent.Wrap(agent.CodeMe, err, "could not store the credential")
	}
	w.AfterCommit(func() {
		s.log.InfoContext(ctx, "verification confirmed: credential stored", "challenge", rec.ID, "verifier", rec.Verifier,
			"type", rec.VerificationType, "credential", cred.ID)
		s.cfg.Waiters.Notify(in)
	})
	return nil
}

// Requests lists the requests the user sent, after the id after.
func (s *Service) Requests(ctx context.Context, after string, limit int) ([]Request, error) {
	return list(ctx, s.st, KindRequest, after, limit, nil, func(r *Request) Request { return *r })
}

// ReceivedChallenges lists the challenges the user received, after the id after.
func (s *Service) ReceivedChallenges(ctx context.Context, after string, limit int) ([]ReceivedView, error) {
	return list(ctx, s.st, KindReceived, after, limit, nil, func(r *Received) ReceivedView { return r.view() })
}

// ReceivedChallenge returns one received challenge.
func (s *Service) ReceivedChallenge(ctx context.Context, id string) (ReceivedView, error) {
	var r Received
	if err := s.st.get(ctx, KindReceived, id, &r); err != nil {
		if isNotFound(err) {
			return ReceivedView{}, notFound("received challenge", id)
		}
		return ReceivedView{}, err
	}
	return r.view(), nil
}

// Credentials lists the credentials the agent holds, after the id after.
func (s *Service) Credentials(ctx context.Context, after string, limit int) ([]Credential, error) {
	return list(ctx, s.st, KindCredential, after, limit, nil, func(c *Credential) Credential { return *c })
}

// Credential returns one held credential.
func (s *Service) Credential(ctx context.Context, id string) (Credential, error) {
	var c Credential
	if err := s.st.get(ctx, KindCredential, id, &c); err != nil {
		if isNotFound(err) {
			return Credential{}, notFound("credential", id)
		}
		return Credential{}, err
	}
	return c, nil
}

// errNotChallenge is returned by CheckChallengeType.
var errNotChallenge = errors.New("not a Prove Control verificationchallenge")

// CheckChallengeType refuses messages other than a verificationchallenge,
// for the entry points that take only challenges (one-time links, the IP
// well-known path, imports).
func CheckChallengeType(m *agent.Message) error {
	if m == nil || m.Type != VerificationChallengeType {
		return agent.Wrap(agent.CodeMsg, errNotChallenge, "only a Prove Control verificationchallenge is taken here")
	}
	return nil
}

// HeldCredential is cred as the credential store keeps it: a W3C VC-JWT,
// under the same id, received when Prove Control received it.
func HeldCredential(cred Credential) *aip.Credential {
	return &aip.Credential{ID: cred.ID, Format: aip.FormatW3C, CredentialJSON: cred.JWT, Created: cred.Received}
}
