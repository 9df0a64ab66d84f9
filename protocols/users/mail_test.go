package users

import (
	"bytes"

	"context"
	"github.com/emersion/go-message/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOperatorTemplate: an operator's file replaces the blocks it defines
// (here in German), keeps the built-in others, and the HTML part is
// escaped; a broken template fails at load.
func TestOperatorTemplate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mail.tmpl")
	os.WriteFile(file, []byte(`{{define "subject"}}Konto bei {{.Agent}} bestätigen{{end}}
{{define "text"}}Hallo {{.Name}}, bitte bestätigen: {{.Link}}{{end}}
{{define "html"}}<p>Hallo {{.Name}}, <a href="{{.Link}}">bestätigen</a></p>{{end}}`), 0o600)
	tmpl, err := LoadTemplate(file)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *Config) { c.Template = tmpl; c.AgentName = "Beispiel" })
	if _, err := r.svc.RequestSignup(context.Background(), "<b>Eve</b>", "eve@example.org", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	raw := r.st.Outbound()[0].Payload
	text := mailText(t, raw)
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if subject, _ := mr.Header.Subject(); subject != "Konto bei Beispiel bestätigen" {
		t.Errorf("subject %q", subject)
	}
	if !strings.Contains(text, "Hallo <b>Eve</b>, bitte bestätigen: https://agent.example/v1/users/confirm?token=") {
		t.Errorf("text part:\n%s", text)
	}
	if !strings.Contains(text, "<p>Hallo &lt;b&gt;Eve&lt;/b&gt;, <a href=\"https://agent.example/v1/users/confirm?token=") {
		t.Errorf("HTML part not escaped:\n%s", text)
	}
	// The notice blocks are the built-in ones.
	if _, err := tmpl.render("notice_subject", MailData{Agent: "A"}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(file, []byte(`{{define "text"}}{{.Nope}}{{end}}`), 0o600)
	if _, err := LoadTemplate(file); err == nil || !strings.Contains(err.Error(), `block "text"`) {
		t.Fatalf("broken template: %v", err)
	}
	if _, err := LoadTemplate(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "users.mail_template") {
		t.Fatalf("missing file: %v", err)
	}
}
