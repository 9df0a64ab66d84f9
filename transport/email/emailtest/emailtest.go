// Package emailtest runs an in-process SMTP server that captures the mail it
// receives, for tests of agentd's outbound mail: a stand-in for a smarthost
// or a mailbox that a test can read. It can answer with chosen SMTP errors,
// offer STARTTLS and require AUTH PLAIN. It also makes self-signed
// certificates for such tests.
package emailtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is one captured mail with its envelope.
type Mail struct {
	From string
	To   []string
	Data []byte
	// TLS reports whether the session used STARTTLS; User is the
	// authenticated user name, if any.
	TLS  bool
	User string
}

// Options configures a capture server; the zero value accepts everything.
type Options struct {
	// Rcpt, when set, is asked about each recipient; an error (use
	// *smtp.SMTPError for a chosen code) refuses it.
	Rcpt func(to string) error
	// Data, when set, is asked after each mail was read; an error refuses it
	// and the mail is not captured.
	Data func(m Mail) error
	// TLS enables STARTTLS.
	TLS *tls.Config
	// User and Password, when set, offer AUTH PLAIN (after STARTTLS when TLS
	// is set) and require it before MAIL.
	User, Password string
}

// Server is a running capture server.
type Server struct {
	// Addr is the loopback HOST:PORT it listens on.
	Addr string
	// Mails receives every accepted mail.
	Mails chan Mail

	opts Options
	srv  *smtp.Server
	mu   sync.Mutex
	n    int
}

// Start runs a capture server on a free loopback port until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), Mails: make(chan Mail, 64), opts: opts}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, c: c}, nil
	}))
	srv.Domain = "capture.test"
	srv.TLSConfig = opts.TLS
	srv.AllowInsecureAuth = opts.TLS == nil
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	s.srv = srv
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		ln.Close() // in case Serve had not registered it yet
	})
	return s
}

// Count returns how many mails were captured.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Wait returns the next captured mail, failing the test after timeout.
func (s *Server) Wait(t testing.TB, timeout time.Duration) Mail {
	t.Helper()
	select {
	case m := <-s.Mails:
		return m
	case <-time.After(timeout):
		t.Fatalf("emailtest: no mail arrived at %s within %v", s.Addr, timeout)
		return Mail{}
	}
}

type session struct {
	s    *Server
	c    *smtp.Conn
	user string
	m    Mail
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.s.opts.User == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.s.opts.User || password != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.User != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	_, isTLS := ss.c.TLSConnectionState()
	ss.m = Mail{From: from, TLS: isTLS, User: ss.user}
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.opts.Rcpt != nil {
		if err := ss.s.opts.Rcpt(to); err != nil {
			return err
		}
	}
	ss.m.To = append(ss.m.To, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.m.Data = b
	if ss.s.opts.Data != nil {
		if err := ss.s.opts.Data(ss.m); err != nil {
			return err
		}
	}
	ss.s.mu.Lock()
	ss.s.n++
	ss.s.mu.Unlock()
	select {
	case ss.s.Mails <- ss.m:
		return nil
	default:
		return errors.New("emailtest: capture buffer full")
	}
}

func (ss *session) Reset()        { ss.m = Mail{} }
func (ss *session) Logout() error { return nil }

// Cert is a self-signed certificate for tests.
type Cert struct {
	// TLS is the certificate with its key, for a server's tls.Config.
	TLS tls.Certificate
	// Pool holds the certificate as a root, for a client's tls.Config.
	Pool *x509.CertPool
	// CertPEM and KeyPEM are the PEM encodings, for configuration files.
	CertPEM, KeyPEM []byte
}

// SelfSigned makes a certificate valid for the given host names and IP
// addresses, for an hour.
func SelfSigned(t testing.TB, hosts ...string) Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: hosts[0]},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := Cert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
		Pool:    x509.NewCertPool(),
	}
	c.TLS, err = tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	c.Pool.AddCert(leaf)
	return c
}

// TLSConfig returns a server configuration with the certificate.
func (c Cert) TLSConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.TLS}}
}
