package http

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
)

// sessionReceiver answers "ping" messages on the socket, refuses "bad" ones,
// and keeps the sessions it saw so that tests can push on them.
type sessionReceiver struct {
	mu       sync.Mutex
	sessions []agent.Session
}

// ReceiveDeclared: the sockets' tests post nothing.
func (r *sessionReceiver) ReceiveDeclared(context.Context, string, []byte, envelope.Form) (*agent.Reply, error) {
	return nil, agent.Errorf(agent.CodeMe, "a plain request")
}

func (r *sessionReceiver) ReceiveDuplex(_ context.Context, transport string, raw []byte, s agent.Session) (*agent.Reply, error) {
	r.mu.Lock()
	r.sessions = append(r.sessions, s)
	r.mu.Unlock()
	var m agent.Message
	json.Unmarshal(raw, &m)
	if transport != "ws" || s == nil {
		return nil, agent.Errorf(agent.CodeMe, "wrong transport %q or no session", transport)
	}
	switch m.Type {
	case "bad":
		return &agent.Reply{Message: &m}, agent.Refuse(agent.Errorf(agent.CodeMeResStorage, "queue full"))
	case "ping":
		return &agent.Reply{Payload: []byte(`{"type":"pong","thid":"` + m.ID + `"}`), MediaType: agent.MediaTypePlain, Message: &m}, nil
	}
	return &agent.Reply{Message: &m}, nil
}

func (r *sessionReceiver) last() agent.Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[len(r.sessions)-1]
}

func wsServer(t *testing.T, cfg *WebSocketConfig) (*sessionReceiver, string) {
	t.Helper()
	rcv := &sessionReceiver{}
	srv := httptest.NewServer(NewHandler(Config{Receiver: rcv, Public: fakePublic{}, MaxBodyBytes: 4096, WebSocket: cfg}))
	t.Cleanup(srv.Close)
	return rcv, "ws" + strings.TrimPrefix(srv.URL, "http") + "/didcomm"
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func readFrame(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("frame %q: %v", b, err)
	}
	return v
}

func write(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.Write(context.Background(), websocket.MessageText, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

func TestWebSocketRepliesRefusalsAndPushes(t *testing.T) {
	rcv, url := wsServer(t, &WebSocketConfig{})
	c := dial(t, url)
	write(t, c, `{"id":"1","type":"ping","body":{}}`)
	if v := readFrame(t, c); v["type"] != "pong" || v["thid"] != "1" {
		t.Fatalf("reply %v", v)
	}
	// A refused message is answered with a plaintext problem report.
	write(t, c, `{"id":"2","type":"bad","body":{}}`)
	v := readFrame(t, c)
	body, _ := v["body"].(map[string]any)
	if v["type"] != agent.ProblemReportType || v["pthid"] != "2" || body["code"] != agent.CodeMeResStorage {
		t.Fatalf("refusal %v", v)
	}
	write(t, c, `not json`)
	if v := readFrame(t, c); v["body"].(map[string]any)["code"] != agent.CodeMsg {
		t.Fatalf("bad JSON answered %v", v)
	}
	// A message without an answer, then a push from the session.
	write(t, c, `{"id":"3","type":"other","body":{}}`)
	s := rcv.last()
	deadline := time.Now().Add(5 * time.Second)
	for s == nil || !strings.HasPrefix(s.ID(), "ws-") {
		if time.Now().After(deadline) {
			t.Fatal("no session")
		}
		time.Sleep(10 * time.Millisecond)
		s = rcv.last()
	}
	if err := s.Push(context.Background(), agent.MediaTypeEncrypted, []byte(`{"pushed":true}`)); err != nil {
		t.Fatal(err)
	}
	if v := readFrame(t, c); v["pushed"] != true {
		t.Fatalf("push %v", v)
	}
	// The session ends when the socket closes, and pushing fails.
	c.Close(websocket.StatusNormalClosure, "")
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session not done after close")
	}
	if err := s.Push(context.Background(), agent.MediaTypeEncrypted, []byte(`{}`)); err == nil {
		t.Fatal("push on a closed session succeeded")
	}
}

func TestWebSocketTooLarge(t *testing.T) {
	_, url := wsServer(t, &WebSocketConfig{})
	c := dial(t, url)
	write(t, c, `{"id":"1","type":"x","body":{"pad":"`+strings.Repeat("x", 5000)+`"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized message: %v", err)
	}
}

// TestWebSocketKeepalive: a peer that stops answering pings (here: never
// reads, so it never sends pongs) is disconnected.
func TestWebSocketKeepalive(t *testing.T) {
	rcv, url := wsServer(t, &WebSocketConfig{PingInterval: 50 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	c := dial(t, url)
	write(t, c, `{"id":"1","type":"other","body":{}}`)
	var s agent.Session
	deadline := time.Now().Add(5 * time.Second)
	for s == nil {
		if time.Now().After(deadline) {
			t.Fatal("no session")
		}
		time.Sleep(10 * time.Millisecond)
		rcv.mu.Lock()
		if len(rcv.sessions) > 0 {
			s = rcv.sessions[0]
		}
		rcv.mu.Unlock()
	}
	// The client does not read, so pongs are never sent.
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a peer that does not answer pings was not disconnected")
	}
}

// A reading peer answers pings and stays connected.
func TestWebSocketKeepaliveAlive(t *testing.T) {
	_, url := wsServer(t, &WebSocketConfig{PingInterval: 30 * time.Millisecond, PingTimeout: 500 * time.Millisecond})
	c := dial(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	closed := c.CloseRead(ctx) // reads (and answers pings) in the background
	select {
	case <-closed.Done():
		t.Fatal("connection dropped although the peer answered pings")
	case <-time.After(400 * time.Millisecond): // more than ten pings
	}
	if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"id":"1","type":"other","body":{}}`)); err != nil {
		t.Fatalf("connection dropped although the peer answered pings: %v", err)
	}
}

func TestWebSocketShutdown(t *testing.T) {
	stop := make(chan struct{})
	_, url := wsServer(t, &WebSocketConfig{Shutdown: stop})
	c := dial(t, url)
	close(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("after shutdown: %v", err)
	}
}

func TestWebSocketPlainGET(t *testing.T) {
	_, url := wsServer(t, &WebSocketConfig{})
	resp, err := http.Get("http" + strings.TrimPrefix(url, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("GET without upgrade: %d", resp.StatusCode)
	}
}

// TestWebSocketEarlyFrame: a client that sends its first message in the same
// packet as the upgrade request is answered; those bytes are not lost when
// the connection is handed over to the socket with its own buffers.
func TestWebSocketEarlyFrame(t *testing.T) {
	_, wsURL := wsServer(t, &WebSocketConfig{})
	u, _ := url.Parse(wsURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	payload := []byte(`{"id":"early","type":"ping","body":{}}`)
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(payload))}
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	req := "GET " + u.Path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(br, hdr); err != nil {
		t.Fatalf("no answer to the early frame: %v", err)
	}
	if hdr[0] != 0x81 || hdr[1]&0x80 != 0 || hdr[1] >= 126 {
		t.Fatalf("answer frame header % x", hdr)
	}
	body := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"thid":"early"`) {
		t.Fatalf("answer %s", body)
	}
}

// TestWebSocketTrailingSlash: the socket opens on /didcomm/ too.
func TestWebSocketTrailingSlash(t *testing.T) {
	_, url := wsServer(t, &WebSocketConfig{})
	c := dial(t, url+"/")
	write(t, c, `{"id":"s","type":"ping","body":{}}`)
	if v := readFrame(t, c); v["type"] != "pong" || v["thid"] != "s" {
		t.Fatalf("reply on /didcomm/: %v", v)
	}
}
