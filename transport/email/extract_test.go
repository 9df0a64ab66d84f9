package email

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
)

// jwe is a message shaped like a DIDComm JWE (the checks of its content are
// the router's business, not Extract's).
const jwe = `{"protected":"eyJ0eXAiOiJhcHBsaWNhdGlvbi9kaWRjb21tLWVuY3J5cHRlZCtqc29uIn0","recipients":[{"header":{"kid":"did:example:bob#key-1"},"encrypted_key":"AAAA"}],"iv":"AAAA","ciphertext":"AAAA","tag":"AAAA"}`

const jws = `{"payload":"eyJpZCI6IjEifQ","signatures":[{"protected":"eyJhbGciOiJFZERTQSJ9","signature":"AAAA"}]}`

// mime builds a multipart/mixed mail from parts written as "header lines\r\n\r\nbody".
func mime(parts ...string) []byte {
	var b strings.Builder
	b.WriteString("From: <alice@example.org>\r\nTo: <agent@agent.test>\r\nSubject: test\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\npreamble\r\n")
	for _, p := range parts {
		b.WriteString("--BOUNDARY\r\n" + p + "\r\n")
	}
	b.WriteString("--BOUNDARY--\r\n")
	return []byte(b.String())
}

func b64(s string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	return b.String()
}

const textPart = "Content-Type: text/plain; charset=utf-8\r\n\r\nHello, a DIDComm message is attached."

func TestExtractFindsDIDCommParts(t *testing.T) {
	for _, tc := range []struct {
		name string
		mail []byte
		want []Part
	}{
		{"encrypted attachment, any file name", mime(textPart,
			"Content-Type: application/didcomm-encrypted+json\r\nContent-Disposition: attachment; filename=\"ping.json\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"+b64(jwe)),
			[]Part{{MediaType: agent.MediaTypeEncrypted, Filename: "ping.json", Data: []byte(jwe)}}},
		{"signed and plain parts, no file name, 7bit", mime(
			"Content-Type: application/didcomm-signed+json\r\n\r\n"+jws,
			"Content-Type: application/didcomm-plain+json; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{\"id\":\"1\",\"type\":\"x\",\"body\":{}}"),
			[]Part{{MediaType: agent.MediaTypeSigned, Data: []byte(jws)}, {MediaType: agent.MediaTypePlain, Data: []byte(`{"id":"1","type":"x","body":{}}`)}}},
		{"media type in upper case with the name in Content-Type", mime(
			"Content-Type: Application/DIDComm-Encrypted+JSON; name=message.dcem\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(jwe)),
			[]Part{{MediaType: agent.MediaTypeEncrypted, Filename: "message.dcem", Data: []byte(jwe)}}},
		{"octet-stream named .dcem", mime(textPart,
			"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"MESSAGE.DCEM\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"+b64(jwe)),
			[]Part{{MediaType: agent.MediaTypeEncrypted, Filename: "MESSAGE.DCEM", Data: []byte(jwe)}}},
		{"body that is a JWE", []byte("From: <alice@example.org>\r\nTo: <agent@agent.test>\r\nSubject: ping\r\n\r\n" + jwe + "\r\n"),
			[]Part{{MediaType: agent.MediaTypeEncrypted, Data: []byte(jwe)}}},
		{"quoted-printable text body that is a JWE", []byte("From: <a@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			strings.ReplaceAll(jwe[:60], "=", "=3D") + "=\r\n" + strings.ReplaceAll(jwe[60:], "=", "=3D") + "\r\n"),
			[]Part{{MediaType: agent.MediaTypeEncrypted, Data: []byte(jwe)}}},
		{"nested multipart/alternative and a duplicate", mime(
			"Content-Type: multipart/alternative; boundary=\"INNER\"\r\n\r\n--INNER\r\nContent-Type: text/plain\r\n\r\n"+jwe+"\r\n--INNER\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--INNER--",
			"Content-Type: application/didcomm-encrypted+json\r\nContent-Transfer-Encoding: base64\r\n\r\n"+b64(jwe)),
			[]Part{{MediaType: agent.MediaTypeEncrypted, Data: []byte(jwe)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Extract(tc.mail)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d parts %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if got[i].MediaType != tc.want[i].MediaType || got[i].Filename != tc.want[i].Filename || string(got[i].Data) != string(tc.want[i].Data) {
					t.Errorf("part %d = %s %q %q, want %s %q %q", i, got[i].MediaType, got[i].Filename, got[i].Data,
						tc.want[i].MediaType, tc.want[i].Filename, tc.want[i].Data)
				}
			}
		})
	}
}

func TestExtractRefusals(t *testing.T) {
	many := make([]string, MaxParts+1)
	for i := range many {
		many[i] = "Content-Type: application/didcomm-plain+json\r\n\r\n" + fmt.Sprintf(`{"id":"%d","type":"t","body":{}}`, i)
	}
	for _, tc := range []struct {
		name   string
		mail   []byte
		noneOK bool   // ErrNoDIDComm expected
		reason string // else a ContentError containing this
	}{
		{name: "text only", mail: mime(textPart), noneOK: true},
		{name: "plain body", mail: []byte("Subject: hi\r\n\r\nJust saying hello.\r\n"), noneOK: true},
		{name: "JSON body that is no JWE", mail: []byte("Subject: hi\r\n\r\n{\"id\":\"1\",\"type\":\"x\"}\r\n"), noneOK: true},
		{name: "other attachments", mail: mime(textPart, "Content-Type: image/png; name=a.png\r\nContent-Transfer-Encoding: base64\r\n\r\n"+b64(jwe),
			"Content-Type: application/octet-stream; name=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"+b64("binary")), noneOK: true},
		{name: "broken base64", mail: mime("Content-Type: application/didcomm-encrypted+json; name=message.dcem\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!"),
			reason: "message.dcem could not be decoded"},
		{name: "unknown transfer encoding", mail: mime("Content-Type: application/didcomm-encrypted+json\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644"),
			reason: "unknown transfer encoding"},
		{name: "too many messages", mail: mime(many...), reason: "more than 16 DIDComm messages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts, err := Extract(tc.mail)
			if tc.noneOK {
				if !errors.Is(err, ErrNoDIDComm) {
					t.Fatalf("got %v, %v; want ErrNoDIDComm", parts, err)
				}
				return
			}
			var ce *ContentError
			if !errors.As(err, &ce) || !strings.Contains(ce.Reason, tc.reason) {
				t.Fatalf("got %v, %v; want a ContentError about %q", parts, err, tc.reason)
			}
		})
	}
}

func TestComposeIsReadBackByExtract(t *testing.T) {
	date := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	raw, err := Compose("agent@a.test", "bob@b.test", agent.MediaTypeEncrypted, []byte(jwe), date)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for _, want := range []string{
		"From: <agent@a.test>", "To: <bob@b.test>", "Subject: DIDComm message", "Auto-Submitted: auto-generated",
		"Message-Id: <", "@a.test>", "Mime-Version: 1.0", "Content-Type: multipart/mixed",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Type: application/didcomm-encrypted+json; name=message.dcem",
		"Content-Disposition: attachment; filename=message.dcem", "Content-Transfer-Encoding: base64",
		"DIDComm v2 message from the agent at\r\nagent@a.test.", "the attachment message.dcem",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("composed mail lacks %q:\n%s", want, s)
		}
	}
	for _, line := range strings.Split(s, "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line of %d octets breaks RFC 5322", len(line))
		}
	}
	parts, err := Extract(raw)
	if err != nil || len(parts) != 1 || string(parts[0].Data) != jwe || parts[0].MediaType != agent.MediaTypeEncrypted || parts[0].Filename != "message.dcem" {
		t.Fatalf("Extract(Compose) = %+v, %v", parts, err)
	}
	signed, _ := Compose("agent@a.test", "bob@b.test", agent.MediaTypeSigned, []byte(jws), date)
	if !strings.Contains(string(signed), "filename=message.dcsm") || !strings.Contains(string(signed), "signed, not encrypted") {
		t.Errorf("a signed message should be message.dcsm and described as signed:\n%s", signed)
	}
}

func TestAddresses(t *testing.T) {
	for in, want := range map[string]string{
		"mailto:agent@Example.ORG":            "agent@example.org",
		"MAILTO:a.b+tag@x.test?subject=hello": "a.b+tag@x.test",
		"mailto:a%2Bb@x.test":                 "a+b@x.test",
	} {
		if got, err := ParseMailto(in); err != nil || got != want {
			t.Errorf("ParseMailto(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"https://x.test", "mailto:", "mailto:nobody", "mailto:a@b.test,c@d.test",
		"mailto:Alice <a@b.test>", "mailto:a@-bad-.test", "mailto:ä@b.test", "mailto:a@b..test"} {
		if got, err := ParseMailto(bad); err == nil {
			t.Errorf("ParseMailto(%q) = %q, want an error", bad, got)
		}
	}
	acc, err := newAcceptList([]string{"Agent.Test"}, []string{"ops@Other.Test"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"anyone@agent.test": true, "X@AGENT.TEST": true, "ops@other.test": true, "OPS@other.test": true,
		"dev@other.test": false, "a@sub.agent.test": false, "a@evil.test": false, "agent.test": false, "": false,
	} {
		if acc.accepts(addr) != want {
			t.Errorf("accepts(%q) = %v, want %v", addr, !want, want)
		}
	}
	if _, err := newAcceptList(nil, nil); err == nil {
		t.Error("an accept list with nothing in it must be refused")
	}
	if _, err := newAcceptList([]string{"not a domain"}, nil); err == nil {
		t.Error("a bad domain must be refused")
	}
}

func TestRateLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(6, 2, func() time.Time { return now }) // a token every 10s, bursts of 2
	if !l.allow("a") || !l.allow("a") {
		t.Fatal("the burst must be allowed")
	}
	if l.allow("a") {
		t.Fatal("the third mail in a burst of 2 must be refused")
	}
	if !l.allow("b") {
		t.Fatal("another client has its own bucket")
	}
	now = now.Add(10 * time.Second)
	if !l.allow("a") || l.allow("a") {
		t.Fatal("one token must come back after 10s")
	}
	var off *rateLimiter
	if !off.allow("a") {
		t.Fatal("no limiter allows everything")
	}
}
