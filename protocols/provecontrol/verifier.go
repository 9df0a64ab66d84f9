package provecontrol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
)

// authenticated reports whether the router verified that from sent the
// message (authcrypt from its key, or signed by it).
func authenticated(in *agent.Inbound) bool {
	return in.Message.From != "" && in.Envelope.Authenticated
}

// handleRequest answers a requestverification with a challenge delivered
// over the channel of its verification type. A Domain challenge is the
// reply itself (on the return route when asked for, else to the user's
// endpoint); the others travel their own way and the request gets no reply.
// The challenge record and what carries it (the outbox message, the
// one-time link, the letter) are staged in the request's unit of work.
func (s *Service) handleRequest(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	if !s.cfg.Verifier.Enabled {
		return nil, agent.Errorf(CodeTypeUnavailable, "this agent is not a Prove Control verifier")
	}
	r, err := ParseRequestVerification(in.Message)
	if err != nil {
		return nil, err
	}
	if !authenticated(in) {
		return nil, agent.Errorf(CodeUnauthenticated, "a requestverification must be authenticated (authcrypt or signed by from)")
	}
	if !s.cfg.Identity.Owns(r.To) {
		return nil, agent.Errorf(agent.CodeNotForUs, "the request is not addressed to this verifier")
	}
	ch, msg, err := s.createChallenge(ctx, in.Work, challengeSpec{verifier: r.To, user: r.From, t: r.VerificationType, subject: r.Subject, requestID: r.ID})
	if err != nil {
		return nil, err
	}
	if ch.Channel == ChannelDIDComm {
		return []agent.Message{msg}, nil
	}
	return nil, nil
}

// StartChallenge is the operator starting a verification without a
// request: it challenges the DID user about subject of type t, from the
// agent's DID, and returns the new challenge.
func (s *Service) StartChallenge(ctx context.Context, user string, t VerificationType, subject string) (ChallengeView, error) {
	if !s.cfg.Verifier.Enabled {
		return ChallengeView{}, agent.Errorf(CodeTypeUnavailable, "the verifier role is disabled (provecontrol.verifier.enabled)")
	}
	if _, _, err := did.ParseDID(user); err != nil {
		return ChallengeView{}, agent.Errorf(agent.CodeMsg, "user must be a DID: %v", err)
	}
	if !t.Valid() {
		_, err := ParseVerificationType(string(t))
		return ChallengeView{}, err
	}
	if s.cfg.Identity.Owns(user) {
		return ChallengeView{}, agent.Errorf(agent.CodeMsg, "user is one of this agent's own DIDs")
	}
	var ch *Challenge
	var failed error // a delivery failure, recorded with the challenge
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		var msg agent.Message
		var err error
		ch, msg, err = s.createChallenge(ctx, w, challengeSpec{verifier: s.cfg.Identity.DID(), user: user, t: t, subject: subject})
		failed = nil
		switch {
		case agent.ErrorCode(err) == CodeDelivery:
			failed = err
			return nil
		case err != nil:
			return err
		case ch.Channel == ChannelDIDComm:
			outs, err := s.cfg.Messenger.Outbound(ctx, msg)
			if err != nil {
				failed = s.undelivered(ctx, w, ch, err)
				return nil
			}
			w.Enqueue(outs...)
		}
		return nil
	})
	if err != nil {
		return ChallengeView{}, storeError(err, "could not store the challenge")
	}
	if failed != nil {
		return ChallengeView{}, failed
	}
	return ch.view(s.now()), nil
}

// storeError is the error for a failed unit of work: the cause, when it is
// already an *agent.Error, else an internal error saying what failed.
func storeError(err error, what string) error {
	var e *agent.Error
	if errors.As(err, &e) {
		return err
	}
	return agent.Wrap(agent.CodeMe, err, what)
}

type challengeSpec struct {
	verifier, user     string
	t                  VerificationType
	subject, requestID string
}

// channelFor names the channel a verification type uses.
func channelFor(t VerificationType) string {
	switch t {
	case Email:
		return ChannelMail
	case Domain:
		return ChannelDIDComm
	case DID:
		return ChannelSubject
	case Tel:
		return ChannelSMS
	case Discord:
		return ChannelDiscord
	case IP:
		return ChannelIP
	case Address:
		return ChannelLetter
	}
	return ""
}

// createChallenge checks the request and stages in w a pending challenge
// and its delivery, except over ChannelDIDComm, which the caller sends. It
// returns the challenge and its message (which holds the secret: the caller
// only hands it to the messenger). A channel that cannot deliver (an SMS or
// Discord API that refuses) leaves the challenge staged as undelivered and
// returns a CodeDelivery error: commit w and pass the error on.
func (s *Service) createChallenge(ctx context.Context, w *agent.Work, sp challengeSpec) (*Challenge, agent.Message, error) {
	v := s.cfg.Verifier
	if !s.Offers(sp.t) {
		return nil, agent.Message{}, agent.Errorf(CodeTypeUnavailable, "this verifier does not offer %s verification; it offers %s", sp.t, typeList(s.Offered()))
	}
	subject, err := NormalizeSubject(sp.t, sp.subject, SubjectOptions{AllowPrivateIPs: v.AllowPrivateIPs})
	if err != nil {
		return nil, agent.Message{}, err
	}
	if sp.t == DID {
		if err := s.checkSubjectDID(ctx, subject, sp.user); err != nil {
			return nil, agent.Message{}, err
		}
	}
	now := s.now()
	secret := NewSecret()
	vc := VerificationChallenge{
		ID: agent.NewID(), To: sp.user, From: sp.verifier, ThID: sp.requestID,
		VerificationType: sp.t, Subject: subject, Secret: secret,
	}
	msg, err := vc.Message()
	if err != nil {
		return nil, agent.Message{}, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	ch := &Challenge{
		ID: vc.ID, Verifier: sp.verifier, User: sp.user, VerificationType: sp.t, Subject: subject, RequestID: sp.requestID,
		State: StatePending, Created: now, Expires: now.Add(v.ChallengeTTL), Updated: now,
		MaxAttempts: v.MaxAttempts, Channel: channelFor(sp.t), ProofDigest: digest(vc.Proof()),
	}
	msg.ExpiresTime = ch.Expires.Unix()
	if err := s.checkPending(ctx, ch); err != nil {
		return nil, agent.Message{}, err
	}
	if err := w.PutJSON(KindChallenge, ch.ID, ch); err != nil {
		return nil, agent.Message{}, agent.Wrap(agent.CodeMe, err, "could not store the challenge")
	}
	if ch.Channel != ChannelDIDComm {
		if err := s.deliver(ctx, w, ch, msg); err != nil {
			return ch, agent.Message{}, s.undelivered(ctx, w, ch, err)
		}
	}
	s.log.InfoContext(ctx, "challenge issued", "challenge", ch.ID, "user", ch.User, "type", ch.VerificationType,
		"channel", ch.Channel, "expires", ch.Expires)
	return ch, msg, nil
}

// checkPending checks the limits of pending challenges per user and per
// subject. (Two requests handled at the very same moment may both pass: the
// limits bound floods, they are not exact.)
func (s *Service) checkPending(ctx context.Context, ch *Challenge) error {
	v := s.cfg.Verifier
	byUser, bySubject := 0, 0
	err := each(ctx, s.st, KindChallenge, "", func(_ string, c *Challenge) (bool, error) {
		if c.State == StatePending && s.now().Before(c.Expires) {
			if c.User == ch.User {
				byUser++
			}
			if c.VerificationType == ch.VerificationType && c.Subject == ch.Subject {
				bySubject++
			}
		}
		return true, nil
	})
	if err != nil {
		return agent.Wrap(agent.CodeMe, err, "internal error")
	}
	if byUser >= v.MaxPendingPerUser {
		return agent.Errorf(CodeTooManyPending, "%s already has %d pending challenges; prove or let them expire first", ch.User, byUser)
	}
	if bySubject >= v.MaxPendingPerSubject {
		return agent.Errorf(CodeTooManyPending, "this subject already has %d pending challenges; prove or let them expire first", bySubject)
	}
	return nil
}

// checkSubjectDID checks that the subject DID of a DID challenge can be
// challenged: another DID than the user, with key agreement keys and a
// DIDComm endpoint.
func (s *Service) checkSubjectDID(ctx context.Context, subject, user string) error {
	if subject == user {
		return agent.Errorf(CodeSubject, "the subject DID is the user's own DID: name another DID")
	}
	doc, err := s.cfg.Resolver.Resolve(ctx, subject)
	if err != nil {
		return agent.Wrap(CodeSubject, err, "the subject DID cannot be resolved")
	}
	if ka, err := doc.KeyAgreement(); err != nil || len(ka) == 0 {
		return agent.Errorf(CodeSubject, "the subject DID has no key agreement key to encrypt the challenge to")
	}
	if len(doc.DIDCommServices()) == 0 {
		return agent.Errorf(CodeSubject, "the subject DID has no DIDComm endpoint to send the challenge to")
	}
	return nil
}

// deliver stages the challenge's delivery in w: the outbox message (Email,
// DID, IP) or the one-time link (and the letter, for Address). Tel and
// Discord send their text now, before the commit: an external API cannot
// take part in the unit of work, and a text whose link was never committed
// only leads to "unknown link".
func (s *Service) deliver(ctx context.Context, w *agent.Work, ch *Challenge, msg agent.Message) error {
	c := s.cfg.Channels
	switch ch.VerificationType {
	case Email:
		outs, err := c.Email.MailChallenge(ctx, msg, ch.Subject)
		if err != nil {
			return err
		}
		w.Enqueue(outs...)
		return nil
	case DID:
		packed, endpoint, err := s.cfg.Messenger.Pack(ctx, msg, ch.Subject)
		if err != nil {
			return err
		}
		w.Enqueue(&agent.OutboundMessage{
			ID: agent.NewID(), To: ch.Subject, Endpoint: endpoint, MediaType: agent.MediaTypeEncrypted,
			MessageType: msg.Type, Payload: packed,
		})
		return nil
	case IP:
		outs, err := s.cfg.Messenger.OutboundTo(ctx, msg, ChallengeURL(ch.Subject))
		if err != nil {
			return err
		}
		w.Enqueue(outs...)
		return nil
	case Tel, Discord, Address:
		packed, err := s.cfg.Messenger.Encrypt(ctx, msg, ch.User)
		if err != nil {
			return err
		}
		link, err := s.newLink(w, ch, packed)
		if err != nil {
			return err
		}
		switch ch.VerificationType {
		case Tel:
			return c.SMS.SendSMS(ctx, ch.Subject, s.linkText(link, ch, 0))
		case Discord:
			return c.Discord.SendDM(ctx, ch.Subject, s.linkText(link, ch, 1))
		}
		return s.newLetter(w, ch, link)
	}
	return fmt.Errorf("no channel for %s", ch.VerificationType)
}

// linkText is the short message that carries a one-time link: style 0 for
// SMS (short), 1 for Discord (the link in <> so that Discord shows no
// preview, which would fetch it).
func (s *Service) linkText(link string, ch *Challenge, style int) string {
	v := s.cfg.Verifier
	until := ch.Expires.UTC().Format("2006-01-02 15:04 MST")
	if style == 0 {
		return fmt.Sprintf("%s verification link for your wallet, valid once until %s: %s", v.Name, until, link)
	}
	return fmt.Sprintf("**%s verification**\nA DIDComm wallet asked to prove that it controls this Discord account. "+
		"If that was you, open this one-time link in your wallet before %s:\n<%s>\nIf not, ignore this message.", v.Name, until, link)
}

// undelivered stages ch as undelivered after a delivery failure (and drops
// its letter) and returns the CodeDelivery error that says so.
func (s *Service) undelivered(ctx context.Context, w *agent.Work, ch *Challenge, cause error) error {
	s.log.WarnContext(ctx, "challenge could not be delivered", "challenge", ch.ID, "type", ch.VerificationType, "channel", ch.Channel, "err", cause)
	reason := "delivery failed: " + clip(agent.ErrorComment(cause), 200)
	var e *agent.Error
	if !errors.As(cause, &e) {
		reason = "delivery failed: " + clip(cause.Error(), 200)
	}
	if err := ch.moveTo(StateUndelivered, s.now(), reason); err == nil {
		if err := w.PutJSON(KindChallenge, ch.ID, ch); err != nil {
			s.log.ErrorContext(ctx, "could not record an undelivered challenge", "challenge", ch.ID, "err", err)
		}
	}
	w.Delete(KindLetter, ch.ID)
	return deliveryError(ch, cause)
}

func deliveryError(ch *Challenge, err error) error {
	return agent.Wrap(CodeDelivery, err, fmt.Sprintf("the %s challenge could not be delivered (%s)", ch.VerificationType, ch.Channel))
}

func typeList(ts []VerificationType) string {
	if len(ts) == 0 {
		return "nothing"
	}
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// handleProve checks a prove against its challenge and, when it holds,
// confirms: a signed confirmverification with the credential, and a
// recorded verification, committed together in the prove's unit of work.
// Every failure is a problem report of its own code and confirms nothing;
// only a wrong proof (or a missing DNS record) from the challenged user
// counts as an attempt. A prove of a challenge the same user already
// confirmed with the right proof gets the stored confirmation again (the
// first answer may have been lost), not an error.
//
// The challenge is read through the work: two proves of one challenge at
// the same time cannot both confirm it, since the second one's commit
// conflicts and it runs again against the confirmed challenge.
func (s *Service) handleProve(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	p, err := ParseProve(in.Message)
	if err != nil {
		return nil, err
	}
	if !authenticated(in) {
		return nil, agent.Errorf(CodeUnauthenticated, "a prove must be authenticated (authcrypt or signed by from)")
	}
	w := in.Work
	var ch Challenge
	if err := getIn(ctx, w, KindChallenge, p.ThID, &ch); err != nil {
		if isNotFound(err) {
			return nil, agent.Errorf(CodeUnknownChallenge, "no challenge %s", clip(p.ThID, 60))
		}
		return nil, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	if p.From != ch.User {
		s.log.WarnContext(ctx, "prove from another DID than the challenged user", "challenge", ch.ID, "from", p.From)
		return nil, agent.Errorf(CodeWrongUser, "challenge %s was not issued to %s", ch.ID, clip(p.From, 80))
	}
	now := s.now()
	switch ch.State {
	case StateConfirmed:
		if p.VerificationType == ch.VerificationType && p.Subject == ch.Subject && proofMatches(p.Proof, ch.ProofDigest) {
			return s.confirmAgain(ctx, w, &ch)
		}
		return nil, agent.Errorf(CodeAlreadyConfirmed, "challenge %s was already confirmed; it succeeds once", ch.ID)
	case StateExpired:
		return nil, agent.Errorf(CodeExpired, "challenge %s expired at %s", ch.ID, ch.Expires.UTC().Format(time.RFC3339))
	case StateFailed:
		return nil, agent.Errorf(CodeAttemptsExhausted, "challenge %s failed: no attempts left", ch.ID)
	case StateUndelivered:
		return nil, agent.Errorf(CodeUnknownChallenge, "challenge %s was never delivered", ch.ID)
	}
	if !now.Before(ch.Expires) {
		if err := ch.moveTo(StateExpired, now, "expired before it was proved"); err == nil {
			if err := w.PutJSON(KindChallenge, ch.ID, &ch); err != nil {
				return nil, agent.Wrap(agent.CodeMe, err, "internal error")
			}
		}
		return nil, agent.Errorf(CodeExpired, "challenge %s expired at %s", ch.ID, ch.Expires.UTC().Format(time.RFC3339))
	}
	if p.VerificationType != ch.VerificationType {
		return nil, agent.Errorf(CodeTypeMismatch, "challenge %s is of type %s, not %s", ch.ID, ch.VerificationType, p.VerificationType)
	}
	if p.Subject != ch.Subject {
		return nil, agent.Errorf(CodeSubjectMismatch, "the subject is not the challenge's subject")
	}
	if !proofMatches(p.Proof, ch.ProofDigest) {
		return nil, s.failAttempt(ctx, w, &ch, now, CodeWrongProof, "the proof does not match the challenge")
	}
	if ch.VerificationType == Domain {
		if err := s.checkTXT(ctx, &ch, p.Proof); err != nil {
			if agent.ErrorCode(err) == CodeDNSRecord {
				return nil, s.failAttempt(ctx, w, &ch, now, CodeDNSRecord, agent.ErrorComment(err))
			}
			return nil, err
		}
	}
	return s.confirm(ctx, w, &ch, now)
}

// failAttempt stages a failed attempt, failing the challenge on the last;
// the count commits with the problem report that the returned error
// becomes.
func (s *Service) failAttempt(ctx context.Context, w *agent.Work, ch *Challenge, now time.Time, code, what string) error {
	ch.Attempts++
	ch.Updated = now
	left := ch.MaxAttempts - ch.Attempts
	if left <= 0 {
		_ = ch.moveTo(StateFailed, now, "attempts exhausted")
	}
	if err := w.PutJSON(KindChallenge, ch.ID, ch); err != nil {
		return agent.Wrap(agent.CodeMe, err, "internal error")
	}
	s.log.InfoContext(ctx, "prove refused", "challenge", ch.ID, "code", code, "attempts", ch.Attempts, "state", ch.State)
	if left <= 0 {
		return agent.Errorf(code, "%s; no attempts left: the challenge failed", what)
	}
	return agent.Errorf(code, "%s; %d attempts left", what, left)
}

// checkTXT looks up the TXT record "<challenge id>.<domain>" and checks that
// one of its values is the proof.
func (s *Service) checkTXT(ctx context.Context, ch *Challenge, proof string) error {
	name := DomainRecord(ch.ID, ch.Subject, "").Name
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	values, err := s.dns.LookupTXT(lctx, name)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return agent.Errorf(CodeDNSRecord, "no TXT record %s", name)
		}
		s.log.WarnContext(ctx, "TXT lookup failed", "name", name, "err", err)
		return agent.Errorf(CodeDNSLookup, "the TXT lookup of %s failed; try again later", name)
	}
	for _, v := range values {
		if strings.TrimSpace(v) == proof {
			return nil
		}
	}
	return agent.Errorf(CodeDNSRecord, "the TXT record %s does not hold the proof", name)
}

// confirm issues the credential and stages the verification record and the
// challenge, moved to confirmed, in w; it returns the confirmverification,
// which the router packs and commits in the same unit of work.
func (s *Service) confirm(ctx context.Context, w *agent.Work, ch *Challenge, now time.Time) ([]agent.Message, error) {
	signer, err := s.signingKey(ctx, ch.Verifier)
	if err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	jwt, claims, err := IssueCredential(signer, ch.Verifier, ch.User, ch.VerificationType, ch.Subject, now, s.cfg.Verifier.CredentialValidity)
	if err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	msg, err := confirmation(ch, jwt)
	if err != nil {
		return nil, err
	}
	credID := strings.TrimPrefix(claims.Jti, "urn:uuid:")
	ver := Verification{ID: credID, ChallengeID: ch.ID, Verifier: ch.Verifier, User: ch.User,
		VerificationType: ch.VerificationType, Subject: ch.Subject, Confirmed: now, Expires: time.Unix(claims.Exp, 0).UTC(), Credential: jwt}
	if err := ch.moveTo(StateConfirmed, now, ""); err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	ch.CredentialID = credID
	if err := w.PutJSON(KindVerification, ver.ID, &ver); err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "could not record the verification")
	}
	if err := w.PutJSON(KindChallenge, ch.ID, ch); err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "could not record the verification")
	}
	w.AfterCommit(func() {
		s.log.InfoContext(ctx, "verification confirmed", "challenge", ch.ID, "user", ch.User, "type", ch.VerificationType, "credential", credID)
	})
	return []agent.Message{msg}, nil
}

// confirmAgain answers a repeated prove of a confirmed challenge with the
// confirmation of the credential issued then.
func (s *Service) confirmAgain(ctx context.Context, w *agent.Work, ch *Challenge) ([]agent.Message, error) {
	var ver Verification
	if err := getIn(ctx, w, KindVerification, ch.CredentialID, &ver); err != nil {
		if isNotFound(err) {
			// Past the retention, or deleted by the operator.
			return nil, agent.Errorf(CodeAlreadyConfirmed, "challenge %s was already confirmed; it succeeds once", ch.ID)
		}
		return nil, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	msg, err := confirmation(ch, ver.Credential)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "confirmation sent again for a repeated prove", "challenge", ch.ID, "credential", ver.ID)
	return []agent.Message{msg}, nil
}

// confirmation is the confirmverification of ch carrying the credential jwt.
func confirmation(ch *Challenge, jwt string) (agent.Message, error) {
	cv := ConfirmVerification{To: ch.User, From: ch.Verifier, ThID: ch.ID, VerificationType: ch.VerificationType,
		Subject: ch.Subject, Attachments: []agent.Attachment{credentialAttachment(jwt)}}
	msg, err := cv.Message()
	if err != nil {
		return agent.Message{}, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	return msg, nil
}

// signingKey returns a private authentication key of our DID d.
func (s *Service) signingKey(ctx context.Context, d string) (keys.PrivateKey, error) {
	doc, err := s.cfg.Resolver.Resolve(ctx, d)
	if err != nil {
		return keys.PrivateKey{}, err
	}
	auth, err := doc.Authentication()
	if err != nil {
		return keys.PrivateKey{}, err
	}
	for _, k := range auth {
		if priv, err := s.cfg.Identity.PrivateKey(ctx, k.ID); err == nil && priv.Curve.JWSAlg() != "" {
			return priv, nil
		}
	}
	return keys.PrivateKey{}, fmt.Errorf("no authentication key of %s is held", d)
}

// Challenges lists the verifier's challenges after the id after, those in
// state (effective, see ChallengeView) when state is not empty.
func (s *Service) Challenges(ctx context.Context, state ChallengeState, after string, limit int) ([]ChallengeView, error) {
	now := s.now()
	return list(ctx, s.st, KindChallenge, after, limit,
		func(c *Challenge) bool { return state == "" || c.view(now).State == state },
		func(c *Challenge) ChallengeView { return c.view(now) })
}

// Challenge returns one of the verifier's challenges.
func (s *Service) Challenge(ctx context.Context, id string) (ChallengeView, error) {
	var c Challenge
	if err := s.st.get(ctx, KindChallenge, id, &c); err != nil {
		if isNotFound(err) {
			return ChallengeView{}, notFound("challenge", id)
		}
		return ChallengeView{}, err
	}
	return c.view(s.now()), nil
}

// Verifications lists the confirmed verifications after the id after.
func (s *Service) Verifications(ctx context.Context, after string, limit int) ([]Verification, error) {
	return list(ctx, s.st, KindVerification, after, limit, nil, func(v *Verification) Verification { return *v })
}

// Sweep moves pending challenges past their expiry to expired, drops the
// payload of expired one-time links, and deletes challenges, links and
// letters that have been final for longer than the retention. It returns
// how many records it changed.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.now()
	retention := s.cfg.Verifier.Retention
	changed := 0
	var expire, drop []string
	err := each(ctx, s.st, KindChallenge, "", func(id string, c *Challenge) (bool, error) {
		switch {
		case c.State == StatePending && !now.Before(c.Expires):
			expire = append(expire, id)
		case c.State.Final() && now.Sub(c.Updated) > retention:
			drop = append(drop, id)
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	for _, id := range expire {
		moved := false
		err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
			var c Challenge
			moved = false
			if err := getIn(ctx, w, KindChallenge, id, &c); err != nil || c.State != StatePending || now.Before(c.Expires) {
				return nil // proved or gone meanwhile
			}
			if c.moveTo(StateExpired, now, "expired before it was proved") != nil {
				return nil
			}
			moved = true
			return w.PutJSON(KindChallenge, id, &c)
		})
		if err == nil && moved {
			changed++
		}
	}
	for _, id := range drop {
		err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
			w.Delete(KindChallenge, id)
			w.Delete(KindLetter, id)
			return nil
		})
		if err == nil {
			changed++
		}
	}
	n, err := s.sweepLinks(ctx, now)
	return changed + n, err
}
