package mailtmpl

import (
	"strings"
	"testing"
	"time"
)

const def = `{{define "subject"}}Hi {{.Name}}{{end}}{{define "text"}}Text {{.Name}}{{end}}{{define "html"}}<p>{{.Name}}</p>{{end}}`

type data struct{ Name string }

func TestParseOverrideAndCompose(t *testing.T) {
	tm, err := Parse(def, `{{define "subject"}}Hello {{.Name}}{{end}}`, "x.mail_template", []string{""}, data{"s"})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := tm.Render("subject", data{"Ann"}); s != "Hello Ann" {
		t.Fatalf("the operator's block: %q", s)
	}
	if s, _ := tm.Render("text", data{"Ann"}); s != "Text Ann" {
		t.Fatalf("a default block: %q", s)
	}
	b, err := tm.Compose("", "agent@a.example", "Ann", "ann@b.example", data{"<b>Ann</b>"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m := string(b)
	for _, want := range []string{"Subject: Hello <b>Ann</b>", "multipart/alternative", "&lt;b&gt;Ann&lt;/b&gt;", "Auto-Submitted: auto-generated", "ann@b.example"} {
		if !strings.Contains(m, want) {
			t.Errorf("the mail lacks %q:\n%s", want, m)
		}
	}
	if _, err := Parse(def, `{{define "html"}}{{.Missing}}{{end}}`, "x.mail_template", []string{""}, data{"s"}); err == nil ||
		!strings.Contains(err.Error(), `x.mail_template: block "html"`) {
		t.Fatalf("a broken block: %v", err)
	}
	if _, err := Load(def, "/nonexistent/file", "x.mail_template", nil, data{}); err == nil || !strings.Contains(err.Error(), "x.mail_template") {
		t.Fatalf("a missing file: %v", err)
	}
}
