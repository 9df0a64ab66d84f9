package http

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/internal/connlimit"
)

// Error codes of the connection caps (ErrorBody.Error).
const (
	// CodeTooManyConnections answers a connection or WebSocket over the
	// per-client cap (429).
	CodeTooManyConnections = "e.p.xfer.too-many-connections"
	// CodeServerBusy answers a connection over the total cap (503).
	CodeServerBusy = agent.CodeBusy
)

// LimitListener caps the connections the HTTP server gets from ln: total
// open at once and per client IP (0: no cap). A connection over a cap is
// answered with a JSON error, 429 when the client's own cap was hit and 503
// when the server is full, and closed without reaching the server.
// Upgraded connections (WebSockets) count until they close. The answer is
// plain HTTP/1.1: wrap a listener of plain connections (TLS, if any, goes on
// top of the wrapped listener and then refused clients see a TLS error).
func LimitListener(ln net.Listener, total, perClient int) *connlimit.Listener {
	return connlimit.Wrap(ln, connlimit.Limits{Total: total, PerClient: perClient}, refuseHTTP)
}

// refuseHTTP writes the HTTP answer to a refused connection.
func refuseHTTP(c net.Conn, r connlimit.Refusal) {
	status, body := http.StatusServiceUnavailable, ErrorBody{Error: CodeServerBusy,
		Reason: fmt.Sprintf("the server has its maximum of %d connections open; try again later", r.Limit)}
	if r.PerClient {
		status, body = http.StatusTooManyRequests, ErrorBody{Error: CodeTooManyConnections,
			Reason: fmt.Sprintf("too many connections from %s (limit %d); close some or try again later", r.Client, r.Limit)}
	}
	b, _ := json.Marshal(body)
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nRetry-After: 5\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(b), b)
}

// wsLimiter counts open WebSockets per client.
type wsLimiter struct {
	max  int
	mu   sync.Mutex
	open map[netip.Prefix]int
}

// acquire takes a place for the client at remoteAddr; ok is false when its
// cap is reached. release gives the place back.
func (l *wsLimiter) acquire(remoteAddr string) (release func(), client string, ok bool) {
	if l == nil || l.max <= 0 {
		return func() {}, "", true
	}
	var key netip.Prefix
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		key = connlimit.KeyOf(ap.Addr())
	}
	client = connlimit.KeyString(key)
	if !key.IsValid() {
		return func() {}, client, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.max {
		return nil, client, false
	}
	l.open[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.open[key]--; l.open[key] <= 0 {
				delete(l.open, key)
			}
		})
	}, client, true
}
