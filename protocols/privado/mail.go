package privado

import (
	"time"

	"github.com/agentd/agentd/protocols/internal/mailtmpl"
)

// MediaTypeMail is the outbox media type of a whole mail, which the mail
// transport sends as it is (users.MediaTypeMail).
const MediaTypeMail = mailtmpl.MediaType

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

// Template is a parsed mail template (protocols/internal/mailtmpl).
type Template struct{ *mailtmpl.Template }

// mailKinds are the mails of the template ("" for the consent mail, "login_" for the link to the user's requests).
var mailKinds = []string{"", "login_"}

// ParseTemplate parses an operator's template over DefaultTemplate: the
// blocks src defines replace the defaults; a broken block fails here.
func ParseTemplate(src string) (*Template, error) {
	t, err := mailtmpl.Parse(DefaultTemplate, src, "privado.mail_template", mailKinds, sampleMail)
	if err != nil {
		return nil, err
	}
	return &Template{t}, nil
}

// LoadTemplate reads an operator's template file; "" gives DefaultTemplate.
func LoadTemplate(path string) (*Template, error) {
	t, err := mailtmpl.Load(DefaultTemplate, path, "privado.mail_template", mailKinds, sampleMail)
	if err != nil {
		return nil, err
	}
	return &Template{t}, nil
}

// sampleMail renders every block once at load.
var sampleMail = MailData{Name: "n", Email: "e@example.com", Exchange: "x", What: "w", Challenge: 1, Link: "https://l", Expires: "e", TTL: "t", Agent: "a"}

func (t *Template) render(block string, d MailData) (string, error) { return t.Render(block, d) }

// compose renders the mail of kind ("" for the consent mail, "login_" for the link to the user's requests) from from to to.
func (t *Template) compose(kind, from, to string, d MailData, date time.Time) ([]byte, error) {
	return t.Compose(kind, from, d.Name, to, d, date)
}
