package users

import (
	"time"

	"github.com/agentd/agentd/protocols/internal/mailtmpl"
)

// MediaTypeMail is the outbox media type of a whole mail (headers and
// body) that the mail transport sends as it is; see transport/email.
const MediaTypeMail = mailtmpl.MediaType

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

// Template is a parsed mail template (protocols/internal/mailtmpl).
type Template struct{ *mailtmpl.Template }

// mailKinds are the mails of the template ("" for the confirmation, "notice_" for the notice).
var mailKinds = []string{"", "notice_"}

// ParseTemplate parses an operator's template over DefaultTemplate: the
// blocks src defines replace the defaults; a broken block fails here.
func ParseTemplate(src string) (*Template, error) {
	t, err := mailtmpl.Parse(DefaultTemplate, src, "users.mail_template", mailKinds, sampleMail)
	if err != nil {
		return nil, err
	}
	return &Template{t}, nil
}

// LoadTemplate reads an operator's template file; "" gives DefaultTemplate.
func LoadTemplate(path string) (*Template, error) {
	t, err := mailtmpl.Load(DefaultTemplate, path, "users.mail_template", mailKinds, sampleMail)
	if err != nil {
		return nil, err
	}
	return &Template{t}, nil
}

// sampleMail renders every block once at load.
var sampleMail = MailData{Name: "N", Email: "a@example.org", Action: "create", Link: "https://example.org/x", Expires: "E", TTL: "T", Agent: "A"}

func (t *Template) render(block string, d MailData) (string, error) { return t.Render(block, d) }

// compose renders the mail of kind ("" for the confirmation, "notice_" for the notice) from from to to.
func (t *Template) compose(kind, from, to string, d MailData, date time.Time) ([]byte, error) {
	return t.Compose(kind, from, "", to, d, date)
}
