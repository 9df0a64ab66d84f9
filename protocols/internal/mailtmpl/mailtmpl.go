// Package mailtmpl renders the mails protocols send to people (sign-up
// confirmations, consent requests) from templates an operator may replace:
// Go template blocks named <kind>subject, <kind>text and <kind>html,
// parsed over a built-in default so that a file defining some blocks keeps
// the others, and composed into a multipart/alternative mail the outbox
// hands to the mail transport as it is (MediaType).
package mailtmpl

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

// MediaType is the outbox media type of a whole mail, which the mail
// transport sends as it is.
const MediaType = "message/rfc822"

// parts are the blocks of one mail, after its kind.
var parts = []string{"subject", "text", "html"}

// Template is a parsed mail template: the text blocks through text/template,
// the html blocks through html/template (values escaped).
type Template struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// Parse parses src over def: the blocks src defines replace def's. Every
// block of every kind is rendered once with sample, so that a broken
// template fails here rather than on the first mail; errors name setting.
func Parse(def, src, setting string, kinds []string, sample any) (*Template, error) {
	t := &Template{}
	var err error
	if t.text, err = texttemplate.New("mail").Option("missingkey=error").Parse(def); err != nil {
		return nil, err
	}
	if t.html, err = htmltemplate.New("mail").Option("missingkey=error").Parse(def); err != nil {
		return nil, err
	}
	if src != "" {
		if _, err := t.text.Parse(src); err != nil {
			return nil, fmt.Errorf("%s: %w", setting, err)
		}
		if _, err := t.html.Parse(src); err != nil {
			return nil, fmt.Errorf("%s: %w", setting, err)
		}
	}
	for _, k := range kinds {
		for _, p := range parts {
			if _, err := t.Render(k+p, sample); err != nil {
				return nil, fmt.Errorf("%s: block %q: %w", setting, k+p, err)
			}
		}
	}
	return t, nil
}

// Load parses the operator's template file at path over def ("" gives
// def alone); see Parse.
func Load(def, path, setting string, kinds []string, sample any) (*Template, error) {
	src := ""
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", setting, err)
		}
		src = string(b)
	}
	return Parse(def, src, setting, kinds, sample)
}

// Render renders one block with data.
func (t *Template) Render(block string, data any) (string, error) {
	var buf bytes.Buffer
	var err error
	if strings.HasSuffix(block, "html") {
		err = t.html.ExecuteTemplate(&buf, block, data)
	} else {
		err = t.text.ExecuteTemplate(&buf, block, data)
	}
	return buf.String(), err
}

// Compose renders the mail of kind from from to to (toName may be empty)
// as a multipart/alternative mail, text and HTML, marked auto-generated.
func (t *Template) Compose(kind, from, toName, to string, data any, date time.Time) ([]byte, error) {
	r := map[string]string{}
	for _, p := range parts {
		s, err := t.Render(kind+p, data)
		if err != nil {
			return nil, err
		}
		r[p] = s
	}
	subject := strings.Join(strings.Fields(r["subject"]), " ")
	if subject == "" {
		return nil, errors.New("empty subject")
	}
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Address: from}})
	h.SetAddressList("To", []*mail.Address{{Name: toName, Address: to}})
	h.SetSubject(subject)
	h.SetDate(date)
	if err := h.GenerateMessageIDWithHostname(from[strings.LastIndexByte(from, '@')+1:]); err != nil {
		return nil, err
	}
	h.Set("Auto-Submitted", "auto-generated")
	var buf bytes.Buffer
	w, err := mail.CreateInlineWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	for _, p := range []struct{ mt, body string }{{"text/plain", r["text"]}, {"text/html", r["html"]}} {
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
