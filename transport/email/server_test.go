package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/store/bolt"
	"github.com/agentd/agentd/transport/email/emailtest"
)

// fakeRouter stands in for agent.Router: it refuses what isn't JSON, and
// messages with "corrupt" (as a decryption failure) or "db-down" (as our
// own temporary fault) in them; Receive fails with e.p.me while failReceive > 0.
type fakeRouter struct {
	mu          sync.Mutex
	checked     int
	received    [][]byte
	failReceive int
	got         chan []byte
}

func newFakeRouter() *fakeRouter { return &fakeRouter{got: make(chan []byte, 64)} }

func (f *fakeRouter) Check(_ context.Context, transport string, raw []byte) (*agent.Message, error) {
	f.mu.Lock()
	f.checked++
	f.mu.Unlock()
	if transport != TransportName {
		return nil, agent.Errorf(agent.CodeMe, "wrong transport %q", transport)
	}
	switch {
	case !json.Valid(raw):
		return nil, agent.Errorf(agent.CodeMsg, "message is not valid JSON")
	case bytes.Contains(raw, []byte("corrupt")):
		return nil, agent.Errorf(agent.CodeTrustCrypto, "decryption failed: wrong key or tampered message")
	case bytes.Contains(raw, []byte("db-down")):
		return nil, agent.Errorf(agent.CodeMe, "could not record the message")
	}
	return &agent.Message{}, nil
}

func (f *fakeRouter) Receive(ctx context.Context, transport string, raw []byte) (*agent.Reply, error) {
	if _, err := f.Check(ctx, transport, raw); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failReceive > 0 {
		f.failReceive--
		return nil, agent.Errorf(agent.CodeMe, "could not record the message")
	}
	f.received = append(f.received, raw)
	f.got <- raw
	return &agent.Reply{}, nil
}

func (f *fakeRouter) receivedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.received)
}

// countingObserver records MailIn and MailOut results.
type countingObserver struct {
	mu  sync.Mutex
	in  map[string]int
	out map[string]int
}

func newObserver() *countingObserver {
	return &countingObserver{in: map[string]int{}, out: map[string]int{}}
}

func (o *countingObserver) MailIn(r string)  { o.mu.Lock(); o.in[r]++; o.mu.Unlock() }
func (o *countingObserver) MailOut(r string) { o.mu.Lock(); o.out[r]++; o.mu.Unlock() }
func (o *countingObserver) In(r string) int  { o.mu.Lock(); defer o.mu.Unlock(); return o.in[r] }
func (o *countingObserver) Out(r string) int { o.mu.Lock(); defer o.mu.Unlock(); return o.out[r] }

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func openDB(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type testServer struct {
	*Server
	addr   string
	router *fakeRouter
	obs    *countingObserver
	db     *bolt.DB
}

// startServer runs a Server on a loopback port with a bolt spool; process
// says whether its processing loop runs.
func startServer(t *testing.T, dbPath string, process bool, tweak func(*ServerConfig)) *testServer {
	t.Helper()
	if dbPath == "" {
		dbPath = filepath.Join(t.TempDir(), "agentd.db")
	}
	db := openDB(t, dbPath)
	ts := &testServer{router: newFakeRouter(), obs: newObserver(), db: db}
	cfg := ServerConfig{
		Hostname: "mx.agent.test", Domains: []string{"agent.test"}, Addresses: []string{"ops@other.test"},
		MaxMessageBytes: 16 << 10, Receiver: ts.router, Spool: db.Records(), Observer: ts.obs,
		Logger: testLogger(t), RetryDelay: 50 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	go srv.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if process {
			srv.Process(ctx)
		}
	}()
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		srv.Shutdown(sctx)
		cancel()
		<-done
	})
	return ts
}

func (ts *testServer) pending(t *testing.T) int {
	t.Helper()
	n, err := ts.Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// client is a raw SMTP client that shows every reply code and text.
type client struct {
	t    *testing.T
	conn net.Conn
	tp   *textproto.Conn
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &client{t: t, conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { c.tp.Close() })
	if code, msg := c.read(); code != 220 || !strings.Contains(msg, "mx.agent.test") {
		t.Fatalf("greeting %d %s", code, msg)
	}
	return c
}

func (c *client) read() (int, string) {
	c.t.Helper()
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil && code == 0 {
		c.t.Fatalf("reading the reply: %v", err)
	}
	return code, msg
}

// cmd sends a command line and returns the reply.
func (c *client) cmd(format string, args ...any) (int, string) {
	c.t.Helper()
	if err := c.tp.PrintfLine(format, args...); err != nil {
		c.t.Fatal(err)
	}
	return c.read()
}

// expect sends a command and fails unless the reply has the code.
func (c *client) expect(code int, format string, args ...any) string {
	c.t.Helper()
	got, msg := c.cmd(format, args...)
	if got != code {
		c.t.Fatalf("%s: got %d %s, want %d", fmt.Sprintf(format, args...), got, msg, code)
	}
	return msg
}

// data sends DATA and the mail, and returns the final reply.
func (c *client) data(mail []byte) (int, string) {
	c.t.Helper()
	c.expect(354, "DATA")
	w := c.tp.DotWriter()
	w.Write(mail)
	w.Close()
	return c.read()
}

// send runs a whole transaction and returns the reply to the mail.
func (c *client) send(from, to string, mail []byte) (int, string) {
	c.t.Helper()
	c.expect(250, "MAIL FROM:<%s>", from)
	c.expect(250, "RCPT TO:<%s>", to)
	return c.data(mail)
}

func encryptedMail(body string) []byte {
	return mime(textPart, "Content-Type: application/didcomm-encrypted+json; name=message.dcem\r\nContent-Disposition: attachment; filename=message.dcem\r\nContent-Transfer-Encoding: base64\r\n\r\n"+b64(body))
}

func TestServerAcceptsStoresThenProcesses(t *testing.T) {
	ts := startServer(t, "", true, nil)
	c := dial(t, ts.addr)
	ehlo := c.expect(250, "EHLO client.test")
	for _, ext := range []string{"SIZE 16384", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"} {
		if !strings.Contains(ehlo, ext) {
			t.Errorf("EHLO reply lacks %s: %s", ext, ehlo)
		}
	}
	if strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("STARTTLS/AUTH offered without a certificate or credentials: %s", ehlo)
	}
	if code, msg := c.send("alice@example.org", "agent@agent.test", encryptedMail(jwe)); code != 250 {
		t.Fatalf("good mail: %d %s", code, msg)
	}
	select {
	case got := <-ts.router.got:
		if string(got) != jwe {
			t.Fatalf("router got %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the accepted message was not processed")
	}
	waitFor(t, "the spool to empty", func() bool { return ts.pending(t) == 0 })
	// The listed address of another domain is taken, with a second recipient too.
	c.expect(250, "MAIL FROM:<>")
	c.expect(250, "RCPT TO:<OPS@other.test>")
	c.expect(250, "RCPT TO:<someone@AGENT.test>")
	if code, msg := c.data([]byte("Subject: bare\r\n\r\n" + strings.Replace(jwe, "AAAA", "BBBB", 1) + "\r\n")); code != 250 {
		t.Fatalf("body that is a JWE: %d %s", code, msg)
	}
	waitFor(t, "the second message", func() bool { return ts.router.receivedCount() == 2 })
	c.expect(221, "QUIT")
	if ts.obs.In("accepted") != 2 {
		t.Errorf("accepted count %d", ts.obs.In("accepted"))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServerRefusesBadInput checks every refusal: the code, a reason, and
// that nothing was stored or handed to the router.
func TestServerRefusesBadInput(t *testing.T) {
	ts := startServer(t, "", false, nil)
	c := dial(t, ts.addr)
	c.expect(250, "EHLO client.test")

	c.expect(250, "MAIL FROM:<alice@example.org>")
	for _, rcpt := range []string{"bob@example.org", "agent@sub.agent.test", "dev@other.test", "agent@agent.test.evil.test"} {
		code, msg := c.cmd("RCPT TO:<%s>", rcpt)
		if code != 550 || !strings.Contains(msg, "5.7.1") || !strings.Contains(msg, "Relay access denied") || !strings.Contains(msg, "agent.test") {
			t.Errorf("RCPT %s: %d %s, want 550 5.7.1 relay access denied naming what is accepted", rcpt, code, msg)
		}
	}
	if code, msg := c.cmd("DATA"); code < 500 {
		t.Errorf("DATA without an accepted recipient: %d %s", code, msg)
	}
	c.expect(250, "RSET")

	// SIZE announced over the limit, and a mail over the limit without SIZE.
	if code, msg := c.cmd("MAIL FROM:<alice@example.org> SIZE=999999"); code != 552 {
		t.Errorf("MAIL with SIZE over the limit: %d %s", code, msg)
	}
	big := encryptedMail(strings.Repeat("A", 20<<10))
	if code, msg := c.send("alice@example.org", "agent@agent.test", big); code != 552 || !strings.Contains(msg, "16384 bytes") {
		t.Errorf("oversized mail: %d %s, want 552 naming the limit", code, msg)
	}

	for _, tc := range []struct {
		name, want string
		code       int
		mail       []byte
	}{
		{"no DIDComm part", "no DIDComm message in the mail", 554, mime(textPart)},
		{"corrupted JWE", `attachment "message.dcem": decryption failed`, 554, encryptedMail(strings.Replace(jwe, "AAAA", "corrupt", 1))},
		{"not JSON", `attachment "message.dcem": message is not valid JSON (e.p.msg)`, 554, encryptedMail("{not json")},
		{"bad base64", "could not be decoded", 554, mime("Content-Type: application/didcomm-encrypted+json; name=message.dcem\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!")},
		{"our own fault", "could not record the message", 451, encryptedMail(strings.Replace(jwe, "AAAA", "db-down", 1))},
	} {
		code, msg := c.send("alice@example.org", "agent@agent.test", tc.mail)
		if code != tc.code || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, msg, tc.code, tc.want)
		}
	}
	c.expect(221, "QUIT")
	if n := ts.pending(t); n != 0 {
		t.Fatalf("%d mails stored from bad input", n)
	}
	if n := ts.router.receivedCount(); n != 0 {
		t.Fatalf("%d messages handed to the router from bad input", n)
	}
	for r, n := range map[string]int{"relay-denied": 4, "too-large": 1, "refused": 4, "deferred": 1} {
		if got := ts.obs.In(r); got != n {
			t.Errorf("MailIn(%q) counted %d, want %d", r, got, n)
		}
	}
}

func TestServerRateLimit(t *testing.T) {
	ts := startServer(t, "", false, func(c *ServerConfig) { c.RateLimit = 1; c.RateBurst = 2 })
	c := dial(t, ts.addr)
	c.expect(250, "EHLO client.test")
	for i := 0; i < 2; i++ {
		c.expect(250, "MAIL FROM:<alice@example.org>")
		c.expect(250, "RSET")
	}
	code, msg := c.cmd("MAIL FROM:<alice@example.org>")
	if code != 450 || !strings.Contains(msg, "4.7.1") || !strings.Contains(msg, "try again later") {
		t.Fatalf("third mail within the burst of 2: %d %s, want 450 4.7.1", code, msg)
	}
	if ts.obs.In("rate-limited") != 1 {
		t.Errorf("rate-limited count %d", ts.obs.In("rate-limited"))
	}
}

func TestServerSTARTTLSAndAuth(t *testing.T) {
	cert := emailtest.SelfSigned(t, "mx.agent.test")
	ts := startServer(t, "", true, func(c *ServerConfig) {
		c.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
		c.RequireTLS = true
		c.Auth = &Credentials{Username: "wallet", Password: "s3cret-pass"}
		c.RequireAuth = true
	})
	c := dial(t, ts.addr)
	ehlo := c.expect(250, "EHLO client.test")
	if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Fatalf("before TLS: STARTTLS must be offered and AUTH not: %s", ehlo)
	}
	if code, msg := c.cmd("MAIL FROM:<a@example.org>"); code != 530 || !strings.Contains(msg, "STARTTLS") {
		t.Fatalf("MAIL before STARTTLS: %d %s", code, msg)
	}
	c.expect(220, "STARTTLS")
	tc := tls.Client(c.conn, &tls.Config{ServerName: "mx.agent.test", RootCAs: cert.Pool})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn, c.tp = tc, textproto.NewConn(tc)
	ehlo = c.expect(250, "EHLO client.test")
	if !strings.Contains(ehlo, "AUTH PLAIN") {
		t.Fatalf("after STARTTLS AUTH PLAIN must be offered: %s", ehlo)
	}
	if code, msg := c.cmd("MAIL FROM:<a@example.org>"); code != 530 || !strings.Contains(msg, "Authentication required") {
		t.Fatalf("MAIL before AUTH: %d %s", code, msg)
	}
	plain := func(user, pass string) string {
		return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	}
	if code, msg := c.cmd("AUTH PLAIN %s", plain("wallet", "wrong")); code != 535 {
		t.Fatalf("wrong password: %d %s", code, msg)
	}
	c.expect(235, "AUTH PLAIN %s", plain("wallet", "s3cret-pass"))
	if code, msg := c.send("a@example.org", "agent@agent.test", encryptedMail(jwe)); code != 250 {
		t.Fatalf("authenticated mail over TLS: %d %s", code, msg)
	}
	waitFor(t, "processing", func() bool { return ts.router.receivedCount() == 1 })
	if ts.obs.In("auth-failed") != 1 {
		t.Errorf("auth-failed count %d", ts.obs.In("auth-failed"))
	}
}

// TestSpooledMailSurvivesRestart is the durability test: a mail answered
// 250 by a server whose processing loop never ran is processed by the next
// server on the same database file, after the database was closed and opened
// again.
func TestSpooledMailSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentd.db")
	first := startServer(t, path, false, nil)
	c := dial(t, first.addr)
	c.expect(250, "EHLO client.test")
	if code, msg := c.send("alice@example.org", "agent@agent.test", encryptedMail(jwe)); code != 250 {
		t.Fatalf("%d %s", code, msg)
	}
	c.expect(221, "QUIT")
	if first.pending(t) != 1 || first.router.receivedCount() != 0 {
		t.Fatal("the mail should be stored and not yet processed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.db.Close(); err != nil {
		t.Fatal(err)
	}

	second := startServer(t, path, false, nil)
	second.router.failReceive = 1 // the first try fails with our own fault: kept for retry
	pctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); second.Process(pctx) }()
	defer func() { stop(); <-done }()
	select {
	case got := <-second.router.got:
		if string(got) != jwe {
			t.Fatalf("processed %q", got)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the spooled mail was not processed after the restart")
	}
	waitFor(t, "the spool to empty", func() bool { return second.pending(t) == 0 })
}

// TestServerTakesDeliveryStatusNotifications: a bounce (null sender,
// multipart/report) about a mail the agent sent is accepted, logged and
// counted rather than refused, and nothing is spooled.
func TestServerTakesDeliveryStatusNotifications(t *testing.T) {
	ts := startServer(t, "", true, nil)
	c := dial(t, ts.addr)
	c.expect(250, "EHLO mx.example.org")
	dsn := "From: MAILER-DAEMON@example.org\r\nTo: agent@agent.test\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\r\n\r\n" +
		"--R\r\nContent-Type: text/plain\r\n\r\nYour mail could not be delivered.\r\n" +
		"--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n" +
		"Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n" +
		"--R--\r\n"
	if code, msg := c.send("", "agent@agent.test", []byte(dsn)); code != 250 {
		t.Fatalf("DSN: %d %s", code, msg)
	}
	if ts.obs.In("dsn") != 1 || ts.pending(t) != 0 {
		t.Fatalf("dsn count %d, spooled %d", ts.obs.In("dsn"), ts.pending(t))
	}
	info, ok := parseDSN([]byte(dsn))
	if !ok || info.recipient != "rfc822; gone@example.org" || info.status != "5.1.1" || info.action != "failed" {
		t.Fatalf("parsed DSN %+v", info)
	}
	// The same report from a real sender is no DSN: refused as mail without DIDComm.
	if code, _ := c.send("someone@example.org", "agent@agent.test", []byte(dsn)); code != 554 {
		t.Fatalf("a report with a sender: %d, want 554", code)
	}
}
