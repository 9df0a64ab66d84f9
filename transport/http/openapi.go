package http

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The OpenAPI document of the admin API is generated when the handler is
// built, from the routes the features registered (Routes.Admin) and the Go
// types of their Op: JSON Schemas come from reflection over the request and
// response structs (their json tags), so the document cannot drift from
// the code. GET /admin/openapi.json serves it behind the admin token, like
// the rest of /admin/: it describes nothing secret, but it tells which
// features are enabled.

// openAPIVersion is the version of the API the document describes.
const openAPIVersion = "1"

// openAPI is an OpenAPI 3.1 document, as JSON.
type openAPI map[string]any

var pathParam = regexp.MustCompile(`\{([^}.]+)(\.\.\.)?\}`)

// newOpenAPI describes the admin routes of rs.
func newOpenAPI(rs *Routes) openAPI {
	g := &schemaGen{schemas: map[string]any{}}
	errRef := g.schema(reflect.TypeFor[ErrorBody]())
	paths := map[string]map[string]any{}
	for _, rt := range rs.adminRoutes() {
		op := map[string]any{
			"operationId": operationID(rt.Method, rt.Path),
			"summary":     rt.Op.Summary,
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
				"schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.Op.Query {
			t := q.Type
			if t == "" {
				t = "string"
			}
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Description,
				"schema": map[string]any{"type": t}})
		}
		if params != nil {
			op["parameters"] = params
		}
		switch {
		case rt.Op.Request != nil:
			// An empty body reads as {}: it is required only when a member is.
			op["requestBody"] = map[string]any{"required": hasRequired(reflect.TypeOf(rt.Op.Request)), "content": map[string]any{
				"application/json": map[string]any{"schema": g.value(rt.Op.Request)}}}
		case rt.Op.RequestType != "":
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				rt.Op.RequestType: map[string]any{"schema": map[string]any{"type": "string", "contentMediaType": rt.Op.RequestType}}}}
		}
		ok := map[string]any{"description": http.StatusText(rt.Op.Status)}
		switch {
		case rt.Op.Response != nil:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.value(rt.Op.Response)}}
		case rt.Op.ResponseType != "":
			ok["content"] = map[string]any{rt.Op.ResponseType: map[string]any{"schema": map[string]any{"type": "string", "contentMediaType": rt.Op.ResponseType}}}
		}
		op["responses"] = map[string]any{
			itoa(rt.Op.Status): ok,
			"default": map[string]any{"description": "an error (401 without a valid token)",
				"content": map[string]any{"application/json": map[string]any{"schema": errRef}}},
		}
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = op
	}
	return openAPI{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "agentd admin API", "version": openAPIVersion,
			"description": "The operators' API of agentd. Every route requires the admin bearer token. " +
				"Lists are paged with ?after= (the next value of the previous page) and ?limit= (1..1000, default 100)."},
		"security": []any{map[string]any{"bearerAuth": []any{}}},
		"paths":    paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearerAuth": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas":         g.schemas,
		},
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// operationID names an operation after its method and path:
// GET /admin/mediation/grants/{did} is get_mediation_grants_did.
func operationID(method, path string) string {
	p := strings.TrimPrefix(path, "/admin/")
	p = strings.NewReplacer("/", "_", "{", "", "}", "", ".", "_", "-", "_").Replace(p)
	return strings.ToLower(method) + "_" + p
}

// pager is implemented by Page[T], whose JSON names its items by Key.
type pager interface {
	pageKey() string
	pageItem() reflect.Type
}

// schemaGen builds JSON Schemas (draft 2020-12, as OpenAPI 3.1 uses) of Go
// types; named structs go to components/schemas and are referenced.
type schemaGen struct {
	schemas map[string]any
}

// value is the schema of the JSON form of v.
func (g *schemaGen) value(v any) any {
	if p, ok := v.(pager); ok {
		return map[string]any{
			"type": "object",
			"properties": map[string]any{
				p.pageKey(): map[string]any{"type": "array", "items": g.schema(p.pageItem())},
				"next":      map[string]any{"type": "string", "description": "the ?after= value of the next page; absent on the last page"},
			},
			"required":             []string{p.pageKey()},
			"additionalProperties": false,
		}
	}
	return g.schema(reflect.TypeOf(v))
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	rawType       = reflect.TypeFor[json.RawMessage]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
)

// schema is the schema of values of t.
func (g *schemaGen) schema(t reflect.Type) any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{"description": "any JSON value"}
	case t.Implements(marshalerType) || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(marshalerType)):
		return map[string]any{"type": "object", "description": "see " + t.String()}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		return g.structSchema(t)
	}
	return map[string]any{}
}

func (g *schemaGen) structSchema(t reflect.Type) any {
	name := t.Name()
	if name == "" {
		return g.objectSchema(t)
	}
	if pkg := t.PkgPath(); !strings.HasSuffix(pkg, "/transport/http") {
		name = pkg[strings.LastIndex(pkg, "/")+1:] + "." + name
	}
	ref := map[string]any{"$ref": "#/components/schemas/" + name}
	if _, ok := g.schemas[name]; !ok {
		g.schemas[name] = true // placeholder: recursion stops here
		g.schemas[name] = g.objectSchema(t)
	}
	return ref
}

// objectSchema lists the JSON members of struct t as encoding/json writes
// them: json tag names, embedded structs inlined, "-" skipped, members with
// omitempty or omitzero optional.
func (g *schemaGen) objectSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range jsonFields(t) {
		props[f.name] = g.schema(f.typ)
		if !f.optional {
			required = append(required, f.name)
		}
	}
	sort.Strings(required)
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if required != nil {
		s["required"] = required
	}
	return s
}

// jsonField is a member of a struct's JSON form.
type jsonField struct {
	name     string
	typ      reflect.Type
	optional bool
}

// jsonFields lists the JSON members of struct t.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonFields(ft)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		optional := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
		out = append(out, jsonField{name: name, typ: f.Type, optional: optional})
	}
	return out
}

// hasRequired reports whether struct t has a JSON member that is not
// optional.
func hasRequired(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return true
	}
	for _, f := range jsonFields(t) {
		if !f.optional {
			return true
		}
	}
	return false
}
