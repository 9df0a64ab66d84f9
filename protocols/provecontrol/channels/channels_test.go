package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/unboundtest"
	"github.com/agentd/agentd/protocols/provecontrol"
)

func TestTwilioSMS(t *testing.T) {
	var got struct {
		sync.Mutex
		path, user, pass, ctype string
		form                    map[string]string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Lock()
		defer got.Unlock()
		got.path, got.ctype = r.URL.Path, r.Header.Get("Content-Type")
		got.user, got.pass, _ = r.BasicAuth()
		r.ParseForm()
		got.form = map[string]string{"To": r.PostForm.Get("To"), "From": r.PostForm.Get("From"), "Body": r.PostForm.Get("Body")}
		if r.PostForm.Get("To") == "+15005550001" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"code": 21211, "message": "The 'To' number +15005550001 is not a valid phone number.", "status": 400}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"sid": "SM123", "status": "queued"}`)
	}))
	defer srv.Close()
	s := &TwilioSMS{BaseURL: srv.URL + "/", AccountSID: "AC0123", AuthToken: "tok-secret-42", From: "+15005550006"}
	if err := s.SendSMS(context.Background(), "+15005550009", "open https://v.example/c/abc"); err != nil {
		t.Fatal(err)
	}
	if got.path != "/2010-04-01/Accounts/AC0123/Messages.json" || got.user != "AC0123" || got.pass != "tok-secret-42" ||
		got.ctype != "application/x-www-form-urlencoded" {
		t.Fatalf("request %s %s %s", got.path, got.user, got.ctype)
	}
	if got.form["To"] != "+15005550009" || got.form["From"] != "+15005550006" || got.form["Body"] != "open https://v.example/c/abc" {
		t.Fatalf("form %v", got.form)
	}
	err := s.SendSMS(context.Background(), "+15005550001", "open https://v.example/c/abc")
	if err == nil || !strings.Contains(err.Error(), "21211") || strings.Contains(err.Error(), "tok-secret-42") || strings.Contains(err.Error(), "/c/abc") {
		t.Fatalf("error %v", err)
	}
	s.BaseURL = "http://127.0.0.1:1"
	if err := s.SendSMS(context.Background(), "+15005550009", "x"); err == nil || strings.Contains(err.Error(), "AC0123") {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestDiscordDM(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	var content map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bot bot-secret" || !strings.HasPrefix(r.Header.Get("User-Agent"), "DiscordBot (") {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"message": "401: Unauthorized", "code": 0}`)
			return
		}
		calls = append(calls, r.Method+" "+r.URL.Path)
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		switch r.URL.Path {
		case "/api/v10/users/@me/channels":
			if body["recipient_id"] == "111111111111111111" {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"message": "Invalid Recipient(s)", "code": 50033}`)
				return
			}
			io.WriteString(w, `{"id": "222222222222222222", "type": 1}`)
		case "/api/v10/channels/222222222222222222/messages":
			content = body
			io.WriteString(w, `{"id": "333"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	d := &Discord{BaseURL: srv.URL + "/api/v10", BotToken: "bot-secret"}
	if err := d.SendDM(context.Background(), "80351110224678912", "hello <https://v.example/c/x>"); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || calls[0] != "POST /api/v10/users/@me/channels" || calls[1] != "POST /api/v10/channels/222222222222222222/messages" {
		t.Fatalf("calls %v", calls)
	}
	if content["content"] != "hello <https://v.example/c/x>" || content["flags"] != float64(4) {
		t.Fatalf("message %v", content)
	}
	err := d.SendDM(context.Background(), "111111111111111111", "x")
	if err == nil || !strings.Contains(err.Error(), "50033") || strings.Contains(err.Error(), "bot-secret") {
		t.Fatalf("error %v", err)
	}
	d.BotToken = "wrong"
	if err := d.SendDM(context.Background(), "80351110224678912", "x"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
}

// The letter is a PDF that poppler reads: its text has the address and the
// link, and its QR code scans (zbarimg) to the link.
func TestLetterPDF(t *testing.T) {
	for _, tool := range []string{"pdftotext", "pdftoppm", "zbarimg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make deps` (Debian packages poppler-utils and zbar-tools)", tool)
		}
	}
	link := "https://verifier.example.com/c/q3v_0aJZrX9Hc2x-8dPq1mWbL5eN7tYuKiO4sRfGhAz"
	pdf, err := Letter{}.RenderLetter(provecontrol.LetterContent{
		Address: "Ana Müller\nHauptstraße 5 (Hinterhaus)\n10115 Berlin\nGermany", VerifierName: "Example Verifier",
		Verifier: "did:peer:2.Ez6LSghwSE437wnDE1pt3X6hVDUQzSjsHzinpX3XFvMjRAm7y", User: "did:peer:2.Ez6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc",
		Link: link, Expires: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), Reference: "5b0c6f0e-8f43-4c2a-9a55-3a7e0f5d8b21",
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "letter.pdf")
	os.WriteFile(file, pdf, 0o600)
	text, err := exec.Command("pdftotext", "-layout", file, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	flat := strings.Join(strings.Fields(string(text)), "")
	for _, want := range []string{"AnaMüller", "Hauptstraße5(Hinterhaus)", "10115Berlin", strings.ReplaceAll(link, " ", ""),
		"did:peer:2.Ez6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc", "5b0c6f0e-8f43-4c2a-9a55-3a7e0f5d8b21", "2March2026"} {
		if !strings.Contains(flat, want) {
			t.Errorf("the letter's text lacks %q:\n%s", want, text)
		}
	}
	if out, err := exec.Command("pdftoppm", "-r", "100", "-png", "-singlefile", file, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v %s", err, out)
	}
	scan, err := exec.Command("zbarimg", "-q", "--raw", filepath.Join(dir, "page.png")).Output()
	if err != nil {
		t.Fatalf("zbarimg found no QR code: %v", err)
	}
	if got := strings.TrimSpace(string(scan)); got != link {
		t.Fatalf("QR code says %q, want %q", got, link)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-1.4")) {
		t.Fatal("not a PDF")
	}
}

// NewTXTResolver asks the configured server (a real unbound).
func TestTXTResolverAsksItsServer(t *testing.T) {
	addr := unboundtest.Start(t, map[string][]string{"abc.example.test": {"proof-value"}})
	r := NewTXTResolver(addr)
	v, err := r.LookupTXT(context.Background(), "abc.example.test")
	if err != nil || len(v) != 1 || v[0] != "proof-value" {
		t.Fatalf("TXT %v %v", v, err)
	}
	_, err = r.LookupTXT(context.Background(), "missing.example.test")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound || de.Server != addr {
		t.Fatalf("missing record: %#v", err)
	}
	if NewTXTResolver("") != net.DefaultResolver {
		t.Fatal("an empty server must mean the system resolver")
	}
}
