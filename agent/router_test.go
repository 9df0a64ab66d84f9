package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/envelope"
	"github.com/agentd/agentd/store/bolt"
)

const self = "did:example:agent"

func newRouter(t *testing.T) (*agent.Router, *bolt.DB) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "r.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	id := agent.NewIdentity(nil)
	id.AddDID(self)
	st := agent.Store{Records: db.Records(), Committer: db}
	r := agent.NewRouter(agent.RouterConfig{Identity: id, Store: st, Replay: db.ReplayCache(), Messenger: &agent.Messenger{Identity: id, Store: st}})
	return r, db
}

func plain(t *testing.T, m map[string]any) []byte {
	t.Helper()
	if _, ok := m["id"]; !ok {
		m["id"] = agent.NewID()
	}
	if _, ok := m["body"]; !ok {
		m["body"] = map[string]any{}
	}
	if _, ok := m["return_route"]; !ok {
		m["return_route"] = "all"
	}
	b, _ := json.Marshal(m)
	return b
}

func replyOf(t *testing.T, rep *agent.Reply) agent.Message {
	t.Helper()
	if rep == nil || rep.Payload == nil {
		t.Fatal("no reply on the connection")
	}
	if rep.MediaType != agent.MediaTypePlain {
		t.Fatalf("reply media type %s", rep.MediaType)
	}
	var m agent.Message
	if err := json.Unmarshal(rep.Payload, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func problemCode(t *testing.T, m agent.Message) string {
	t.Helper()
	if m.Type != agent.ProblemReportType {
		t.Fatalf("reply type %s, want a problem report", m.Type)
	}
	var b agent.ProblemReportBody
	m.DecodeBody(&b)
	return b.Code
}

func TestRouterDispatchesByPIURI(t *testing.T) {
	r, _ := newRouter(t)
	var got atomic.Value
	r.Register(agent.Protocol{PIURI: "https://example.org/echo/1.0", Handler: agent.HandlerFunc(
		func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
			got.Store(in.Message.Type)
			reply, _ := in.Message.Reply("https://example.org/echo/1.0/echoed", map[string]string{"ok": "yes"})
			return []agent.Message{reply}, nil
		})})
	rep, err := r.ReceiveDuplex(context.Background(), "test", plain(t, map[string]any{"id": "m1", "type": "https://example.org/echo/1.0/say", "body": map[string]any{}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := replyOf(t, rep)
	if got.Load() != "https://example.org/echo/1.0/say" || m.Type != "https://example.org/echo/1.0/echoed" || m.ThID != "m1" || m.From != self {
		t.Fatalf("reply %+v", m)
	}
}

func TestRouterProblemReports(t *testing.T) {
	r, _ := newRouter(t)
	r.Register(agent.Protocol{PIURI: "https://example.org/fail/1.0", Handler: agent.HandlerFunc(
		func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
			switch in.Message.Type {
			case "https://example.org/fail/1.0/coded":
				return nil, agent.Errorf("e.p.xfer.cant-use-endpoint", "endpoint down")
			case "https://example.org/fail/1.0/plain":
				return nil, errors.New("db path /secret/location is broken")
			}
			panic("boom")
		})})
	for _, tc := range []struct{ typ, code, comment string }{
		{"https://example.org/unknown/1.0/x", agent.CodeMsgUnsupported, ""},
		{"https://example.org/fail/1.0/coded", "e.p.xfer.cant-use-endpoint", "endpoint down"},
		{"https://example.org/fail/1.0/plain", agent.CodeMe, "internal error"},
		{"https://example.org/fail/1.0/panic", agent.CodeMe, "internal error"},
	} {
		rep, err := r.ReceiveDuplex(context.Background(), "test", plain(t, map[string]any{"id": tc.typ, "type": tc.typ, "body": map[string]any{}}), nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.typ, err)
		}
		m := replyOf(t, rep)
		if code := problemCode(t, m); code != tc.code {
			t.Fatalf("%s: code %s, want %s", tc.typ, code, tc.code)
		}
		var b agent.ProblemReportBody
		m.DecodeBody(&b)
		if tc.comment != "" && b.Comment != tc.comment {
			t.Fatalf("%s: comment %q, want %q (internal details must not leak)", tc.typ, b.Comment, tc.comment)
		}
		if m.PThID != tc.typ {
			t.Fatalf("problem report pthid %q, want the message's thread", m.PThID)
		}
	}
	// A problem report about an unknown thing is never answered with another one.
	rep, err := r.ReceiveDuplex(context.Background(), "test", plain(t, map[string]any{"type": agent.ProblemReportType, "body": map[string]any{"code": "e.p.x"}}), nil)
	if err != nil || rep.Payload != nil {
		t.Fatalf("problem report answered: %v %s", err, rep.Payload)
	}
}

func TestRouterRefusals(t *testing.T) {
	r, _ := newRouter(t)
	r.Register(agent.Protocol{PIURI: "https://example.org/ok/1.0", Handler: agent.HandlerFunc(
		func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) { return nil, nil })})
	for _, tc := range []struct {
		name string
		msg  map[string]any
		code string
	}{
		{"no type", map[string]any{"body": map[string]any{}}, agent.CodeMsg},
		{"no id", map[string]any{"id": "", "type": "https://example.org/ok/1.0/x"}, agent.CodeMsg},
		{"body not an object", map[string]any{"type": "https://example.org/ok/1.0/x", "body": []int{1}}, agent.CodeMsg},
		{"not for us", map[string]any{"type": "https://example.org/ok/1.0/x", "to": []string{"did:example:other"}}, agent.CodeNotForUs},
		{"expired", map[string]any{"type": "https://example.org/ok/1.0/x", "expires_time": time.Now().Add(-time.Second).Unix()}, agent.CodeMsgExpired},
		{"from the future", map[string]any{"type": "https://example.org/ok/1.0/x", "created_time": time.Now().Add(time.Hour).Unix()}, agent.CodeMsg},
	} {
		_, err := r.ReceiveDuplex(context.Background(), "test", plain(t, tc.msg), nil)
		if agent.ErrorCode(err) != tc.code {
			t.Fatalf("%s: error %v, want code %s", tc.name, err, tc.code)
		}
	}
	if _, err := r.ReceiveDuplex(context.Background(), "test", []byte(`not json`), nil); !agent.HasCode(err, agent.CodeMsg) {
		t.Fatalf("garbage: %v", err)
	}
}

// ReceiveDeclared refuses a message whose outermost form is not the one
// declared, first (a JWE with a bad header declared plaintext fails on its
// form), and bodies that are not one JSON object, and takes the others.
func TestReceiveDeclared(t *testing.T) {
	r, _ := newRouter(t)
	var calls atomic.Int32
	r.Register(agent.Protocol{PIURI: "https://example.org/ok/1.0", Handler: agent.HandlerFunc(
		func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) { calls.Add(1); return nil, nil })})
	ok := plain(t, map[string]any{"type": "https://example.org/ok/1.0/x"})
	jwe := []byte(`{"protected":"e30","recipients":[{"header":{"kid":"did:example:nobody#k"},"encrypted_key":"AA"}],"iv":"AA","ciphertext":"AA","tag":"AA"}`)
	for _, tc := range []struct {
		name string
		raw  []byte
		form envelope.Form
		code string
	}{
		{"plaintext declared encrypted", ok, envelope.FormEncrypted, agent.CodeMediaType},
		{"plaintext declared signed", ok, envelope.FormSigned, agent.CodeMediaType},
		{"JWE declared plaintext", jwe, envelope.FormPlain, agent.CodeMediaType},
		{"JWS declared encrypted", []byte(`{"payload":"e30","signatures":[]}`), envelope.FormEncrypted, agent.CodeMediaType},
		{"not JSON", []byte(`{not json`), envelope.FormSigned, agent.CodeMsg},
		{"two values", []byte(`{"ciphertext":"x"} {}`), envelope.FormEncrypted, agent.CodeMsg},
		{"an array", []byte(`[{"ciphertext":"x"}]`), envelope.FormEncrypted, agent.CodeMsg},
		{"JWE declared encrypted: past the form check, refused for its header", jwe, envelope.FormEncrypted, agent.CodeMsg},
	} {
		_, err := r.ReceiveDeclared(context.Background(), "test", tc.raw, tc.form)
		if agent.ErrorCode(err) != tc.code {
			t.Fatalf("%s: error %v, want code %s", tc.name, err, tc.code)
		}
	}
	if calls.Load() != 0 {
		t.Fatal("a refused message reached its handler")
	}
	if _, err := r.ReceiveDeclared(context.Background(), "test", ok, envelope.FormPlain); err != nil || calls.Load() != 1 {
		t.Fatalf("plaintext declared plaintext: %v, %d handled", err, calls.Load())
	}
}

// TestRouterDropsReplaysExactlyOnce: of concurrent copies of one message,
// exactly one unit of work commits (a handler may run for the others, but
// what it staged is discarded).
func TestRouterDropsReplaysExactlyOnce(t *testing.T) {
	r, db := newRouter(t)
	var calls atomic.Int32
	r.Register(agent.Protocol{PIURI: "https://example.org/count/1.0", Handler: agent.HandlerFunc(
		func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
			in.Work.Put("count", agent.NewID(), []byte("x"))
			in.Work.AfterCommit(func() { calls.Add(1) })
			return nil, nil
		})})
	raw := plain(t, map[string]any{"type": "https://example.org/count/1.0/x", "from": "did:example:alice"})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.ReceiveDuplex(context.Background(), "test", raw, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d units of work committed for one message id", calls.Load())
	}
	if recs, _ := db.Records().List(context.Background(), "count", "", 100); len(recs) != 1 {
		t.Fatalf("%d records written for one message id", len(recs))
	}
	// The same id from another sender is another message.
	var m map[string]any
	json.Unmarshal(raw, &m)
	m["from"] = "did:example:bob"
	if _, err := r.ReceiveDuplex(context.Background(), "test", plain(t, m), nil); err != nil || calls.Load() != 2 {
		t.Fatalf("same id from another sender: %v, calls %d", err, calls.Load())
	}
}

func TestProtocolsListedForDiscovery(t *testing.T) {
	r, _ := newRouter(t)
	r.Register(agent.Protocol{PIURI: "https://b.example/p/1.0"})
	r.Register(agent.Protocol{PIURI: "https://a.example/p/1.0"})
	ps := r.Protocols()
	if len(ps) != 2 || ps[0].PIURI != "https://a.example/p/1.0" {
		t.Fatalf("protocols %+v", ps)
	}
}
