package http

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/did"
)

// fill sets every field of the value v points to, recursively, to a
// non-zero value, so that no omitempty member is left out of its JSON.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem())
	case reflect.String:
		v.SetString("1s") // a valid wait duration, and a non-empty DID or id
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Slice:
		if v.Type() == rawType {
			v.SetBytes([]byte(`{"a":1}`))
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	}
}

func filled[T any]() T {
	var v T
	fill(reflect.ValueOf(&v).Elem())
	return v
}

// fullFake implements every service of the server with filled answers.
type fullFake struct{}

func (fullFake) Users(context.Context, string, string, string, int) ([]User, error) {
	return filled[[]User](), nil
}
func (fullFake) User(context.Context, string) (User, error) { return filled[User](), nil }
func (fullFake) CreateUser(context.Context, string, string, string) (User, error) {
	return filled[User](), nil
}
func (fullFake) DisableUser(context.Context, string) (User, error) { return filled[User](), nil }
func (fullFake) DeleteUser(context.Context, string) error          { return nil }
func (fullFake) IssueKeyUploadToken(context.Context, string) (KeyUploadToken, error) {
	return filled[KeyUploadToken](), nil
}

func (fullFake) Ping(context.Context, string) (time.Duration, error) {
	return 1500 * time.Microsecond, nil
}
func (fullFake) Discover(context.Context, string, string) ([]Disclosure, error) {
	return filled[[]Disclosure](), nil
}
func (fullFake) CreateInvitation(context.Context, string, string) (Invitation, string, error) {
	return filled[Invitation](), "https://x/?_oob=e30", nil
}
func (fullFake) AcceptInvitation(context.Context, string) (Connection, error) {
	return filled[Connection](), nil
}
func (fullFake) OutboxDepth(context.Context) (int, int, error) { return 3, 1, nil }
func (fullFake) DeadLetters(context.Context, string, int) ([]*agent.OutboundMessage, error) {
	return []*agent.OutboundMessage{{ID: "d1", To: "did:x", Endpoint: "https://x", MessageType: "t", Payload: []byte("abc"),
		Attempts: 2, CreatedAt: time.Now(), DeadAt: time.Now(), LastError: "boom"}}, nil
}
func (fullFake) RetryDeadLetter(context.Context, string) error  { return nil }
func (fullFake) DeleteDeadLetter(context.Context, string) error { return nil }
func (fullFake) MediationGrants(context.Context, string, int) ([]MediationGrant, error) {
	return filled[[]MediationGrant](), nil
}
func (fullFake) MediationGrant(context.Context, string) (MediationGrant, error) {
	return filled[MediationGrant](), nil
}
func (fullFake) GrantMediation(context.Context, string) (MediationGrant, error) {
	return filled[MediationGrant](), nil
}
func (fullFake) RevokeMediation(context.Context, string) error { return nil }
func (fullFake) MediationQueue(context.Context) (MediationQueue, error) {
	return filled[MediationQueue](), nil
}
func (fullFake) CreateMediationInvitation(context.Context) (Invitation, string, error) {
	return filled[Invitation](), "https://x/?_oob=e30", nil
}
func (fullFake) StartChallenge(context.Context, string, string, string) (Challenge, error) {
	return filled[Challenge](), nil
}
func (fullFake) Challenges(context.Context, string, string, int) ([]Challenge, error) {
	return filled[[]Challenge](), nil
}
func (fullFake) Challenge(context.Context, string) (Challenge, error) {
	return filled[Challenge](), nil
}
func (fullFake) Verifications(context.Context, string, int) ([]Verification, error) {
	return filled[[]Verification](), nil
}
func (fullFake) Letters(context.Context, bool, string, int) ([]Letter, error) {
	return filled[[]Letter](), nil
}
func (fullFake) LetterPDF(context.Context, string) ([]byte, error)      { return []byte("%PDF-1.7"), nil }
func (fullFake) MarkLetterSent(context.Context, string) (Letter, error) { return filled[Letter](), nil }
func (fullFake) RequestVerification(context.Context, string, string, string, time.Duration) (RequestOutcome, error) {
	return filled[RequestOutcome](), nil
}
func (fullFake) Requests(context.Context, string, int) ([]VerificationRequest, error) {
	return filled[[]VerificationRequest](), nil
}
func (fullFake) ReceivedChallenges(context.Context, string, int) ([]ReceivedChallenge, error) {
	return filled[[]ReceivedChallenge](), nil
}
func (fullFake) ReceivedChallenge(context.Context, string) (ReceivedChallenge, error) {
	return filled[ReceivedChallenge](), nil
}
func (fullFake) Prove(context.Context, string, time.Duration) (ProveOutcome, error) {
	return filled[ProveOutcome](), nil
}
func (fullFake) ImportChallenge(context.Context, []byte) ([]ReceivedChallenge, error) {
	return filled[[]ReceivedChallenge](), nil
}
func (fullFake) FetchChallenge(context.Context, string) (ReceivedChallenge, error) {
	return filled[ReceivedChallenge](), nil
}
func (fullFake) Credentials(context.Context, string, int) ([]Credential, error) {
	return filled[[]Credential](), nil
}
func (fullFake) Credential(context.Context, string) (Credential, error) {
	return filled[Credential](), nil
}
func (fullFake) FetchLink(context.Context, string) ([]byte, string, error) {
	return []byte(`{}`), agent.MediaTypeEncrypted, nil
}
func (fullFake) ReceiveChallenge(context.Context, []byte) error { return nil }
func (fullFake) CreateIden3Request(context.Context, Iden3CreateRequest) (Iden3Created, error) {
	return filled[Iden3Created](), nil
}
func (fullFake) Iden3Session(context.Context, string) (Iden3Session, error) {
	return filled[Iden3Session](), nil
}
func (fullFake) Iden3Sessions(context.Context, string, string, int) ([]Iden3Session, error) {
	return []Iden3Session{filled[Iden3Session]()}, nil
}
func (fullFake) CancelIden3(context.Context, string) (Iden3Session, error) {
	return filled[Iden3Session](), nil
}
func (fullFake) LoadIden3Schema(context.Context, string, []byte) error { return nil }
func (fullFake) Iden3Request(context.Context, string) ([]byte, error) {
	return []byte(`{"id":"1"}`), nil
}
func (fullFake) Iden3RequestQR(context.Context, string) ([]byte, error) { return []byte("png"), nil }
func (fullFake) Iden3Answer(context.Context, string, []byte) (Iden3Session, error) {
	return filled[Iden3Session](), nil
}
func (fullFake) Iden3Receive(context.Context, string, []byte) (Iden3Session, error) {
	return filled[Iden3Session](), nil
}

type filledPublic struct{}

func (filledPublic) DIDDocument(context.Context) (string, *did.Doc, error) {
	return "did:example:a", &did.Doc{ID: "did:example:a"}, nil
}
func (filledPublic) Invitation(context.Context) (Invitation, string, error) {
	return filled[Invitation](), "https://x/?_oob=e30", nil
}

// fullServer serves every feature over fullFake.
func fullServer(t *testing.T) (*http.ServeMux, *Routes) {
	t.Helper()
	f := fullFake{}
	_, mux, rs := newServer(Config{Receiver: &fakeReceiver{}, Public: filledPublic{}, AdminToken: testToken,
		Features: []Feature{NewAdminAPI(f), NewMediationAPI(f), NewProveControlAPI(f), NewChallengeLinks(f), NewIden3API(f, nil), NewUsersAPI(nil, f), NewPrivadoAPI(nil, f)}})
	return mux, rs
}

// TestOpenAPIMatchesRoutes is the drift check of the admin API's document:
// the document served by the daemon lists exactly the admin routes the
// server registered, each documented path is served by that very route,
// each route answers its documented status, and its JSON answer (built from
// filled values, so that no optional member is missing) has exactly the
// members its schema lists, of the documented types.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	mux, rs := fullServer(t)
	resp, body := do(t, mux, "GET", "/admin/openapi.json", "", testToken, "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /admin/openapi.json: %d %s", resp.StatusCode, body)
	}
	if r, _ := do(t, mux, "GET", "/admin/openapi.json", "", "", ""); r.StatusCode != 401 {
		t.Fatalf("the document needs the token: %d", r.StatusCode)
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("document: %v %q", err, doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	registered := map[string]AdminRoute{}
	for _, rt := range rs.adminRoutes() {
		registered[rt.Method+" "+rt.Path] = rt
		if !documented[rt.Method+" "+rt.Path] {
			t.Errorf("route %s %s is missing from the document", rt.Method, rt.Path)
		}
	}
	for op := range documented {
		if _, ok := registered[op]; !ok {
			t.Errorf("the document lists %s, which no feature registered", op)
		}
	}
	if len(registered) < 30 {
		t.Fatalf("only %d admin routes registered", len(registered))
	}

	v := &validator{schemas: doc.Components.Schemas}
	for key, rt := range registered {
		var op struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema any `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		}
		json.Unmarshal(doc.Paths[rt.Path][strings.ToLower(rt.Method)], &op)
		path := pathParam.ReplaceAllString(rt.Path, "x1")
		req := httptest.NewRequest(rt.Method, path, nil)
		// The mux serves the documented path with the route itself.
		if _, pattern := mux.Handler(req); pattern != key {
			t.Errorf("%s is served by %q", key, pattern)
			continue
		}
		body := ""
		switch {
		case rt.Op.Request != nil:
			p := reflect.New(reflect.TypeOf(rt.Op.Request))
			fill(p.Elem())
			b, _ := json.Marshal(p.Interface())
			body = string(b)
		case rt.Op.RequestType != "":
			body = "raw message"
		}
		resp, got := do(t, mux, rt.Method, path, "application/json", testToken, body)
		status := fmt.Sprint(rt.Op.Status)
		if fmt.Sprint(resp.StatusCode) != status {
			t.Errorf("%s: status %d, documented %s (%s)", key, resp.StatusCode, status, got)
			continue
		}
		content := op.Responses[status].Content
		if rt.Op.Response == nil {
			if rt.Op.ResponseType != "" && resp.Header.Get("Content-Type") != rt.Op.ResponseType {
				t.Errorf("%s: content type %s, documented %s", key, resp.Header.Get("Content-Type"), rt.Op.ResponseType)
			}
			continue
		}
		schema, ok := content["application/json"]
		if !ok {
			t.Errorf("%s: no JSON schema documented", key)
			continue
		}
		var answer any
		if err := json.Unmarshal([]byte(got), &answer); err != nil {
			t.Errorf("%s: answer is not JSON: %v", key, err)
			continue
		}
		for _, problem := range v.check(schema.Schema, answer, key) {
			t.Error(problem)
		}
	}
}

// validator checks JSON values against the subset of JSON Schema the
// generator writes.
type validator struct{ schemas map[string]any }

func (v *validator) check(schema, value any, at string) []string {
	s, _ := schema.(map[string]any)
	if ref, ok := s["$ref"].(string); ok {
		return v.check(v.schemas[strings.TrimPrefix(ref, "#/components/schemas/")], value, at)
	}
	var problems []string
	switch s["type"] {
	case "object":
		obj, ok := value.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, documented an object", at, value)}
		}
		props, _ := s["properties"].(map[string]any)
		if extra, ok := s["additionalProperties"].(map[string]any); ok {
			for k, m := range obj {
				problems = append(problems, v.check(extra, m, at+"."+k)...)
			}
			return problems
		}
		if props == nil {
			return nil // a free-form object (e.g. a DID document)
		}
		var names []string
		for k := range obj {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			p, ok := props[k]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: member %q is not documented", at, k))
				continue
			}
			problems = append(problems, v.check(p, obj[k], at+"."+k)...)
		}
		for k := range props {
			if _, ok := obj[k]; !ok && k != "next" {
				problems = append(problems, fmt.Sprintf("%s: documented member %q is never written", at, k))
			}
		}
	case "array":
		arr, ok := value.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, documented an array", at, value)}
		}
		for i, e := range arr {
			problems = append(problems, v.check(s["items"], e, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case "string":
		if _, ok := value.(string); !ok {
			problems = append(problems, fmt.Sprintf("%s: %T, documented a string", at, value))
		}
	case "integer", "number":
		if _, ok := value.(float64); !ok {
			problems = append(problems, fmt.Sprintf("%s: %T, documented a number", at, value))
		}
	case "boolean":
		if _, ok := value.(bool); !ok {
			problems = append(problems, fmt.Sprintf("%s: %T, documented a boolean", at, value))
		}
	}
	return problems
}

// TestOpenAPIValidatorCatchesDrift makes sure the check above would fail
// for an undocumented member and for a documented one that is never written.
func TestOpenAPIValidatorCatchesDrift(t *testing.T) {
	g := &schemaGen{schemas: map[string]any{}}
	raw, _ := json.Marshal(map[string]any{"s": g.value(OutboxResponse{}), "c": g.schemas})
	var doc struct {
		S any            `json:"s"`
		C map[string]any `json:"c"`
	}
	json.Unmarshal(raw, &doc)
	v := &validator{schemas: doc.C}
	if p := v.check(doc.S, map[string]any{"pending": 1.0, "dead": 2.0}, "ok"); len(p) != 0 {
		t.Fatalf("valid answer refused: %v", p)
	}
	if p := v.check(doc.S, map[string]any{"pending": 1.0, "dead": 2.0, "zombies": 1.0}, "extra"); len(p) != 1 {
		t.Fatalf("undocumented member: %v", p)
	}
	if p := v.check(doc.S, map[string]any{"pending": 1.0}, "missing"); len(p) != 1 {
		t.Fatalf("missing member: %v", p)
	}
	if p := v.check(doc.S, map[string]any{"pending": "1", "dead": 2.0}, "type"); len(p) != 1 {
		t.Fatalf("wrong type: %v", p)
	}
}

func (fullFake) CreateExchange(context.Context, CreateExchangeRequest) (ExchangeCredentials, error) {
	return filled[ExchangeCredentials](), nil
}
func (fullFake) Exchanges(context.Context, string, int) ([]PrivadoExchange, error) {
	return []PrivadoExchange{filled[PrivadoExchange]()}, nil
}
func (fullFake) Exchange(context.Context, string) (PrivadoExchange, error) {
	return filled[PrivadoExchange](), nil
}
func (fullFake) RotateExchangeKeys(context.Context, string) (ExchangeCredentials, error) {
	return filled[ExchangeCredentials](), nil
}
func (fullFake) DisableExchange(context.Context, string) (PrivadoExchange, error) {
	return filled[PrivadoExchange](), nil
}
func (fullFake) Interactions(context.Context, string, string, string, string, int) ([]PrivadoInteraction, error) {
	return []PrivadoInteraction{filled[PrivadoInteraction]()}, nil
}
func (fullFake) Interaction(context.Context, string) (PrivadoInteraction, error) {
	return filled[PrivadoInteraction](), nil
}
