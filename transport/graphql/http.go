package graphql

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	gqlgen "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	gen "github.com/agentd/agentd/transport/graphql/internal/generated"
	agenthttp "github.com/agentd/agentd/transport/http"
)

// Path is where the API is served: POST for queries and mutations (and
// subscriptions over SSE with Accept: text/event-stream), GET with a
// WebSocket upgrade for subscriptions over graphql-transport-ws.
const Path = "/admin/graphql"

// Config configures the GraphQL admin API.
type Config struct {
	Resolver *Resolver
	// AdminToken authenticates WebSocket subscriptions (in a header or in
	// the connection_init payload); the POST route is behind the HTTP
	// server's own admin check.
	AdminToken string
	Logger     *slog.Logger
	// MaxBodyBytes limits a request body; default 1 MiB.
	MaxBodyBytes int64
	// ComplexityLimit bounds an operation's complexity (one per field);
	// default 2000.
	ComplexityLimit int
	// MaxDepth bounds the nesting of an operation's selections (fragments
	// expanded); default 20.
	MaxDepth int
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.ComplexityLimit <= 0 {
		c.ComplexityLimit = 2000
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = 20
	}
	if c.Resolver == nil {
		c.Resolver = &Resolver{}
	}
}

// API is the GraphQL admin API: an http Feature.
type API struct {
	cfg Config
	srv *handler.Server
}

// New builds the API.
func New(cfg Config) *API {
	cfg.defaults()
	srv := handler.New(gen.NewExecutableSchema(gen.Config{Resolvers: cfg.Resolver.root()}))
	srv.AddTransport(transport.Websocket{
		KeepAlivePingInterval: 15 * time.Second,
		InitTimeout:           10 * time.Second,
		InitFunc:              cfg.wsInit,
	})
	srv.AddTransport(transport.SSE{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](256))
	srv.Use(extension.Introspection{}) // every caller is an admin
	srv.Use(extension.FixedComplexityLimit(cfg.ComplexityLimit))
	srv.Use(depthLimit(cfg.MaxDepth))
	srv.SetErrorPresenter(presenter(cfg.Logger))
	srv.SetRecoverFunc(recoverer(cfg.Logger))
	return &API{cfg: cfg, srv: srv}
}

// Routes implements transport/http.Feature: POST /admin/graphql behind the
// admin token (bearer or x-api-key), GET /admin/graphql for WebSocket
// subscriptions, which authenticate themselves (see wsInit).
func (a *API) Routes(r *agenthttp.Routes) {
	r.Admin("POST "+Path, agenthttp.Op{
		Summary:  "The GraphQL admin API (cloud-agent schema): queries, mutations, subscriptions over SSE",
		Request:  Request{},
		Response: Response{},
		APIKey:   true,
	}, a.ServeHTTP)
	r.Public("GET "+Path, "graphql_ws", a.websocket)
}

// Request is a GraphQL request body. A body that is not such a JSON object
// is taken as the query itself (the vendor's TypeScript sample posts the
// query string as the body).
type Request struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
}

// Response is a GraphQL response: HTTP 200 even when errors is set.
type Response struct {
	Data   any   `json:"data"`
	Errors []any `json:"errors,omitempty"`
}

// ServeHTTP answers a POST (the caller has checked the token).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeErrors(w, http.StatusRequestEntityTooLarge, CodeBadUserInput, fmt.Sprintf("request body exceeds %d bytes", a.cfg.MaxBodyBytes))
			return
		}
		writeErrors(w, http.StatusBadRequest, CodeBadUserInput, "could not read the request body")
		return
	}
	body = normalize(body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Type", "application/json")
	a.srv.ServeHTTP(status200{ResponseWriter: w}, r)
}

// normalize returns body as a JSON GraphQL request: a raw query becomes
// {"query": body}.
func normalize(body []byte) []byte {
	var probe map[string]json.RawMessage
	if json.Unmarshal(body, &probe) == nil {
		if _, ok := probe["query"]; ok {
			return body
		}
	}
	out, _ := json.Marshal(Request{Query: string(body)})
	return out
}

// status200 answers GraphQL errors that gqlgen gives 4xx (parse,
// validation, complexity) with 200: the cloud agent's clients treat any
// other status as a transport failure, and read errors[].
type status200 struct{ http.ResponseWriter }

func (s status200) WriteHeader(code int) {
	if code == http.StatusUnprocessableEntity || code == http.StatusBadRequest {
		code = http.StatusOK
	}
	s.ResponseWriter.WriteHeader(code)
}

// Flush sends what is buffered (SSE subscriptions): through
// http.ResponseController, which reaches the connection's writer through
// the wrappers' Unwrap (the metrics' status recorder is not a Flusher).
func (s status200) Flush() {
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s status200) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func writeErrors(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []any{map[string]any{"message": msg, "extensions": map[string]any{"code": code}}},
	})
}

type authedKey struct{}

// websocket serves subscriptions over graphql-transport-ws (and the older
// graphql-ws). The admin token comes in the upgrade request's
// Authorization or x-api-key header, or, for browsers that cannot set
// headers, in the connection_init payload.
func (a *API) websocket(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") == "" {
		writeErrors(w, http.StatusBadRequest, CodeBadUserInput, "GET "+Path+" serves WebSocket subscriptions only; POST queries and mutations")
		return
	}
	hasCred := r.Header.Get("Authorization") != "" || r.Header.Get("X-Api-Key") != ""
	if hasCred {
		if !a.cfg.headerAuthorized(r.Header) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="agentd admin"`)
			writeErrors(w, http.StatusUnauthorized, CodeUnauthenticated, "a valid admin token is required")
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), authedKey{}, true))
	}
	a.srv.ServeHTTP(w, r)
}

// wsInit accepts a WebSocket whose upgrade was authenticated, or whose
// connection_init payload carries the admin token.
func (c Config) wsInit(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	if ok, _ := ctx.Value(authedKey{}).(bool); ok {
		return ctx, nil, nil
	}
	h := http.Header{}
	if v := p.Authorization(); v != "" {
		h.Set("Authorization", v)
	}
	for _, k := range []string{"x-api-key", "X-Api-Key", "apiKey"} {
		if v := p.GetString(k); v != "" {
			h.Set("X-Api-Key", v)
		}
	}
	if !c.headerAuthorized(h) {
		return ctx, nil, errors.New("unauthorized: a valid admin token is required")
	}
	return ctx, nil, nil
}

// headerAuthorized checks a bearer token or an x-api-key in constant time.
func (c Config) headerAuthorized(h http.Header) bool {
	if c.AdminToken == "" {
		return false
	}
	if key := strings.TrimSpace(h.Get("X-Api-Key")); key != "" {
		return subtle.ConstantTimeCompare([]byte(key), []byte(c.AdminToken)) == 1
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(h.Get("Authorization")), " ")
	return strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(c.AdminToken)) == 1
}

// depthLimit refuses operations nested deeper than max.
type depthLimit int

var _ interface {
	gqlgen.HandlerExtension
	gqlgen.OperationContextMutator
} = depthLimit(0)

func (d depthLimit) ExtensionName() string                         { return "DepthLimit" }
func (d depthLimit) Validate(schema gqlgen.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(ctx context.Context, oc *gqlgen.OperationContext) *gqlerror.Error {
	if n := depth(oc.Operation.SelectionSet, oc.Doc.Fragments, 0); n > int(d) {
		err := gqlerror.Errorf("operation is nested %d deep, more than the limit of %d", n, int(d))
		err.Extensions = map[string]any{"code": CodeBadUserInput}
		return err
	}
	return nil
}

func depth(set ast.SelectionSet, frags ast.FragmentDefinitionList, seen int) int {
	if seen > 64 { // fragment cycles are refused by validation; bound anyway
		return seen
	}
	best := seen
	for _, s := range set {
		var n int
		switch s := s.(type) {
		case *ast.Field:
			n = depth(s.SelectionSet, frags, seen+1)
		case *ast.InlineFragment:
			n = depth(s.SelectionSet, frags, seen)
		case *ast.FragmentSpread:
			if f := frags.ForName(s.Name); f != nil {
				n = depth(f.SelectionSet, frags, seen)
			}
		}
		if n > best {
			best = n
		}
	}
	return best
}
