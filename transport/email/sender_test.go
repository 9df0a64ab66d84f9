package email

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/transport/email/emailtest"
)

func newTestSender(t *testing.T, tweak func(*SenderConfig)) (*Sender, *countingObserver) {
	t.Helper()
	obs := newObserver()
	cfg := SenderConfig{From: "agent@a.test", Hostname: "mx.a.test", Observer: obs, Logger: testLogger(t)}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, obs
}

func deliver(s *Sender, endpoint string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.Deliver(ctx, endpoint, agent.MediaTypeEncrypted, []byte(jwe))
}

func TestSenderThroughRelay(t *testing.T) {
	relay := emailtest.Start(t, emailtest.Options{})
	s, obs := newTestSender(t, func(c *SenderConfig) { c.Relay = relay.Addr })
	if err := deliver(s, "mailto:Bob@B.test?subject=ignored"); err != nil {
		t.Fatal(err)
	}
	m := relay.Wait(t, 10*time.Second)
	if m.From != "agent@a.test" || len(m.To) != 1 || m.To[0] != "Bob@b.test" {
		t.Fatalf("envelope from %q to %v", m.From, m.To)
	}
	parts, err := Extract(m.Data)
	if err != nil || len(parts) != 1 || string(parts[0].Data) != jwe || parts[0].Filename != "message.dcem" {
		t.Fatalf("delivered mail does not carry the message: %+v %v", parts, err)
	}
	if obs.Out("delivered") != 1 {
		t.Errorf("delivered count %d", obs.Out("delivered"))
	}
}

func TestSenderBouncesOn5xxAndRetriesOn4xx(t *testing.T) {
	relay := emailtest.Start(t, emailtest.Options{Rcpt: func(to string) error {
		switch {
		case strings.HasPrefix(to, "gone@"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
		case strings.HasPrefix(to, "busy@"):
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Mailbox busy, try later"}
		}
		return nil
	}})
	s, obs := newTestSender(t, func(c *SenderConfig) { c.Relay = relay.Addr })
	err := deliver(s, "mailto:gone@b.test")
	var perm *agent.PermanentError
	if !errors.As(err, &perm) || !strings.Contains(err.Error(), "bounced") || !strings.Contains(err.Error(), "550 5.1.1 No such user here") {
		t.Fatalf("550: %v, want a permanent bounce with the server's reason", err)
	}
	err = deliver(s, "mailto:busy@b.test")
	if err == nil || errors.As(err, &perm) || !strings.Contains(err.Error(), "451 4.3.0 Mailbox busy") {
		t.Fatalf("451: %v, want a temporary error with the server's reason", err)
	}
	if err := deliver(s, "mailto:not-an-address"); !errors.As(err, &perm) {
		t.Fatalf("bad mailto: %v, want permanent", err)
	}
	if obs.Out("bounced") != 2 || obs.Out("deferred") != 1 || relay.Count() != 0 {
		t.Errorf("bounced %d deferred %d captured %d", obs.Out("bounced"), obs.Out("deferred"), relay.Count())
	}
}

func TestSenderByMX(t *testing.T) {
	box := emailtest.Start(t, emailtest.Options{})
	host, port, _ := net.SplitHostPort(box.Addr)
	deadHost := "127.0.0.2" // the preferred MX: nothing listens there, so it refuses connections
	s, _ := newTestSender(t, func(c *SenderConfig) {
		c.MXPort = port
		c.MXPolicy.AllowPrivate = true
		c.LookupMX = func(_ context.Context, domain string) ([]*net.MX, error) {
			switch domain {
			case "b.test":
				return []*net.MX{{Host: host + ".", Pref: 20}, {Host: deadHost + ".", Pref: 10}}, nil
			case "nomail.test":
				return []*net.MX{{Host: ".", Pref: 0}}, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: domain, IsNotFound: true}
		}
		c.LookupHost = func(_ context.Context, h string) ([]string, error) {
			return nil, &net.DNSError{Err: "no such host", Name: h, IsNotFound: true}
		}
	})
	if err := deliver(s, "mailto:bob@b.test"); err != nil {
		t.Fatal(err)
	}
	if m := box.Wait(t, 10*time.Second); m.To[0] != "bob@b.test" {
		t.Fatalf("delivered to %v", m.To)
	}
	var perm *agent.PermanentError
	if err := deliver(s, "mailto:x@nomail.test"); !errors.As(err, &perm) || !strings.Contains(err.Error(), "null MX") {
		t.Fatalf("null MX: %v", err)
	}
	if err := deliver(s, "mailto:x@nowhere.test"); !errors.As(err, &perm) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing domain: %v", err)
	}
}

func TestSenderSTARTTLSAndAuth(t *testing.T) {
	cert := emailtest.SelfSigned(t, "relay.test")
	relay := emailtest.Start(t, emailtest.Options{TLS: cert.TLSConfig(), User: "agent", Password: "relay-pass-1"})
	_, port, _ := net.SplitHostPort(relay.Addr)
	toRelay := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, relay.Addr)
	}
	ok, _ := newTestSender(t, func(c *SenderConfig) {
		c.Relay, c.Dial, c.RelayTLS, c.RootCAs = "relay.test:"+port, toRelay, TLSRequired, cert.Pool
		c.Auth = &Credentials{Username: "agent", Password: "relay-pass-1"}
	})
	if err := deliver(ok, "mailto:bob@b.test"); err != nil {
		t.Fatal(err)
	}
	if m := relay.Wait(t, 10*time.Second); !m.TLS || m.User != "agent" {
		t.Fatalf("mail went over TLS=%v as user %q", m.TLS, m.User)
	}

	var perm *agent.PermanentError
	// A wrong password is our configuration's fault: retried, not bounced,
	// and the password is not in the error.
	wrong, _ := newTestSender(t, func(c *SenderConfig) {
		c.Relay, c.Dial, c.RelayTLS, c.RootCAs = "relay.test:"+port, toRelay, TLSRequired, cert.Pool
		c.Auth = &Credentials{Username: "agent", Password: "wrong-pass-2"}
	})
	err := deliver(wrong, "mailto:bob@b.test")
	if err == nil || errors.As(err, &perm) || !strings.Contains(err.Error(), "refused our credentials") || strings.Contains(err.Error(), "wrong-pass-2") {
		t.Fatalf("wrong password: %v", err)
	}
	// Without the relay's CA the certificate does not verify under "required".
	unverified, _ := newTestSender(t, func(c *SenderConfig) {
		c.Relay, c.Dial, c.RelayTLS = "relay.test:"+port, toRelay, TLSRequired
	})
	if err := deliver(unverified, "mailto:bob@b.test"); err == nil || errors.As(err, &perm) {
		t.Fatalf("unverifiable certificate under required TLS: %v", err)
	}

	// A relay without STARTTLS: "required" fails, and the password is never
	// sent in the clear to a host that is not loopback.
	plain := emailtest.Start(t, emailtest.Options{User: "agent", Password: "relay-pass-1"})
	toPlain := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, plain.Addr)
	}
	for mode, want := range map[string]string{TLSRequired: "does not offer STARTTLS", TLSOpportunistic: "without TLS"} {
		s, _ := newTestSender(t, func(c *SenderConfig) {
			c.Relay, c.Dial, c.RelayTLS = "relay.test:25", toPlain, mode
			c.Auth = &Credentials{Username: "agent", Password: "relay-pass-1"}
		})
		if err := deliver(s, "mailto:bob@b.test"); err == nil || errors.As(err, &perm) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s to a relay without STARTTLS: %v, want a temporary error about %q", mode, err, want)
		}
	}
	if plain.Count() != 0 {
		t.Fatal("mail was sent to the plain relay")
	}
}

// MX hosts come from the recipient's DNS: by default, one on a loopback or
// private address is refused, and a domain with only such hosts is a
// permanent failure (dead-lettered at once), nothing connected.
func TestSenderRefusesPrivateMX(t *testing.T) {
	box := emailtest.Start(t, emailtest.Options{})
	host, port, _ := net.SplitHostPort(box.Addr)
	s, _ := newTestSender(t, func(c *SenderConfig) {
		c.MXPort = port
		c.LookupMX = func(context.Context, string) ([]*net.MX, error) {
			return []*net.MX{{Host: host + ".", Pref: 10}}, nil
		}
	})
	var perm *agent.PermanentError
	if err := deliver(s, "mailto:bob@b.test"); !errors.As(err, &perm) || !strings.Contains(err.Error(), "non-public") {
		t.Fatalf("delivery to a loopback MX: %v, want a permanent refusal", err)
	}
	if n := box.Count(); n != 0 {
		t.Errorf("the loopback mail server got %d mails", n)
	}
}

func TestSenderSendsAComposedMailAsItIs(t *testing.T) {
	relay := emailtest.Start(t, emailtest.Options{})
	s, _ := newTestSender(t, func(c *SenderConfig) { c.Relay = relay.Addr })
	mail := "From: agent@a.test\r\nTo: bob@b.test\r\nSubject: Confirm\r\n\r\nHello Bob\r\n"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Deliver(ctx, "mailto:bob@b.test", MediaTypeMail, []byte(mail)); err != nil {
		t.Fatal(err)
	}
	m := relay.Wait(t, 10*time.Second)
	if len(m.To) != 1 || m.To[0] != "bob@b.test" || !strings.Contains(string(m.Data), "Subject: Confirm\r\n\r\nHello Bob") {
		t.Fatalf("got to %v:\n%s", m.To, m.Data)
	}
}
