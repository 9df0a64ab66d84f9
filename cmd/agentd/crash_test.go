package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/protocols/provecontrol"
)

// TestProveControlSurvivesCrashes kills the user's or the verifier's agentd
// (SIGKILL, through the store's fault-injection hook) at each commit point
// of the prove path of an IP verification, restarts it, and checks that the
// user ends up with its credential and the verifier with exactly one
// verification. The points:
//
//   - the user's prove: before its commit (the operator's call fails and is
//     made again) and after it (the prove waits in the outbox);
//   - the verifier's confirmation: before its commit (the user's outbox
//     delivers the prove again) and after it (the confirmation waits in the
//     verifier's outbox; the prove delivered again is a replay);
//   - the user's credential: before its commit (the verifier's outbox
//     delivers the confirmation again) and after it (the redelivery is a
//     replay).
func TestProveControlSurvivesCrashes(t *testing.T) {
	cases := []struct {
		name    string
		victim  string // "user" or "verifier"
		fault   string
		reprove bool // the operator's prove call was never acknowledged
	}{
		{"user before prove commit", "user", "before-commit:" + provecontrol.KindReceived + ":2", true},
		{"user after prove commit", "user", "after-commit:" + provecontrol.KindReceived + ":2", false},
		{"verifier before confirmation commit", "verifier", "before-commit:" + provecontrol.KindVerification, false},
		{"verifier after confirmation commit", "verifier", "after-commit:" + provecontrol.KindVerification, false},
		{"user before credential commit", "user", "before-commit:" + provecontrol.KindCredential, false},
		{"user after credential commit", "user", "after-commit:" + provecontrol.KindCredential, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fault := daemon.FaultEnv + "=" + tc.fault
			var vEnv, uEnv []string
			if tc.victim == "user" {
				uEnv = []string{fault}
			} else {
				vEnv = []string{fault}
			}
			verifier := startProc(t, "verifier", verifierYAML, vEnv...)
			user := startProc(t, "user", "", uEnv...)
			out := request(user, verifier, "IP", user.addr)
			c := awaitChallenge(user, out.Request.ID)

			// The prove; the call may fail when the user is the victim.
			tryProve(user, c.ID)
			victim := user
			if tc.victim == "verifier" {
				victim = verifier
			}
			victim.awaitKilled(20 * time.Second)
			if !strings.Contains(victim.out.String(), daemon.FaultEnv) {
				t.Fatalf("the %s died, but not at the fault point", tc.victim)
			}
			victim.env = nil
			victim.start()
			if tc.reprove {
				var held received
				user.call("GET", "/admin/provecontrol/received/"+c.ID, nil, &held, 200)
				if held.State != "received" {
					t.Fatalf("the unacknowledged prove left the challenge %s", held.State)
				}
				tryProve(user, c.ID)
			}
			cr := awaitCredential(t, user, c.ID)
			if cr.Issuer != verifier.did || cr.Subject != user.addr {
				t.Fatalf("credential %s", mustJSON(cr))
			}
			var vs struct {
				Verifications []struct{ ID string } `json:"verifications"`
			}
			verifier.call("GET", "/admin/provecontrol/verifications", nil, &vs, 200)
			if len(vs.Verifications) != 1 || vs.Verifications[0].ID != cr.ID {
				t.Fatalf("the verifier recorded %s; want the one verification of credential %s", mustJSON(vs), cr.ID)
			}
			var held received
			user.call("GET", "/admin/provecontrol/received/"+c.ID, nil, &held, 200)
			if held.State != "confirmed" {
				t.Fatalf("the user's challenge is %s", held.State)
			}
		})
	}
}

// tryProve asks the user's agent to prove challenge id, tolerating a
// connection that dies with the process.
func tryProve(user *proc, id string) {
	b, _ := json.Marshal(map[string]string{"wait": "2s"})
	req, _ := http.NewRequest("POST", "http://"+user.addr+"/admin/provecontrol/received/"+id+"/prove", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+user.token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// awaitKilled waits until the process has died of the fault hook's SIGKILL.
func (p *proc) awaitKilled(d time.Duration) {
	p.t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			p.t.Fatalf("%s ended with %v, want killed", p.name, err)
		}
	case <-time.After(d):
		p.t.Fatalf("%s was not killed at the fault point", p.name)
	}
}

// awaitCredential waits until the user holds the credential of challenge id.
func awaitCredential(t *testing.T, user *proc, id string) credential {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct {
			Credentials []struct {
				credential
				ChallengeID string `json:"challenge_id"`
			} `json:"credentials"`
		}
		user.call("GET", "/admin/credentials", nil, &list, 200)
		for _, c := range list.Credentials {
			if c.ChallengeID == id {
				if len(list.Credentials) != 1 {
					t.Fatalf("%d credentials held, want 1", len(list.Credentials))
				}
				return c.credential
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the user never got the credential of challenge %s", id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
