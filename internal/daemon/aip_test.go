package daemon_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/internal/daemon"
	httptransport "github.com/agentd/agentd/transport/http"
)

// hookServer records the webhook posts whose HMAC checks out under secret.
type hookServer struct {
	mu     sync.Mutex
	events []aip.Event
	paths  []string
	bad    int
}

func newHookServer(t *testing.T, secret string) (*hookServer, string) {
	h := &hookServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.Header.Get(httptransport.SignatureHeader) != "sha256="+hex.EncodeToString(m.Sum(nil)) {
			h.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var e aip.Event
		json.Unmarshal(body, &e)
		h.events = append(h.events, e)
		h.paths = append(h.paths, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL + "/hooks"
}

// eventually polls cond until it holds or the time is up.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAIPConnectionsBetweenTwoAgents(t *testing.T) {
	ctx := context.Background()
	const secret = "hook-secret-0123456789"
	hooks, hookURL := newHookServer(t, secret)
	cfgA := testConfig(t, t.TempDir())
	cfgA.AIP.Label = "Alice"
	cfgA.AIP.WebhookURL, cfgA.AIP.WebhookSecret = hookURL, secret
	a := start(t, cfgA)
	cfgB := testConfig(t, t.TempDir())
	cfgB.AIP.Label = "Bob"
	b := start(t, cfgB)

	ex, err := daemon.AIPConnections(a.Daemon).CreateInvitation(ctx, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	// A restarts between the invitation and its acceptance.
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	a = start(t, cfgA)
	ca, cb := daemon.AIPConnections(a.Daemon), daemon.AIPConnections(b.Daemon)

	bex, err := cb.AcceptInvitation(ctx, "alice", ex.Invitation.URL)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "both exchanges DONE", func() bool {
		x, _ := ca.ConnectionExchange(ctx, ex.ID)
		y, _ := cb.ConnectionExchange(ctx, bex.ID)
		return x != nil && y != nil && x.State == aip.ConnExDone && y.State == aip.ConnExDone
	})
	connA, err := ca.Connection(ctx, ex.ID)
	if err != nil || connA.TheirDID != b.DID() || connA.MyDID != a.DID() || connA.TheirLabel != "Bob" || connA.Alias != "bob" {
		t.Fatalf("A's connection %+v %v", connA, err)
	}
	connB, err := cb.ConnectionByDID(ctx, a.DID())
	if err != nil || connB.ID != bex.ID || connB.TheirLabel != "Alice" || connB.MyDID != b.DID() {
		t.Fatalf("B's connection %+v %v", connB, err)
	}

	// A basic message each way.
	sub, cancel := context.WithCancel(ctx)
	defer cancel()
	bmEvents := daemon.AIPBroker(a.Daemon).Subscribe(sub, aip.TopicBasicMessage)
	if _, err := ca.SendBasicMessage(ctx, connA.ID, "hello bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.SendBasicMessage(ctx, connB.ID, "hello alice"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		svc interface {
			BasicMessages(context.Context, string, aip.Page) ([]*aip.BasicMessage, string, error)
		}
		conn string
		in   string
		out  string
	}{{ca, connA.ID, "hello alice", "hello bob"}, {cb, connB.ID, "hello bob", "hello alice"}} {
		eventually(t, "basic messages", func() bool {
			ms, _, _ := c.svc.BasicMessages(ctx, c.conn, aip.Page{})
			got := map[aip.Direction]string{}
			for _, m := range ms {
				got[m.Direction] = m.Content
			}
			return len(ms) == 2 && got[aip.Inbound] == c.in && got[aip.Outbound] == c.out
		})
	}
	select {
	case e := <-bmEvents:
		if bm, ok := e.Record.(*aip.BasicMessage); !ok || bm.Content != "hello alice" || bm.Direction != aip.Inbound {
			t.Fatalf("subscription event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no basic message event")
	}

	// A third agent answering the used invitation is refused.
	c := start(t, testConfig(t, t.TempDir()))
	cc := daemon.AIPConnections(c.Daemon)
	cex, err := cc.AcceptInvitation(ctx, "", ex.Invitation.URL)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the third agent's exchange ABANDONED", func() bool {
		x, _ := cc.ConnectionExchange(ctx, cex.ID)
		return x != nil && x.State == aip.ConnExAbandoned
	})
	if cs, _, _ := ca.Connections(ctx, aip.Page{}, aip.ConnectionFilter{}); len(cs) != 1 || cs[0].TheirDID != b.DID() {
		t.Fatalf("A's connections %+v", cs)
	}
	if _, err := ca.ConnectionByDID(ctx, c.DID()); err == nil {
		t.Fatal("A connected to the third agent")
	}

	// The webhook got A's changes, signed.
	eventually(t, "webhooks", func() bool {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		var inv, done, bm bool
		for i, e := range hooks.events {
			switch hooks.paths[i] {
			case "/hooks/topics/" + aip.TopicConnectionExchange:
				var r aip.ConnectionExchange
				raw, _ := json.Marshal(e.Record)
				json.Unmarshal(raw, &r)
				inv = inv || (r.ID == ex.ID && r.State == aip.ConnExInvitation)
				done = done || (r.ID == ex.ID && r.State == aip.ConnExDone && r.TheirDID == b.DID())
			case "/hooks/topics/" + aip.TopicBasicMessage:
				bm = true
			}
		}
		return inv && done && bm
	})
	if hooks.bad != 0 {
		t.Fatalf("%d webhook posts with a bad signature", hooks.bad)
	}
}
