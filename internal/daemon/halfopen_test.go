package daemon_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/config"
)

// freezingProxy forwards TCP between a client and addr until freeze, after
// which it stops moving bytes either way but keeps both connections open:
// the peer looks alive to the kernel and dead to the protocol, as a phone
// that lost its network without a FIN would.
type freezingProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen chan struct{}
	done   chan struct{}
	conns  []net.Conn
}

func newFreezingProxy(t *testing.T, addr string) *freezingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{ln: ln, frozen: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() {
		close(p.done)
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go p.pipe(up, c)
			go p.pipe(c, up)
		}
	}()
	return p
}

// pipe copies src to dst in small steps until the proxy freezes.
func (p *freezingProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			<-p.done // hold both ends open, move nothing, until the test ends
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *freezingProxy) freeze() { close(p.frozen) }

// TestHalfOpenLiveWebSocketLosesNothing: a client in live mode whose
// connection goes silent without closing (half-open) is found dead by the
// keepalive and dropped; the forwards accepted meanwhile stay queued and are
// all picked up when the client comes back.
func TestHalfOpenLiveWebSocketLosesNothing(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Mediator.Enabled = true
	cfg.Mediator.LivePingInterval = 200 * time.Millisecond
	cfg.Mediator.LivePingTimeout = 200 * time.Millisecond
	r := start(t, cfg)
	w := newGoWallet(t, r.base)
	inbox := "did:example:halfopen-inbox"
	w.setup(t, inbox)

	proxy := newFreezingProxy(t, strings.TrimPrefix(r.base, "http://"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+proxy.ln.Addr().String()+config.EndpointPath, &websocket.DialOptions{Subprotocols: []string{"didcomm/v2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	live := w.packRequest(t, "https://didcomm.org/messagepickup/3.0/live-delivery-change", map[string]any{"live_delivery": true})
	if err := conn.Write(ctx, websocket.MessageText, live); err != nil {
		t.Fatal(err)
	}
	// The status answering the change, then one live push proves live mode.
	if _, _, err := conn.Read(ctx); err != nil {
		t.Fatalf("no answer to live-delivery-change: %v", err)
	}
	if code, _, body := post(t, r.base+"/didcomm", agent.MediaTypeEncrypted, w.forward(t, inbox, "live-0", 512)); code != 202 {
		t.Fatalf("forward: %d %s", code, body)
	}
	if _, _, err := conn.Read(ctx); err != nil {
		t.Fatalf("no live push: %v", err)
	}

	proxy.freeze()
	const n = 50
	for i := 1; i <= n; i++ {
		if code, _, body := post(t, r.base+"/didcomm", agent.MediaTypeEncrypted, w.forward(t, inbox, "frozen", 512)); code != 202 {
			t.Fatalf("forward %d while the client is half-open: %d %s", i, code, body)
		}
	}
	// The keepalive finds the socket dead and closes it.
	waitFor(t, 10*time.Second, "the half-open WebSocket to be closed", func() bool {
		var q struct {
			WebSockets int64 `json:"websockets"`
		}
		getJSON(t, r.base+"/admin/mediation/queue", r.AdminToken(), &q)
		return q.WebSockets == 0
	})
	// Back online over HTTP: every forward is still there, the live one
	// included (it was pushed but never acknowledged with messages-received).
	got := map[string]int{}
	for {
		d := w.request(t, "https://didcomm.org/messagepickup/3.0/delivery-request", map[string]any{"limit": 100, "recipient_did": inbox})
		if d.Type != "https://didcomm.org/messagepickup/3.0/delivery" {
			break
		}
		var ids []string
		for _, a := range d.Attachments {
			var inner struct {
				IV string `json:"iv"`
			}
			raw := []byte(a.Data.JSON)
			if len(raw) == 0 {
				raw, _ = base64.StdEncoding.DecodeString(a.Data.Base64)
				if len(raw) == 0 {
					raw, _ = base64.RawURLEncoding.DecodeString(a.Data.Base64)
				}
			}
			json.Unmarshal(raw, &inner)
			got[inner.IV]++
			ids = append(ids, a.ID)
		}
		w.request(t, "https://didcomm.org/messagepickup/3.0/messages-received", map[string]any{"message_id_list": ids})
	}
	if got["live-0"] != 1 || got["frozen"] != n {
		t.Fatalf("picked up %v; want live-0 once and %d frozen", got, n)
	}
}
