package http

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// dialFrom opens a TCP connection to addr from the loopback address from
// (any 127.x address works on Linux), so that tests can be several clients.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawGet sends a GET /healthz on c and returns the response status and body.
func rawGet(t *testing.T, c net.Conn, br *bufio.Reader) (int, ErrorBody) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no HTTP answer: %v", err)
	}
	defer resp.Body.Close()
	var body ErrorBody
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func limitedServer(t *testing.T, total, perClient int) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(NewHandler(Config{Receiver: &fakeReceiver{}, Public: fakePublic{}}))
	srv.Listener = LimitListener(srv.Listener, total, perClient)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestLimitListenerPerClient(t *testing.T) {
	addr := limitedServer(t, 0, 2)
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c := dialFrom(t, "127.0.0.1", addr)
		if st, _ := rawGet(t, c, bufio.NewReader(c)); st != http.StatusOK {
			t.Fatalf("connection %d within the cap: status %d", i+1, st)
		}
		held = append(held, c)
	}
	// The third from the same address is answered 429 and closed.
	c := dialFrom(t, "127.0.0.1", addr)
	br := bufio.NewReader(c)
	st, body := rawGet(t, c, br)
	if st != http.StatusTooManyRequests || body.Error != CodeTooManyConnections || !strings.Contains(body.Reason, "limit 2") ||
		!strings.Contains(body.Reason, "127.0.0.1") {
		t.Fatalf("over the per-client cap: %d %+v", st, body)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the refused connection stayed open")
	}
	// Another client is not affected.
	other := dialFrom(t, "127.0.0.2", addr)
	if st, _ := rawGet(t, other, bufio.NewReader(other)); st != http.StatusOK {
		t.Errorf("another client: status %d", st)
	}
	// A closed connection frees its place.
	held[0].Close()
	waitFor(t, func() bool {
		c := dialFrom(t, "127.0.0.1", addr)
		st, _ := rawGet(t, c, bufio.NewReader(c))
		return st == http.StatusOK
	})
}

func TestLimitListenerTotal(t *testing.T) {
	addr := limitedServer(t, 2, 0)
	for i, from := range []string{"127.0.0.1", "127.0.0.2"} {
		c := dialFrom(t, from, addr)
		if st, _ := rawGet(t, c, bufio.NewReader(c)); st != http.StatusOK {
			t.Fatalf("connection %d within the cap: status %d", i+1, st)
		}
	}
	c := dialFrom(t, "127.0.0.3", addr)
	st, body := rawGet(t, c, bufio.NewReader(c))
	if st != http.StatusServiceUnavailable || body.Error != CodeServerBusy || !strings.Contains(body.Reason, "2 connections") {
		t.Fatalf("over the total cap: %d %+v", st, body)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
	}
}

// wsDialFrom opens a WebSocket from the loopback address from.
func wsDialFrom(from, url string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	return websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client})
}

func TestWebSocketsPerClient(t *testing.T) {
	_, url := wsServer(t, &WebSocketConfig{MaxPerClient: 2})
	var open []*websocket.Conn
	for i := 0; i < 2; i++ {
		c, _, err := wsDialFrom("127.0.0.1", url)
		if err != nil {
			t.Fatalf("socket %d within the cap: %v", i+1, err)
		}
		t.Cleanup(func() { c.CloseNow() })
		write(t, c, `{"id":"p","type":"ping","body":{}}`)
		if v := readFrame(t, c); v["type"] != "pong" {
			t.Fatalf("socket %d: %v", i+1, v)
		}
		open = append(open, c)
	}
	c, resp, err := wsDialFrom("127.0.0.1", url)
	if err == nil {
		c.CloseNow()
		t.Fatal("a third socket from one client was accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third socket: %v, response %+v", err, resp)
	}
	// Another client may still open sockets.
	c, _, err = wsDialFrom("127.0.0.2", url)
	if err != nil {
		t.Fatalf("another client: %v", err)
	}
	c.CloseNow()
	// Closing a socket frees its place.
	open[0].Close(websocket.StatusNormalClosure, "")
	waitFor(t, func() bool {
		c, _, err := wsDialFrom("127.0.0.1", url)
		if err != nil {
			return false
		}
		c.CloseNow()
		return true
	})
}

func TestWebSocketRefusalBody(t *testing.T) {
	_, url := wsServer(t, &WebSocketConfig{MaxPerClient: 1})
	c, _, err := wsDialFrom("127.0.0.1", url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	req, _ := http.NewRequest(http.MethodGet, "http"+strings.TrimPrefix(url, "ws"), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || body.Error != CodeTooManyConnections || !strings.Contains(body.Reason, "limit 1") {
		t.Errorf("refusal %d %+v", resp.StatusCode, body)
	}
}
