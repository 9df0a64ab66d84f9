package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/protocols/provecontrol"
	"github.com/agentd/agentd/protocols/provecontrol/channels"
	"github.com/agentd/agentd/transport/email"
	httptransport "github.com/agentd/agentd/transport/http"
)

// proveControlParts is the Prove Control protocol as the daemon runs it:
// the service and the intake of challenges that come outside the DIDComm
// endpoint.
type proveControlParts struct {
	service *provecontrol.Service
	intake  *provecontrol.Intake
}

// buildProveControl sets up Prove Control from the provecontrol section:
// the channels that are configured (mail when the agent sends mail, SMS,
// Discord, letters), the DNS server for Domain verification, and the
// protocol (which declares the signing of its confirmations itself).
func buildProveControl(cfg config.Config, identity *agent.Identity, messenger *agent.Messenger,
	store agent.Store, resolver did.Resolver, router *agent.Router, waiters *agent.Waiters, held provecontrol.HeldCredentials, plog, log *slog.Logger) (*proveControlParts, error) {
	pc := cfg.ProveControl
	ch, err := proveControlChannels(cfg, messenger)
	if err != nil {
		return nil, err
	}
	v := pc.Verifier
	var types []provecontrol.VerificationType
	for _, t := range v.Types {
		types = append(types, provecontrol.VerificationType(t))
	}
	linkBase := v.LinkBaseURL
	if linkBase == "" {
		u, err := url.Parse(cfg.Endpoint())
		if err != nil {
			return nil, fmt.Errorf("provecontrol.verifier.link_base_url: cannot derive it from the endpoint: %w", err)
		}
		linkBase = u.Scheme + "://" + u.Host
	}
	svc := provecontrol.New(provecontrol.Config{
		Identity: identity, Store: store, Messenger: messenger, Resolver: resolver,
		Waiters: waiters, Logger: plog, Channels: ch, Held: held,
		Verifier: provecontrol.VerifierConfig{
			Enabled: v.Enabled, Types: types, ChallengeTTL: v.ChallengeTTL, MaxAttempts: v.MaxAttempts,
			CredentialValidity: v.CredentialValidity, MaxPendingPerUser: v.MaxPendingPerUser,
			MaxPendingPerSubject: v.MaxPendingPerSubject, LinkBaseURL: linkBase, AllowPrivateIPs: v.AllowPrivateIPs,
			Retention: v.Retention, Name: v.Name,
		},
	})
	router.Register(svc.Protocol())
	if v.Enabled {
		log.Info("prove control verifier", "offers", svc.Offered(), "links", linkBase)
	}
	intake := provecontrol.NewIntake(provecontrol.IntakeConfig{Service: svc, Inbound: router,
		UserAgent: "agentd/" + Version, ExtractMail: email.PackedMessages})
	return &proveControlParts{service: svc, intake: intake}, nil
}

// proveControlChannels are the channels challenges are sent on: mail when
// the agent sends mail (email.address), and those configured.
func proveControlChannels(cfg config.Config, messenger *agent.Messenger) (provecontrol.Channels, error) {
	pc := cfg.ProveControl
	ch := provecontrol.Channels{DNS: channels.NewTXTResolver(pc.DNSServer)}
	if cfg.Email.Address != "" {
		ch.Email = mailChannel{messenger}
	}
	if pc.SMS.AccountSID != "" {
		token, err := readSecret(pc.SMS.AuthToken, pc.SMS.AuthTokenFile, "provecontrol.sms.auth_token_file")
		if err != nil {
			return ch, err
		}
		ch.SMS = &channels.TwilioSMS{BaseURL: pc.SMS.BaseURL, AccountSID: pc.SMS.AccountSID, AuthToken: token, From: pc.SMS.From}
	}
	if pc.Discord.BotToken != "" || pc.Discord.BotTokenFile != "" {
		token, err := readSecret(pc.Discord.BotToken, pc.Discord.BotTokenFile, "provecontrol.discord.bot_token_file")
		if err != nil {
			return ch, err
		}
		ch.Discord = &channels.Discord{BaseURL: pc.Discord.BaseURL, BotToken: token}
	}
	if pc.Verifier.Letters {
		ch.Letters = channels.Letter{}
	}
	return ch, nil
}

// proveControlAdmin returns the Prove Control admin API.
func (d *Daemon) proveControlAdmin() httptransport.ProveControlAdmin {
	if d.provecontrol == nil {
		return nil
	}
	return &pcAdmin{svc: d.provecontrol.service, intake: d.provecontrol.intake}
}

// challengeEndpoints returns the public Prove Control routes.
func (d *Daemon) challengeEndpoints() httptransport.ChallengeEndpoints {
	if d.provecontrol == nil {
		return nil
	}
	return &pcAdmin{svc: d.provecontrol.service, intake: d.provecontrol.intake}
}

// mailChannel sends Email challenges through the mail transport: encrypted
// to the user, delivered to the address being verified.
type mailChannel struct{ m *agent.Messenger }

// MailChallenge encrypts msg for its to, for the mailbox address.
func (c mailChannel) MailChallenge(ctx context.Context, msg agent.Message, address string) ([]*agent.OutboundMessage, error) {
	return c.m.OutboundTo(ctx, msg, "mailto:"+address)
}

// pcAdmin implements the Prove Control admin API and public routes.
type pcAdmin struct {
	svc    *provecontrol.Service
	intake *provecontrol.Intake
}

// StartChallenge challenges a user DID without a request (verifier role).
func (a *pcAdmin) StartChallenge(ctx context.Context, user, t, subject string) (httptransport.Challenge, error) {
	return conv(challengeOut)(a.svc.StartChallenge(ctx, user, provecontrol.VerificationType(t), subject))
}

// Challenges lists the issued challenges, in a state when state is set.
func (a *pcAdmin) Challenges(ctx context.Context, state, after string, limit int) ([]httptransport.Challenge, error) {
	st := provecontrol.ChallengeState(state)
	if state != "" && !st.Valid() {
		return nil, agent.Errorf(agent.CodeMsg, "state must be pending, confirmed, expired, failed or undelivered")
	}
	return convAll(challengeOut)(a.svc.Challenges(ctx, st, after, limit))
}

// Challenge describes one issued challenge.
func (a *pcAdmin) Challenge(ctx context.Context, id string) (httptransport.Challenge, error) {
	return conv(challengeOut)(a.svc.Challenge(ctx, id))
}

// Verifications lists the confirmed verifications.
func (a *pcAdmin) Verifications(ctx context.Context, after string, limit int) ([]httptransport.Verification, error) {
	return convAll(verificationOut)(a.svc.Verifications(ctx, after, limit))
}

// Letters lists the Address letter queue.
func (a *pcAdmin) Letters(ctx context.Context, unsent bool, after string, limit int) ([]httptransport.Letter, error) {
	return convAll(letterOut)(a.svc.Letters(ctx, unsent, after, limit))
}

// LetterPDF returns a letter's PDF.
func (a *pcAdmin) LetterPDF(ctx context.Context, id string) ([]byte, error) {
	return a.svc.LetterPDF(ctx, id)
}

// MarkLetterSent records that a letter was mailed.
func (a *pcAdmin) MarkLetterSent(ctx context.Context, id string) (httptransport.Letter, error) {
	return conv(letterOut)(a.svc.MarkLetterSent(ctx, id))
}

// RequestVerification asks a verifier for a challenge (user role).
func (a *pcAdmin) RequestVerification(ctx context.Context, verifier, t, subject string, wait time.Duration) (httptransport.RequestOutcome, error) {
	return conv(requestOutcomeOut)(a.svc.RequestVerification(ctx, verifier, provecontrol.VerificationType(t), subject, wait))
}

// Requests lists the requests sent.
func (a *pcAdmin) Requests(ctx context.Context, after string, limit int) ([]httptransport.VerificationRequest, error) {
	return convAll(requestOut)(a.svc.Requests(ctx, after, limit))
}

// ReceivedChallenges lists the challenges received.
func (a *pcAdmin) ReceivedChallenges(ctx context.Context, after string, limit int) ([]httptransport.ReceivedChallenge, error) {
	return convAll(receivedOut)(a.svc.ReceivedChallenges(ctx, after, limit))
}

// ReceivedChallenge describes one received challenge.
func (a *pcAdmin) ReceivedChallenge(ctx context.Context, id string) (httptransport.ReceivedChallenge, error) {
	return conv(receivedOut)(a.svc.ReceivedChallenge(ctx, id))
}

// Prove sends the prove for a received challenge.
func (a *pcAdmin) Prove(ctx context.Context, id string, wait time.Duration) (httptransport.ProveOutcome, error) {
	return conv(proveOutcomeOut)(a.svc.Prove(ctx, id, wait))
}

// Credentials lists the credentials held.
func (a *pcAdmin) Credentials(ctx context.Context, after string, limit int) ([]httptransport.Credential, error) {
	return convAll(credentialOut)(a.svc.Credentials(ctx, after, limit))
}

// Credential returns one held credential.
func (a *pcAdmin) Credential(ctx context.Context, id string) (httptransport.Credential, error) {
	return conv(credentialOut)(a.svc.Credential(ctx, id))
}

// ImportChallenge takes a challenge that reached the operator some other
// way: a mail as a whole (.eml) or a packed message pasted as it is.
func (a *pcAdmin) ImportChallenge(ctx context.Context, raw []byte) ([]httptransport.ReceivedChallenge, error) {
	out, err := convAll(receivedOut)(a.intake.Import(ctx, raw))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FetchChallenge fetches the challenge behind a one-time link and takes it.
func (a *pcAdmin) FetchChallenge(ctx context.Context, link string) (httptransport.ReceivedChallenge, error) {
	return conv(receivedOut)(a.intake.Fetch(ctx, link))
}

// FetchLink serves GET /c/{token}. Unknown and used links are the
// protocol's ErrLinkUnknown and ErrLinkGone, whose codes (agent.CodeNotFound,
// agent.CodeGone) the transport answers with 404 and 410.
func (a *pcAdmin) FetchLink(ctx context.Context, token string) ([]byte, string, error) {
	return a.svc.FetchLink(ctx, token)
}

// ReceiveChallenge serves POST /.well-known/provecontrol/challenge.
func (a *pcAdmin) ReceiveChallenge(ctx context.Context, raw []byte) error {
	_, err := a.intake.Receive(ctx, "ip", raw)
	return err
}
