package users

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"os"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/emersion/go-message/mail"
)

// MediaTypeMail is the outbox media type of a whole mail (headers and
// body) that the mail transport sends as it is; see transport/email.
const MediaTypeMail = "message/rfc822"

// DefaultTemplate is the mail template in English: the confirmation mail
// ("subject", "text", "html") and the notice to the owner of an account
// that someone tried to claim again ("notice_subject", "notice_text",
// "notice_html"). An operator's template (users.mail_template) is a file
// in the same form; the blocks it leaves out keep these defaults. The data
// is MailData.
const DefaultTemplate = `{{define "subject"}}Confirm your account at {{.Agent}}{{end}}
{{define "text"}}Hello {{.Name}},

someone, hopefully you, asked to {{.Action}} an account with this
address ({{.Email}}) at {{.Agent}}.

To confirm, open this link and press the button on the page:

{{.Link}}

The link works once and expires at {{.Expires}} ({{.TTL}} from now).
If it was not you, ignore this mail: nothing happens without the button.
{{end}}
{{define "html"}}<!doctype html>
<html lang="en"><body>
<p>Hello {{.Name}},</p>
<p>someone, hopefully you, asked to {{.Action}} an account with this address ({{.Email}}) at {{.Agent}}.</p>
<p>To confirm, open <a href="{{.Link}}">this link</a> and press the button on the page.</p>
<p>The link works once and expires at {{.Expires}} ({{.TTL}} from now).
If it was not you, ignore this mail: nothing happens without the button.</p>
</body></html>
{{end}}
{{define "notice_subject"}}Someone tried to claim your account at {{.Agent}}{{end}}
{{define "notice_text"}}Hello {{.Name}},

someone confirmed a request to claim your account ({{.Email}}) at
{{.Agent}} again. Your account is already confirmed, so nothing changed.
If it was you, you can ignore this mail.
{{end}}
{{define "notice_html"}}<!doctype html>
<html lang="en"><body>
<p>Hello {{.Name}},</p>
<p>someone confirmed a request to claim your account ({{.Email}}) at {{.Agent}} again.
Your account is already confirmed, so nothing changed. If it was you, you can ignore this mail.</p>
</body></html>
{{end}}`

// MailData is what a mail template is given.
type MailData struct {
	// Name is the name asked for; Email the address mailed.
	Name, Email string
	// Action is "create" or "claim".
	Action string
	// Link is the confirmation link (it holds the one-time token).
	Link string
	// Expires is the link's expiry (RFC 1123, UTC); TTL the time left.
	Expires, TTL string
	// Agent names the agent (users.agent_name, or its public URL).
	Agent string
}

// Template is a parsed mail template.
type Template struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

var blocks = []string{"subject", "text", "html", "notice_subject", "notice_text", "notice_html"}

// ParseTemplate parses a template in the form of DefaultTemplate; the
// blocks src does not define are taken from DefaultTemplate.
func ParseTemplate(src string) (*Template, error) {
	t := &Template{}
	var err error
	if t.text, err = texttemplate.New("mail").Parse(DefaultTemplate); err != nil {
		return nil, err
	}
	if t.html, err = htmltemplate.New("mail").Parse(DefaultTemplate); err != nil {
		return nil, err
	}
	if src != "" {
		if _, err := t.text.Parse(src); err != nil {
			return nil, fmt.Errorf("mail template: %w", err)
		}
		if _, err := t.html.Parse(src); err != nil {
			return nil, fmt.Errorf("mail template: %w", err)
		}
	}
	// Try every block once, so that a broken template fails at start.
	d := MailData{Name: "N", Email: "a@example.org", Action: "create", Link: "https://example.org/x", Expires: "E", TTL: "T", Agent: "A"}
	for _, b := range blocks {
		if _, err := t.render(b, d); err != nil {
			return nil, fmt.Errorf("mail template: block %q: %w", b, err)
		}
	}
	return t, nil
}

// LoadTemplate reads an operator's template file; "" gives DefaultTemplate.
func LoadTemplate(path string) (*Template, error) {
	if path == "" {
		return ParseTemplate("")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users.mail_template: %w", err)
	}
	return ParseTemplate(string(b))
}

func (t *Template) render(block string, d MailData) (string, error) {
	var buf bytes.Buffer
	var err error
	if strings.HasSuffix(block, "html") {
		err = t.html.ExecuteTemplate(&buf, block, d)
	} else {
		err = t.text.ExecuteTemplate(&buf, block, d)
	}
	return buf.String(), err
}

// compose renders the mail of kind ("" for the confirmation, "notice_"
// for the notice) from from to to as a multipart/alternative mail.
func (t *Template) compose(kind, from, to string, d MailData, date time.Time) ([]byte, error) {
	subject, err := t.render(kind+"subject", d)
	if err != nil {
		return nil, err
	}
	text, err := t.render(kind+"text", d)
	if err != nil {
		return nil, err
	}
	html, err := t.render(kind+"html", d)
	if err != nil {
		return nil, err
	}
	subject = strings.Join(strings.Fields(subject), " ")
	if subject == "" {
		return nil, errors.New("empty subject")
	}
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Address: from}})
	h.SetAddressList("To", []*mail.Address{{Address: to}})
	h.SetSubject(subject)
	h.SetDate(date)
	domain := from[strings.LastIndexByte(from, '@')+1:]
	if err := h.GenerateMessageIDWithHostname(domain); err != nil {
		return nil, err
	}
	h.Set("Auto-Submitted", "auto-generated")
	var buf bytes.Buffer
	w, err := mail.CreateInlineWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	for _, p := range []struct{ mt, body string }{{"text/plain", text}, {"text/html", html}} {
		var ph mail.InlineHeader
		ph.SetContentType(p.mt, map[string]string{"charset": "utf-8"})
		pw, err := w.CreatePart(ph)
		if err != nil {
			return nil, err
		}
		if _, err := pw.Write([]byte(p.body)); err != nil {
			return nil, err
		}
		if err := pw.Close(); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
