package email

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/connlimit"
)

// TransportName is the transport name the server gives the router, as
// agent.Inbound.Transport reports it.
const TransportName = "smtp"

// Receiver takes the DIDComm messages found in mail; *agent.Router is one.
// Check must refuse what Receive would refuse, and change nothing.
type Receiver interface {
	Check(ctx context.Context, transport string, raw []byte) (*agent.Message, error)
	Receive(ctx context.Context, transport string, raw []byte) (*agent.Reply, error)
}

// Observer counts mail events for metrics. MailIn results: accepted,
// refused (no or bad DIDComm content), relay-denied, too-large,
// rate-limited, auth-failed, deferred (our own temporary failure), dsn
// (a delivery status notification was received). MailOut results:
// delivered, deferred (retried later), bounced (5xx: dead-lettered).
type Observer interface {
	MailIn(result string)
	MailOut(result string)
}

type nopObserver struct{}

func (nopObserver) MailIn(string)  {}
func (nopObserver) MailOut(string) {}

// Credentials are a user name and password for SMTP AUTH PLAIN.
type Credentials struct {
	Username string
	Password string
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// Hostname is the server's name in its greeting.
	Hostname string
	// Domains are the mail domains the server takes mail for: any address in
	// them is accepted. Addresses are single addresses it takes mail for.
	// Mail for anything else is refused with 550 (no relaying).
	Domains   []string
	Addresses []string
	// MaxMessageBytes is the largest mail accepted (the SIZE extension
	// advertises it); default 2 MiB.
	MaxMessageBytes int64
	// MaxRecipients limits RCPT commands per mail; default 100.
	MaxRecipients int
	// TLS enables STARTTLS when set. RequireTLS refuses MAIL before STARTTLS.
	TLS        *tls.Config
	RequireTLS bool
	// Auth enables AUTH PLAIN with these credentials (offered only after
	// STARTTLS unless AllowInsecureAuth). RequireAuth refuses MAIL from
	// clients that did not authenticate (a submission service).
	Auth              *Credentials
	RequireAuth       bool
	AllowInsecureAuth bool
	// RateLimit is how many mails a minute one client IP may send (0: no
	// limit), with bursts of RateBurst.
	RateLimit float64
	RateBurst int
	// MaxSessions caps the SMTP sessions open at once, MaxSessionsPerIP
	// those from one client IP (IPv6: its /64); 0: no cap. A connection over
	// a cap is answered "421 4.7.0" and closed before the greeting.
	MaxSessions      int
	MaxSessionsPerIP int
	// ReadTimeout and WriteTimeout bound each command and reply; default 2
	// minutes and 1 minute.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// Receiver checks and processes the DIDComm messages.
	Receiver Receiver
	// Spool keeps accepted mails until they are processed. Its Put must be
	// durable on return: the server answers 250 only after it.
	Spool agent.Records
	// RetryDelay is the first wait before processing a mail again after a
	// temporary failure of our own (it doubles up to an hour); default 30s.
	RetryDelay time.Duration
	// ProcessTimeout bounds the processing of one DIDComm message; default 2 minutes.
	ProcessTimeout time.Duration
	// Leases, when set, claims each spooled mail before it is processed
	// (a lease per mail, for as long as its processing may take): with
	// several instances on one shared spool (store.driver postgres), one
	// processes a mail while the others skip it, and another takes it
	// over if the holder dies. Nil means this server is the spool's only
	// processor.
	Leases   agent.Leases
	Observer Observer
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is agentd's inbound mail transport: an SMTP server that takes mail
// only for its configured domains and addresses, finds the DIDComm messages
// in each mail, checks them with the router, stores the mail durably and only
// then answers 250; a background loop (Process) hands the stored messages to
// the router and removes them once processed. A mail stored but not yet
// processed when the daemon stops is processed after the next start.
type Server struct {
	cfg     ServerConfig
	smtp    *smtp.Server
	accept  *acceptList
	limiter *rateLimiter
	authLim *rateLimiter
	spool   spool
	log     *slog.Logger
	obs     Observer
	wake    chan struct{}

	inflight sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	listeners []net.Listener
}

// NewServer checks cfg and builds a Server; call Serve and Process.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Receiver == nil || cfg.Spool == nil {
		return nil, errors.New("email: the server needs a Receiver and a Spool")
	}
	acc, err := newAcceptList(cfg.Domains, cfg.Addresses)
	if err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	if cfg.Auth != nil && (cfg.Auth.Username == "" || cfg.Auth.Password == "") {
		return nil, errors.New("email: AUTH needs a user name and a password")
	}
	if cfg.RequireAuth && cfg.Auth == nil {
		return nil, errors.New("email: RequireAuth needs Auth credentials")
	}
	if cfg.RequireTLS && cfg.TLS == nil {
		return nil, errors.New("email: RequireTLS needs a TLS configuration")
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 2 << 20
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = 100
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 2 * time.Minute
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = time.Minute
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 30 * time.Second
	}
	if cfg.ProcessTimeout <= 0 {
		cfg.ProcessTimeout = 2 * time.Minute
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, accept: acc, spool: spool{cfg.Spool}, log: cfg.Logger, obs: cfg.Observer,
		wake: make(chan struct{}, 1)}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	if cfg.RateLimit > 0 {
		s.limiter = newRateLimiter(cfg.RateLimit, cfg.RateBurst, cfg.Now)
	}
	s.authLim = newRateLimiter(10, 10, cfg.Now)
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = cfg.Hostname
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	// RFC 5321 caps lines at 1000 octets, but a body that is a bare JWE is
	// often one long line; allow it, the message size limit still holds.
	srv.MaxLineLength = 64 << 10
	srv.ReadTimeout = cfg.ReadTimeout
	srv.WriteTimeout = cfg.WriteTimeout
	srv.TLSConfig = cfg.TLS
	srv.AllowInsecureAuth = cfg.AllowInsecureAuth
	srv.ErrorLog = log.New(slogWriter{s.log}, "", 0)
	s.smtp = srv
	return s, nil
}

// slogWriter passes go-smtp's internal error log lines to slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn("smtp server", "detail", strings.TrimSpace(string(p)))
	return len(p), nil
}

// Serve accepts SMTP connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	if s.cfg.MaxSessions > 0 || s.cfg.MaxSessionsPerIP > 0 {
		ln = connlimit.Wrap(ln, connlimit.Limits{Total: s.cfg.MaxSessions, PerClient: s.cfg.MaxSessionsPerIP}, s.refuse)
	}
	err := s.smtp.Serve(ln)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed || errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// refuse answers a connection over a session cap (RFC 5321 section 3.8:
// 421 instead of the greeting, then close).
func (s *Server) refuse(c net.Conn, r connlimit.Refusal) {
	what := fmt.Sprintf("Too many connections (limit %d)", r.Limit)
	if r.PerClient {
		what = fmt.Sprintf("Too many connections from %s (limit %d)", r.Client, r.Limit)
	}
	s.obs.MailIn("rate-limited")
	s.log.Debug("smtp: connection over the session cap refused", "client", r.Client, "per_client", r.PerClient, "limit", r.Limit)
	fmt.Fprintf(c, "421 4.7.0 %s %s; try again later\r\n", s.cfg.Hostname, what)
}

// Shutdown stops accepting connections and waits for open sessions to end
// until ctx is done, then closes the rest. A mail whose DATA was cut off is
// not acknowledged, so its sender will try again. Shutdown returns after the
// last DATA in progress has finished with the spool.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	lns := s.listeners
	s.mu.Unlock()
	// go-smtp closes only the listeners its Serve has registered; close ours
	// too, in case Serve had not got that far.
	for _, ln := range lns {
		ln.Close()
	}
	err := s.smtp.Shutdown(ctx)
	if err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		s.smtp.Close()
	}
	s.inflight.Wait()
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Pending returns the number of accepted mails not yet processed.
func (s *Server) Pending(ctx context.Context) (int, error) {
	return s.spool.count(ctx)
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	client := c.Conn().RemoteAddr().String()
	if host, _, err := net.SplitHostPort(client); err == nil {
		client = host
	}
	return &session{s: s, conn: c, client: client}, nil
}

// session is one SMTP connection's state.
type session struct {
	s        *Server
	conn     *smtp.Conn
	client   string
	authUser string
	from     string
	to       []string
}

func smtpErr(code int, ec smtp.EnhancedCode, format string, args ...any) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: safeText(fmt.Sprintf(format, args...), 400)}
}

func (ss *session) isTLS() bool {
	_, ok := ss.conn.TLSConnectionState()
	return ok
}

// AuthMechanisms offers PLAIN when credentials are configured.
func (ss *session) AuthMechanisms() []string {
	if ss.s.cfg.Auth == nil {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth checks AUTH PLAIN credentials in constant time. Attempts are limited
// per client; a failure is logged without the password.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.s.cfg.Auth == nil || !strings.EqualFold(mech, sasl.Plain) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if !ss.s.authLim.allow(ss.client) {
			ss.s.obs.MailIn("rate-limited")
			return smtpErr(454, smtp.EnhancedCode{4, 7, 0}, "Too many authentication attempts from %s; try again later", ss.client)
		}
		want := ss.s.cfg.Auth
		userOK := subtle.ConstantTimeCompare([]byte(username), []byte(want.Username)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(password), []byte(want.Password)) == 1
		if !userOK || !passOK || (identity != "" && identity != username) {
			ss.s.obs.MailIn("auth-failed")
			ss.s.log.Warn("smtp: authentication failed", "client", ss.client, "user", safeText(username, 64))
			return smtp.ErrAuthFailed
		}
		ss.authUser = username
		return nil
	}), nil
}

// Mail starts a transaction: TLS and authentication when required, and the
// client's rate limit.
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	cfg := ss.s.cfg
	if cfg.RequireTLS && !ss.isTLS() {
		return smtpErr(530, smtp.EnhancedCode{5, 7, 0}, "Must issue a STARTTLS command first")
	}
	if cfg.RequireAuth && ss.authUser == "" {
		return smtpErr(530, smtp.EnhancedCode{5, 7, 0}, "Authentication required")
	}
	if !ss.s.limiter.allow(ss.client) {
		ss.s.obs.MailIn("rate-limited")
		ss.s.log.Warn("smtp: client over its rate limit", "client", ss.client)
		return smtpErr(450, smtp.EnhancedCode{4, 7, 1}, "Too much mail from %s (limit %g a minute); try again later", ss.client, cfg.RateLimit)
	}
	ss.from, ss.to = from, nil
	return nil
}

// Rcpt accepts only the configured domains and addresses: no relaying.
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !ss.s.accept.accepts(to) {
		ss.s.obs.MailIn("relay-denied")
		ss.s.log.Info("smtp: recipient refused", "client", ss.client, "rcpt", safeText(to, 100))
		return smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "Relay access denied: <%s> is not an address this agent takes mail for (%s)", to, ss.s.accept.describe())
	}
	ss.to = append(ss.to, to)
	return nil
}

// Data reads the mail, finds and checks its DIDComm messages, and stores it
// durably before it returns nil, which go-smtp answers with 250. Any error is
// answered with its SMTP code and nothing is stored. A panic is recovered,
// logged with its stack and answered 451.
func (ss *session) Data(r io.Reader) (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.s.log.Error("smtp: session handler panicked", "client", ss.client, "panic", fmt.Sprint(v),
				"stack", string(debug.Stack()))
			err = smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Temporary local problem; try again later")
		}
	}()
	return ss.data(r)
}

func (ss *session) data(r io.Reader) error {
	s := ss.s
	s.inflight.Add(1)
	defer s.inflight.Done()
	raw, err := io.ReadAll(r)
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code == smtp.ErrDataTooLarge.Code {
			s.obs.MailIn("too-large")
			return smtpErr(552, smtp.EnhancedCode{5, 3, 4}, "Message exceeds the size limit of %d bytes", s.cfg.MaxMessageBytes)
		}
		return err
	}
	parts, err := Extract(raw)
	if err != nil {
		if errors.Is(err, ErrNoDIDComm) && ss.from == "" {
			if dsn, ok := parseDSN(raw); ok {
				s.obs.MailIn("dsn")
				s.log.Warn("smtp: delivery status notification received", "client", ss.client,
					"recipient", dsn.recipient, "action", dsn.action, "status", dsn.status, "diagnostic", dsn.diagnostic)
				return nil
			}
		}
		s.obs.MailIn("refused")
		s.log.Info("smtp: mail refused", "client", ss.client, "from", safeText(ss.from, 100), "reason", err.Error())
		return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "%s", err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ProcessTimeout)
	defer cancel()
	for i, p := range parts {
		if _, err := s.cfg.Receiver.Check(ctx, TransportName, p.Data); err != nil {
			code, ec := smtpStatus(err)
			result := "refused"
			if code/100 == 4 {
				result = "deferred"
			}
			s.obs.MailIn(result)
			if agent.HasCode(err, agent.CodeMe) {
				// Our own fault: the cause is for the operator, not the peer.
				s.log.Error("smtp: internal error checking a mail", "client", ss.client, "part", p.Name(i),
					"code", agent.ErrorCode(err), "err", causeChain(err))
			} else {
				s.log.Info("smtp: mail refused", "client", ss.client, "from", safeText(ss.from, 100), "part", p.Name(i),
					"code", agent.ErrorCode(err), "reason", agent.ErrorComment(err))
			}
			return smtpErr(code, ec, "%s: %s (%s)", p.Name(i), agent.ErrorComment(err), agent.ErrorCode(err))
		}
	}
	now := s.cfg.Now()
	m := &spooled{ID: newSpoolID(now), Received: now.UTC(), Client: ss.client, Helo: ss.conn.Hostname(),
		From: ss.from, To: append([]string(nil), ss.to...), Parts: parts}
	if err := s.spool.put(ctx, m); err != nil {
		s.obs.MailIn("deferred")
		s.log.Error("smtp: storing an accepted mail failed", "client", ss.client, "err", err)
		return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Temporary local problem: the message could not be stored; try again later")
	}
	s.obs.MailIn("accepted")
	s.log.Info("smtp: mail accepted", "id", m.ID, "client", ss.client, "from", safeText(ss.from, 100),
		"to", ss.to, "messages", len(parts))
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Reset forgets the current transaction.
func (ss *session) Reset() { ss.from, ss.to = "", nil }

// Logout ends the session.
func (ss *session) Logout() error { return nil }

// Process hands the stored mails' DIDComm messages to the router, oldest
// first, and removes each mail once all its messages were handled. It runs
// until ctx is cancelled; the message being handled then is finished first
// (handlers run under a context that is not cancelled with ctx, so a reply is
// never half-queued). A temporary failure of our own (an e.p.me error) keeps
// the mail for another try; any other refusal is logged and the mail
// removed: its sender already has our 250, and retrying can't help.
// Processing a mail twice after a crash is harmless: the router drops the
// second copy of each message as a replay.
func (s *Server) Process(ctx context.Context) {
	for {
		retry := s.processAll(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := time.Minute
		if !retry.IsZero() {
			if d := retry.Sub(s.cfg.Now()); d < wait {
				wait = d
			}
		}
		if wait < 10*time.Millisecond {
			wait = 10 * time.Millisecond
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// processAll processes every due mail once and returns the earliest time a
// mail kept for retry is due (zero if none).
func (s *Server) processAll(ctx context.Context) (retry time.Time) {
	after := ""
	for ctx.Err() == nil {
		batch, bad, err := s.spool.next(ctx, after, 64)
		for _, id := range bad {
			s.log.Error("smtp: a spooled mail could not be read; moved aside", "id", id, "kind", SpoolQuarantineKind)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("smtp: reading the spool failed", "err", err)
			}
			return s.cfg.Now().Add(s.cfg.RetryDelay)
		}
		for _, m := range batch {
			after = m.ID
			if ctx.Err() != nil {
				return retry
			}
			next := s.process(ctx, m)
			if !next.IsZero() && (retry.IsZero() || next.Before(retry)) {
				retry = next
			}
		}
		if len(batch)+len(bad) < 64 {
			return retry
		}
	}
	return retry
}

// spooledDue is when a mail kept for retry may be tried again.
func (s *Server) spooledDue(m *spooled) time.Time {
	if m.Attempts == 0 {
		return time.Time{}
	}
	d := s.cfg.RetryDelay
	for i := 1; i < m.Attempts && d < time.Hour; i++ {
		d *= 2
	}
	if d > time.Hour {
		d = time.Hour
	}
	return m.LastTry.Add(d)
}

// process handles one stored mail and returns when to try it again, or zero
// when it is done.
func (s *Server) process(ctx context.Context, m *spooled) time.Time {
	if due := s.spooledDue(m); !due.IsZero() && due.After(s.cfg.Now()) {
		return due
	}
	if s.cfg.Leases != nil {
		name := "smtp-mail/" + m.ID
		lease := s.cfg.ProcessTimeout*time.Duration(len(m.Parts)) + time.Minute
		ok, err := s.cfg.Leases.Lead(ctx, name, lease)
		if err != nil || !ok {
			// Another instance processes it (or the claim failed): look
			// again later; a processed mail is gone from the spool by then.
			return s.cfg.Now().Add(s.cfg.RetryDelay)
		}
		defer s.cfg.Leases.Release(context.WithoutCancel(ctx), name) //nolint:errcheck // the lease expires anyway
		// Another instance may have processed and removed it meanwhile.
		if _, err := s.cfg.Spool.Get(ctx, SpoolKind, m.ID); errors.Is(err, agent.ErrNotFound) {
			return time.Time{}
		}
	}
	for i, p := range m.Parts {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ProcessTimeout)
		_, err := s.cfg.Receiver.Receive(pctx, TransportName, p.Data)
		cancel()
		if err == nil {
			continue
		}
		// Our own fault, a full outbox or a sender over its rate limit:
		// the mail stays in the spool and is tried again later.
		if strings.HasPrefix(agent.ErrorCode(err), agent.CodeMe) || agent.HasCode(err, agent.CodeRateLimited) {
			m.Attempts++
			m.LastError = agent.ErrorComment(err)
			m.LastTry = s.cfg.Now()
			if perr := s.spool.put(context.WithoutCancel(ctx), m); perr != nil {
				s.log.Error("smtp: saving a mail for retry failed", "id", m.ID, "err", perr)
			}
			s.log.Warn("smtp: processing an accepted mail failed; will retry", "id", m.ID, "part", p.Name(i),
				"attempts", m.Attempts, "reason", m.LastError)
			return s.spooledDue(m)
		}
		s.log.Warn("smtp: a message of an accepted mail was refused when processed", "id", m.ID, "part", p.Name(i),
			"code", agent.ErrorCode(err), "reason", agent.ErrorComment(err))
	}
	if err := s.spool.delete(context.WithoutCancel(ctx), m.ID); err != nil {
		s.log.Error("smtp: removing a processed mail failed", "id", m.ID, "err", err)
		return s.cfg.Now().Add(s.cfg.RetryDelay)
	}
	s.log.Debug("smtp: mail processed", "id", m.ID, "messages", len(m.Parts))
	return time.Time{}
}
