package email

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/agentd/agentd/agent"
)

// Subject is the subject line of every mail agentd sends.
const Subject = "DIDComm message"

// Filename returns the attachment file name for a DIDComm media type: the
// spec's extensions .dcem (encrypted), .dcsm (signed) and .dcpm (plaintext).
func Filename(mediaType string) string {
	switch mediaType {
	case agent.MediaTypeSigned:
		return "message.dcsm"
	case agent.MediaTypePlain:
		return "message.dcpm"
	}
	return "message.dcem"
}

// Compose builds the mail that carries one packed DIDComm message from the
// address from to the address to: a multipart/mixed mail with a short text
// part saying what it is and how to open it, and the message as a base64
// attachment of its DIDComm media type (application/didcomm-encrypted+json,
// message.dcem, for the encrypted messages the outbox sends). The mail is
// marked Auto-Submitted so that vacation responders leave it alone.
func Compose(from, to, mediaType string, payload []byte, date time.Time) ([]byte, error) {
	if mediaType == "" {
		mediaType = agent.MediaTypeEncrypted
	}
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Address: from}})
	h.SetAddressList("To", []*mail.Address{{Address: to}})
	h.SetSubject(Subject)
	h.SetDate(date)
	if err := h.GenerateMessageIDWithHostname(domainOf(from)); err != nil {
		return nil, err
	}
	h.Set("Auto-Submitted", "auto-generated")
	var buf bytes.Buffer
	w, err := mail.CreateWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	var th mail.InlineHeader
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	tw, err := w.CreateSingleInline(th)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(tw, explanation(from, mediaType)); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var ah mail.AttachmentHeader
	name := Filename(mediaType)
	ah.SetContentType(mediaType, map[string]string{"name": name})
	ah.SetFilename(name)
	aw, err := w.CreateAttachment(ah)
	if err != nil {
		return nil, err
	}
	if _, err := aw.Write(payload); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// explanation is the human-readable text part.
func explanation(from, mediaType string) string {
	what := "It is encrypted: only the recipient's wallet or agent can read it."
	switch mediaType {
	case agent.MediaTypeSigned:
		what = "It is signed, not encrypted: a DIDComm wallet or agent can\nverify who sent it."
	case agent.MediaTypePlain:
		what = "It is a plaintext DIDComm message, neither signed nor encrypted."
	}
	return fmt.Sprintf(`This mail carries a DIDComm v2 message from the agent at
%s.

The message is the attachment %s
(%s).
%s

To open it, give the attachment, or this whole mail, to a DIDComm v2
wallet or agent that holds the recipient's keys: forward the mail to
the agent's own mail address, or post the attachment to its DIDComm
endpoint. A mail program or a text editor cannot open it.

If you did not expect this mail, you can delete it.
`, from, Filename(mediaType), mediaType, what)
}
