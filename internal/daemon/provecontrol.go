package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/provecontrol"
	"github.com/agentd/agentd/protocols/provecontrol/channels"
	"github.com/agentd/agentd/transport/email"
	httptransport "github.com/agentd/agentd/transport/http"
)

// proveControlParts is the Prove Control protocol as the daemon runs it.
type proveControlParts struct {
	service *provecontrol.Service
}

// buildProveControl sets up Prove Control from the provecontrol section:
// the channels that are configured (mail when the email transport sends
// mail, SMS, Discord, letters), the DNS server for Domain verification, and
// the messenger's signing of confirmations.
func (d *Daemon) buildProveControl(messenger *agent.Messenger, waiters *agent.Waiters, log *slog.Logger) error {
	pc := d.cfg.ProveControl
	ch := provecontrol.Channels{DNS: channels.NewTXTResolver(pc.DNSServer)}
	if slices.Contains(messenger.Schemes, "mailto") {
		ch.Email = mailChannel{messenger}
	}
	if pc.SMS.AccountSID != "" {
		token, err := readSecret(pc.SMS.AuthToken, pc.SMS.AuthTokenFile, "provecontrol.sms.auth_token_file")
		if err != nil {
			return err
		}
		ch.SMS = &channels.TwilioSMS{BaseURL: pc.SMS.BaseURL, AccountSID: pc.SMS.AccountSID, AuthToken: token, From: pc.SMS.From}
	}
	if pc.Discord.BotToken != "" || pc.Discord.BotTokenFile != "" {
		token, err := readSecret(pc.Discord.BotToken, pc.Discord.BotTokenFile, "provecontrol.discord.bot_token_file")
		if err != nil {
			return err
		}
		ch.Discord = &channels.Discord{BaseURL: pc.Discord.BaseURL, BotToken: token}
	}
	if pc.Verifier.Letters {
		ch.Letters = channels.Letter{}
	}
	v := pc.Verifier
	var types []provecontrol.VerificationType
	for _, t := range v.Types {
		types = append(types, provecontrol.VerificationType(t))
	}
	linkBase := v.LinkBaseURL
	if linkBase == "" {
		u, err := url.Parse(d.cfg.Endpoint())
		if err != nil {
			return fmt.Errorf("provecontrol.verifier.link_base_url: cannot derive it from the endpoint: %w", err)
		}
		linkBase = u.Scheme + "://" + u.Host
	}
	d.provecontrol.service = provecontrol.New(provecontrol.Config{
		Identity: d.identity, Store: d.store, Messenger: messenger, Resolver: d.resolver,
		Waiters: waiters, Logger: log, Channels: ch,
		Verifier: provecontrol.VerifierConfig{
			Enabled: v.Enabled, Types: types, ChallengeTTL: v.ChallengeTTL, MaxAttempts: v.MaxAttempts,
			CredentialValidity: v.CredentialValidity, MaxPendingPerUser: v.MaxPendingPerUser,
			MaxPendingPerSubject: v.MaxPendingPerSubject, LinkBaseURL: linkBase, AllowPrivateIPs: v.AllowPrivateIPs,
			Retention: v.Retention, Name: v.Name,
		},
	})
	d.router.Register(d.provecontrol.service.Protocol())
	if v.Enabled {
		d.log.Info("prove control verifier", "offers", d.provecontrol.service.Offered(), "links", linkBase)
	}
	return nil
}

// readSecret returns a secret given inline (from the environment) or in a
// file (its first line).
func readSecret(inline, file, key string) (string, error) {
	if inline != "" || file == "" {
		return inline, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	s := string(bytes.TrimSpace(bytes.SplitN(b, []byte("\n"), 2)[0]))
	if s == "" {
		return "", fmt.Errorf("%s: the file is empty", key)
	}
	return s, nil
}

// startProveControl runs the sweep of expired challenges in the background.
func (d *Daemon) startProveControl(ctx context.Context) {
	if d.provecontrol.service == nil {
		return
	}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.provecontrol.service.Run(ctx, 10*time.Minute) }()
}

// proveControlAdmin returns the Prove Control admin API.
func (d *Daemon) proveControlAdmin() httptransport.ProveControlAdmin {
	if d.provecontrol.service == nil {
		return nil
	}
	return &pcAdmin{d}
}

// challengeEndpoints returns the public Prove Control routes.
func (d *Daemon) challengeEndpoints() httptransport.ChallengeEndpoints {
	if d.provecontrol.service == nil {
		return nil
	}
	return &pcAdmin{d}
}

// mailChannel sends Email challenges through the mail transport: encrypted
// to the user, delivered to the address being verified.
type mailChannel struct{ m *agent.Messenger }

// MailChallenge encrypts msg for its to, for the mailbox address.
func (c mailChannel) MailChallenge(ctx context.Context, msg agent.Message, address string) ([]*agent.OutboundMessage, error) {
	return c.m.OutboundTo(ctx, msg, "mailto:"+address)
}

// pcAdmin implements the Prove Control admin API and public routes.
type pcAdmin struct{ d *Daemon }

func (a *pcAdmin) svc() *provecontrol.Service { return a.d.provecontrol.service }

// StartChallenge challenges a user DID without a request (verifier role).
func (a *pcAdmin) StartChallenge(ctx context.Context, user, t, subject string) (httptransport.Challenge, error) {
	return conv(challengeOut)(a.svc().StartChallenge(ctx, user, provecontrol.VerificationType(t), subject))
}

// Challenges lists the issued challenges, in a state when state is set.
func (a *pcAdmin) Challenges(ctx context.Context, state, after string, limit int) ([]httptransport.Challenge, error) {
	st := provecontrol.ChallengeState(state)
	if state != "" && !st.Valid() {
		return nil, agent.Errorf(agent.CodeMsg, "state must be pending, confirmed, expired, failed or undelivered")
	}
	return convAll(challengeOut)(a.svc().Challenges(ctx, st, after, limit))
}

// Challenge describes one issued challenge.
func (a *pcAdmin) Challenge(ctx context.Context, id string) (httptransport.Challenge, error) {
	return conv(challengeOut)(a.svc().Challenge(ctx, id))
}

// Verifications lists the confirmed verifications.
func (a *pcAdmin) Verifications(ctx context.Context, after string, limit int) ([]httptransport.Verification, error) {
	return convAll(verificationOut)(a.svc().Verifications(ctx, after, limit))
}

// Letters lists the Address letter queue.
func (a *pcAdmin) Letters(ctx context.Context, unsent bool, after string, limit int) ([]httptransport.Letter, error) {
	return convAll(letterOut)(a.svc().Letters(ctx, unsent, after, limit))
}

// LetterPDF returns a letter's PDF.
func (a *pcAdmin) LetterPDF(ctx context.Context, id string) ([]byte, error) {
	return a.svc().LetterPDF(ctx, id)
}

// MarkLetterSent records that a letter was mailed.
func (a *pcAdmin) MarkLetterSent(ctx context.Context, id string) (httptransport.Letter, error) {
	return conv(letterOut)(a.svc().MarkLetterSent(ctx, id))
}

// RequestVerification asks a verifier for a challenge (user role).
func (a *pcAdmin) RequestVerification(ctx context.Context, verifier, t, subject string, wait time.Duration) (httptransport.RequestOutcome, error) {
	return conv(requestOutcomeOut)(a.svc().RequestVerification(ctx, verifier, provecontrol.VerificationType(t), subject, wait))
}

// Requests lists the requests sent.
func (a *pcAdmin) Requests(ctx context.Context, after string, limit int) ([]httptransport.VerificationRequest, error) {
	return convAll(requestOut)(a.svc().Requests(ctx, after, limit))
}

// ReceivedChallenges lists the challenges received.
func (a *pcAdmin) ReceivedChallenges(ctx context.Context, after string, limit int) ([]httptransport.ReceivedChallenge, error) {
	return convAll(receivedOut)(a.svc().ReceivedChallenges(ctx, after, limit))
}

// ReceivedChallenge describes one received challenge.
func (a *pcAdmin) ReceivedChallenge(ctx context.Context, id string) (httptransport.ReceivedChallenge, error) {
	return conv(receivedOut)(a.svc().ReceivedChallenge(ctx, id))
}

// Prove sends the prove for a received challenge.
func (a *pcAdmin) Prove(ctx context.Context, id string, wait time.Duration) (httptransport.ProveOutcome, error) {
	return conv(proveOutcomeOut)(a.svc().Prove(ctx, id, wait))
}

// Credentials lists the credentials held.
func (a *pcAdmin) Credentials(ctx context.Context, after string, limit int) ([]httptransport.Credential, error) {
	return convAll(credentialOut)(a.svc().Credentials(ctx, after, limit))
}

// Credential returns one held credential.
func (a *pcAdmin) Credential(ctx context.Context, id string) (httptransport.Credential, error) {
	return conv(credentialOut)(a.svc().Credential(ctx, id))
}

// ImportChallenge takes a challenge that reached the operator some other
// way: a mail as a whole (.eml, the DIDComm parts are taken out as the SMTP
// listener does) or a packed message pasted as it is.
func (a *pcAdmin) ImportChallenge(ctx context.Context, raw []byte) ([]httptransport.ReceivedChallenge, error) {
	trimmed := bytes.TrimSpace(raw)
	var packed [][]byte
	if len(trimmed) > 0 && trimmed[0] == '{' {
		packed = [][]byte{trimmed}
	} else {
		parts, err := email.Extract(raw)
		if err != nil {
			var ce *email.ContentError
			if errors.As(err, &ce) || errors.Is(err, email.ErrNoDIDComm) {
				return nil, agent.Wrap(agent.CodeMsg, err, err.Error())
			}
			return nil, err
		}
		for _, p := range parts {
			packed = append(packed, p.Data)
		}
	}
	var out []httptransport.ReceivedChallenge
	for _, p := range packed {
		v, err := a.d.receiveChallenge(ctx, "import", p)
		if err != nil {
			return nil, err
		}
		out = append(out, receivedOut(v))
	}
	return out, nil
}

// maxLinkBody bounds what a one-time link may return.
const maxLinkBody = 1 << 20

// FetchChallenge fetches the challenge behind a one-time link and takes it.
func (a *pcAdmin) FetchChallenge(ctx context.Context, link string) (httptransport.ReceivedChallenge, error) {
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return httptransport.ReceivedChallenge{}, agent.Errorf(agent.CodeMsg, "the link must be an absolute http(s) URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return httptransport.ReceivedChallenge{}, agent.Errorf(agent.CodeMsg, "the link must be an absolute http(s) URL")
	}
	req.Header.Set("Accept", agent.MediaTypeEncrypted)
	req.Header.Set("User-Agent", "agentd/"+Version)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return httptransport.ReceivedChallenge{}, agent.Errorf(agent.CodeXfer, "the link could not be fetched: %v", unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLinkBody+1))
	switch {
	case err != nil:
		return httptransport.ReceivedChallenge{}, agent.Errorf(agent.CodeXfer, "the link could not be read: %v", err)
	case resp.StatusCode == http.StatusNotFound:
		return httptransport.ReceivedChallenge{}, agent.Errorf(agent.CodeMsg, "the verifier does not know this link")
	case resp.StatusCode == http.StatusGone:
		return httptransport.ReceivedChallenge{}, agent.Errorf(agent.CodeMsg, "the link was used already or has expired: ask for a new challenge")
	case resp.StatusCode != http.StatusOK:
		return httptransport.ReceivedChallenge{}, agent.Errorf(agent.CodeXfer, "the link answered %s", resp.Status)
	case len(body) > maxLinkBody:
		return httptransport.ReceivedChallenge{}, agent.Errorf(agent.CodeTooLarge, "the link returned more than %d bytes", maxLinkBody)
	}
	return conv(receivedOut)(a.d.receiveChallenge(ctx, "link", body))
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// FetchLink serves GET /c/{token}. Unknown and used links are the
// protocol's ErrLinkUnknown and ErrLinkGone, whose codes (agent.CodeNotFound,
// agent.CodeGone) the transport answers with 404 and 410.
func (a *pcAdmin) FetchLink(ctx context.Context, token string) ([]byte, string, error) {
	return a.svc().FetchLink(ctx, token)
}

// ReceiveChallenge serves POST /.well-known/provecontrol/challenge.
func (a *pcAdmin) ReceiveChallenge(ctx context.Context, raw []byte) error {
	_, err := a.d.receiveChallenge(ctx, "ip", raw)
	return err
}

// receiveChallenge hands a packed verificationchallenge that came outside
// the DIDComm endpoint to the router, refusing anything else, and returns
// the challenge as held. A challenge the protocol refused (its verifier got
// a problem report) is an error.
func (d *Daemon) receiveChallenge(ctx context.Context, transport string, raw []byte) (provecontrol.ReceivedView, error) {
	msg, err := d.router.Check(ctx, transport, raw)
	if err != nil {
		return provecontrol.ReceivedView{}, err
	}
	if err := provecontrol.CheckChallengeType(msg); err != nil {
		return provecontrol.ReceivedView{}, err
	}
	if _, err := d.router.Receive(ctx, transport, raw); err != nil {
		return provecontrol.ReceivedView{}, err
	}
	v, err := d.provecontrol.service.ReceivedChallenge(ctx, msg.ID)
	if err != nil {
		if errors.Is(err, agent.ErrNotFound) {
			return provecontrol.ReceivedView{}, agent.Errorf(agent.CodeMsg, "the challenge was not accepted (see the log; its verifier was sent a problem report)")
		}
		return provecontrol.ReceivedView{}, err
	}
	return v, nil
}
