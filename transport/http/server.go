// Package http is agentd's HTTP transport: the public DIDComm endpoint that
// wallets POST packed messages to (and open WebSockets on), the public
// discovery endpoints (/did, /invitation, /healthz), /metrics, the
// operators' admin API under /admin/ with bearer token authentication, and
// the HTTP(S) sender the outbox delivers through.
//
// # Features
//
// Config holds only the core of the server. Everything else is a Feature
// that adds its routes through Routes: Routes.Public for public routes,
// Routes.Admin for admin routes with an Op that documents them. The server
// wraps every route the same way: the admin token check, metrics, panic
// recovery (500, stack in the log) and one error mapping (statusOf,
// writeError: 5xx causes are logged, the peer sees only the safe comment).
// The features are NewAdminAPI (ping, discover, invitations, outbox, dead
// letters), NewMediationAPI (or MediationDisabled), NewProveControlAPI and
// NewChallengeLinks (the public one-time links and IP well-known path).
//
// Decision: this package imports no protocol package (only agent). Each
// feature is built from a narrow service interface defined here
// (AdminService, MediatorAdmin, ProveControlAdmin, ChallengeEndpoints),
// whose methods take and return the request and response structs defined
// here. Those structs, with their json tags, are the documented JSON shape
// of the admin API; the daemon adapts the protocols' own types to them
// (internal/daemon/admin.go). The feature route code lives here, one file
// per feature, so that protocols do not import net/http.
//
// # The admin API
//
// Lists are paged the same way everywhere (parsePage, Page): ?after= takes
// the "next" value of the previous page and ?limit= is 1..1000 (default
// 100). The API is published as an OpenAPI 3.1 document at
// GET /admin/openapi.json, behind the admin token like the rest of /admin/
// (it tells which features are enabled). The document is generated from
// the registered routes and reflection over their Go types (openapi.go), so
// it cannot drift; a test also checks it against the routes and the JSON the
// handlers write. Client is a typed client of the API (agentctl uses it).
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
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/internal/connlimit"
)

// Receiver takes packed messages that arrived on a connection that can carry
// replies back (the HTTP response, a WebSocket: session is nil for a plain
// request); *agent.Router is one. raw is the receiver's only for the call:
// it must keep nothing that shares its memory once it returns (the
// endpoint reads the next request's body into the same buffer).
type Receiver interface {
	ReceiveDuplex(ctx context.Context, transport string, raw []byte, session agent.Session) (*agent.Reply, error)
	// ReceiveDeclared is ReceiveDuplex without a session for a message
	// whose form the request declared: another form is refused with
	// agent.CodeMediaType before anything is decrypted.
	ReceiveDeclared(ctx context.Context, transport string, raw []byte, form envelope.Form) (*agent.Reply, error)
}

// Config is what a Server needs: the core of the transport. Everything
// else (the admin API, the mediator's and Prove Control's routes) is a
// Feature.
type Config struct {
	Receiver Receiver
	// EndpointPath is the path of the DIDComm endpoint, e.g. "/didcomm".
	EndpointPath string
	// MaxBodyBytes limits an inbound message; default 1 MiB.
	MaxBodyBytes int64
	// Public answers the public discovery endpoints.
	Public PublicInfo
	// AdminToken is the bearer token the admin API requires; empty
	// authorises nothing.
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
	// ClientLimit, when set, rate-limits the DIDComm endpoint by client
	// IP address (the request's RemoteAddr, an IPv6 address by its /64:
	// behind a reverse proxy, all clients share the proxy's address): each POST and each WebSocket
	// message takes a token, and one over the limit is answered 429 with
	// Retry-After (a problem report on a WebSocket), before it is read.
	ClientLimit agent.Limiter
	// OnRateLimited, when set, is called for each message ClientLimit
	// refuses (for a metric).
	OnRateLimited func(by string)
	// Features add their public and admin routes (NewAdminAPI,
	// NewMediationAPI, NewProveControlAPI, NewChallengeLinks, ...). When a
	// feature adds admin routes, GET /admin/did and GET /admin/openapi.json
	// are served too.
	Features []Feature
}

// PublicInfo gives the public description of the agent.
type PublicInfo interface {
	// DIDDocument returns the agent's DID and its resolved document.
	DIDDocument(ctx context.Context) (did string, doc *did.Doc, err error)
	// Invitation returns the agent's standing Out-of-Band invitation and its URL.
	Invitation(ctx context.Context) (invitation Invitation, url string, err error)
}

// Metrics is the part of the metrics package the server uses.
type Metrics interface {
	Handler() http.Handler
	Instrument(route string, h http.Handler) http.Handler
}

// NewHandler builds the HTTP handler for all routes.
func NewHandler(cfg Config) http.Handler {
	h, _, _ := newServer(cfg)
	return h
}

// newServer builds the handler, and returns its mux and the collected
// routes too.
func newServer(cfg Config) (http.Handler, *http.ServeMux, *Routes) {
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
	if cfg.WebSocket != nil {
		s.wsLimit = &wsLimiter{max: cfg.WebSocket.MaxPerClient, open: map[netip.Prefix]int{}}
	}
	rs := &Routes{}
	// The endpoint answers with and without a trailing slash (POST
	// /didcomm/ is what some wallets send, the Identus ones among them).
	endpoints := []string{cfg.EndpointPath}
	if !strings.HasSuffix(cfg.EndpointPath, "/") {
		endpoints = append(endpoints, cfg.EndpointPath+"/{$}")
	}
	for _, p := range endpoints {
		rs.Public("POST "+p, "didcomm", s.didcomm)
		if cfg.WebSocket != nil {
			rs.Public("GET "+p, "websocket", s.websocket)
		}
	}
	rs.Public("GET /did", "did", s.did)
	rs.Public("GET /invitation", "invitation", s.invitation)
	rs.Public("GET /healthz", "healthz", s.healthz)
	core := len(rs.routes) // the server's own routes log through s.fail
	for _, f := range cfg.Features {
		f.Routes(rs)
	}
	s.endpoint = rs.endpoint
	hasAdmin := len(rs.adminRoutes()) > 0 || len(rs.disabled) > 0
	if hasAdmin {
		rs.Admin("GET /admin/did", Op{Summary: "The agent's DID and DID document", Response: DIDResponse{}}, s.did)
		var doc openAPI // built below, once every route is known
		rs.Admin("GET /admin/openapi.json", Op{Summary: "This document: the admin API as OpenAPI 3.1", Response: map[string]any{}},
			func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, doc) })
		doc = newOpenAPI(rs)
	}

	mux := http.NewServeMux()
	for i, rt := range rs.routes {
		var h http.Handler = rt.h
		if i >= core {
			h = withLogger(cfg.Logger, h)
		}
		if rt.admin {
			if rt.op.APIKey {
				h = s.requireTokenOrKey(h)
			} else {
				h = s.requireToken(h)
			}
		}
		if cfg.Metrics != nil {
			h = cfg.Metrics.Instrument(rt.name, h)
		}
		mux.Handle(rt.method+" "+rt.path, routed(recoverer(cfg.Logger, h)))
	}
	for _, d := range rs.disabled {
		reason := d.reason
		mux.Handle(d.prefix, routed(s.requireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusNotFound, ErrorBody{Error: agent.CodeNotFound, Reason: reason})
		}))))
	}
	if cfg.Metrics != nil {
		h := cfg.Metrics.Handler()
		if !cfg.MetricsPublic {
			h = s.requireToken(h)
		}
		mux.Handle("GET /metrics", routed(h))
	}
	if hasAdmin {
		mux.Handle("/admin/", routed(s.requireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusNotFound, ErrorBody{Error: agent.CodeNotFound, Reason: "no admin endpoint " + r.Method + " " + r.URL.Path})
		}))))
	}
	// Under /admin/, the catch-all above (behind the token) answers every
	// method a route does not take: no 405 tells a stranger which routes exist.
	return muxErrors{mux}, mux, rs
}

type server struct {
	cfg     Config
	wsLimit *wsLimiter // nil without WebSockets
	sockets wsSockets  // the open WebSockets (ws.go)
	// endpoint are the features' handlers of other content types posted
	// to the DIDComm endpoint (Routes.EndpointMediaType).
	endpoint map[string]http.HandlerFunc
}

// fail answers err (see writeError).
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, s.cfg.Logger, err)
}

// acceptedMediaTypes are the content types the DIDComm endpoint takes.
var acceptedMediaTypes = map[string]bool{
	agent.MediaTypeEncrypted: true,
	agent.MediaTypeSigned:    true,
	agent.MediaTypePlain:     true,
}

func (s *server) didcomm(w http.ResponseWriter, r *http.Request) {
	if s.cfg.ClientLimit != nil { // clientIP parses the address: only when it is needed
		if err := s.allowClient(clientIP(r)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	mt, err := endpointMediaType(r.Header.Get("Content-Type"))
	if h := s.endpoint[mt]; err == nil && h != nil {
		h(w, r)
		return
	}
	if err != nil || !acceptedMediaTypes[mt] {
		s.fail(w, r, agent.Errorf(agent.CodeMediaType, "content type must be one of %s, %s, %s",
			agent.MediaTypeEncrypted, agent.MediaTypeSigned, agent.MediaTypePlain))
		return
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.fail(w, r, agent.Errorf(agent.CodeTooLarge, "message exceeds the limit of %d bytes", s.cfg.MaxBodyBytes))
		return
	}
	bp := getBodyBuf(r.ContentLength)
	body, err := readBodyInto(*bp, http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), r.ContentLength)
	// The receiver does not keep the body (Receiver): its buffer serves the
	// next request once this one is answered.
	defer putBodyBuf(bp, body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(w, r, agent.Errorf(agent.CodeTooLarge, "message exceeds the limit of %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		s.fail(w, r, agent.Wrap(agent.CodeXfer, err, "could not read the request body"))
		return
	}
	// The receiver checks the form the Content-Type declares in the scan
	// that unpacks the body, before it decrypts anything.
	reply, err := s.cfg.Receiver.ReceiveDeclared(r.Context(), "http", body, envelope.Form(mt))
	if err != nil {
		s.fail(w, r, err)
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

// readBody reads a request body whole. With a declared length (at most the
// limit, checked before) it allocates that much once, where io.ReadAll
// grows a buffer from 512 bytes, copying as it goes: a 2 KiB forward cost
// four allocations and 3.5 KiB of copies.
func readBody(rd io.Reader, declared int64) ([]byte, error) {
	return readBodyInto(nil, rd, declared)
}

// readBodyInto is readBody into buf when it has room for the declared
// length (and the EOF read), into a new buffer otherwise.
func readBodyInto(buf []byte, rd io.Reader, declared int64) ([]byte, error) {
	if declared <= 0 {
		return io.ReadAll(rd)
	}
	if int64(cap(buf)) > declared {
		buf = buf[:0]
	} else {
		buf = make([]byte, 0, declared+1) // +1: the EOF is read without growing
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // longer than declared: the reader decides
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// bodyPool holds the buffers the DIDComm endpoint reads bodies into, as
// *[]byte; a body is not kept past its request (Receiver), so its buffer
// serves the next one. Buffers over maxPooledBody are left to the
// collector.
var bodyPool sync.Pool

const maxPooledBody = 64 << 10

// getBodyBuf returns a buffer from the pool for a body of the declared
// length, or an empty one (readBodyInto then allocates) when the pool has
// none or the length is unknown or too large.
func getBodyBuf(declared int64) *[]byte {
	if declared > 0 && declared < maxPooledBody {
		if bp, ok := bodyPool.Get().(*[]byte); ok {
			return bp
		}
	}
	return new([]byte)
}

// putBodyBuf returns body's buffer to the pool when it is small enough.
func putBodyBuf(bp *[]byte, body []byte) {
	if c := cap(body); c == 0 || c > maxPooledBody {
		return
	}
	*bp = body[:0]
	bodyPool.Put(bp)
}

// endpointMediaType is mime.ParseMediaType's media type of a Content-Type,
// without parsing one that is exactly one of the accepted types (lower
// case, no parameters), which it would return as it is.
func endpointMediaType(ct string) (string, error) {
	if acceptedMediaTypes[ct] {
		return ct, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	return mt, err
}

// clientIP is the rate-limit key of the request's client: its IP address
// without the port, an IPv6 address by its /64 (connlimit.KeyOf), as the
// connection caps count clients.
func clientIP(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return connlimit.KeyString(connlimit.KeyOf(ap.Addr()))
}

// allowClient takes a token of the client's rate limit; over it, the error
// is a refusal with CodeRateLimited and the wait until the next token.
func (s *server) allowClient(client string) error {
	if s.cfg.ClientLimit == nil {
		return nil
	}
	ok, wait := s.cfg.ClientLimit.Allow(client)
	if ok {
		return nil
	}
	s.cfg.Logger.Info("client over its rate limit", "client", client)
	if s.cfg.OnRateLimited != nil {
		s.cfg.OnRateLimited("client")
	}
	e := agent.Errorf(agent.CodeRateLimited, "too many messages from this address; try again later")
	e.RetryAfter = wait
	return e
}

func (s *server) did(w http.ResponseWriter, r *http.Request) {
	id, doc, err := s.cfg.Public.DIDDocument(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, DIDResponse{DID: id, DIDDocument: doc})
}

func (s *server) invitation(w http.ResponseWriter, r *http.Request) {
	inv, url, err := s.cfg.Public.Invitation(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, InvitationResponse{Invitation: inv, URL: url})
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Health(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, HealthResponse{Status: "unhealthy", Reason: agent.ErrorComment(err)})
			return
		}
	}
	writeJSON(w, http.StatusOK, HealthResponse{Status: "ok"})
}

// DIDResponse answers GET /did and GET /admin/did.
type DIDResponse struct {
	DID string `json:"did"`
	// DIDDocument is the resolved DID document (W3C DID Core).
	DIDDocument *did.Doc `json:"didDocument"`
}

// InvitationResponse answers GET /invitation and the invitation-making
// admin routes.
type InvitationResponse struct {
	// Invitation is the Out-of-Band 2.0 invitation message.
	Invitation Invitation `json:"invitation"`
	// URL is the invitation as a URL (?_oob=...).
	URL string `json:"url"`
}

// HealthResponse answers GET /healthz.
type HealthResponse struct {
	// Status is "ok" or "unhealthy".
	Status string `json:"status"`
	// Reason says why the agent is unhealthy.
	Reason string `json:"reason,omitempty"`
}

// requireToken lets through only requests carrying the admin bearer token.
func (s *server) requireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The scheme is case-insensitive (RFC 7235 section 2.1): "bearer" is "Bearer".
		scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		ok := s.cfg.AdminToken != "" && strings.EqualFold(scheme, "Bearer") &&
			subtle.ConstantTimeCompare([]byte(strings.TrimLeft(token, " ")), []byte(s.cfg.AdminToken)) == 1
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="agentd admin"`)
			writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: "unauthorized", Reason: "a valid admin bearer token is required"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// requireTokenOrKey is requireToken that also takes the admin token in an
// x-api-key header.
func (s *server) requireTokenOrKey(h http.Handler) http.Handler {
	bearer := s.requireToken(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key := r.Header.Get("X-Api-Key"); key != "" {
			if s.cfg.AdminToken == "" || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.cfg.AdminToken)) != 1 {
				writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: "unauthorized", Reason: "a valid admin API key is required"})
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		bearer.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
