package reportproblem

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentd/agentd/agent"
)

// specReport is the problem report example of DIDComm Messaging v2.1,
// "Problem reports".
const specReport = `{
  "type": "https://didcomm.org/report-problem/2.0/problem-report",
  "id": "7c9de639-c51c-4d60-ab95-103fa613c805",
  "pthid": "1e513ad4-48c9-444e-9e7e-5b8b45c5e325",
  "body": {
    "code": "e.p.xfer.cant-use-endpoint",
    "comment": "Unable to use the {1} endpoint for {2}.",
    "args": [
      "https://agents.r.us/inbox",
      "did:sov:C805sNYhMrjHiqZDTUASHg"
    ],
    "escalate_to": "mailto:admin@foo.org"
  }
}`

func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestSpecExample(t *testing.T) {
	var m agent.Message
	if err := json.Unmarshal([]byte(specReport), &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != agent.ProblemReportType {
		t.Fatalf("type %q, want %q", m.Type, agent.ProblemReportType)
	}
	p, err := Decode(m)
	if err != nil {
		t.Fatal(err)
	}
	want := &Problem{
		Code:       "e.p.xfer.cant-use-endpoint",
		Comment:    "Unable to use the https://agents.r.us/inbox endpoint for did:sov:C805sNYhMrjHiqZDTUASHg.",
		Args:       []string{"https://agents.r.us/inbox", "did:sov:C805sNYhMrjHiqZDTUASHg"},
		EscalateTo: "mailto:admin@foo.org",
		MessageID:  "7c9de639-c51c-4d60-ab95-103fa613c805",
		PThID:      "1e513ad4-48c9-444e-9e7e-5b8b45c5e325",
	}
	if !equalProblem(p, want) {
		t.Errorf("Decode = %+v\nwant %+v", p, want)
	}
	if !p.IsError() {
		t.Error("IsError = false for an e. code")
	}

	// agent.ProblemReportBody writes the spec's body, field for field.
	var raw struct{ Body json.RawMessage }
	_ = json.Unmarshal([]byte(specReport), &raw)
	got, err := json.Marshal(agent.ProblemReportBody{
		Code:       "e.p.xfer.cant-use-endpoint",
		Comment:    "Unable to use the {1} endpoint for {2}.",
		Args:       []string{"https://agents.r.us/inbox", "did:sov:C805sNYhMrjHiqZDTUASHg"},
		EscalateTo: "mailto:admin@foo.org",
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != compact(t, string(raw.Body)) {
		t.Errorf("body JSON\n got %s\nwant %s", got, compact(t, string(raw.Body)))
	}
}

func equalProblem(a, b *Problem) bool {
	return a.Code == b.Code && a.Comment == b.Comment && strings.Join(a.Args, "\x00") == strings.Join(b.Args, "\x00") &&
		a.EscalateTo == b.EscalateTo && a.From == b.From && a.MessageID == b.MessageID && a.PThID == b.PThID && a.ThID == b.ThID
}

func TestInterpolate(t *testing.T) {
	for _, tc := range []struct {
		comment string
		args    []string
		want    string
	}{
		{"Unable to use the {1} endpoint for {2}.", []string{"a", "b"}, "Unable to use the a endpoint for b."},
		{"{2} before {1}", []string{"a", "b"}, "b before a"},
		{"{1} and {1}", []string{"x"}, "x and x"},
		{"missing {1} and {3}", []string{"a"}, "missing a and ?"},
		{"no args {1}", nil, "no args ?"},
		{"Bad thing", []string{"a", "b"}, "Bad thing, a, b"},
		{"uses {2}", []string{"a", "b", "c"}, "uses b, a, c"},
		{"", []string{"a", "b"}, "a, b"},
		{"literal {0} {x} {-1} {+1} {} { and {", []string{"a"}, "literal {0} {x} {-1} {+1} {} { and {, a"},
		{"{99999999999999999999999}", nil, "{99999999999999999999999}"},
		{"braces {{1}}", []string{"a"}, "braces {a}"},
		{"plain", nil, "plain"},
	} {
		if got := Interpolate(tc.comment, tc.args); got != tc.want {
			t.Errorf("Interpolate(%q, %q) = %q, want %q", tc.comment, tc.args, got, tc.want)
		}
	}
}

func TestInterpolateIsBounded(t *testing.T) {
	arg := strings.Repeat("é", 1000) // 2000 bytes
	comment := strings.Repeat("{1}", 10000)
	got := Interpolate(comment, []string{arg})
	if len(got) > MaxCommentLen || len(got) < MaxCommentLen-1 {
		t.Errorf("len = %d, want about %d", len(got), MaxCommentLen)
	}
	if !utf8.ValidString(got) {
		t.Error("truncation split a UTF-8 sequence")
	}
	long := strings.Repeat("x", 3*MaxCommentLen)
	if got := Interpolate(long, []string{"extra"}); got != long[:MaxCommentLen] {
		t.Errorf("plain long comment not cut to %d bytes: len %d", MaxCommentLen, len(got))
	}
}

func TestDecodeNullArgs(t *testing.T) {
	m := agent.Message{ID: "1", Type: agent.ProblemReportType, PThID: "t",
		Body: json.RawMessage(`{"code":"e.p.msg","comment":"{1} / {2}","args":[null,"b"]}`)}
	p, err := Decode(m)
	if err != nil {
		t.Fatal(err)
	}
	if p.Comment != "? / b" {
		t.Errorf("comment %q, want %q", p.Comment, "? / b")
	}
}

func TestDecodeErrors(t *testing.T) {
	for name, m := range map[string]agent.Message{
		"not a report": {Type: "https://didcomm.org/trust-ping/2.0/ping", Body: json.RawMessage(`{"code":"e.p.msg"}`)},
		"no code":      {Type: agent.ProblemReportType, Body: json.RawMessage(`{"comment":"x"}`)},
		"bad body":     {Type: agent.ProblemReportType, Body: json.RawMessage(`{"code":7}`)},
	} {
		_, err := Decode(m)
		var e *agent.Error
		if !errors.As(err, &e) || e.Code != agent.CodeMsg {
			t.Errorf("%s: error %v, want *agent.Error %s", name, err, agent.CodeMsg)
		}
	}
}

func TestCheck(t *testing.T) {
	if err := Check(agent.Message{Type: "https://didcomm.org/trust-ping/2.0/ping-response"}); err != nil {
		t.Errorf("Check(ping-response) = %v, want nil", err)
	}
	report := agent.ProblemReport(agent.Message{ID: "ping-1", From: "did:example:alice"},
		agent.Errorf(agent.CodeMsgUnsupported, "unsupported message type"))
	err := Check(report)
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("Check(problem report) = %v, want *Problem", err)
	}
	if p.Code != agent.CodeMsgUnsupported || p.PThID != "ping-1" {
		t.Errorf("problem %+v, want code %s pthid ping-1", p, agent.CodeMsgUnsupported)
	}
	if !strings.Contains(err.Error(), agent.CodeMsgUnsupported) || !strings.Contains(err.Error(), "unsupported message type") {
		t.Errorf("Error() = %q lacks code or comment", err)
	}
}

func newLogged() (*Service, *agent.Waiters, *bytes.Buffer) {
	var buf bytes.Buffer
	w := new(agent.Waiters)
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return New(w, log), w, &buf
}

func TestHandlerNotifiesByPThID(t *testing.T) {
	s, w, logs := newLogged()
	wait, cancel := w.Expect("ping-1")
	defer cancel()
	report := agent.ProblemReport(agent.Message{ID: "ping-1", From: "did:example:alice"},
		agent.Errorf(agent.CodeTrust, "sender not trusted"))
	report.From = "did:example:bob"
	replies, err := s.HandleMessage(context.Background(), &agent.Inbound{Message: report})
	if replies != nil || err != nil {
		t.Fatalf("HandleMessage = %v, %v; want nothing", replies, err)
	}
	ctx, done := context.WithTimeout(context.Background(), time.Second)
	defer done()
	in, err := wait(ctx)
	if err != nil {
		t.Fatalf("waiter of the pthid not notified: %v", err)
	}
	if in.Message.ID != report.ID {
		t.Errorf("waiter got %s, want the report %s", in.Message.ID, report.ID)
	}
	out := logs.String()
	for _, want := range []string{"level=WARN", "code=" + agent.CodeTrust, `comment="sender not trusted"`, "pthid=ping-1", "from=did:example:bob"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `"code"`) || strings.Contains(out, "body") {
		t.Errorf("log holds the raw body:\n%s", out)
	}
}

func TestHandlerNotifiesByThID(t *testing.T) {
	s, w, _ := newLogged()
	wait, cancel := w.Expect("warn-thread")
	defer cancel()
	m := agent.Message{ID: "r2", Type: agent.ProblemReportType, ThID: "warn-thread", PThID: "other",
		Body: json.RawMessage(`{"code":"e.p.msg"}`)}
	if _, err := s.HandleMessage(context.Background(), &agent.Inbound{Message: m}); err != nil {
		t.Fatal(err)
	}
	ctx, done := context.WithTimeout(context.Background(), time.Second)
	defer done()
	if _, err := wait(ctx); err != nil {
		t.Fatalf("waiter of the thid not notified: %v", err)
	}
}

// A problem report is never answered, even a malformed one or one of an
// unknown type, but a malformed one still ends the exchange it names.
func TestHandlerNeverAnswers(t *testing.T) {
	s, w, logs := newLogged()
	wait, cancel := w.Expect("q-1")
	defer cancel()
	for _, m := range []agent.Message{
		{ID: "a", Type: agent.ProblemReportType, PThID: "q-1", Body: json.RawMessage(`{"comment":"no code"}`)},
		{ID: "b", Type: agent.ProblemReportType, PThID: "q-2", Body: json.RawMessage(`[1,2]`)},
		{ID: "c", Type: PIURI + "/something-else", Body: json.RawMessage(`{}`)},
		{ID: "d", Type: agent.ProblemReportType},
	} {
		replies, err := s.HandleMessage(context.Background(), &agent.Inbound{Message: m})
		if replies != nil || err != nil {
			t.Errorf("message %s: HandleMessage = %v, %v; want nothing", m.ID, replies, err)
		}
	}
	ctx, done := context.WithTimeout(context.Background(), time.Second)
	defer done()
	in, err := wait(ctx)
	if err != nil {
		t.Fatalf("malformed report did not reach its waiter: %v", err)
	}
	if err := Check(in.Message); err == nil {
		t.Error("Check of a malformed report = nil, want an error")
	}
	if !strings.Contains(logs.String(), "malformed problem report") {
		t.Errorf("malformed report not logged:\n%s", logs)
	}
}

func TestProtocol(t *testing.T) {
	p := New(nil, nil).Protocol()
	if p.PIURI != agent.PIURI(agent.ProblemReportType) || p.Handler == nil {
		t.Errorf("Protocol() = %+v", p)
	}
}
