package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/unboundtest"
	"github.com/agentd/agentd/transport/email/emailtest"
)

// The Prove Control end-to-end tests run two agentd processes, a verifier
// and a user, configured by YAML files, and drive both through their admin
// APIs, as an operator would with curl.

// proc is a running agentd process.
type proc struct {
	t      *testing.T
	name   string
	dir    string
	addr   string
	token  string
	config string
	env    []string
	cmd    *exec.Cmd
	out    *syncBuffer
	did    string
}

// syncBuffer is a bytes.Buffer safe for the process's writers and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProc writes the config (YAML after the common part) and starts agentd.
func startProc(t *testing.T, name, yaml string, env ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{t: t, name: name, dir: dir, addr: freeAddr(t), token: name + "-admin-token-0123456789abcdef", env: env}
	p.config = filepath.Join(dir, "agentd.yaml")
	common := fmt.Sprintf("data_dir: %s\nhttp:\n  addr: %s\noutbox:\n  base_delay: 50ms\n  max_delay: 500ms\n  allow_private: true\nlog:\n  level: debug\n", filepath.Join(dir, "data"), p.addr)
	if err := os.WriteFile(p.config, []byte(common+yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p.start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- %s output ----\n%s", p.name, p.out.String())
		}
	})
	return p
}

func (p *proc) start() {
	p.t.Helper()
	cmd := exec.Command(os.Args[0], "--config", p.config)
	cmd.Env = append(append(os.Environ(), "AGENTD_TEST_RUN_MAIN=1", "AGENTD_ADMIN_TOKEN="+p.token), p.env...)
	if p.out == nil {
		p.out = &syncBuffer{}
	}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
	p.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitHealthy(p.t, p.addr)
	var d struct {
		DID string `json:"did"`
	}
	p.call("GET", "/did", nil, &d, 200)
	p.did = d.DID
}

// restart stops the process cleanly and starts it again with extra YAML.
func (p *proc) restart(extraYAML string) {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	f, err := os.OpenFile(p.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	f.WriteString(extraYAML)
	f.Close()
	p.start()
}

// call makes a request to the agent (the admin token on /admin/ paths) and
// checks the status; it returns the body.
func (p *proc) call(method, path string, body, out any, wantStatus int) []byte {
	p.t.Helper()
	var rd io.Reader
	if b, ok := body.([]byte); ok {
		rd = bytes.NewReader(b)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+p.addr+path, rd)
	if strings.HasPrefix(path, "/admin/") {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s %s: %v", p.name, method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if wantStatus != 0 && resp.StatusCode != wantStatus {
		p.t.Fatalf("%s %s %s: %s, want %d: %s", p.name, method, path, resp.Status, wantStatus, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			p.t.Fatalf("%s %s %s: %v: %s", p.name, method, path, err, data)
		}
	}
	return data
}

// received is the user's view of a challenge.
type received struct {
	ID               string `json:"id"`
	Verifier         string `json:"verifier"`
	User             string `json:"user"`
	VerificationType string `json:"verification_type"`
	Subject          string `json:"subject"`
	RequestID        string `json:"request_id"`
	State            string `json:"state"`
	Transport        string `json:"transport"`
	DNSRecord        *struct {
		Name, Type, Value string
	} `json:"dns_record"`
}

type requestOutcome struct {
	Request struct {
		ID string `json:"id"`
	} `json:"request"`
	Challenge *received `json:"challenge"`
	Problem   *struct {
		Code, Comment string
	} `json:"problem"`
}

type credential struct {
	ID               string `json:"id"`
	Issuer           string `json:"issuer"`
	Holder           string `json:"holder"`
	VerificationType string `json:"verification_type"`
	Subject          string `json:"subject"`
	JWT              string `json:"jwt"`
}

type proveOutcome struct {
	Challenge  received    `json:"challenge"`
	Answered   bool        `json:"answered"`
	Credential *credential `json:"credential"`
	Problem    *struct {
		Code, Comment string
	} `json:"problem"`
}

// request has the user ask the verifier for a challenge.
func request(user, verifier *proc, vt, subject string) requestOutcome {
	user.t.Helper()
	var out requestOutcome
	wait := "1s" // long enough for a refusal; the challenge comes another way
	if vt == "Domain" || vt == "DID" {
		wait = "10s" // the challenge comes over DIDComm
	}
	user.call("POST", "/admin/provecontrol/requests", map[string]string{
		"verifier": verifier.did, "verification_type": vt, "subject": subject, "wait": wait}, &out, 201)
	if out.Problem != nil {
		user.t.Fatalf("the verifier refused the request: %+v", out.Problem)
	}
	return out
}

// awaitChallenge waits until the user holds the challenge answering requestID.
func awaitChallenge(user *proc, requestID string) received {
	user.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list struct {
			Challenges []received `json:"challenges"`
		}
		user.call("GET", "/admin/provecontrol/received", nil, &list, 200)
		for _, c := range list.Challenges {
			if c.RequestID == requestID {
				return c
			}
		}
		if time.Now().After(deadline) {
			user.t.Fatalf("no challenge for request %s arrived", requestID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// proveAndCheck has the user prove the challenge and checks the confirmation
// on both sides.
func proveAndCheck(t *testing.T, user, verifier *proc, c received, vt, subject string) {
	t.Helper()
	var out proveOutcome
	user.call("POST", "/admin/provecontrol/received/"+c.ID+"/prove", map[string]string{"wait": "20s"}, &out, 200)
	if out.Problem != nil || out.Credential == nil {
		t.Fatalf("prove: %s", mustJSON(out))
	}
	cr := out.Credential
	if cr.Issuer != verifier.did || cr.Holder != user.did && vt != "DID" || cr.VerificationType != vt || cr.Subject != subject || !strings.HasPrefix(cr.JWT, "ey") {
		t.Fatalf("credential %s", mustJSON(cr))
	}
	if out.Challenge.State != "confirmed" {
		t.Fatalf("user's challenge state %s", out.Challenge.State)
	}
	var creds struct {
		Credentials []credential `json:"credentials"`
	}
	user.call("GET", "/admin/credentials", nil, &creds, 200)
	found := false
	for _, c := range creds.Credentials {
		found = found || c.ID == cr.ID
	}
	if !found {
		t.Fatalf("the credential is not listed: %s", mustJSON(creds))
	}
	// It is one of the agent's held credentials for the cloud-agent API too.
	var held struct {
		Typename       string `json:"__typename"`
		ID             string `json:"id"`
		CredentialJSON string `json:"credentialJson"`
	}
	user.must(`query($id: ID!) { credential(credentialId: $id) { __typename ... on W3CCredential { id credentialJson } } }`,
		map[string]any{"id": cr.ID}, &held)
	if held.Typename != "W3CCredential" || held.ID != cr.ID || held.CredentialJSON != cr.JWT {
		t.Fatalf("held credential %+v", held)
	}
	var ch struct {
		State        string `json:"state"`
		CredentialID string `json:"credential_id"`
	}
	verifier.call("GET", "/admin/provecontrol/challenges/"+c.ID, nil, &ch, 200)
	if ch.State != "confirmed" || ch.CredentialID != cr.ID {
		t.Fatalf("verifier's challenge %+v", ch)
	}
	var vs struct {
		Verifications []struct {
			ID, User, Subject string
		} `json:"verifications"`
	}
	verifier.call("GET", "/admin/provecontrol/verifications", nil, &vs, 200)
	found = false
	for _, v := range vs.Verifications {
		found = found || v.ID == cr.ID && v.Subject == subject
	}
	if !found {
		t.Fatalf("the verification is not recorded: %s", mustJSON(vs))
	}
	// A second prove of the same challenge: the challenge succeeded once.
	user.call("POST", "/admin/provecontrol/received/"+c.ID+"/prove", map[string]string{"wait": "1s"}, nil, 400)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

const verifierYAML = `provecontrol:
  verifier:
    name: E2E Verifier
    allow_private_ips: true
    letters: true
`

func TestProveControlDomainWithUnbound(t *testing.T) {
	// The DNS server is started once the record is known; the verifier asks
	// it through --dns-server, which the test passes as the environment
	// variable of that flag after a restart.
	verifier := startProc(t, "verifier", verifierYAML)
	user := startProc(t, "user", "")
	out := request(user, verifier, "Domain", "Example.test")
	if out.Challenge == nil || out.Challenge.DNSRecord == nil {
		t.Fatalf("the Domain challenge did not come back over DIDComm: %s", mustJSON(out))
	}
	c := *out.Challenge
	rec := c.DNSRecord
	if rec.Name != c.ID+".example.test" || rec.Type != "TXT" || len(rec.Value) != 64 {
		t.Fatalf("TXT record %+v", rec)
	}
	// Without the record the verifier refuses, and says why.
	var po proveOutcome
	dnsAddr := unboundtest.Start(t, map[string][]string{rec.Name: {rec.Value}, "other.example.test": {"x"}})
	verifier.env = append(verifier.env, "AGENTD_DNS_SERVER=127.0.0.1:1") // nothing listens there
	verifier.restart("")
	user.call("POST", "/admin/provecontrol/received/"+c.ID+"/prove", map[string]string{"wait": "20s"}, &po, 200)
	if po.Problem == nil || po.Problem.Code != "e.m.xfer.provecontrol.dns-lookup" || po.Challenge.State != "proved" {
		t.Fatalf("prove with an unreachable DNS server: %s", mustJSON(po))
	}
	verifier.env = append(verifier.env, "AGENTD_DNS_SERVER="+dnsAddr)
	verifier.restart("")
	proveAndCheck(t, user, verifier, c, "Domain", "example.test")
}

func TestProveControlDID(t *testing.T) {
	verifier := startProc(t, "verifier", verifierYAML)
	user := startProc(t, "user", "")
	// The user's agent gets a second DID (new key agreement curves); the
	// first one stays its own, and it proves that it controls it.
	old := user.did
	user.restart("did:\n  key_agreement: [X25519, P-256]\n")
	if user.did == old {
		t.Fatal("the user's DID did not change")
	}
	out := request(user, verifier, "DID", old)
	c := out.Challenge
	if c == nil {
		c2 := awaitChallenge(user, out.Request.ID)
		c = &c2
	}
	if c.Subject != old || c.User != user.did {
		t.Fatalf("challenge %s", mustJSON(c))
	}
	var vc struct{ Channel string }
	verifier.call("GET", "/admin/provecontrol/challenges/"+c.ID, nil, &vc, 200)
	if vc.Channel != "subject-did" {
		t.Fatalf("the DID challenge went by %q, not to the subject DID", vc.Channel)
	}
	proveAndCheck(t, user, verifier, *c, "DID", old)
}

func TestProveControlIP(t *testing.T) {
	verifier := startProc(t, "verifier", verifierYAML)
	user := startProc(t, "user", "")
	out := request(user, verifier, "IP", user.addr) // the user's agent serves the well-known path
	c := awaitChallenge(user, out.Request.ID)
	if c.Transport != "ip" || c.Subject != user.addr {
		t.Fatalf("challenge %s", mustJSON(c))
	}
	proveAndCheck(t, user, verifier, c, "IP", user.addr)
}

// providers is a local HTTP server speaking the Twilio Messages API and the
// Discord bot API, capturing what they would deliver.
type providers struct {
	mu      sync.Mutex
	sms     []string
	discord []string
	url     string
}

func startProviders(t *testing.T) *providers {
	p := &providers{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch {
		case r.Method == "POST" && r.URL.Path == "/2010-04-01/Accounts/ACe2e/Messages.json":
			if u, pw, _ := r.BasicAuth(); u != "ACe2e" || pw != "sms-secret-token" {
				w.WriteHeader(401)
				io.WriteString(w, `{"code":20003,"message":"Authenticate"}`)
				return
			}
			r.ParseForm()
			p.sms = append(p.sms, r.PostForm.Get("To")+"\n"+r.PostForm.Get("Body"))
			w.WriteHeader(201)
			io.WriteString(w, `{"sid":"SM1","status":"queued"}`)
		case r.Method == "POST" && r.URL.Path == "/discord/users/@me/channels":
			if r.Header.Get("Authorization") != "Bot discord-secret-token" {
				w.WriteHeader(401)
				return
			}
			var b map[string]string
			json.NewDecoder(r.Body).Decode(&b)
			io.WriteString(w, `{"id":"dm-`+b["recipient_id"]+`"}`)
		case r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/discord/channels/dm-"):
			var b map[string]any
			json.NewDecoder(r.Body).Decode(&b)
			p.discord = append(p.discord, strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/messages"), "/discord/channels/dm-")+"\n"+fmt.Sprint(b["content"]))
			io.WriteString(w, `{"id":"m1"}`)
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

var linkRE = regexp.MustCompile(`https?://[^\s<>]+/c/[A-Za-z0-9_-]{43}`)

func (p *providers) wait(t *testing.T, which *[]string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		n := len(*which)
		var last string
		if n > 0 {
			last = (*which)[n-1]
		}
		p.mu.Unlock()
		if n > 0 {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatal("the provider got nothing")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestProveControlTelAndDiscord(t *testing.T) {
	prov := startProviders(t)
	verifier := startProc(t, "verifier", verifierYAML+fmt.Sprintf(`  sms:
    base_url: %s
    account_sid: ACe2e
    from: "+15005550006"
  discord:
    base_url: %s/discord
`, prov.url, prov.url), "AGENTD_SMS_AUTH_TOKEN=sms-secret-token", "AGENTD_DISCORD_BOT_TOKEN=discord-secret-token")
	user := startProc(t, "user", "")

	out := request(user, verifier, "Tel", "+1 500 555 0009")
	sms := prov.wait(t, &prov.sms)
	to, body, _ := strings.Cut(sms, "\n")
	link := linkRE.FindString(body)
	if to != "+15005550009" || link == "" || !strings.HasPrefix(link, "http://"+verifier.addr+"/c/") {
		t.Fatalf("SMS to %q: %q", to, body)
	}
	// A browser (or a link preview) gets a page and does not use the link up.
	resp, err := http.Get(link)
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET in a browser: %v %v", err, resp)
	}
	resp.Body.Close()
	var c received
	user.call("POST", "/admin/provecontrol/fetch", map[string]string{"url": link}, &c, 200)
	if c.RequestID != out.Request.ID || c.Transport != "link" || c.Subject != "+15005550009" {
		t.Fatalf("fetched %s", mustJSON(c))
	}
	// The link works once.
	data := user.call("POST", "/admin/provecontrol/fetch", map[string]string{"url": link}, nil, 400)
	if !strings.Contains(string(data), "used already") {
		t.Fatalf("second fetch: %s", data)
	}
	req, _ := http.NewRequest("GET", link, nil)
	req.Header.Set("Accept", "application/didcomm-encrypted+json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusGone {
		t.Fatalf("a used link: %v %v", err, resp)
	}
	req, _ = http.NewRequest("GET", "http://"+verifier.addr+"/c/"+strings.Repeat("x", 43), nil)
	req.Header.Set("Accept", "application/didcomm-encrypted+json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an unknown link: %v %v", err, resp)
	}
	proveAndCheck(t, user, verifier, c, "Tel", "+15005550009")

	out = request(user, verifier, "Discord", "80351110224678912")
	dm := prov.wait(t, &prov.discord)
	recipient, text, _ := strings.Cut(dm, "\n")
	link = linkRE.FindString(text)
	if recipient != "80351110224678912" || link == "" || !strings.Contains(text, "<"+link+">") {
		t.Fatalf("DM to %q: %q", recipient, text)
	}
	user.call("POST", "/admin/provecontrol/fetch", map[string]string{"url": link}, &c, 200)
	if c.RequestID != out.Request.ID {
		t.Fatalf("fetched %s", mustJSON(c))
	}
	proveAndCheck(t, user, verifier, c, "Discord", "80351110224678912")

	// The provider tokens never reach the logs.
	for _, s := range []string{"sms-secret-token", "discord-secret-token", linkRE.FindString(body)} {
		if strings.Contains(verifier.out.String(), s) || strings.Contains(user.out.String(), s) {
			t.Errorf("%q appears in an agent's output", s)
		}
	}
}

func TestProveControlAddressLetter(t *testing.T) {
	verifier := startProc(t, "verifier", verifierYAML)
	user := startProc(t, "user", "")
	out := request(user, verifier, "Address", "Ana Example\n1 Main Street\n12345 Springfield")
	var letters struct {
		Letters []struct {
			ID, User, Address string
			Bytes             int `json:"bytes"`
		} `json:"letters"`
	}
	verifier.call("GET", "/admin/provecontrol/letters?unsent=true", nil, &letters, 200)
	if len(letters.Letters) != 1 || letters.Letters[0].User != user.did || letters.Letters[0].Bytes == 0 {
		t.Fatalf("letters %s", mustJSON(letters))
	}
	id := letters.Letters[0].ID
	pdf := verifier.call("GET", "/admin/provecontrol/letters/"+id+"/pdf", nil, nil, 200)
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatal("the letter is not a PDF")
	}
	// The wallet scans the letter's QR code (poppler renders the page, zbar reads it).
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "letter.pdf"), pdf, 0o600)
	if out, err := exec.Command("pdftoppm", "-r", "100", "-png", "-singlefile", filepath.Join(dir, "letter.pdf"), filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm (make deps installs poppler-utils): %v %s", err, out)
	}
	scan, err := exec.Command("zbarimg", "-q", "--raw", filepath.Join(dir, "page.png")).Output()
	link := strings.TrimSpace(string(scan))
	if err != nil || !linkRE.MatchString(link) {
		t.Fatalf("zbarimg (make deps installs zbar-tools) read %q from the letter's QR code: %v", scan, err)
	}
	verifier.call("POST", "/admin/provecontrol/letters/"+id+"/sent", nil, nil, 200)
	verifier.call("GET", "/admin/provecontrol/letters?unsent=true", nil, &letters, 200)
	if len(letters.Letters) != 0 {
		t.Fatalf("unsent letters after sending: %s", mustJSON(letters))
	}
	var c received
	user.call("POST", "/admin/provecontrol/fetch", map[string]string{"url": link}, &c, 200)
	if c.RequestID != out.Request.ID {
		t.Fatalf("fetched %s", mustJSON(c))
	}
	proveAndCheck(t, user, verifier, c, "Address", "Ana Example\n1 Main Street\n12345 Springfield")
}

// Email: the verifier's mail goes through the email transport to the user's
// own SMTP listener; a second challenge is captured by a mailbox and
// imported by the operator as an .eml file.
func TestProveControlEmail(t *testing.T) {
	smtpAddr := freeAddr(t)
	user := startProc(t, "user", fmt.Sprintf("smtp:\n  addr: %s\n  domains: [user.test]\n  rate_limit: 0\n", smtpAddr))
	verifier := startProc(t, "verifier", verifierYAML+fmt.Sprintf("email:\n  address: verifier@verifier.test\n  relay:\n    addr: %s\n    starttls: \"off\"\n", smtpAddr))
	out := request(user, verifier, "Email", "ana@user.test")
	c := awaitChallenge(user, out.Request.ID)
	if c.Transport != "smtp" || c.Subject != "ana@user.test" {
		t.Fatalf("challenge %s", mustJSON(c))
	}
	proveAndCheck(t, user, verifier, c, "Email", "ana@user.test")

	// The same through a mailbox and an imported .eml.
	mailbox := emailtest.Start(t, emailtest.Options{})
	verifier.env = append(verifier.env, "AGENTD_SMTP_RELAY="+mailbox.Addr)
	verifier.restart("")
	out = request(user, verifier, "Email", "bob@mailbox.test")
	mail := mailbox.Wait(t, 20*time.Second)
	if len(mail.To) != 1 || mail.To[0] != "bob@mailbox.test" {
		t.Fatalf("mail to %v", mail.To)
	}
	var imported struct {
		Challenges []received `json:"challenges"`
	}
	user.call("POST", "/admin/provecontrol/import", mail.Data, &imported, 200)
	if len(imported.Challenges) != 1 || imported.Challenges[0].RequestID != out.Request.ID || imported.Challenges[0].Transport != "import" {
		t.Fatalf("imported %s", mustJSON(imported))
	}
	proveAndCheck(t, user, verifier, imported.Challenges[0], "Email", "bob@mailbox.test")
	// Importing it again changes nothing; a mail without DIDComm is refused.
	user.call("POST", "/admin/provecontrol/import", mail.Data, nil, 200)
	user.call("POST", "/admin/provecontrol/import", []byte("Subject: hi\r\n\r\nhello\r\n"), nil, 400)
}
