package daemon_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// healthz sends GET /healthz on a raw connection and returns the status.
func healthz(t *testing.T, c net.Conn, br *bufio.Reader) int {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: agentd\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestDaemonConnectionCaps(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.HTTP.MaxConnectionsPerIP = 2
	cfg.HTTP.MaxWebSocketsPerIP = 1
	r := start(t, cfg)
	addr := strings.TrimPrefix(r.base, "http://")

	// One WebSocket is allowed, a second from the same address is refused.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// No keep-alive: the refused upgrade's connection must not linger.
	opts := &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/didcomm", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, resp, err := websocket.Dial(ctx, "ws://"+addr+"/didcomm", opts); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second WebSocket: %v, want 429", err)
	}

	// The socket holds one of the two connections; one more is served, the
	// next refused.
	// (The refused upgrade's connection closes on the server's side just
	// after its answer: retry until its place is free.)
	var c1 net.Conn
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if st := healthz(t, c, bufio.NewReader(c)); st == http.StatusOK {
			c1 = c
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("second connection refused")
		}
	}
	defer c1.Close()
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if st := healthz(t, c2, bufio.NewReader(c2)); st != http.StatusTooManyRequests {
		t.Fatalf("third connection: %d, want 429", st)
	}
}
