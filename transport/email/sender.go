package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"net/textproto"
	"sort"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/netguard"
)

// TLS modes of the connection to a relay.
const (
	// TLSRequired: STARTTLS must be offered and the relay's certificate must
	// verify (system roots or SenderConfig.RootCAs); otherwise the delivery is
	// retried later.
	TLSRequired = "required"
	// TLSOpportunistic: STARTTLS when the server offers it, certificate not
	// verified (encryption against passive listeners), plain text otherwise.
	// Delivery by MX lookup always works this way, as MTAs do.
	TLSOpportunistic = "opportunistic"
	// TLSOff: never STARTTLS.
	TLSOff = "off"
)

// SenderConfig configures a Sender.
type SenderConfig struct {
	// From is the agent's mail address: envelope sender (bounces come back
	// to it) and From header.
	From string
	// Hostname is the name the sender gives in EHLO.
	Hostname string
	// Relay is the smarthost HOST:PORT that takes all outbound mail; empty
	// means delivery to the recipient domain's MX hosts.
	Relay string
	// RelayTLS is TLSRequired, TLSOpportunistic (default) or TLSOff.
	RelayTLS string
	// RootCAs verifies the relay's certificate under TLSRequired; nil means
	// the system roots.
	RootCAs *x509.CertPool
	// Auth logs in to the relay with AUTH PLAIN. The password is sent only
	// over TLS, or to a relay on a loopback address.
	Auth *Credentials
	// MXPort is the port of MX hosts; default "25".
	MXPort string
	// LookupMX finds a domain's mail exchangers; default net.DefaultResolver.
	LookupMX func(ctx context.Context, domain string) ([]*net.MX, error)
	// LookupHost resolves a domain without MX records; default net.DefaultResolver.
	LookupHost func(ctx context.Context, host string) ([]string, error)
	// Dial connects to a mail server; default a net.Dialer with a 30s
	// timeout for the relay (which the operator chose), and for MX hosts
	// (which DNS, that is the recipient's domain, chose) one that refuses
	// the addresses MXPolicy refuses. A Dial that is set is used for both.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MXPolicy says which addresses MX hosts may have: by default only
	// public ones, so that a mailto: endpoint cannot make the agent
	// connect to the operator's own networks. A refused MX host is
	// skipped; when all are refused, the message is dead-lettered at once.
	MXPolicy netguard.Policy
	Observer Observer
	Logger   *slog.Logger
	// Now is the clock for the Date header; nil means time.Now.
	Now func() time.Time
}

// Sender delivers packed DIDComm messages to mailto: endpoints for the
// outbox: it composes a mail (Compose) and hands it to the relay or to the
// recipient domain's MX hosts over SMTP. It implements agent.Transport: a 5xx
// answer is a bounce (an *agent.PermanentError, so the message is
// dead-lettered at once with the server's reason); a 4xx answer, a network
// failure or our own configuration problem is returned as a plain error and
// retried by the outbox.
type Sender struct {
	cfg    SenderConfig
	dialMX func(ctx context.Context, network, addr string) (net.Conn, error)
	log    *slog.Logger
	obs    Observer
}

// NewSender checks cfg and returns a Sender.
func NewSender(cfg SenderConfig) (*Sender, error) {
	from, err := ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("email: sender address: %w", err)
	}
	cfg.From = from
	switch cfg.RelayTLS {
	case "":
		cfg.RelayTLS = TLSOpportunistic
	case TLSRequired, TLSOpportunistic, TLSOff:
	default:
		return nil, fmt.Errorf("email: relay TLS mode %q is not required, opportunistic or off", cfg.RelayTLS)
	}
	if cfg.Relay != "" {
		if _, _, err := net.SplitHostPort(cfg.Relay); err != nil {
			return nil, fmt.Errorf("email: relay %q is not HOST:PORT", cfg.Relay)
		}
	}
	if cfg.Hostname == "" {
		cfg.Hostname = domainOf(from)
	}
	if cfg.MXPort == "" {
		cfg.MXPort = "25"
	}
	if cfg.LookupMX == nil {
		cfg.LookupMX = net.DefaultResolver.LookupMX
	}
	if cfg.LookupHost == nil {
		cfg.LookupHost = net.DefaultResolver.LookupHost
	}
	dialMX := cfg.Dial
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: 30 * time.Second}
		cfg.Dial = d.DialContext
		dialMX = cfg.MXPolicy.DialContext(30 * time.Second)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sender{cfg: cfg, dialMX: dialMX, log: cfg.Logger, obs: cfg.Observer}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	return s, nil
}

// From returns the sender's mail address.
func (s *Sender) From() string { return s.cfg.From }

// MediaTypeMail is the outbox media type of a whole mail, headers and
// body, composed by its sender (a sign-up confirmation, a notice to a
// person): Deliver sends it as it is, to the address of the endpoint.
const MediaTypeMail = "message/rfc822"

// Deliver sends payload as a DIDComm mail to the address of the mailto:
// endpoint, or, when mediaType is MediaTypeMail, payload itself.
func (s *Sender) Deliver(ctx context.Context, endpoint, mediaType string, payload []byte) error {
	to, err := ParseMailto(endpoint)
	if err != nil {
		s.obs.MailOut("bounced")
		return &agent.PermanentError{Err: err}
	}
	msg := payload
	if mediaType != MediaTypeMail {
		if msg, err = Compose(s.cfg.From, to, mediaType, payload, s.cfg.Now()); err != nil {
			return &agent.PermanentError{Err: fmt.Errorf("composing the mail: %w", err)}
		}
	}
	err = s.send(ctx, to, msg)
	var perm *agent.PermanentError
	switch {
	case err == nil:
		s.obs.MailOut("delivered")
		s.log.Debug("email: delivered", "to", to, "bytes", len(msg))
	case errors.As(err, &perm):
		s.obs.MailOut("bounced")
		s.log.Warn("email: bounced", "to", to, "err", err)
	default:
		s.obs.MailOut("deferred")
	}
	return err
}

func (s *Sender) send(ctx context.Context, to string, msg []byte) error {
	if s.cfg.Relay != "" {
		host, _, _ := net.SplitHostPort(s.cfg.Relay)
		return s.deliverTo(ctx, s.cfg.Relay, host, true, to, msg)
	}
	hosts, err := s.mxHosts(ctx, domainOf(to))
	if err != nil {
		return err
	}
	var last, refused error
	for _, h := range hosts {
		err := s.deliverTo(ctx, net.JoinHostPort(h, s.cfg.MXPort), h, false, to, msg)
		if err == nil {
			return nil
		}
		if errors.Is(err, netguard.ErrPrivate) {
			refused = err // try the next MX host
			continue
		}
		var perm *agent.PermanentError
		if errors.As(err, &perm) || ctx.Err() != nil {
			return err
		}
		last = err
	}
	if last == nil && refused != nil {
		return &agent.PermanentError{Err: fmt.Errorf("mail to %s: every mail server of its domain has a non-public address, which the outbox refuses (outbox.allow_private): %w", to, refused)}
	}
	return last
}

// mxHosts returns the domain's mail exchangers, best first, or the domain
// itself when it has none (RFC 5321 section 5.1). A domain that does not
// exist or has a null MX (RFC 7505) can't receive mail: a permanent failure.
// Other lookup failures are temporary.
func (s *Sender) mxHosts(ctx context.Context, domain string) ([]string, error) {
	mxs, err := s.cfg.LookupMX(ctx, domain)
	if err != nil {
		if !isNotFound(err) {
			return nil, fmt.Errorf("MX lookup for %s: %w", domain, err)
		}
		mxs = nil
	}
	if len(mxs) == 0 {
		if _, err := s.cfg.LookupHost(ctx, domain); err != nil {
			if isNotFound(err) {
				return nil, &agent.PermanentError{Err: fmt.Errorf("mail domain %s does not exist", domain)}
			}
			return nil, fmt.Errorf("looking up %s: %w", domain, err)
		}
		return []string{domain}, nil
	}
	sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Pref < mxs[j].Pref })
	var hosts []string
	for _, mx := range mxs {
		if h := strings.TrimSuffix(mx.Host, "."); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return nil, &agent.PermanentError{Err: fmt.Errorf("mail domain %s accepts no mail (null MX)", domain)}
	}
	return hosts, nil
}

func isNotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// deliverTo runs one SMTP transaction with the server at addr (host is its
// name, for TLS).
func (s *Sender) deliverTo(ctx context.Context, addr, host string, relay bool, to string, msg []byte) (err error) {
	dial := s.dialMX
	if relay {
		dial = s.cfg.Dial
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("mail to %s: connecting to %s: %w", to, addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	step := "greeting"
	defer func() {
		if err != nil {
			err = classify(addr, step, to, err)
		}
	}()
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	defer func() {
		var te *textproto.Error
		if err != nil && errors.As(err, &te) {
			// The server answered a command with an error: end politely.
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			c.Quit()
		}
	}()
	step = "EHLO"
	if err := c.Hello(s.cfg.Hostname); err != nil {
		return err
	}
	mode := TLSOpportunistic
	if relay {
		mode = s.cfg.RelayTLS
	}
	step = "STARTTLS"
	tlsOn := false
	if ok, _ := c.Extension("STARTTLS"); ok && mode != TLSOff {
		tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if mode == TLSRequired {
			tc.RootCAs = s.cfg.RootCAs
		} else {
			tc.InsecureSkipVerify = true // opportunistic: encryption without authentication, as MTAs do
		}
		if err := c.StartTLS(tc); err != nil {
			return temporary{fmt.Errorf("STARTTLS failed: %w", err)}
		}
		tlsOn = true
	} else if mode == TLSRequired {
		return temporary{errors.New("the relay does not offer STARTTLS, which the relay's starttls setting requires")}
	}
	if relay && s.cfg.Auth != nil {
		step = "AUTH"
		if !tlsOn && !isLoopback(host) {
			return temporary{errors.New("refusing to send the relay password without TLS (the relay offered no STARTTLS)")}
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return temporary{errors.New("the relay does not offer AUTH")}
		}
		if err := c.Auth(plainAuth{s.cfg.Auth.Username, s.cfg.Auth.Password}); err != nil {
			// Our credentials are our problem, not the recipient's: retry.
			return temporary{fmt.Errorf("the relay refused our credentials: %s", smtpText(err))}
		}
	}
	step = "MAIL FROM"
	if err := c.Mail(s.cfg.From); err != nil {
		return err
	}
	step = "RCPT TO"
	if err := c.Rcpt(to); err != nil {
		return err
	}
	step = "DATA"
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	step = "QUIT"
	c.Quit() // the mail is accepted; a failing QUIT changes nothing
	return nil
}

// plainAuth is SASL PLAIN for net/smtp without its own TLS check (deliverTo
// makes it, allowing any loopback address).
type plainAuth struct{ user, pass string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected challenge to AUTH PLAIN")
	}
	return nil, nil
}

// temporary marks an error that must be retried whatever SMTP code it wraps.
type temporary struct{ err error }

func (t temporary) Error() string { return t.err.Error() }
func (t temporary) Unwrap() error { return t.err }

// smtpText formats a server's SMTP answer, or any other error.
func smtpText(err error) string {
	var te *textproto.Error
	if errors.As(err, &te) {
		return fmt.Sprintf("%d %s", te.Code, safeText(te.Msg, 300))
	}
	return err.Error()
}

// classify turns a failed transaction into the outbox's terms: a 5xx answer
// to MAIL, RCPT or DATA is a bounce (permanent); anything else, a 5xx
// greeting included (the next MX may work), is retried.
func classify(addr, step, to string, err error) error {
	var tmp temporary
	if errors.As(err, &tmp) {
		return fmt.Errorf("mail to %s via %s: %s: %w", to, addr, step, tmp.err)
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		if te.Code/100 == 5 && (step == "MAIL FROM" || step == "RCPT TO" || step == "DATA") {
			return &agent.PermanentError{Err: fmt.Errorf("mail to %s bounced by %s at %s: %s", to, addr, step, smtpText(err))}
		}
		return fmt.Errorf("mail to %s deferred by %s at %s: %s", to, addr, step, smtpText(err))
	}
	return fmt.Errorf("mail to %s via %s: %s: %w", to, addr, step, err)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
