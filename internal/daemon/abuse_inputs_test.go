package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
)

// forwardWithID is a forward of id for next carrying the stand-in messages
// tagged by tags, anoncrypted to the routing key when encrypt is set, else
// plaintext.
func (w *goWallet) forwardWithID(t *testing.T, id, next string, encrypt bool, tags ...string) []byte {
	t.Helper()
	m, _ := agent.NewMessage(agent.ForwardType, map[string]string{"next": next})
	m.ID = id
	for _, tag := range tags {
		inner := fmt.Sprintf(`{"protected":"eyJ0eXAiOiJ4In0","recipients":[{"header":{"kid":"%s#key-1"},"encrypted_key":"AAAA"}],"iv":"%s","ciphertext":"AAAA","tag":"AAAA"}`, next, tag)
		m.Attachments = append(m.Attachments, agent.Attachment{ID: agent.NewID(), MediaType: agent.MediaTypeEncrypted, Data: agent.AttachmentData{JSON: json.RawMessage(inner)}})
	}
	plain, _ := json.Marshal(m)
	if !encrypt {
		return plain
	}
	packed, err := envelope.PackAnoncrypt(plain, w.routingKA, envelope.XC20P)
	if err != nil {
		t.Fatal(err)
	}
	return packed
}

func (w *goWallet) queued(t *testing.T) float64 {
	t.Helper()
	st := w.request(t, "https://didcomm.org/messagepickup/3.0/status-request", nil)
	var b map[string]any
	st.DecodeBody(&b)
	n, _ := b["message_count"].(float64)
	return n
}

// TestMediatorAbuseInputs: anonymous forwards do not share one id space
// (a different forward that reuses an id is queued, an exact replay is
// not); an unencrypted forward, one with too many attachments and one
// whose message is over the size limit are refused with 4xx and queue
// nothing; the operator cannot grant a malformed DID.
func TestMediatorAbuseInputs(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Mediator.Enabled = true
	cfg.Mediator.MaxMessageBytes = 1024
	cfg.Mediator.MaxAttachments = 3
	r := start(t, cfg)
	w := newGoWallet(t, r.base)
	inbox := newWallet(t, "").did
	w.setup(t, inbox)
	endpoint := r.base + "/didcomm"

	// Two different forwards with one id, from two anonymous senders: both
	// are queued. The exact replay of the first is acknowledged (it was
	// stored) and queues nothing.
	first := w.forwardWithID(t, "same-id", inbox, true, "alice")
	second := w.forwardWithID(t, "same-id", inbox, true, "mallory")
	for i, p := range [][]byte{first, second, first} {
		if code, _, resp := post(t, endpoint, agent.MediaTypeEncrypted, p); code != http.StatusAccepted {
			t.Fatalf("forward %d: %d %s", i, code, resp)
		}
	}
	if n := w.queued(t); n != 2 {
		t.Fatalf("%v messages queued, want 2 (both forwards, not the replay)", n)
	}

	for name, tc := range map[string]struct {
		ct     string
		body   []byte
		status int
		code   string
	}{
		"plaintext forward":    {agent.MediaTypePlain, w.forwardWithID(t, agent.NewID(), inbox, false, "plain"), 400, agent.CodeTrust},
		"too many attachments": {agent.MediaTypeEncrypted, w.forwardWithID(t, agent.NewID(), inbox, true, "1", "2", "3", "4"), 413, agent.CodeTooLarge},
		"oversize message":     {agent.MediaTypeEncrypted, w.forwardWithID(t, agent.NewID(), inbox, true, strings.Repeat("A", 2000)), 413, agent.CodeTooLarge},
		"JWE posted as plain":  {agent.MediaTypePlain, first, 415, agent.CodeMediaType},
	} {
		code, _, resp := post(t, endpoint, tc.ct, tc.body)
		if code != tc.status || !strings.Contains(string(resp), `"`+tc.code+`"`) {
			t.Errorf("%s: %d %s, want %d with %s", name, code, resp, tc.status, tc.code)
		}
	}
	if n := w.queued(t); n != 2 {
		t.Fatalf("refused forwards changed the queue: %v messages", n)
	}

	// The operator's grant checks the DID.
	var eb struct{ Error, Reason string }
	if code := adminPost(t, r, "/admin/mediation/grants", `{"did":"did:peer:2.Egarbage"}`, &eb); code != http.StatusBadRequest || eb.Error != agent.CodeMsg || eb.Reason == "" {
		t.Fatalf("grant of a malformed did:peer:2: %d %+v", code, eb)
	}
}
