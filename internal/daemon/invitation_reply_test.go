package daemon_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/oob"
	"github.com/agentd/agentd/protocols/trustping"
)

// TestInvitationAttachmentAnsweredThroughOutbox: a message attached to an
// accepted invitation has no connection to answer on, whatever its
// return_route says; its reply goes to the sender's endpoint through the
// outbox instead of being packed for a connection and dropped.
func TestInvitationAttachmentAnsweredThroughOutbox(t *testing.T) {
	a := start(t, testConfig(t, t.TempDir()))
	w := newPCWallet(t)
	ping, err := agent.NewMessage(trustping.PingType, trustping.PingBody{})
	if err != nil {
		t.Fatal(err)
	}
	ping.ReturnRoute = "all"
	inv, err := oob.NewInvitation(w.did, oob.WithMessage(ping))
	if err != nil {
		t.Fatal(err)
	}
	invJSON, _ := json.Marshal(inv)
	body, _ := json.Marshal(map[string]string{"invitation": string(invJSON)})
	req, _ := http.NewRequest("POST", a.base+"/admin/invitations/accept", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("accepting the invitation: %s", resp.Status)
	}
	pong, md := w.await(t, func(m agent.Message) bool { return m.Type == trustping.PingResponseType })
	if pong.ThID != ping.ID || !md.Encrypted || !md.Authenticated {
		t.Fatalf("ping-response %+v, envelope %+v", pong, md)
	}
}
