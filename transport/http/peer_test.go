package http

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/agent"
)

// Post sends the packed message as encrypted DIDComm and returns a 200's body;
// another status is an error quoting the answer.
func TestPeerPost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != agent.MediaTypeEncrypted || r.Header.Get("User-Agent") != "agentd/test" {
			http.Error(w, "bad headers", http.StatusUnsupportedMediaType)
			return
		}
		if string(b) == "refuse" {
			http.Error(w, "refused here", http.StatusBadRequest)
			return
		}
		w.Write(append([]byte("answer to "), b...))
	}))
	defer srv.Close()
	c := NewPeer("agentd/test")
	got, err := c.Post(context.Background(), srv.URL, []byte("request"))
	if err != nil || string(got) != "answer to request" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := c.Post(context.Background(), srv.URL, []byte("refuse")); err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "refused here") {
		t.Fatalf("refused: %v", err)
	}
}

func TestWebSocketURL(t *testing.T) {
	for in, want := range map[string]string{"https://a.example/d": "wss://a.example/d", "http://a:1/": "ws://a:1/", "mailto:x@y": ""} {
		if got, ok := WebSocketURL(in); got != want || ok != (want != "") {
			t.Errorf("%s: %q %v", in, got, ok)
		}
	}
}

// DialWebSocket opens a didcomm/v2 socket at the ws URL of an http
// endpoint; each Send and Receive is one message.
func TestPeerDialWebSocket(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"didcomm/v2"}})
		if err != nil {
			return
		}
		defer conn.CloseNow()
		if conn.Subprotocol() != "didcomm/v2" {
			return
		}
		for {
			typ, b, err := conn.Read(r.Context())
			if err != nil {
				return
			}
			if err := conn.Write(r.Context(), typ, append([]byte("echo "), b...)); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := NewPeer("agentd/test")
	conn, err := c.DialWebSocket(ctx, srv.URL+"/didcomm")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Send(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := conn.Receive(ctx)
	if err != nil || string(got) != "echo hello" {
		t.Fatalf("%q %v", got, err)
	}
	// A pong is read by a pending Receive, as in a live session.
	go conn.Receive(ctx)
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DialWebSocket(ctx, "mailto:x@example.org"); err == nil {
		t.Fatal("dialled a mailto: endpoint")
	}
}
