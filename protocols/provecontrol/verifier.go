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
	ch, msg, err := s.createChallenge(ctx, challengeSpec{verifier: r.To, user: r.From, t: r.VerificationType, subject: r.Subject, requestID: r.ID})
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
	ch, msg, err := s.createChallenge(ctx, challengeSpec{verifier: s.cfg.Identity.DID(), user: user, t: t, subject: subject})
	if err != nil {
		return ChallengeView{}, err
	}
	if ch.Channel == ChannelDIDComm {
		if err := s.cfg.Messenger.Send(ctx, msg); err != nil {
			s.undelivered(ctx, ch, err)
			return ChallengeView{}, deliveryError(ch, err)
		}
	}
	return ch.view(s.now()), nil
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

// createChallenge checks the request, stores a pending challenge and
// delivers it, except over ChannelDIDComm, which the caller sends. It
// returns the challenge and its message (which holds the secret: the caller
// only hands it to the messenger).
func (s *Service) createChallenge(ctx context.Context, sp challengeSpec) (*Challenge, agent.Message, error) {
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
	if err := s.storePending(ctx, ch); err != nil {
		return nil, agent.Message{}, err
	}
	if ch.Channel != ChannelDIDComm {
		if err := s.deliver(ctx, ch, msg); err != nil {
			s.undelivered(ctx, ch, err)
			return nil, agent.Message{}, deliveryError(ch, err)
		}
	}
	s.log.InfoContext(ctx, "challenge issued", "challenge", ch.ID, "user", ch.User, "type", ch.VerificationType,
		"channel", ch.Channel, "expires", ch.Expires)
	return ch, msg, nil
}

// storePending checks the pending limits and stores ch, atomically with
// respect to other creations.
func (s *Service) storePending(ctx context.Context, ch *Challenge) error {
	v := s.cfg.Verifier
	s.createMu.Lock()
	defer s.createMu.Unlock()
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
	if err := s.st.put(ctx, KindChallenge, ch.ID, ch); err != nil {
		return agent.Wrap(agent.CodeMe, err, "could not store the challenge")
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

// deliver hands the challenge to its channel.
func (s *Service) deliver(ctx context.Context, ch *Challenge, msg agent.Message) error {
	c := s.cfg.Channels
	switch ch.VerificationType {
	case Email:
		return c.Email.SendChallenge(ctx, msg, ch.Subject)
	case DID:
		packed, endpoint, err := s.cfg.Messenger.Pack(ctx, msg, ch.Subject)
		if err != nil {
			return err
		}
		return s.cfg.Outbox.Enqueue(ctx, &agent.OutboundMessage{
			ID: agent.NewID(), To: ch.Subject, Endpoint: endpoint, MediaType: agent.MediaTypeEncrypted,
			MessageType: msg.Type, Payload: packed,
		})
	case IP:
		return s.cfg.Messenger.SendTo(ctx, msg, ChallengeURL(ch.Subject))
	case Tel, Discord, Address:
		packed, err := s.cfg.Messenger.Encrypt(ctx, msg, ch.User)
		if err != nil {
			return err
		}
		link, err := s.newLink(ctx, ch, packed)
		if err != nil {
			return err
		}
		switch ch.VerificationType {
		case Tel:
			return c.SMS.SendSMS(ctx, ch.Subject, s.linkText(link, ch, 0))
		case Discord:
			return c.Discord.SendDM(ctx, ch.Subject, s.linkText(link, ch, 1))
		}
		return s.newLetter(ctx, ch, link)
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

// undelivered marks ch undelivered after a delivery failure.
func (s *Service) undelivered(ctx context.Context, ch *Challenge, cause error) {
	s.log.WarnContext(ctx, "challenge could not be delivered", "challenge", ch.ID, "type", ch.VerificationType, "channel", ch.Channel, "err", cause)
	unlock := s.locks.lock(ch.ID)
	defer unlock()
	reason := "delivery failed: " + clip(agent.ErrorComment(cause), 200)
	var e *agent.Error
	if !errors.As(cause, &e) {
		reason = "delivery failed: " + clip(cause.Error(), 200)
	}
	if err := ch.moveTo(StateUndelivered, s.now(), reason); err == nil {
		if err := s.st.put(ctx, KindChallenge, ch.ID, ch); err != nil {
			s.log.ErrorContext(ctx, "could not record an undelivered challenge", "challenge", ch.ID, "err", err)
		}
	}
	_ = s.cfg.Records.Delete(ctx, KindLetter, ch.ID)
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
// recorded verification. Every failure is a problem report of its own code
// and confirms nothing; only a wrong proof (or a missing DNS record) from
// the challenged user counts as an attempt.
func (s *Service) handleProve(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	p, err := ParseProve(in.Message)
	if err != nil {
		return nil, err
	}
	if !authenticated(in) {
		return nil, agent.Errorf(CodeUnauthenticated, "a prove must be authenticated (authcrypt or signed by from)")
	}
	unlock := s.locks.lock(p.ThID)
	defer unlock()
	var ch Challenge
	if err := s.st.get(ctx, KindChallenge, p.ThID, &ch); err != nil {
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
			if err := s.st.put(ctx, KindChallenge, ch.ID, &ch); err != nil {
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
		return nil, s.failAttempt(ctx, &ch, now, CodeWrongProof, "the proof does not match the challenge")
	}
	if ch.VerificationType == Domain {
		if err := s.checkTXT(ctx, &ch, p.Proof); err != nil {
			if agent.ErrorCode(err) == CodeDNSRecord {
				return nil, s.failAttempt(ctx, &ch, now, CodeDNSRecord, agent.ErrorComment(err))
			}
			return nil, err
		}
	}
	return s.confirm(ctx, &ch, now)
}

// failAttempt counts a failed attempt, failing the challenge on the last.
func (s *Service) failAttempt(ctx context.Context, ch *Challenge, now time.Time, code, what string) error {
	ch.Attempts++
	ch.Updated = now
	left := ch.MaxAttempts - ch.Attempts
	if left <= 0 {
		_ = ch.moveTo(StateFailed, now, "attempts exhausted")
	}
	if err := s.st.put(ctx, KindChallenge, ch.ID, ch); err != nil {
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

// confirm issues the credential, records the verification, moves the
// challenge to confirmed and returns the confirmverification.
func (s *Service) confirm(ctx context.Context, ch *Challenge, now time.Time) ([]agent.Message, error) {
	signer, err := s.signingKey(ctx, ch.Verifier)
	if err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	jwt, claims, err := IssueCredential(signer, ch.Verifier, ch.User, ch.VerificationType, ch.Subject, now, s.cfg.Verifier.CredentialValidity)
	if err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	cv := ConfirmVerification{To: ch.User, From: ch.Verifier, ThID: ch.ID, VerificationType: ch.VerificationType,
		Subject: ch.Subject, Attachments: []agent.Attachment{credentialAttachment(jwt)}}
	msg, err := cv.Message()
	if err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	credID := strings.TrimPrefix(claims.Jti, "urn:uuid:")
	ver := Verification{ID: credID, ChallengeID: ch.ID, Verifier: ch.Verifier, User: ch.User,
		VerificationType: ch.VerificationType, Subject: ch.Subject, Confirmed: now, Expires: time.Unix(claims.Exp, 0).UTC(), Credential: jwt}
	if err := ch.moveTo(StateConfirmed, now, ""); err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "internal error")
	}
	ch.CredentialID = credID
	if err := s.st.put(ctx, KindVerification, ver.ID, &ver); err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "could not record the verification")
	}
	if err := s.st.put(ctx, KindChallenge, ch.ID, ch); err != nil {
		_ = s.cfg.Records.Delete(ctx, KindVerification, ver.ID)
		return nil, agent.Wrap(agent.CodeMe, err, "could not record the verification")
	}
	s.log.InfoContext(ctx, "verification confirmed", "challenge", ch.ID, "user", ch.User, "type", ch.VerificationType, "credential", credID)
	return []agent.Message{msg}, nil
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
		unlock := s.locks.lock(id)
		var c Challenge
		if err := s.st.get(ctx, KindChallenge, id, &c); err == nil && c.State == StatePending && !now.Before(c.Expires) {
			if c.moveTo(StateExpired, now, "expired before it was proved") == nil && s.st.put(ctx, KindChallenge, id, &c) == nil {
				changed++
			}
		}
		unlock()
	}
	for _, id := range drop {
		if s.cfg.Records.Delete(ctx, KindChallenge, id) == nil {
			changed++
		}
		_ = s.cfg.Records.Delete(ctx, KindLetter, id)
	}
	n, err := s.sweepLinks(ctx, now)
	return changed + n, err
}
