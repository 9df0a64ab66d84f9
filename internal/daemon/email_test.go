package daemon_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	netsmtp "net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/didcommnode"
	"github.com/agentd/agentd/store/bolt"
	"github.com/agentd/agentd/transport/email"
	"github.com/agentd/agentd/transport/email/emailtest"
)

const (
	trustPing         = "https://didcomm.org/trust-ping/2.0/ping"
	trustPingResponse = "https://didcomm.org/trust-ping/2.0/ping-response"
)

// mailConfig is a test configuration with an SMTP listener for domain, the
// agent's address agent@domain, and relay (if set) as the smarthost.
func mailConfig(t *testing.T, domain, relay string) config.Config {
	cfg := testConfig(t, t.TempDir())
	cfg.SMTP.Addr = freePort(t)
	cfg.SMTP.Domains = []string{domain}
	cfg.Email.Address = "agent@" + domain
	cfg.Email.Relay.Addr = relay
	return cfg
}

func waitListening(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricsText returns the agent's /metrics page.
func metricsText(t *testing.T, r *running) string {
	t.Helper()
	req, _ := http.NewRequest("GET", r.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+r.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitMetric polls /metrics until it has the line want.
func waitMetric(t *testing.T, r *running, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := metricsText(t, r)
		if strings.Contains(m, want+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %q:\n%s", want, grepLines(m, "agentd_"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// didDoc fetches the agent's DID document from GET /did.
func didDoc(t *testing.T, r *running) (*did.Doc, any) {
	t.Helper()
	var got struct {
		DIDDocument json.RawMessage `json:"didDocument"`
	}
	if code := getJSON(t, r.base+"/did", "", &got); code != 200 {
		t.Fatalf("GET /did: %d", code)
	}
	var doc did.Doc
	if err := json.Unmarshal(got.DIDDocument, &doc); err != nil {
		t.Fatal(err)
	}
	var generic any
	json.Unmarshal(got.DIDDocument, &generic)
	return &doc, generic
}

func TestEmailAddressInDID(t *testing.T) {
	cfg := mailConfig(t, "agent.test", "")
	a := start(t, cfg)
	doc, _ := didDoc(t, a)
	svcs := doc.DIDCommServices()
	if len(svcs) != 3 || svcs[0].ServiceEndpoint.URI != cfg.Endpoint() || svcs[1].ServiceEndpoint.URI != cfg.WebSocketEndpoint() ||
		svcs[2].ServiceEndpoint.URI != "mailto:agent@agent.test" ||
		svcs[2].Type != did.ServiceTypeDIDCommMessaging || len(svcs[2].ServiceEndpoint.Accept) != 1 || svcs[2].ServiceEndpoint.Accept[0] != "didcomm/v2" {
		t.Fatalf("services %+v, want the HTTP endpoint, its WebSocket URL and mailto:agent@agent.test", svcs)
	}
	first := a.DID()
	a.Shutdown(context.Background())

	// Same address: same DID. A new address: a new DID, the old one still answered.
	b := start(t, cfg)
	if b.DID() != first {
		t.Fatalf("DID changed across a restart with the same address")
	}
	b.Shutdown(context.Background())
	cfg.Email.Address = "bot@agent.test"
	c := start(t, cfg)
	if c.DID() == first {
		t.Fatal("a new mail address must give a new DID")
	}
	doc, _ = didDoc(t, c)
	if svcs := doc.DIDCommServices(); len(svcs) != 3 || svcs[2].ServiceEndpoint.URI != "mailto:bot@agent.test" {
		t.Fatalf("services after the change %+v", svcs)
	}
	old := `{"id":"` + agent.NewID() + `","type":"` + trustPing + `","to":["` + first + `"],"body":{"response_requested":false}}`
	if code, _, body := post(t, c.base+"/didcomm", agent.MediaTypePlain, []byte(old)); code != http.StatusAccepted {
		t.Fatalf("a message to the old DID: %d %s", code, body)
	}
	// Without an address there is no mailto: service.
	plain := start(t, testConfig(t, t.TempDir()))
	if doc, _ := didDoc(t, plain); len(doc.DIDCommServices()) != 2 {
		t.Fatalf("an agent without a mail address advertises %+v", doc.DIDCommServices())
	}
}

// mailFixture is an agentd with an SMTP listener for agent.test whose
// outbound mail goes to a capture server, and a wallet whose only DIDComm
// endpoint is the mailbox wallet@wallet.test.
type mailFixture struct {
	agentd  *running
	relay   *emailtest.Server
	node    *didcommnode.Peer
	wallet  *wallet
	docs    []any
	secrets []any
	dir     string
}

func newMailFixture(t *testing.T, tweak func(*config.Config)) *mailFixture {
	t.Helper()
	requireTool(t, "swaks")
	relay := emailtest.Start(t, emailtest.Options{})
	cfg := mailConfig(t, "agent.test", relay.Addr)
	if tweak != nil {
		tweak(&cfg)
	}
	a := start(t, cfg)
	_, agentDoc := didDoc(t, a)
	w := newWallet(t, "mailto:wallet@wallet.test")
	return &mailFixture{agentd: a, relay: relay, node: didcommnode.Start(t), wallet: w,
		docs: []any{agentDoc, docJSON(t, w.doc)}, secrets: w.secretJSON(), dir: t.TempDir()}
}

func (f *mailFixture) ping() map[string]any {
	return map[string]any{
		"id": agent.NewID(), "typ": agent.MediaTypePlain, "type": trustPing,
		"from": f.wallet.did, "to": []string{f.agentd.DID()}, "created_time": time.Now().Unix(),
		"body": map[string]any{"response_requested": true},
	}
}

// pack authcrypts m from the wallet to the agent with didcomm-node.
func (f *mailFixture) pack(t *testing.T, m map[string]any) string {
	t.Helper()
	packed, _, err := f.node.PackEncrypted(m, f.agentd.DID(), f.wallet.did, "", map[string]any{"forward": false}, f.docs, f.secrets)
	if err != nil {
		t.Fatal(err)
	}
	return packed
}

// file writes content to a file in the fixture's directory.
func (f *mailFixture) file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// swaks sends a mail from the wallet's mailbox to the agent's SMTP listener.
func (f *mailFixture) swaks(t *testing.T, to string, extra ...string) (string, int) {
	t.Helper()
	host, port, _ := net.SplitHostPort(f.agentd.SMTPAddr())
	args := []string{"--server", host, "--port", port, "--ehlo", "wallet.test",
		"--from", "wallet@wallet.test", "--to", to, "--header", "Subject: DIDComm"}
	return runSwaks(t, append(args, extra...)...)
}

// attach is the swaks arguments attaching a file as a DIDComm encrypted message.
func attach(path string) []string {
	return []string{"--body", "A DIDComm message is attached.", "--attach-type", agent.MediaTypeEncrypted, "--attach", "@" + path}
}

// readReply takes the next mail from the capture relay, checks it is a
// DIDComm mail from the agent to the wallet, and unpacks it with didcomm-node.
func (f *mailFixture) readReply(t *testing.T) (map[string]any, email.Part) {
	t.Helper()
	m := f.relay.Wait(t, 30*time.Second)
	if m.From != "agent@agent.test" || len(m.To) != 1 || m.To[0] != "wallet@wallet.test" {
		t.Fatalf("reply mail from %q to %v", m.From, m.To)
	}
	for _, want := range []string{"Subject: DIDComm message", "Content-Type: text/plain", "filename=message.dcem", "Auto-Submitted: auto-generated"} {
		if !strings.Contains(string(m.Data), want) {
			t.Errorf("reply mail lacks %q", want)
		}
	}
	parts, err := email.Extract(m.Data)
	if err != nil || len(parts) != 1 || parts[0].MediaType != agent.MediaTypeEncrypted || parts[0].Filename != "message.dcem" {
		t.Fatalf("reply mail carries %+v, %v", parts, err)
	}
	msg, meta, err := f.node.Unpack(string(parts[0].Data), nil, f.docs, f.secrets)
	if err != nil {
		t.Fatalf("didcomm-node could not unpack the mailed reply: %v", err)
	}
	if meta["authenticated"] != true || msg["from"] != f.agentd.DID() {
		t.Fatalf("reply from %v, metadata %v: want authcrypt from the agent", msg["from"], meta)
	}
	return msg, parts[0]
}

// TestEmailSwaksPingAnsweredByMail: swaks, a third-party SMTP client, mails a
// trust ping packed by didcomm-node as an attachment to agentd's SMTP
// listener; the wallet's DID lists only a mailto: endpoint, so the
// ping-response goes back by mail (through the relay).
func TestEmailSwaksPingAnsweredByMail(t *testing.T) {
	f := newMailFixture(t, nil)
	ping := f.ping()
	ping["return_route"] = "all" // mail is one-way: the reply still goes by mail
	path := f.file(t, "ping.dcem", f.pack(t, ping))
	out, code := f.swaks(t, "agent@agent.test", attach(path)...)
	if code != 0 || !regexp.MustCompile(`(?m)^<-  250 2\.0\.0 OK: queued`).MatchString(out) {
		t.Fatalf("swaks exit %d:\n%s", code, out)
	}
	msg, _ := f.readReply(t)
	if msg["type"] != trustPingResponse || msg["thid"] != ping["id"] {
		t.Fatalf("mailed reply %v, want the ping-response to %v", msg, ping["id"])
	}
	waitMetric(t, f.agentd, `agentd_email_in_total{result="accepted"} 1`)
	waitMetric(t, f.agentd, `agentd_email_out_total{result="delivered"} 1`)
	waitMetric(t, f.agentd, "agentd_email_spool_pending 0")
	waitMetric(t, f.agentd, `agentd_messages_in_total{result="ok",type="`+trustPing+`"} 1`)

	// A body that is itself the JWE (no attachment) works as well.
	ping2 := f.ping()
	path = f.file(t, "ping2.json", f.pack(t, ping2))
	if out, code := f.swaks(t, "agent@agent.test", "--body", "@"+path); code != 0 {
		t.Fatalf("JWE body: swaks exit %d:\n%s", code, out)
	}
	if msg, _ := f.readReply(t); msg["thid"] != ping2["id"] {
		t.Fatalf("reply to the JWE body: %v", msg)
	}
}

// TestEmailBadInputRefused sends, with swaks, each kind of bad mail: a
// foreign recipient, an oversized mail, a mail without a DIDComm part and a
// corrupted JWE. Each gets its SMTP code and a clear reason, and nothing is
// stored: no spooled mail, nothing in the outbox, no mail out, and the
// corrupted copy did not burn the message id.
func TestEmailBadInputRefused(t *testing.T) {
	f := newMailFixture(t, func(c *config.Config) { c.SMTP.MaxMessageBytes = 16 << 10 })
	ping := f.ping()
	valid := f.pack(t, ping)
	var jwe map[string]any
	json.Unmarshal([]byte(valid), &jwe)
	ct, _ := base64.RawURLEncoding.DecodeString(jwe["ciphertext"].(string))
	ct[len(ct)/2] ^= 0x01
	jwe["ciphertext"] = base64.RawURLEncoding.EncodeToString(ct)
	corrupted, _ := json.Marshal(jwe)

	big := f.file(t, "big.dcem", `{"protected":"`+strings.Repeat("A", 20<<10)+`"}`)
	for _, tc := range []struct {
		name string
		to   string
		args []string
		want string // the refusal line in the swaks transcript
	}{
		{"foreign domain", "someone@elsewhere.test", attach(f.file(t, "v1.dcem", valid)),
			`<** 550 5.7.1 Relay access denied: <someone@elsewhere.test> is not an address this agent takes mail for (agent.test`},
		{"oversized", "agent@agent.test", attach(big), `<** 552 5.3.4 Message exceeds the size limit of 16384 bytes`},
		{"no DIDComm part", "agent@agent.test", []string{"--body", "Hello, no DIDComm here."},
			`<** 554 5.6.0 no DIDComm message in the mail: send it as a MIME part of type application/didcomm-encrypted+json`},
		{"corrupted JWE", "agent@agent.test", attach(f.file(t, "bad.dcem", string(corrupted))),
			`<** 554 5.7.0 attachment "bad.dcem": decryption failed: wrong key or tampered message (e.p.trust.crypto)`},
	} {
		out, code := f.swaks(t, tc.to, tc.args...)
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: swaks exit %d, want the refusal %q in:\n%s", tc.name, code, tc.want, out)
		}
	}
	m := metricsText(t, f.agentd)
	for _, want := range []string{
		"agentd_email_spool_pending 0", "agentd_outbox_pending 0", "agentd_outbox_dead 0",
		`agentd_email_in_total{result="relay-denied"} 1`, `agentd_email_in_total{result="too-large"} 1`,
		`agentd_email_in_total{result="refused"} 2`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("after the refusals metrics lack %q:\n%s", want, grepLines(m, "agentd_"))
		}
	}
	if strings.Contains(m, `agentd_email_in_total{result="accepted"}`) || f.relay.Count() != 0 {
		t.Fatal("bad input was accepted or answered")
	}
	// The same message, uncorrupted, is still processed: nothing was recorded.
	out, code := f.swaks(t, "agent@agent.test", attach(f.file(t, "good.dcem", valid))...)
	if code != 0 {
		t.Fatalf("valid mail after the refused ones: swaks exit %d:\n%s", code, out)
	}
	if msg, _ := f.readReply(t); msg["thid"] != ping["id"] {
		t.Fatalf("reply %v", msg)
	}
}

type deadLetter struct{ To, Endpoint, LastError string }

// deadLetters lists the agent's dead letters through the admin API.
func deadLetters(t *testing.T, r *running) []deadLetter {
	t.Helper()
	var got struct {
		DeadLetters []deadLetter `json:"deadLetters"`
	}
	if code := getJSON(t, r.base+"/admin/deadletters", r.AdminToken(), &got); code != 200 {
		t.Fatalf("GET /admin/deadletters: %d", code)
	}
	return got.DeadLetters
}

// TestEmailOutboundBounceAndRetry: mail that the relay refuses with 5xx is
// a bounce, in the dead-letter list at once with the relay's reason and
// counted; a 4xx answer is retried until it goes through.
func TestEmailOutboundBounceAndRetry(t *testing.T) {
	busy := 2
	relay := emailtest.Start(t, emailtest.Options{Rcpt: func(to string) error {
		switch {
		case strings.HasPrefix(to, "gone@"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such mailbox"}
		case strings.HasPrefix(to, "busy@") && busy > 0:
			busy--
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "Mailbox busy"}
		}
		return nil
	}})
	cfg := mailConfig(t, "agent.test", relay.Addr)
	cfg.SMTP.Addr = "" // outbound only
	a := start(t, cfg)
	peer := newWallet(t, "mailto:gone@peer.test")
	ctx := context.Background()
	ping, _ := agent.NewMessage(trustPing, map[string]any{"response_requested": false})
	ping.To = []string{peer.did}
	ping.From = a.DID()
	// An explicit address, whatever the DID document says.
	if err := a.Daemon.SendEmail(ctx, ping, "busy@peer.test"); err != nil {
		t.Fatal(err)
	}
	// A message from the peer's DID (authcrypted: only an authenticated
	// sender is answered through the outbox) is answered through the
	// endpoint its DID document lists: mailto:gone@peer.test, which the
	// relay refuses.
	fromPeer := `{"id":"` + agent.NewID() + `","type":"` + trustPing + `","from":"` + peer.did + `","body":{"response_requested":true}}`
	packed, err := envelope.PackAuthcrypt([]byte(fromPeer), peer.secrets[0], abuseKA(t, a.base))
	if err != nil {
		t.Fatal(err)
	}
	if code, _, body := post(t, a.base+"/didcomm", agent.MediaTypeEncrypted, packed); code != http.StatusAccepted {
		t.Fatalf("ping from the peer: %d %s", code, body)
	}
	if m := relay.Wait(t, 30*time.Second); m.To[0] != "busy@peer.test" {
		t.Fatalf("delivered to %v", m.To)
	}
	waitMetric(t, a, `agentd_email_out_total{result="deferred"} 2`)
	waitMetric(t, a, `agentd_email_out_total{result="bounced"} 1`)
	waitMetric(t, a, "agentd_outbox_dead 1")
	dead := deadLetters(t, a)
	if len(dead) != 1 {
		t.Fatalf("dead letters: %+v", dead)
	}
	d := dead[0]
	if d.To != peer.did || d.Endpoint != "mailto:gone@peer.test" || !strings.Contains(d.LastError, "bounced") || !strings.Contains(d.LastError, "550 5.1.1 No such mailbox") {
		t.Fatalf("dead letter %+v, want the bounce with the relay's reason", d)
	}
}

// TestEmailThroughPostfix: agent A mails a trust ping to agent B through a
// real Postfix relay on loopback; B takes it on its SMTP listener and
// processes it (its response reaches A over HTTP, A's preferred transport).
// Mail for a domain the relay does not serve is refused by Postfix at RCPT
// and becomes a bounce in A's dead-letter list.
func TestEmailThroughPostfix(t *testing.T) {
	b := start(t, mailConfig(t, "b.test", ""))
	pf := startPostfix(t, "b.test", b.SMTPAddr())
	cfgA := mailConfig(t, "a.test", pf.Addr)
	cfgA.SMTP.Addr = ""
	a := start(t, cfgA)

	ping, _ := agent.NewMessage(trustPing, map[string]any{"response_requested": true})
	ping.From, ping.To = a.DID(), []string{b.DID()}
	if err := a.Daemon.SendEmail(context.Background(), ping, "agent@b.test"); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, b, `agentd_email_in_total{result="accepted"} 1`)
	waitMetric(t, b, `agentd_messages_in_total{result="ok",type="`+trustPing+`"} 1`)
	waitMetric(t, a, `agentd_messages_in_total{result="ok",type="`+trustPingResponse+`"} 1`)
	waitMetric(t, a, `agentd_email_out_total{result="delivered"} 1`)
	if log := pf.log(); !regexp.MustCompile(`to=<agent@b\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent \(250 2\.0\.0 OK: queued\)`).MatchString(log) {
		t.Fatalf("Postfix did not relay the mail to B:\n%s", log)
	}

	// Postfix is no open relay: mail for c.test is refused at RCPT, a bounce.
	other := newWallet(t, "")
	ping2, _ := agent.NewMessage(trustPing, map[string]any{"response_requested": false})
	ping2.From, ping2.To = a.DID(), []string{other.did}
	if err := a.Daemon.SendEmail(context.Background(), ping2, "someone@c.test"); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, a, `agentd_email_out_total{result="bounced"} 1`)
	waitMetric(t, a, "agentd_outbox_dead 1")
	dead := deadLetters(t, a)
	if len(dead) != 1 || dead[0].Endpoint != "mailto:someone@c.test" || !strings.Contains(dead[0].LastError, "554 5.7.1") ||
		!strings.Contains(dead[0].LastError, "Relay access denied") {
		t.Fatalf("dead letters %+v, want Postfix's relay refusal", dead)
	}
}

// lockedBuffer is a log sink safe for the daemon's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEmailPasswordsStaySecret: neither the SMTP AUTH password, nor a
// password a client guessed, nor the relay password appears in the daemon's
// log or in the outbox's errors, through failed logins on both sides.
func TestEmailPasswordsStaySecret(t *testing.T) {
	const smtpPass, guessed, relayPass = "smtp-secret-4f1d", "guessed-pass-9c2e", "relay-secret-77ab"
	relay := emailtest.Start(t, emailtest.Options{User: "agent", Password: "the-right-one"})
	cfg := mailConfig(t, "agent.test", relay.Addr)
	cfg.SMTP.Auth = config.SMTPAuth{Username: "wallet", Password: smtpPass, AllowInsecure: true, Required: true}
	cfg.Email.Relay.Username, cfg.Email.Relay.Password = "agent", relayPass
	logs := &lockedBuffer{}
	d, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	a := &running{Daemon: d, base: "http://" + d.Addr(), cfg: cfg}

	// A client with a wrong password (net/smtp hangs up after it), then one
	// that tries MAIL before AUTH and logs in with the right password.
	smtpClient := func() *netsmtp.Client {
		c, err := netsmtp.Dial(d.SMTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Hello("wallet.test"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := smtpClient().Auth(plainAuth{"wallet", guessed}); err == nil || !strings.Contains(err.Error(), "535") {
		t.Fatalf("a wrong password: %v", err)
	}
	c := smtpClient()
	if err := c.Mail("wallet@wallet.test"); err == nil || !strings.Contains(err.Error(), "530") {
		t.Fatalf("MAIL without AUTH: %v, want 530", err)
	}
	if err := c.Auth(plainAuth{"wallet", smtpPass}); err != nil {
		t.Fatalf("the right password: %v", err)
	}
	if err := c.Mail("wallet@wallet.test"); err != nil {
		t.Fatalf("MAIL after AUTH: %v", err)
	}
	// Outbound mail the relay refuses our login for: retried, never bounced.
	peer := newWallet(t, "mailto:peer@peer.test")
	msg, _ := agent.NewMessage(trustPing, map[string]any{"response_requested": false})
	msg.From, msg.To = a.DID(), []string{peer.did}
	if err := d.SendEmail(context.Background(), msg, "peer@peer.test"); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, a, `agentd_email_out_total{result="deferred"} 2`)
	waitMetric(t, a, `agentd_email_in_total{result="auth-failed"} 1`)
	if relay.Count() != 0 || strings.Contains(metricsText(t, a), `result="bounced"`) {
		t.Fatal("a refused relay login must not deliver or bounce")
	}
	out := logs.String()
	if !strings.Contains(out, "refused our credentials") || !strings.Contains(out, "authentication failed") {
		t.Fatalf("the log should tell about both failed logins:\n%s", out)
	}
	for _, secret := range []string{smtpPass, guessed, relayPass} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains the secret %q", secret)
		}
	}
}

// plainAuth is SASL PLAIN for net/smtp on a test connection without TLS.
type plainAuth struct{ user, pass string }

func (a plainAuth) Start(*netsmtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) { return nil, nil }

// acceptAll checks nothing and processes nothing: it lets a bare
// email.Server store mail in a stopped daemon's database.
type acceptAll struct{}

func (acceptAll) Check(context.Context, string, []byte) (*agent.Message, error) {
	return &agent.Message{}, nil
}

func (acceptAll) Receive(context.Context, string, []byte) (*agent.Reply, error) {
	return nil, agent.Errorf(agent.CodeMe, "this receiver does not process")
}

// TestEmailSpooledMailProcessedAfterRestart: a mail that was answered 250
// and stored in the spool, but not processed before the daemon stopped, is
// processed when the daemon starts again: the ping in it is answered by mail.
func TestEmailSpooledMailProcessedAfterRestart(t *testing.T) {
	f := newMailFixture(t, nil)
	cfg := f.agentd.cfg
	ping := f.ping()
	packed := f.pack(t, ping)
	f.agentd.Shutdown(context.Background())

	// While agentd is down, store the mail as its SMTP server does (250 after
	// the spool commit) and close the database without processing it.
	db, err := bolt.Open(filepath.Join(cfg.DataDir, "agentd.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := email.NewServer(email.ServerConfig{Domains: []string{"agent.test"}, Receiver: acceptAll{}, Spool: db.Records()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	mail, err := email.Compose("wallet@wallet.test", "agent@agent.test", agent.MediaTypeEncrypted, []byte(packed), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := netsmtp.SendMail(ln.Addr().String(), nil, "wallet@wallet.test", []string{"agent@agent.test"}, mail); err != nil {
		t.Fatalf("storing the mail: %v", err)
	}
	if n, err := srv.Pending(context.Background()); err != nil || n != 1 {
		t.Fatalf("spooled mails: %d, %v", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	again := start(t, cfg)
	f.agentd = again
	if msg, _ := f.readReply(t); msg["type"] != trustPingResponse || msg["thid"] != ping["id"] {
		t.Fatalf("reply after the restart: %v", msg)
	}
	waitMetric(t, again, "agentd_email_spool_pending 0")
}
