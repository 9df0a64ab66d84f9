package envelope_test

import (
	"errors"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
)

// TestFormOf: the form is told by the top-level members, as Unpack tells
// the outermost layer; anything but one JSON object is malformed.
func TestFormOf(t *testing.T) {
	for body, want := range map[string]envelope.Form{
		`{"protected":"e30","recipients":[{"header":{"kid":"k"},"encrypted_key":"a"}],"iv":"i","ciphertext":"c","tag":"t"}`: envelope.FormEncrypted,
		`{"ciphertext":"c"}`:                     envelope.FormEncrypted,
		`{"payload":"e30","signatures":[]}`:      envelope.FormSigned,
		`{"payload":"e30","signature":"s"}`:      envelope.FormSigned,
		`{"id":"1","type":"t","body":{}}`:        envelope.FormPlain,
		` {"id":"1","payload":"only a member"} `: envelope.FormPlain,
	} {
		got, err := envelope.FormOf([]byte(body))
		if err != nil || got != want {
			t.Errorf("FormOf(%s) = %q, %v; want %q", body, got, err, want)
		}
	}
	for _, bad := range []string{``, `[]`, `"x"`, `{"a":1} {}`, `{"a":}`, `{"ciphertext":"c","signatures":[]}`, `{"ciphertext":"a","ciphertext":"b"}`} {
		if _, err := envelope.FormOf([]byte(bad)); !errors.Is(err, envelope.ErrMalformed) {
			t.Errorf("FormOf(%s): %v, want ErrMalformed", bad, err)
		}
	}
	// The forms are spelled as the media types the transports declare.
	if string(envelope.FormEncrypted) != agent.MediaTypeEncrypted || string(envelope.FormSigned) != agent.MediaTypeSigned ||
		string(envelope.FormPlain) != agent.MediaTypePlain {
		t.Error("the forms differ from agent's media types")
	}
}
