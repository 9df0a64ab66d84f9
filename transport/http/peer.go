package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/agent"
)

// Peer is the client side of DIDComm over HTTP and WebSocket for
// request/response exchanges with one peer, such as a mediator: a POST whose
// answer comes back in the response body (return_route), and a WebSocket on
// which packed messages go both ways. (Sender is the outbox's one-way
// delivery.)
type Peer struct {
	// HTTP sends the POSTs; NewPeer gives it a 30s timeout.
	HTTP *http.Client
	// UserAgent is sent with every POST.
	UserAgent string
	// MaxAnswerBytes bounds an answer read from a POST; NewPeer sets 16 MiB.
	MaxAnswerBytes int64
	// MaxMessageBytes bounds a message read from a WebSocket; NewPeer sets 32 MiB.
	MaxMessageBytes int64
}

// NewPeer returns a Peer with the limits agentd uses.
func NewPeer(userAgent string) *Peer {
	return &Peer{HTTP: &http.Client{Timeout: 30 * time.Second}, UserAgent: userAgent,
		MaxAnswerBytes: 16 << 20, MaxMessageBytes: 32 << 20}
}

// Post POSTs a packed (encrypted) message to endpoint and returns the
// response body, which holds the answer when the message asked for
// return_route. A status other than 200 is an error quoting the start of the
// body.
func (c *Peer) Post(ctx context.Context, endpoint string, packed []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(packed))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", agent.MediaTypeEncrypted)
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.MaxAnswerBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s: %s", endpoint, resp.Status, bytes.TrimSpace(body[:min(len(body), 300)]))
	}
	return body, nil
}

// WebSocketURL turns an http(s) endpoint into the ws(s) URL of the same place.
func WebSocketURL(endpoint string) (string, bool) {
	if rest, ok := strings.CutPrefix(endpoint, "https://"); ok {
		return "wss://" + rest, true
	}
	if rest, ok := strings.CutPrefix(endpoint, "http://"); ok {
		return "ws://" + rest, true
	}
	return "", false
}

// DialWebSocket opens a DIDComm WebSocket (subprotocol didcomm/v2) to the
// http(s) endpoint given.
func (c *Peer) DialWebSocket(ctx context.Context, endpoint string) (*WebSocketConn, error) {
	u, ok := WebSocketURL(endpoint)
	if !ok {
		return nil, errors.New("the endpoint is not an http(s) URL")
	}
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: []string{"didcomm/v2"}})
	if err != nil {
		return nil, err
	}
	if c.MaxMessageBytes > 0 {
		conn.SetReadLimit(c.MaxMessageBytes)
	}
	return &WebSocketConn{conn: conn}, nil
}

// WebSocketConn is a DIDComm WebSocket opened by Peer.DialWebSocket: each
// WebSocket message is one packed DIDComm message.
type WebSocketConn struct{ conn *websocket.Conn }

// Send writes one packed message.
func (w *WebSocketConn) Send(ctx context.Context, packed []byte) error {
	return w.conn.Write(ctx, websocket.MessageText, packed)
}

// Receive reads the next message.
func (w *WebSocketConn) Receive(ctx context.Context) ([]byte, error) {
	_, data, err := w.conn.Read(ctx)
	return data, err
}

// Ping sends a WebSocket ping and waits for the pong, which a pending
// Receive reads.
func (w *WebSocketConn) Ping(ctx context.Context) error { return w.conn.Ping(ctx) }

// Close closes the socket at once, without the closing handshake.
func (w *WebSocketConn) Close() error { return w.conn.CloseNow() }
