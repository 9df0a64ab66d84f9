package provecontrol

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/aip"
)

// HeldCredentials is the agent's credential store (protocols/credstore):
// the credentials the user role receives are held there too, so that the
// cloud-agent API lists them and presentations can use them.
type HeldCredentials interface {
	// Put stages a held credential in w.
	Put(w *agent.Work, c *aip.Credential, raw []byte) error
}

// Messenger is what the protocol needs from agent.Messenger: packing
// messages for the outbox, which the service queues through its units of
// work (never directly), so that a message and the state change it
// reflects commit together.
type Messenger interface {
	// Outbound packs msg for its to, for the DIDs' endpoints.
	Outbound(ctx context.Context, msg agent.Message) ([]*agent.OutboundMessage, error)
	// OutboundTo packs msg for its to, for an explicit endpoint.
	OutboundTo(ctx context.Context, msg agent.Message, endpoint string) ([]*agent.OutboundMessage, error)
	// Pack packs msg for the DID to (which need not be msg's to) and returns
	// the envelope and to's endpoint.
	Pack(ctx context.Context, msg agent.Message, to string) ([]byte, string, error)
	// Encrypt packs msg for the DID to without routing.
	Encrypt(ctx context.Context, msg agent.Message, to string) ([]byte, error)
}

// Identity is what the protocol needs from agent.Identity.
type Identity interface {
	DID() string
	Owns(did string) bool
	PrivateKey(ctx context.Context, kid string) (keys.PrivateKey, error)
}

// EmailChannel packs a challenge for the mail transport: encrypted to its
// to, for delivery to the address (the service queues it).
type EmailChannel interface {
	MailChallenge(ctx context.Context, msg agent.Message, address string) ([]*agent.OutboundMessage, error)
}

// SMSSender sends a text message to a phone number in E.164 form.
type SMSSender interface {
	SendSMS(ctx context.Context, to, text string) error
}

// DiscordSender sends a direct message to a Discord user, by user id.
type DiscordSender interface {
	SendDM(ctx context.Context, userID, text string) error
}

// TXTResolver looks up DNS TXT records; *net.Resolver is one.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// LetterRenderer renders the letter of an Address challenge as a printable
// document (a PDF).
type LetterRenderer interface {
	RenderLetter(l LetterContent) ([]byte, error)
}

// LetterContent is what a letter says.
type LetterContent struct {
	// Address is the postal address, one line per line.
	Address string
	// VerifierName and Verifier name the sender; User is the DID the
	// verification is for.
	VerifierName string
	Verifier     string
	User         string
	// Link is the one-time link to the encrypted challenge.
	Link    string
	Expires time.Time
	// Reference is the challenge id, for the operator's records.
	Reference string
}

// Channels are the verifier's delivery channels. A nil channel means the
// verification types that need it are not offered. DNS defaults to the
// system resolver.
type Channels struct {
	Email   EmailChannel
	SMS     SMSSender
	Discord DiscordSender
	DNS     TXTResolver
	Letters LetterRenderer
}

// VerifierConfig configures the verifier role.
type VerifierConfig struct {
	// Enabled makes the agent answer requestverification and accept
	// operator-started challenges.
	Enabled bool
	// Types restricts the offered verification types; empty: every type
	// whose channel is available.
	Types []VerificationType
	// ChallengeTTL is how long a challenge can be proved; default 24h.
	ChallengeTTL time.Duration
	// MaxAttempts is how many wrong proofs fail a challenge; default 5.
	MaxAttempts int
	// CredentialValidity is how long the issued credential is valid;
	// default 365 days.
	CredentialValidity time.Duration
	// MaxPendingPerUser and MaxPendingPerSubject bound the pending
	// challenges of one user DID and of one subject, so that nobody can
	// make the verifier flood a phone or a mailbox; defaults 10 and 3.
	MaxPendingPerUser    int
	MaxPendingPerSubject int
	// LinkBaseURL is the public base URL of the one-time links
	// (LinkBaseURL + "/c/" + token), needed for Tel, Discord and Address.
	LinkBaseURL string
	// AllowPrivateIPs accepts non-public IP subjects (for tests and private
	// networks).
	AllowPrivateIPs bool
	// Retention is how long challenges in a final state, with their links
	// and letters, are kept; default 30 days.
	Retention time.Duration
	// Name is how the verifier introduces itself in SMS, Discord messages
	// and letters; default "agentd".
	Name string
}

// Config is what a Service needs.
type Config struct {
	Identity Identity
	// Store holds the protocol's records; every change goes through one of
	// its units of work (the router's, for a message).
	Store     agent.Store
	Messenger Messenger
	// Resolver resolves DIDs: subject DIDs, our own authentication keys,
	// credential issuers.
	Resolver did.Resolver
	// Waiters is shared with reportproblem, so that the user's calls that
	// wait for an answer learn of problem reports.
	Waiters  *agent.Waiters
	Verifier VerifierConfig
	Channels Channels
	// Held, when set, also keeps each credential the user role receives in
	// the agent's credential store, in the same unit of work.
	Held   HeldCredentials
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is Prove Control in both roles: the verifier (requestverification
// and prove) and the user (verificationchallenge and confirmverification).
type Service struct {
	cfg Config
	st  store
	log *slog.Logger
	now func() time.Time
	dns TXTResolver
}

// New returns a Service; zero settings get their defaults.
func New(cfg Config) *Service {
	v := &cfg.Verifier
	if v.ChallengeTTL <= 0 {
		v.ChallengeTTL = 24 * time.Hour
	}
	if v.MaxAttempts <= 0 {
		v.MaxAttempts = 5
	}
	if v.CredentialValidity <= 0 {
		v.CredentialValidity = 365 * 24 * time.Hour
	}
	if v.MaxPendingPerUser <= 0 {
		v.MaxPendingPerUser = 10
	}
	if v.MaxPendingPerSubject <= 0 {
		v.MaxPendingPerSubject = 3
	}
	if v.Retention <= 0 {
		v.Retention = 30 * 24 * time.Hour
	}
	if v.Name == "" {
		v.Name = "agentd"
	}
	v.LinkBaseURL = strings.TrimRight(v.LinkBaseURL, "/")
	if cfg.Waiters == nil {
		cfg.Waiters = new(agent.Waiters)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, st: store{cfg.Store.Records}, log: cfg.Logger.With("protocol", PIURI), now: cfg.Now, dns: cfg.Channels.DNS}
	if s.dns == nil {
		s.dns = net.DefaultResolver
	}
	return s
}

// Protocol describes Prove Control for the router and Discover Features,
// with s as its handler.
func (s *Service) Protocol() agent.Protocol {
	roles := []string{RoleUser}
	if s.cfg.Verifier.Enabled {
		roles = []string{RoleVerifier, RoleUser}
	}
	return agent.Protocol{PIURI: PIURI, Roles: roles, Handler: s, Signed: SignedTypes}
}

// HandleMessage handles one Prove Control message; the role follows from
// its type: requestverification and prove are for the verifier,
// verificationchallenge and confirmverification for the user. An error is
// answered by the router with a problem report of its code.
func (s *Service) HandleMessage(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
	switch in.Message.Type {
	case RequestVerificationType:
		return s.handleRequest(ctx, in)
	case ProveType:
		return s.handleProve(ctx, in)
	case VerificationChallengeType:
		return nil, s.handleChallenge(ctx, in)
	case ConfirmVerificationType:
		return nil, s.handleConfirm(ctx, in)
	}
	return nil, agent.Errorf(agent.CodeMsgUnsupported, "unsupported message type %s", clip(in.Message.Type, 120))
}

// Offers reports whether the verifier offers verification type t: the role
// is enabled, t is allowed by the configuration, and its channel is there.
func (s *Service) Offers(t VerificationType) bool {
	v := s.cfg.Verifier
	if !v.Enabled || !t.Valid() {
		return false
	}
	if len(v.Types) > 0 {
		found := false
		for _, x := range v.Types {
			found = found || x == t
		}
		if !found {
			return false
		}
	}
	c := s.cfg.Channels
	switch t {
	case Email:
		return c.Email != nil
	case Tel:
		return c.SMS != nil && v.LinkBaseURL != ""
	case Discord:
		return c.Discord != nil && v.LinkBaseURL != ""
	case Address:
		return c.Letters != nil && v.LinkBaseURL != ""
	}
	return true // Domain, DID, IP need nothing more than DIDComm, DNS and HTTP
}

// Offered lists the verification types the verifier offers.
func (s *Service) Offered() []VerificationType {
	var out []VerificationType
	for _, t := range VerificationTypes {
		if s.Offers(t) {
			out = append(out, t)
		}
	}
	return out
}

// Run sweeps expired challenges and old records every interval until ctx
// ends (see Sweep).
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("prove control sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
