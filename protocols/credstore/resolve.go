package credstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/anoncreds"
)

// Object kinds.
const (
	ObjectSchema  = "schema"
	ObjectCredDef = "credDef"
)

// Object is an AnonCreds schema or credential definition with its id, as
// the operator imports it and as the files of Config.Dir hold it: a JSON
// object {"id": ID, "schema": {...}} or {"id": ID, "credentialDefinition":
// {...}}, or the legacy form that carries its own "id" next to the
// object's members (attrNames for a schema, value.primary for a credential
// definition).
type Object struct {
	ID      string
	Kind    string
	Schema  *anoncreds.Schema
	CredDef *anoncreds.CredentialDefinition
}

// maxObjectSize bounds an object as imported or read from a file.
const maxObjectSize = 1 << 20

// ParseObject reads an Object (see its doc). id, when not "", is the id
// the object is known by (a fetched object's URL), and any id it states
// must match.
func ParseObject(data []byte, id string) (*Object, error) {
	if len(data) > maxObjectSize {
		return nil, agent.Errorf(agent.CodeMsg, "object: more than %d bytes", maxObjectSize)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, "object: not a JSON object")
	}
	var stated string
	if raw, ok := top["id"]; ok {
		if json.Unmarshal(raw, &stated) != nil {
			return nil, agent.Errorf(agent.CodeMsg, "object: id must be a string")
		}
	}
	switch {
	case id == "" && stated == "":
		return nil, agent.Errorf(agent.CodeMsg, "object: id is required")
	case id == "":
		id = stated
	case stated != "" && stated != id:
		return nil, agent.Errorf(agent.CodeMsg, "object: states id %s, expected %s", clip(stated, 200), clip(id, 200))
	}
	body, kind := json.RawMessage(data), ""
	for _, k := range []string{"schema", "credentialDefinition", "credential_definition", "credDef"} {
		if raw, ok := top[k]; ok {
			body, kind = raw, ObjectCredDef
			if k == "schema" {
				kind = ObjectSchema
			}
			break
		}
	}
	if kind == "" {
		_, hasAttrs := top["attrNames"]
		_, hasValue := top["value"]
		switch {
		case hasAttrs:
			kind = ObjectSchema
		case hasValue:
			kind = ObjectCredDef
		default:
			return nil, agent.Errorf(agent.CodeMsg, "object: neither a schema (attrNames) nor a credential definition (value)")
		}
	}
	o := &Object{ID: id, Kind: kind}
	var err error
	if kind == ObjectSchema {
		o.Schema, err = anoncreds.ParseSchema(body)
	} else {
		o.CredDef, err = anoncreds.ParseCredentialDefinition(legacyCredDef(body))
	}
	if err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, "object "+clip(id, 200)+": "+err.Error())
	}
	return o, nil
}

// legacyCredDef maps the legacy JSON names of a credential definition
// (schemaId as "schemaId" or "schema_id"... the legacy form uses
// "schemaId" too, but "ver" and "id" members) onto the parser's: unknown
// members are dropped.
func legacyCredDef(body []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	for _, k := range []string{"id", "ver"} {
		delete(m, k)
	}
	if v, ok := m["schema_id"]; ok {
		if _, has := m["schemaId"]; !has {
			m["schemaId"] = v
		}
		delete(m, "schema_id")
	}
	b, _ := json.Marshal(m)
	return b
}

// readDir reads the objects of dir (*.json files, one object each).
func readDir(dir string) (map[string]Object, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	out := map[string]Object{}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if fi.Size() > maxObjectSize {
			return nil, fmt.Errorf("credstore: %s: more than %d bytes", p, maxObjectSize)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		o, err := ParseObject(b, "")
		if err != nil {
			return nil, fmt.Errorf("credstore: %s: %w", p, err)
		}
		if _, dup := out[o.ID]; dup {
			return nil, fmt.Errorf("credstore: %s: id %s is in another file too", p, o.ID)
		}
		out[o.ID] = *o
	}
	return out, nil
}

// Import stores an object (see Object) as an operator-imported record, so
// that holders and verifiers resolve it. A revocable credential
// definition is refused; an id already stored is e.p.req.conflict.
func (s *Service) Import(ctx context.Context, data []byte) (*Object, error) {
	o, err := ParseObject(data, "")
	if err != nil {
		return nil, err
	}
	if len(o.ID) > 1024 {
		return nil, agent.Errorf(agent.CodeMsg, "object: id longer than 1024 bytes")
	}
	if o.Kind == ObjectSchema {
		_, err = s.putSchema(ctx, o.ID, o.Schema, SourceImported)
		return o, err
	}
	if o.CredDef.Value.SupportsRevocation() {
		return nil, agent.Errorf(agent.CodeMsg, "credential definition %s supports revocation, which is not supported", clip(o.ID, 200))
	}
	_, err = s.putCredDef(ctx, o.ID, o.CredDef, nil, nil, SourceImported)
	return o, err
}

// ImportHandler serves POST /admin/anoncreds/objects: the body is an
// Object; the answer is 201 {"id", "kind"}, or 400 (malformed), 409 (the
// id is stored already) with {"error"}. The caller mounts it behind the
// admin authentication.
func (s *Service) ImportHandler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			rw.Header().Set("Allow", http.MethodPost)
			writeJSON(rw, http.StatusMethodNotAllowed, map[string]string{"error": "POST an object"})
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxObjectSize+1))
		if err != nil {
			writeJSON(rw, http.StatusBadRequest, map[string]string{"error": "could not read the body"})
			return
		}
		o, err := s.Import(r.Context(), body)
		switch {
		case err == nil:
			writeJSON(rw, http.StatusCreated, map[string]string{"id": o.ID, "kind": o.Kind})
		case agent.HasCode(err, agent.CodeConflict):
			writeJSON(rw, http.StatusConflict, map[string]string{"error": agent.ErrorComment(err)})
		case agent.HasCode(err, agent.CodeMsg):
			writeJSON(rw, http.StatusBadRequest, map[string]string{"error": agent.ErrorComment(err)})
		default:
			s.log.ErrorContext(r.Context(), "import failed", "err", err)
			writeJSON(rw, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		}
	})
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(v)
}

// ResolveSchema returns a schema by id: local records, files, then the web
// (see the package doc).
func (s *Service) ResolveSchema(ctx context.Context, id string) (*anoncreds.Schema, error) {
	var rec schemaRecord
	err := readJSON(ctx, s.cfg.Store.Records, KindSchema, id, &rec)
	if err == nil {
		return anoncreds.ParseSchema(rec.JSON)
	}
	if !isNotFound(err) {
		return nil, err
	}
	if o, ok := s.files[id]; ok && o.Kind == ObjectSchema {
		return o.Schema, nil
	}
	o, err := s.fetch(ctx, id, ObjectSchema)
	if err != nil {
		return nil, err
	}
	return o.Schema, nil
}

// ResolveCredDef returns a credential definition by id: local records,
// files, then the web (see the package doc).
func (s *Service) ResolveCredDef(ctx context.Context, id string) (*anoncreds.CredentialDefinition, error) {
	var rec credDefRecord
	err := readJSON(ctx, s.cfg.Store.Records, KindCredDef, id, &rec)
	if err == nil {
		return anoncreds.ParseCredentialDefinition(rec.JSON)
	}
	if !isNotFound(err) {
		return nil, err
	}
	if o, ok := s.files[id]; ok && o.Kind == ObjectCredDef {
		return o.CredDef, nil
	}
	o, err := s.fetch(ctx, id, ObjectCredDef)
	if err != nil {
		return nil, err
	}
	return o.CredDef, nil
}

// webEntry is a fetched object in the cache.
type webEntry struct {
	obj   *Object
	until time.Time
}

// webURL maps an id onto the https URL it is hosted at, or "" when it is
// neither an https URL nor a did:web DID URL.
func webURL(id string) string {
	switch {
	case strings.HasPrefix(id, "https://"):
		if u, err := url.Parse(id); err == nil && u.Host != "" {
			return u.String()
		}
	case strings.HasPrefix(id, "did:web:"):
		rest := strings.TrimPrefix(id, "did:web:")
		path := ""
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest, path = rest[:i], rest[i:]
		}
		if path == "" || strings.ContainsAny(rest, "?#") {
			return ""
		}
		parts := strings.Split(rest, ":")
		host, err := url.PathUnescape(parts[0])
		if err != nil || host == "" || strings.ContainsAny(host, "/@") {
			return ""
		}
		u := "https://" + host
		for _, p := range parts[1:] {
			u += "/" + p
		}
		return u + path
	}
	return ""
}

// fetch resolves an object over HTTPS (cached), of the kind wanted.
func (s *Service) fetch(ctx context.Context, id, kind string) (*Object, error) {
	what := map[string]string{ObjectSchema: "schema", ObjectCredDef: "credential definition"}[kind]
	u := webURL(id)
	if !s.cfg.Web || u == "" {
		return nil, notFound(what, id)
	}
	now := s.cfg.Now()
	s.mu.Lock()
	e, ok := s.web[id]
	s.mu.Unlock()
	if !ok || now.After(e.until) {
		o, err := s.get(ctx, id, u)
		if err != nil {
			return nil, agent.Wrap(agent.CodeDIDUnresolved, err, fmt.Sprintf("%s %s could not be fetched: %v", what, clip(id, 200), err))
		}
		e = webEntry{obj: o, until: now.Add(s.cfg.WebCacheTTL)}
		s.mu.Lock()
		if len(s.web) >= 1024 {
			clear(s.web) // a bounded cache; a later miss fetches again
		}
		s.web[id] = e
		s.mu.Unlock()
	}
	if e.obj.Kind != kind {
		return nil, agent.Errorf(agent.CodeMsg, "%s names a %s, not a %s", clip(id, 200), e.obj.Kind, kind)
	}
	return e.obj, nil
}

// get fetches and parses one object.
func (s *Service) get(ctx context.Context, id, u string) (*Object, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WebTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.WebClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.WebMaxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > s.cfg.WebMaxBytes {
		return nil, fmt.Errorf("more than %d bytes", s.cfg.WebMaxBytes)
	}
	b = bytes.TrimSpace(b)
	o, err := ParseObject(b, id)
	if err != nil {
		return nil, errors.New(agent.ErrorComment(err))
	}
	return o, nil
}

// Export returns a schema or credential definition the agent created or
// imported as an Object JSON ({"id", "schema"} or {"id",
// "credentialDefinition"}): what another agent imports, or what an
// operator publishes at an https or did:web URL (the public part only).
func (s *Service) Export(ctx context.Context, id string) ([]byte, error) {
	var sc schemaRecord
	err := readJSON(ctx, s.cfg.Store.Records, KindSchema, id, &sc)
	if err == nil {
		return json.Marshal(map[string]any{"id": id, "schema": sc.JSON})
	}
	if !isNotFound(err) {
		return nil, err
	}
	cd, err := s.credDefRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"id": id, "credentialDefinition": cd.JSON})
}
