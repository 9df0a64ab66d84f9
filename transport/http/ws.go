package http

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/agent"
)

// DIDComm over WebSocket on the HTTP listener: a GET of the DIDComm endpoint
// with an Upgrade header opens a socket on which each text or binary message
// is one packed DIDComm message. Messages are handed to the router with the
// socket as their agent.Session, so that replies asked for with return_route
// come back on the socket and protocols can push on it (Pickup 3.0 live
// delivery). A message the router refuses is answered on the socket with a
// plaintext problem report, since a WebSocket message has no status code.
// Keepalive pings find dead and half-open sockets and close them.

// WebSocketConfig configures DIDComm over WebSocket.
type WebSocketConfig struct {
	// PingInterval is the time between keepalive pings; default 30s.
	PingInterval time.Duration
	// PingTimeout is how long a pong may take before the socket is closed as
	// dead; default 10s.
	PingTimeout time.Duration
	// WriteTimeout bounds writing one message; default 10s.
	WriteTimeout time.Duration
	// Shutdown, when closed, closes every socket with "going away". The
	// daemon closes it when it shuts down: http.Server.Shutdown does not
	// track upgraded connections.
	Shutdown <-chan struct{}
	// OnOpen and OnClose, when set, are told when a socket opens and closes
	// (for metrics).
	OnOpen, OnClose func()
	// MaxPerClient caps the sockets open at once from one client IP (IPv6:
	// its /64); 0: no cap. An upgrade over it is refused with 429 and a JSON
	// error (CodeTooManyConnections).
	MaxPerClient int
}

// wsSession is one WebSocket as an agent.Session.
type wsSession struct {
	id      string
	conn    *websocket.Conn
	timeout time.Duration
	done    chan struct{}
	once    sync.Once
	writes  atomic.Int64

	mu      sync.Mutex
	closed  bool
	onClose []func()
}

// AfterClose runs f once the socket has closed (agent.CloseNotifier): the
// mediator's live delivery forgets the socket without a goroutine waiting.
func (s *wsSession) AfterClose(f func()) {
	s.mu.Lock()
	if !s.closed {
		s.onClose = append(s.onClose, f)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	go f()
}

// ID identifies the socket in logs.
func (s *wsSession) ID() string { return s.id }

// Done is closed when the socket has closed.
func (s *wsSession) Done() <-chan struct{} { return s.done }

// Push writes one message; a failed write closes the socket, so that Done
// fires and whoever pushes stops.
func (s *wsSession) Push(ctx context.Context, _ string, payload []byte) error {
	select {
	case <-s.done:
		return errors.New("websocket closed")
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.conn.Write(ctx, websocket.MessageText, payload); err != nil {
		s.close(websocket.StatusAbnormalClosure, "write failed")
		return err
	}
	s.writes.Add(1)
	return nil
}

func (s *wsSession) close(code websocket.StatusCode, reason string) {
	s.once.Do(func() {
		close(s.done)
		s.mu.Lock()
		s.closed = true
		fs := s.onClose
		s.onClose = nil
		s.mu.Unlock()
		for _, f := range fs {
			f()
		}
		// Close waits for the peer's close frame for a while; do not hold up
		// the caller.
		go s.conn.Close(code, reason)
	})
}

func newSessionID() string {
	var b [12]byte
	rand.Read(b[:])
	return "ws-" + hex.EncodeToString(b[:])
}

// isWebSocket reports whether r asks for a WebSocket upgrade.
func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

func (s *server) websocket(w http.ResponseWriter, r *http.Request) {
	recv := s.cfg.Receiver
	if !isWebSocket(r) {
		w.Header().Set("Upgrade", "websocket")
		writeJSON(w, http.StatusUpgradeRequired, ErrorBody{Error: agent.CodeXfer,
			Reason: "POST DIDComm messages to this endpoint, or open a WebSocket on it"})
		return
	}
	wc := s.cfg.WebSocket
	release, client, ok := s.wsLimit.acquire(r.RemoteAddr)
	if !ok {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusTooManyRequests, ErrorBody{Error: CodeTooManyConnections,
			Reason: fmt.Sprintf("too many WebSockets open from %s (limit %d); close one first", client, wc.MaxPerClient)})
		return
	}
	// The server's read and write deadlines would cut a long-lived socket.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	conn, err := websocket.Accept(smallBuffers{w}, r, &websocket.AcceptOptions{
		// DIDComm messages protect themselves; there is no cookie or ambient
		// authority a cross-origin page could abuse.
		OriginPatterns: []string{"*"},
		Subprotocols:   []string{"didcomm/v2", "didcomm"},
	})
	if err != nil {
		release()
		s.cfg.Logger.Info("websocket upgrade failed", "err", err)
		return
	}
	conn.SetReadLimit(s.cfg.MaxBodyBytes)
	sess := &wsSession{id: newSessionID(), conn: conn, timeout: orDefault(wc.WriteTimeout, 10*time.Second), done: make(chan struct{})}
	log := s.cfg.Logger.With("session", sess.id)
	log.Debug("websocket opened", "remote", r.RemoteAddr)
	ctx := context.WithoutCancel(r.Context())
	// The connection is hijacked: net/http is done with it once this
	// handler returns. The socket is served by a goroutine of its own, whose
	// stack stays small (the handler's grew while it parsed the upgrade),
	// since an idle socket costs its goroutine's stack for as long as it is
	// open.
	rateKey := clientIP(r)
	go func() {
		defer release()
		s.serveSocket(ctx, recv, sess, wc, rateKey, log)
	}()
}

// serveSocket reads sess's messages until it closes.
func (s *server) serveSocket(ctx context.Context, recv Receiver, sess *wsSession, wc *WebSocketConfig, rateKey string, log *slog.Logger) {
	if wc.OnOpen != nil {
		wc.OnOpen()
	}
	defer func() {
		if wc.OnClose != nil {
			wc.OnClose()
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopKeepalive := s.keepalive(ctx, sess, wc, log)
	defer stopKeepalive()
	s.sockets.add(sess, wc.Shutdown)
	defer s.sockets.remove(sess)

	conn := sess.conn
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			status := websocket.CloseStatus(err)
			if status == -1 && ctx.Err() == nil {
				log.Debug("websocket read ended", "err", err)
			}
			var tooBig bool
			if errors.Is(err, websocket.ErrMessageTooBig) || strings.Contains(err.Error(), "read limited") {
				tooBig = true
			}
			if tooBig {
				sess.close(websocket.StatusMessageTooBig, "message exceeds the size limit")
			} else {
				sess.close(websocket.StatusNormalClosure, "")
			}
			break
		}
		if typ != websocket.MessageText && typ != websocket.MessageBinary {
			continue
		}
		// Each message is handled on a goroutine of its own, one at a time:
		// the reader's stack does not grow to what unpacking and handling
		// need, and keep that size while the socket idles.
		handled := make(chan struct{})
		go func() {
			defer close(handled)
			defer recoverMessage(ctx, sess, log)
			s.wsMessage(ctx, recv, sess, rateKey, data, log)
		}()
		<-handled
	}
	log.Debug("websocket closed", "writes", sess.writes.Load())
}

// recoverMessage turns a panic while handling one socket message into a
// logged error (with the stack) and an internal-error problem report on the
// socket, as the HTTP recoverer does for a request: the socket and the
// daemon stay up.
func recoverMessage(ctx context.Context, sess *wsSession, log *slog.Logger) {
	v := recover()
	if v == nil {
		return
	}
	log.Error("websocket: message handler panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	pr := agent.ProblemReport(agent.Message{}, agent.Errorf(agent.CodeMe, "internal error"))
	pr.To = nil
	b, _ := json.Marshal(pr)
	_ = sess.Push(ctx, agent.MediaTypePlain, b)
}

// wsReadBuffer and wsWriteBuffer size a socket's buffers. net/http hands a
// hijacked connection over with 4 KiB for each; an idle socket keeps its
// buffers, so they are smaller here. Larger reads and writes bypass them.
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 1024
)

// smallBuffers is the ResponseWriter given to websocket.Accept: its Hijack
// hands the connection over with wsReadBuffer and wsWriteBuffer-sized
// buffers, keeping what the client sent past the upgrade request.
type smallBuffers struct{ http.ResponseWriter }

// Hijack implements http.Hijacker.
func (sb smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(sb.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	// What the client sent past the upgrade request must be in the new
	// reader's buffer: websocket.Accept keeps what is buffered and resets
	// the reader onto the connection.
	br := bufio.NewReaderSize(conn, wsReadBuffer)
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(n, wsReadBuffer))
		if _, err := br.Peek(n); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, wsWriteBuffer)), nil
}

// wsMessage hands one inbound message to the router and writes the answer.
// Each message takes a token of the client's rate limit (ClientLimit).
func (s *server) wsMessage(ctx context.Context, recv Receiver, sess *wsSession, client string, data []byte, log *slog.Logger) {
	var (
		reply *agent.Reply
		err   error
	)
	if err = s.allowClient(client); err != nil {
		// refused before it is read
	} else if !json.Valid(data) {
		err = agent.Errorf(agent.CodeMsg, "message is not valid JSON")
	} else {
		reply, err = recv.ReceiveDuplex(ctx, "ws", data, sess)
	}
	if err != nil {
		var m agent.Message
		if reply != nil && reply.Message != nil {
			m = *reply.Message
			m.From = "" // the refusal goes back on the socket, in plaintext
		}
		pr := agent.ProblemReport(m, err)
		pr.To = nil
		b, _ := json.Marshal(pr)
		if perr := sess.Push(ctx, agent.MediaTypePlain, b); perr != nil {
			log.Debug("writing a problem report failed", "err", perr)
		}
		return
	}
	if reply != nil && reply.Payload != nil {
		if perr := sess.Push(ctx, reply.MediaType, reply.Payload); perr != nil {
			log.Debug("writing a reply failed", "err", perr)
		}
	}
}

// keepalive pings the socket every PingInterval and closes it when a pong
// does not come back within PingTimeout. It parks no goroutine between
// pings (a timer runs each ping), so an idle socket costs only its reader.
// The returned function stops the pings.
func (s *server) keepalive(ctx context.Context, sess *wsSession, wc *WebSocketConfig, log *slog.Logger) (stop func()) {
	interval := orDefault(wc.PingInterval, 30*time.Second)
	timeout := orDefault(wc.PingTimeout, 10*time.Second)
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	t = time.AfterFunc(interval, func() {
		select {
		case <-sess.done:
			return
		case <-ctx.Done():
			return
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := sess.conn.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				log.Info("websocket keepalive failed: closing", "err", err)
			}
			sess.close(websocket.StatusPolicyViolation, "keepalive timeout")
			sess.conn.CloseNow()
			return
		}
		mu.Lock()
		if !stopped {
			t.Reset(interval)
		}
		mu.Unlock()
	})
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}

// wsSockets tracks the open sockets so that they can be closed with "going
// away" when the server shuts down (WebSocketConfig.Shutdown): one goroutine
// waits for the shutdown, rather than one per socket.
type wsSockets struct {
	mu    sync.Mutex
	open  map[*wsSession]struct{}
	watch sync.Once
	down  bool
}

// add tracks sess; shutdown is the channel whose closing closes every socket.
func (w *wsSockets) add(sess *wsSession, shutdown <-chan struct{}) {
	if shutdown == nil {
		return
	}
	w.watch.Do(func() {
		go func() {
			<-shutdown
			w.mu.Lock()
			w.down = true
			all := make([]*wsSession, 0, len(w.open))
			for s := range w.open {
				all = append(all, s)
			}
			w.mu.Unlock()
			for _, s := range all {
				s.close(websocket.StatusGoingAway, "server shutting down")
			}
		}()
	})
	w.mu.Lock()
	down := w.down
	if !down {
		if w.open == nil {
			w.open = map[*wsSession]struct{}{}
		}
		w.open[sess] = struct{}{}
	}
	w.mu.Unlock()
	if down {
		sess.close(websocket.StatusGoingAway, "server shutting down")
	}
}

// remove stops tracking sess.
func (w *wsSockets) remove(sess *wsSession) {
	w.mu.Lock()
	delete(w.open, sess)
	w.mu.Unlock()
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
