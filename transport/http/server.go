// Package http is agentd's HTTP transport: the public DIDComm endpoint that
// wallets POST packed messages to, the public discovery endpoints (/did,
// /invitation, /healthz), the operators' admin API under /admin/ with bearer
// token authentication, /metrics, and the HTTP(S) sender the outbox delivers
// through.
package http

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
)

// Receiver takes packed messages that arrived on a connection that can carry
// replies back (the HTTP response, a WebSocket: session is nil for a plain
// request); *agent.Router is one.
type Receiver interface {
	ReceiveDuplex(ctx context.Context, transport string, raw []byte, session agent.Session) (*agent.Reply, error)
}

// Config is what a Server needs.
type Config struct {
	Receiver Receiver
	// EndpointPath is the path of the DIDComm endpoint, e.g. "/didcomm".
	EndpointPath string
	// MaxBodyBytes limits an inbound message; default 1 MiB.
	MaxBodyBytes int64
	// Public answers the public discovery endpoints.
	Public PublicInfo
	// Admin serves the admin API; nil disables it.
	Admin AdminService
	// AdminToken is the bearer token the admin API requires.
	AdminToken string
	// MetricsPublic serves /metrics without the admin token.
	MetricsPublic bool
	// Metrics serves /metrics and instruments routes; nil disables both.
	Metrics Metrics
	Logger  *slog.Logger
	// Health reports whether the agent is ready; nil means always.
	Health func(ctx context.Context) error
	// WebSocket enables DIDComm over WebSocket on the endpoint (GET with an
	// upgrade); nil disables it.
	WebSocket *WebSocketConfig
	// Mediator serves the mediator's admin API; nil when the mediator is off.
	Mediator MediatorAdmin
	// ProveControl serves the Prove Control admin API; nil disables it.
	ProveControl ProveControlAdmin
	// Challenges serves the public Prove Control routes (one-time links and
	// the IP well-known path); nil disables them.
	Challenges ChallengeEndpoints
}

// PublicInfo gives the public description of the agent.
type PublicInfo interface {
	// DIDDocument returns the agent's DID and its resolved document.
	DIDDocument(ctx context.Context) (did string, doc any, err error)
	// Invitation returns the agent's standing Out-of-Band invitation and its URL.
	Invitation(ctx context.Context) (invitation any, url string, err error)
}

// Metrics is the part of the metrics package the server uses.
type Metrics interface {
	Handler() http.Handler
	Instrument(route string, h http.Handler) http.Handler
}

// NewHandler builds the HTTP handler for all routes.
func NewHandler(cfg Config) http.Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.EndpointPath == "" {
		cfg.EndpointPath = "/didcomm"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &server{cfg: cfg}
	mux := http.NewServeMux()
	route := func(pattern, name string, h http.HandlerFunc) {
		var handler http.Handler = h
		if cfg.Metrics != nil {
			handler = cfg.Metrics.Instrument(name, handler)
		}
		mux.Handle(pattern, handler)
	}
	route("POST "+cfg.EndpointPath, "didcomm", s.didcomm)
	if cfg.WebSocket != nil {
		route("GET "+cfg.EndpointPath, "websocket", s.websocket)
	}
	route("GET /did", "did", s.did)
	route("GET /invitation", "invitation", s.invitation)
	route("GET /healthz", "healthz", s.healthz)
	s.challengeRoutes(route)
	if cfg.Metrics != nil {
		h := cfg.Metrics.Handler()
		if !cfg.MetricsPublic {
			h = s.requireToken(h)
		}
		mux.Handle("GET /metrics", h)
	}
	if cfg.Admin != nil {
		mux.Handle("/admin/", s.requireToken(s.adminRoutes()))
	}
	return mux
}

type server struct {
	cfg Config
}

// acceptedMediaTypes are the content types the DIDComm endpoint takes.
var acceptedMediaTypes = map[string]bool{
	agent.MediaTypeEncrypted: true,
	agent.MediaTypeSigned:    true,
	agent.MediaTypePlain:     true,
}

func (s *server) didcomm(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !acceptedMediaTypes[mt] {
		writeError(w, agent.Errorf(agent.CodeMediaType, "content type must be one of %s, %s, %s",
			agent.MediaTypeEncrypted, agent.MediaTypeSigned, agent.MediaTypePlain))
		return
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		writeError(w, agent.Errorf(agent.CodeTooLarge, "message exceeds the limit of %d bytes", s.cfg.MaxBodyBytes))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, agent.Errorf(agent.CodeTooLarge, "message exceeds the limit of %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		writeError(w, agent.Wrap(agent.CodeXfer, err, "could not read the request body"))
		return
	}
	if !json.Valid(body) {
		writeError(w, agent.Errorf(agent.CodeMsg, "body is not valid JSON"))
		return
	}
	reply, err := s.cfg.Receiver.ReceiveDuplex(r.Context(), "http", body, nil)
	if err != nil {
		writeError(w, err)
		return
	}
	if reply != nil && reply.Payload != nil {
		w.Header().Set("Content-Type", reply.MediaType)
		w.WriteHeader(http.StatusOK)
		w.Write(reply.Payload)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *server) did(w http.ResponseWriter, r *http.Request) {
	id, doc, err := s.cfg.Public.DIDDocument(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"did": id, "didDocument": doc})
}

func (s *server) invitation(w http.ResponseWriter, r *http.Request) {
	inv, url, err := s.cfg.Public.Invitation(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"invitation": inv, "url": url})
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Health(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy", "reason": agent.ErrorComment(err)})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// requireToken lets through only requests carrying the admin bearer token.
func (s *server) requireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const prefix = "Bearer "
		auth := r.Header.Get("Authorization")
		ok := s.cfg.AdminToken != "" && strings.HasPrefix(auth, prefix) &&
			subtle.ConstantTimeCompare([]byte(auth[len(prefix):]), []byte(s.cfg.AdminToken)) == 1
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="agentd admin"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized", Reason: "a valid admin bearer token is required"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

func writeError(w http.ResponseWriter, err error) {
	var nf *notFoundError
	if errors.As(err, &nf) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not-found", Reason: nf.Error()})
		return
	}
	writeJSON(w, agent.HTTPStatus(err), errorBody{Error: agent.ErrorCode(err), Reason: agent.ErrorComment(err)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
