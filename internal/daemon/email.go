package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/metrics"
	"github.com/agentd/agentd/internal/netguard"
	"github.com/agentd/agentd/transport/email"
)

// mailTransport is the daemon's mail transport: the SMTP listener (when
// smtp.addr is set) and the mailto: sender (when email.address is set).
type mailTransport struct {
	cfg       config.Config
	log       *slog.Logger
	server    *email.Server
	listener  net.Listener
	sender    *email.Sender
	messenger *agent.Messenger
}

// buildEmail sets up the mail transport from the smtp and email sections: the
// mailto: sender is registered with the outbox (messengerSchemes has the
// messenger send to mailto: then); the SMTP server gets the router and the
// database's records as its spool.
func buildEmail(cfg config.Config, router *agent.Router, messenger *agent.Messenger, outbox *agent.Outbox,
	spool agent.Records, leases agent.Leases, m *metrics.Metrics, log *slog.Logger) (*mailTransport, error) {
	mt := &mailTransport{cfg: cfg, log: log, messenger: messenger}
	hostname := mailHostname(cfg)
	if cfg.Email.Address != "" {
		r := cfg.Email.Relay
		sc := email.SenderConfig{
			From: cfg.Email.Address, Hostname: hostname, Relay: r.Addr, RelayTLS: r.StartTLS,
			MXPolicy: netguard.Policy{AllowPrivate: cfg.Outbox.AllowPrivate},
			Observer: m, Logger: log.With("component", "email"),
		}
		if r.CAFile != "" {
			pem, err := os.ReadFile(r.CAFile)
			if err != nil {
				return nil, fmt.Errorf("email.relay.ca_file: %w", err)
			}
			sc.RootCAs = x509.NewCertPool()
			if !sc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("email.relay.ca_file: %s holds no PEM certificate", r.CAFile)
			}
		}
		if r.Username != "" {
			pw, err := secret(r.Password, r.PasswordFile, "email.relay.password_file")
			if err != nil {
				return nil, err
			}
			sc.Auth = &email.Credentials{Username: r.Username, Password: pw}
		}
		sender, err := email.NewSender(sc)
		if err != nil {
			return nil, err
		}
		mt.sender = sender
		outbox.Handle("mailto", sender)
	}
	if cfg.SMTP.Addr == "" {
		return mt, nil
	}
	s := cfg.SMTP
	addresses := append([]string(nil), s.Addresses...)
	if cfg.Email.Address != "" {
		addresses = append(addresses, cfg.Email.Address)
	}
	sc := email.ServerConfig{
		Hostname: hostname, Domains: s.Domains, Addresses: addresses,
		MaxMessageBytes: s.MaxMessageBytes, MaxRecipients: s.MaxRecipients,
		RequireTLS: s.RequireTLS, RequireAuth: s.Auth.Required, AllowInsecureAuth: s.Auth.AllowInsecure,
		RateLimit: s.RateLimit, RateBurst: s.RateBurst, ReadTimeout: s.Timeout, WriteTimeout: s.Timeout,
		MaxSessions: s.MaxSessions, MaxSessionsPerIP: s.MaxSessionsPerIP,
		Receiver: router, Spool: spool, Observer: m, Logger: log.With("component", "smtp"),
		Leases: leases,
	}
	if s.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.TLSCertFile, s.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("smtp.tls_cert_file/tls_key_file: %w", err)
		}
		sc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if s.Auth.Username != "" {
		pw, err := secret(s.Auth.Password, s.Auth.PasswordFile, "smtp.auth.password_file")
		if err != nil {
			return nil, err
		}
		sc.Auth = &email.Credentials{Username: s.Auth.Username, Password: pw}
	}
	srv, err := email.NewServer(sc)
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	mt.server = srv
	m.WatchEmailSpool(srv.Pending)
	return mt, nil
}

// mailHostname is the name the agent uses in SMTP greetings and EHLO.
func mailHostname(cfg config.Config) string {
	switch {
	case cfg.SMTP.Hostname != "":
		return cfg.SMTP.Hostname
	case cfg.Email.Address != "":
		return cfg.Email.Address[strings.LastIndexByte(cfg.Email.Address, '@')+1:]
	case len(cfg.SMTP.Domains) > 0:
		return cfg.SMTP.Domains[0]
	}
	return "localhost"
}

// listen opens the SMTP listener, if there is one.
func (mt *mailTransport) listen() error {
	if mt.server == nil {
		return nil
	}
	ln, err := net.Listen("tcp", mt.cfg.SMTP.Addr)
	if err != nil {
		return fmt.Errorf("smtp.addr: %w", err)
	}
	mt.listener = ln
	return nil
}

// serve runs the SMTP server and its spool processing in the background
// (spawn) until stop was called and bg ends.
func (mt *mailTransport) serve(bg context.Context, spawn func(func())) {
	if mt.listener == nil {
		return
	}
	spawn(func() {
		if err := mt.server.Serve(mt.listener); err != nil && !errors.Is(err, net.ErrClosed) {
			mt.log.Error("smtp server stopped", "err", err)
		}
	})
	spawn(func() { mt.server.Process(bg) })
	mt.log.Info("smtp listening", "addr", mt.listener.Addr().String(), "domains", mt.cfg.SMTP.Domains,
		"address", mt.cfg.Email.Address)
}

// stop stops taking mail: open sessions may finish until the shutdown
// timeout. Spooled mails stay for the next start.
func (mt *mailTransport) stop(ctx context.Context) error {
	if mt.listener == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, mt.cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := mt.server.Shutdown(sctx); err != nil {
		return fmt.Errorf("smtp shutdown: %w", err)
	}
	return nil
}

// SMTPAddr returns the address the SMTP listener is bound to, after Start,
// or "" when there is none.
func (d *Daemon) SMTPAddr() string {
	if d.mail.listener == nil {
		return ""
	}
	return d.mail.listener.Addr().String()
}

// SendEmail sends msg to the DIDs in its to field by mail to address,
// whatever service endpoints their DID documents list: the message is
// authcrypted to each recipient and queued in the outbox for the mailto:
// transport. It needs email.address (the sender). It is how the agent mails
// a DIDComm message to a person's mailbox or to a peer known by address.
func (d *Daemon) SendEmail(ctx context.Context, msg agent.Message, address string) error {
	if d.mail.sender == nil {
		return agent.Errorf(agent.CodeXfer, "outbound mail is not configured (set email.address)")
	}
	addr, err := email.ParseAddress(address)
	if err != nil {
		return agent.Wrap(agent.CodeXfer, err, err.Error())
	}
	return d.mail.messenger.SendTo(ctx, msg, "mailto:"+addr)
}

// banner adds the mail settings to the start banner.
func (mt *mailTransport) banner(w io.Writer) {
	if mt.cfg.Email.Address != "" {
		fmt.Fprintf(w, "  mail:        %s\n", mt.cfg.Email.Address)
	}
	if mt.listener != nil {
		fmt.Fprintf(w, "  smtp:        %s\n", mt.listener.Addr())
	}
}
