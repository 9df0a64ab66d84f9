package http

import (
	"net/http"
	"sort"
	"strings"
)

// Feature is a part of the agent that serves HTTP routes: the core admin
// API, the mediator, Prove Control. The daemon builds the features it has
// enabled and hands them to the server in Config.Features; each adds its
// routes. The server wraps every route uniformly: admin routes get the
// bearer token check, every route gets metrics instrumentation, panic
// recovery and the JSON error mapping of writeError.
type Feature interface {
	// Routes adds the feature's routes to r.
	Routes(r *Routes)
}

// FeatureFunc adapts a function to a Feature.
type FeatureFunc func(r *Routes)

// Routes implements Feature.
func (f FeatureFunc) Routes(r *Routes) { f(r) }

// Op documents an admin route: the OpenAPI document is generated from it
// (openapi.go), so it is the one description of the route's JSON shape.
type Op struct {
	// Summary is the one-line description of the operation.
	Summary string
	// Request is a value of the JSON request body type; nil when the route
	// takes no JSON body.
	Request any
	// RequestType is the media type of a non-JSON request body (e.g.
	// "application/octet-stream"); Request is then nil.
	RequestType string
	// Response is a value of the JSON response body type; nil when the
	// route answers without a JSON body.
	Response any
	// ResponseType is the media type of a non-JSON response (e.g.
	// "application/pdf"); Response is then nil.
	ResponseType string
	// Status is the success status; 200 by default, 204 when there is
	// neither Response nor ResponseType.
	Status int
	// Query lists the query parameters the route reads.
	Query []Param
	// APIKey lets the route take the admin token in an x-api-key header
	// too (the cloud-agent GraphQL API's server-side convention), as an
	// equivalent of the bearer token.
	APIKey bool
}

// Param is a query parameter of a route.
type Param struct {
	Name        string
	Description string
	// Type is the JSON Schema type: "string" (default), "integer" or "boolean".
	Type string
}

// route is one registered route.
type route struct {
	method, path string
	name         string
	admin        bool
	op           Op
	h            http.Handler
}

// Routes collects the routes of the features. Patterns are those of
// http.ServeMux ("GET /admin/mediation/grants/{did}").
type Routes struct {
	routes   []route
	disabled []disabledPrefix
	// endpoint are the handlers of other content types posted to the
	// DIDComm endpoint, by media type (EndpointMediaType).
	endpoint map[string]http.HandlerFunc
}

type disabledPrefix struct{ prefix, reason string }

// Public adds a public route (no token); name labels its metrics.
func (r *Routes) Public(pattern, name string, h http.HandlerFunc) {
	method, path := splitPattern(pattern)
	r.routes = append(r.routes, route{method: method, path: path, name: name, h: h})
}

// EndpointMediaType hands what is posted to the DIDComm endpoint with
// media type mt to h instead of the DIDComm router (after the client rate
// limit): a feature whose messages share the endpoint with DIDComm (the
// iden3comm envelopes) takes them there.
func (r *Routes) EndpointMediaType(mt string, h http.HandlerFunc) {
	if r.endpoint == nil {
		r.endpoint = map[string]http.HandlerFunc{}
	}
	r.endpoint[mt] = h
}

// Admin adds an admin route: it requires the admin bearer token and is
// listed in the OpenAPI document as op describes it; its metrics label is
// its operation id (get_mediation_grants_did). The path must start with
// /admin/.
func (r *Routes) Admin(pattern string, op Op, h http.HandlerFunc) {
	method, path := splitPattern(pattern)
	if method == "" || !strings.HasPrefix(path, "/admin/") {
		panic("http: admin route " + pattern + " must have a method and a path under /admin/")
	}
	if op.Status == 0 {
		op.Status = http.StatusOK
		if op.Response == nil && op.ResponseType == "" {
			op.Status = http.StatusNoContent
		}
	}
	r.routes = append(r.routes, route{method: method, path: path, name: operationID(method, path), admin: true, op: op, h: h})
}

// Disabled answers every admin request under prefix (e.g.
// "/admin/mediation/") with 404 and reason: a feature that is switched off
// says so rather than "no such endpoint".
func (r *Routes) Disabled(prefix, reason string) {
	r.disabled = append(r.disabled, disabledPrefix{prefix, reason})
}

// AdminRoute describes a registered admin route (for the OpenAPI
// document and its drift test).
type AdminRoute struct {
	// Method and Path are the two parts of the route's pattern.
	Method, Path string
	// Op documents the route.
	Op Op
}

// adminRoutes lists the admin routes in path, method order.
func (r *Routes) adminRoutes() []AdminRoute {
	var out []AdminRoute
	for _, rt := range r.routes {
		if rt.admin {
			out = append(out, AdminRoute{Method: rt.method, Path: rt.path, Op: rt.op})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

func splitPattern(pattern string) (method, path string) {
	if m, p, ok := strings.Cut(pattern, " "); ok {
		return m, strings.TrimSpace(p)
	}
	return "", pattern
}
