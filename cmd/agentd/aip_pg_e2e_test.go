package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/agentd/agentd/internal/pgtest"
	"github.com/agentd/agentd/store/seal"
)

// balancer is a round-robin reverse proxy: the load balancer in front of
// the instances of one agent. It counts the requests each instance got.
type balancer struct {
	url      string
	backends []*url.URL
	next     atomic.Int64
	mu       sync.Mutex
	hits     map[string]int
}

func newBalancer(t *testing.T) *balancer {
	b := &balancer{hits: map[string]int{}}
	srv := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		to := b.backends[int(b.next.Add(1))%len(b.backends)]
		b.mu.Lock()
		b.hits[to.Host]++
		b.mu.Unlock()
		r.SetURL(to)
	}})
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

// startInstance starts one agentd instance of an agent on a PostgreSQL
// database: the common test configuration with the store, the master key
// and the balancer's public URL; every instance of the agent has the
// admin token of name.
func startInstance(t *testing.T, name, instance, dbURL, keyFile, publicURL, yaml string, env ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{t: t, name: instance, dir: dir, addr: freeAddr(t), token: name + "-admin-token-0123456789abcdef", env: env}
	p.config = filepath.Join(dir, "agentd.yaml")
	common := fmt.Sprintf("data_dir: %s\nhttp:\n  addr: %s\n  public_url: %s/didcomm\noutbox:\n  base_delay: 50ms\n  max_delay: 500ms\n  allow_private: true\nlog:\n  level: debug\n"+
		"store:\n  driver: postgres\n  postgres:\n    url: %s\nkeys:\n  key_file: %s\n",
		filepath.Join(dir, "data"), p.addr, publicURL, dbURL, keyFile)
	if err := os.WriteFile(p.config, []byte(common+yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p.start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- %s output ----\n%s", p.name, p.out.String())
		}
	})
	return p
}

// subscribe runs a GraphQL subscription on p over a WebSocket
// (graphql-transport-ws, the admin token in connection_init) and sends
// each event's data (its one root field) on the channel, until the test
// ends. (Over SSE the daemon does not flush the response's start, so a
// client cannot tell when it is subscribed: see the README.)
func (p *proc) subscribe(query string) <-chan json.RawMessage {
	p.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p.t.Cleanup(cancel)
	c, _, err := websocket.Dial(ctx, "ws://"+p.addr+"/admin/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { c.CloseNow() })
	wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"x-api-key": p.token}})
	var msg struct {
		Type    string `json:"type"`
		Payload struct {
			Data map[string]json.RawMessage `json:"data"`
		} `json:"payload"`
	}
	if err := wsjson.Read(ctx, c, &msg); err != nil || msg.Type != "connection_ack" {
		p.t.Fatalf("subscription init: %+v %v", msg, err)
	}
	wsjson.Write(ctx, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query}})
	out := make(chan json.RawMessage, 100)
	go func() {
		defer close(out)
		for {
			msg.Payload.Data = nil
			if err := wsjson.Read(ctx, c, &msg); err != nil {
				return
			}
			for _, v := range msg.Payload.Data {
				out <- v
			}
		}
	}()
	return out
}

// TestAIPOnTwoInstancesOfOneAgent runs Alice as two agentd instances, A1
// and A2, on one PostgreSQL database behind a round-robin balancer (so
// Bob's messages reach either), and Bob on bbolt. The GraphQL calls
// alternate between the instances: the invitation is made on A1, the
// credential issued through A2, the proof request sent through A1 and its
// result read through A2; a subscription on A2 sees every state of the
// exchange, the first committed on A1, each once and in order; the
// presentation is verified once (one "presentation verified" among both
// instances' logs, one DONE webhook, one ack: Bob's exchange is DONE).
func TestAIPOnTwoInstancesOfOneAgent(t *testing.T) {
	hooks, hookURL := newHookLog(t)
	env := []string{"AGENTD_AIP_WEBHOOK_SECRET=" + aipHookSecret}
	dbURL := pgtest.Start(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if _, err := seal.GenerateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	lb := newBalancer(t)
	aliceYAML := aipYAML("Alice", hookURL+"/alice")
	a1 := startInstance(t, "alice", "alice-1", dbURL, keyFile, lb.url, aliceYAML, env...)
	a2 := startInstance(t, "alice", "alice-2", dbURL, keyFile, lb.url, aliceYAML, env...)
	for _, a := range []*proc{a1, a2} {
		u, _ := url.Parse("http://" + a.addr)
		lb.backends = append(lb.backends, u)
	}
	if a1.did != a2.did {
		t.Fatalf("two DIDs for one agent: %s and %s", a1.did, a2.did)
	}
	bob := startProc(t, "bob", aipYAML("Bob", hookURL+"/bob"), env...)

	aConn, bConn := connect(t, a1, bob)
	var page struct{ Items []struct{ ID string } }
	a2.must(opConnections, nil, &page)
	if len(page.Items) != 1 || page.Items[0].ID != aConn {
		t.Fatalf("A2 sees connections %+v, want %s", page.Items, aConn)
	}

	issue(t, a2, bob, aConn, bConn, map[string]any{"format": map[string]any{"w3c": map[string]any{"securingMechanism": "JWT",
		"credentialJson": `{"@context":["https://www.w3.org/2018/credentials/v1","https://www.w3.org/2018/credentials/examples/v1"],
		"type":["VerifiableCredential","UniversityDegreeCredential"],"issuanceDate":"2024-01-01T00:00:00Z",
		"credentialSubject":{"degree":{"type":"BachelorDegree","name":"Bachelor of Science and Arts"}}}`}}})
	degree := bob.w3cHeld("BachelorDegree")

	// The subscription on A2 is live once it gets an event: requests
	// sent through A1 until one reaches it (then withdrawn: Bob's copies
	// end ABANDONED).
	sub := a2.subscribe(`subscription { onAipProofExchangeUpdated { id state myRole } }`)
	var primers []string
	for live := false; !live; {
		if len(primers) == 20 {
			t.Fatal("A2's subscription got none of 20 requests sent through A1")
		}
		var x proofEx
		a1.must(opSendRequest, map[string]any{"c": aConn, "r": w3cRequest("primer",
			w3cGroup("degree", "$.credentialSubject.degree.type", "BachelorDegree"))}, &x)
		primers = append(primers, x.ID)
		deadline := time.After(time.Second)
		for wait := true; wait && !live; {
			select {
			case raw := <-sub:
				var e struct{ ID, State string }
				json.Unmarshal(raw, &e)
				live = e.ID == x.ID && e.State == "REQUEST"
			case <-deadline:
				wait = false
			}
		}
	}
	for _, id := range primers {
		var deleted string
		a1.must(seedOp(t, "seed_deleteAipProofExchange", seedProofExID, id), nil, &deleted)
	}
	eventually(t, "Bob's copies of the primers abandoned", func() bool {
		var page struct{ Items []struct{ ID string } }
		bob.must(opProofExsByState, map[string]any{"role": "PROVER", "s": []string{"ABANDONED"}, "c": []string{bConn}}, &page)
		return len(page.Items) == len(primers)
	})
	var vx proofEx
	a1.must(opSendRequest, map[string]any{"c": aConn, "r": w3cRequest("degree",
		w3cGroup("degree", "$.credentialSubject.degree.type", "BachelorDegree"))}, &vx)
	px := bob.incoming("PROVER", "REQUEST", bConn)
	bob.must(opAcceptReq, map[string]any{"id": px, "p": w3cAnswer("degree", degree.ID)}, nil)
	done := a2.awaitProof(vx.ID, "DONE")
	if pres := done.Messages.Presentation; pres == nil || pres.VerificationResult == nil || *pres.VerificationResult != "VERIFIED" {
		t.Fatalf("A2 reads %+v", done.Messages.Presentation)
	}
	bob.awaitProof(px, "DONE") // the ack

	var states []string
	for len(states) < 3 {
		select {
		case raw, ok := <-sub:
			if !ok {
				t.Fatalf("subscription ended after %v", states)
			}
			var x struct{ ID, State, MyRole string }
			json.Unmarshal(raw, &x)
			if x.ID == vx.ID && x.MyRole == "VERIFIER" {
				states = append(states, x.State)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("A2's subscription saw %v", states)
		}
	}
	if strings.Join(states, " ") != "REQUEST PRESENTED DONE" {
		t.Fatalf("A2's subscription saw %v", states)
	}

	eventually(t, "the DONE webhooks", func() bool {
		return len(hooks.statesOf("aip_proof_exchange")["alice/"+vx.ID]) >= 3 && len(hooks.statesOf("aip_proof_exchange")["bob/"+px]) >= 3
	})
	if got := strings.Join(hooks.statesOf("aip_proof_exchange")["alice/"+vx.ID], " "); got != "REQUEST PRESENTED DONE" {
		t.Fatalf("Alice's webhooks: %s", got)
	}
	verified := strings.Count(a1.out.String(), "presentation verified") + strings.Count(a2.out.String(), "presentation verified")
	if verified != 1 {
		t.Fatalf("the presentation was verified %d times", verified)
	}
	for quiet := time.After(300 * time.Millisecond); ; {
		select {
		case raw := <-sub:
			if strings.Contains(string(raw), vx.ID) {
				t.Fatalf("an event more on A2: %s", raw)
			}
			continue
		case <-quiet:
		}
		break
	}
	lb.mu.Lock()
	hits := len(lb.hits)
	lb.mu.Unlock()
	if hits != 2 {
		t.Fatalf("Bob's messages reached %d instances, want both", hits)
	}
}
