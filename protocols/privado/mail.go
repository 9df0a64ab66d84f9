package privado

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

// MediaTypeMail is the outbox media type of a whole mail, which the mail
// transport sends as it is (users.MediaTypeMail).
const MediaTypeMail = "message/rfc822"

// DefaultTemplate is the consent mail in English ("subject", "text",
// "html") and the mail with a link to the user's requests
// ("login_subject", "login_text", "login_html"). An operator's template (privado.mail_template) is a file in the
// same form; the blocks it leaves out keep these. The data is MailData.
const DefaultTemplate = `{{define "subject"}}{{.Exchange}} asks for a proof about you{{end}}
{{define "text"}}Hello {{.Name}},

{{.Exchange}} asks, through {{.Agent}}, for a zero-knowledge proof {{.What}}.
The proof reveals nothing else about you, and is bound to the number
{{.Challenge}} that {{.Exchange}} chose.

To give or refuse your consent, open this link:

{{.Link}}

Nothing is shared unless you give consent there and then answer with your
identity wallet. The link expires at {{.Expires}} ({{.TTL}} from now).
{{end}}
{{define "login_subject"}}Your proof requests at {{.Agent}}{{end}}
{{define "login_text"}}Hello {{.Name}},

someone, hopefully you, asked for a link to the proof requests made about
you at {{.Agent}}. This link shows them (it decides nothing):

{{.Link}}

It works until {{.Expires}} ({{.TTL}} from now).
{{end}}
{{define "login_html"}}<!doctype html>
<html lang="en"><body>
<p>Hello {{.Name}},</p>
<p>someone, hopefully you, asked for a link to the proof requests made about you at {{.Agent}}.
<a href="{{.Link}}">This link</a> shows them (it decides nothing).</p>
<p>It works until {{.Expires}} ({{.TTL}} from now).</p>
</body></html>
{{end}}
{{define "html"}}<!doctype html>
<html lang="en"><body>
<p>Hello {{.Name}},</p>
<p><b>{{.Exchange}}</b> asks, through {{.Agent}}, for a zero-knowledge proof {{.What}}.
The proof reveals nothing else about you, and is bound to the number {{.Challenge}} that {{.Exchange}} chose.</p>
<p>To give or refuse your consent, open <a href="{{.Link}}">this link</a>.</p>
<p>Nothing is shared unless you give consent there and then answer with your identity wallet.
The link expires at {{.Expires}} ({{.TTL}} from now).</p>
</body></html>
{{end}}`

// MailData is what the mail template is given.
type MailData struct {
	// Name and Email are the user's.
	Name, Email string
	// Exchange names the exchange that asks.
	Exchange string
	// What is what will be proved, in words (Describe).
	What string
	// Challenge is the exchange's number.
	Challenge uint32
	// Link is the consent link (it holds the token).
	Link string
	// Expires is the link's expiry (RFC 1123, UTC); TTL the time left.
	Expires, TTL string
	// Agent names the service.
	Agent string
}

var blocks = []string{"subject", "text", "html"}

// Template is a parsed consent-mail template.
type Template struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// ParseTemplate parses an operator's template over DefaultTemplate: the
// blocks src defines replace the defaults.
func ParseTemplate(src string) (*Template, error) {
	t := &Template{}
	var err error
	if t.text, err = texttemplate.New("mail").Option("missingkey=error").Parse(DefaultTemplate); err != nil {
		return nil, err
	}
	if t.html, err = htmltemplate.New("mail").Option("missingkey=error").Parse(DefaultTemplate); err != nil {
		return nil, err
	}
	if src != "" {
		if _, err = t.text.Parse(src); err != nil {
			return nil, fmt.Errorf("privado.mail_template: %w", err)
		}
		if _, err = t.html.Parse(src); err != nil {
			return nil, fmt.Errorf("privado.mail_template: %w", err)
		}
	}
	// Render once with sample data: a broken block fails at load, not on
	// the first request.
	sample := MailData{Name: "n", Email: "e@example.com", Exchange: "x", What: "w", Challenge: 1, Link: "https://l", Expires: "e", TTL: "t", Agent: "a"}
	for _, kind := range []string{"", "login_"} {
		if _, err := t.compose(kind, "a@example.com", "b@example.com", sample, time.Now()); err != nil {
			return nil, fmt.Errorf("privado.mail_template: %w", err)
		}
	}
	return t, nil
}

// LoadTemplate reads an operator's template file.
func LoadTemplate(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("privado.mail_template: %w", err)
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

// compose renders the mail of kind ("" for the consent mail, "login_" for
// the link to the user's requests) from from to to.
func (t *Template) compose(kind, from, to string, d MailData, date time.Time) ([]byte, error) {
	parts := map[string]string{}
	for _, b := range blocks {
		s, err := t.render(kind+b, d)
		if err != nil {
			return nil, err
		}
		parts[b] = s
	}
	subject := strings.Join(strings.Fields(parts["subject"]), " ")
	if subject == "" {
		return nil, errors.New("empty subject")
	}
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Address: from}})
	h.SetAddressList("To", []*mail.Address{{Name: d.Name, Address: to}})
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
	for _, p := range []struct{ mt, body string }{{"text/plain", parts["text"]}, {"text/html", parts["html"]}} {
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
