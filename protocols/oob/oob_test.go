package oob

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/internal/fakes"
)

// The example of DIDComm Messaging v2.1, "Example Out-of-Band Message
// Encoding": the invitation without whitespace, its base64url encoding, and
// the URL.
const (
	specJSON    = `{"type":"https://didcomm.org/out-of-band/2.0/invitation","id":"69212a3a-d068-4f9d-a2dd-4741bca89af3","from":"did:example:alice","body":{"goal_code":"","goal":""},"attachments":[{"id":"request-0","media_type":"application/json","data":{"json":"<json of protocol message>"}}]}`
	specEncoded = `eyJ0eXBlIjoiaHR0cHM6Ly9kaWRjb21tLm9yZy9vdXQtb2YtYmFuZC8yLjAvaW52aXRhdGlvbiIsImlkIjoiNjkyMTJhM2EtZDA2OC00ZjlkLWEyZGQtNDc0MWJjYTg5YWYzIiwiZnJvbSI6ImRpZDpleGFtcGxlOmFsaWNlIiwiYm9keSI6eyJnb2FsX2NvZGUiOiIiLCJnb2FsIjoiIn0sImF0dGFjaG1lbnRzIjpbeyJpZCI6InJlcXVlc3QtMCIsIm1lZGlhX3R5cGUiOiJhcHBsaWNhdGlvbi9qc29uIiwiZGF0YSI6eyJqc29uIjoiPGpzb24gb2YgcHJvdG9jb2wgbWVzc2FnZT4ifX1dfQ`
	specURL     = `https://example.com/path?_oob=` + specEncoded
)

// specInvitation is the invitation of the spec's "Invitation" section (v2.1).
const specInvitation = `{
  "type": "https://didcomm.org/out-of-band/2.0/invitation",
  "id": "<id used for context as pthid>",
  "from":"<sender's did>",
  "body": {
    "goal_code": "issue-vc",
    "goal": "To issue a Faber College Graduate credential",
    "accept": [
      "didcomm/v2",
      "didcomm/aip2;env=rfc587"
    ]
  },
  "attachments": [
    {
        "id": "request-0",
        "media_type": "application/json",
        "data": {
            "json": "<json of protocol message>"
        }
    }
  ]
}`

func specAttachment() agent.Attachment {
	return agent.Attachment{ID: "request-0", MediaType: "application/json",
		Data: agent.AttachmentData{JSON: json.RawMessage(`"<json of protocol message>"`)}}
}

func TestSpecVector(t *testing.T) {
	// The spec's vector is what its JSON encodes to.
	if got := base64.RawURLEncoding.EncodeToString([]byte(specJSON)); got != specEncoded {
		t.Fatalf("spec vector inconsistent:\n%s", got)
	}
	for _, s := range []string{specURL, specEncoded, specJSON} {
		inv, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%.40q...): %v", s, err)
		}
		want := Invitation{
			Type:        InvitationType,
			ID:          "69212a3a-d068-4f9d-a2dd-4741bca89af3",
			From:        "did:example:alice",
			Attachments: []agent.Attachment{specAttachment()},
		}
		if !reflect.DeepEqual(inv, want) {
			t.Errorf("Parse(%.40q...) = %+v\nwant %+v", s, inv, want)
		}
	}
}

func TestEncodeMatchesSpec(t *testing.T) {
	// The spec's full example, in its field order, compact, with no HTML
	// escaping of < and >.
	inv := Invitation{
		Type: InvitationType,
		ID:   "<id used for context as pthid>",
		From: "<sender's did>",
		Body: InvitationBody{
			GoalCode: "issue-vc",
			Goal:     "To issue a Faber College Graduate credential",
			Accept:   []string{"didcomm/v2", "didcomm/aip2;env=rfc587"},
		},
		Attachments: []agent.Attachment{specAttachment()},
	}
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(specInvitation)); err != nil {
		t.Fatal(err)
	}
	enc := inv.Encode()
	if strings.ContainsAny(enc, "=+/") {
		t.Errorf("encoding %q is not unpadded base64url", enc)
	}
	got, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Errorf("encoded JSON\n got %s\nwant %s", got, want.String())
	}

	// The spec's vector, re-encoded, loses only its empty optional goals.
	parsed, err := Parse(specURL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = base64.RawURLEncoding.DecodeString(parsed.Encode())
	if w := strings.Replace(specJSON, `{"goal_code":"","goal":""}`, `{}`, 1); string(got) != w {
		t.Errorf("re-encoded spec vector\n got %s\nwant %s", got, w)
	}
}

func TestURL(t *testing.T) {
	inv, err := NewInvitation("did:example:alice", WithGoal("issue-vc", "To issue a <credential> & more"))
	if err != nil {
		t.Fatal(err)
	}
	enc := inv.Encode()
	for base, want := range map[string]string{
		"https://example.com/path":          "https://example.com/path?_oob=" + enc,
		"https://example.com/path?":         "https://example.com/path?_oob=" + enc,
		"https://example.com/path?coupon=1": "https://example.com/path?coupon=1&_oob=" + enc,
		"https://example.com/p?a=1&":        "https://example.com/p?a=1&_oob=" + enc,
		"https://example.com/p#frag":        "https://example.com/p?_oob=" + enc + "#frag",
	} {
		u := inv.URL(base)
		if u != want {
			t.Errorf("URL(%q) = %q, want %q", base, u, want)
		}
		back, err := Parse(u)
		if err != nil {
			t.Fatalf("Parse(URL(%q)): %v", base, err)
		}
		if !reflect.DeepEqual(back, inv) {
			t.Errorf("round trip through %q: %+v, want %+v", base, back, inv)
		}
		// Standard URL parsing sees the same value.
		pu, _ := url.Parse(u)
		if pu.Query().Get(QueryParam) != enc {
			t.Errorf("URL(%q): _oob is not the encoding", base)
		}
	}
}

func TestParseLenient(t *testing.T) {
	// Find an invitation whose standard base64 has both '+' and '/', so the
	// test means something.
	var inv Invitation
	var std string
	for i := 0; ; i++ {
		var err error
		goal := strings.Repeat("a", i%3) + "~~~???>>>ÿ" + strings.Repeat("b", i/3%3)
		inv, err = NewInvitation("did:example:alice", WithGoal("g", goal))
		if err != nil {
			t.Fatal(err)
		}
		js, _ := base64.RawURLEncoding.DecodeString(inv.Encode())
		std = base64.StdEncoding.EncodeToString(js)
		if strings.Contains(std, "+") && strings.Contains(std, "/") && strings.HasSuffix(std, "=") {
			break
		}
		if i > 100 {
			t.Fatal("no invitation with + / and padding found")
		}
	}
	urlPadded := base64.URLEncoding.EncodeToString([]byte(mustJSON(t, inv)))
	for name, s := range map[string]string{
		"padded base64url":         "https://x.example/?_oob=" + urlPadded,
		"padded, escaped":          "https://x.example/?_oob=" + strings.ReplaceAll(urlPadded, "=", "%3D"),
		"std base64 raw in URL":    "https://x.example/?_oob=" + std,
		"std base64 escaped":       "https://x.example/?_oob=" + url.QueryEscape(std),
		"bare std base64":          std,
		"bare, wrapped in lines":   std[:20] + "\n" + std[20:40] + "\r\n " + std[40:],
		"other scheme":             "didcomm://invite?_oob=" + inv.Encode(),
		"surrounding space":        "  https://x.example/?_oob=" + inv.Encode() + "\n",
		"other parameters first":   "https://x.example/?a=b&_oob=" + inv.Encode() + "&c=d",
		"raw JSON":                 mustJSON(t, inv),
		"raw JSON with whitespace": "\n" + indent(t, mustJSON(t, inv)),
	} {
		got, err := Parse(s)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, inv) {
			t.Errorf("%s: %+v, want %+v", name, got, inv)
		}
	}
}

func TestParseLegacyAttachment(t *testing.T) {
	js := `{"type":"https://didcomm.org/out-of-band/2.0/invitation","id":"i1","from":"did:example:alice","body":{},"attachments":[{"@id":"request-0","mime_type":"application/json","data":{"json":{"a":1}}}]}`
	inv, err := Parse(js)
	if err != nil {
		t.Fatal(err)
	}
	if a := inv.Attachments[0]; a.ID != "request-0" || a.MediaType != "application/json" {
		t.Errorf("legacy attachment read as %+v", a)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func indent(t *testing.T, s string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestParseErrors(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct{ in, want string }{
		{"", "empty invitation"},
		{"https://example.com/path?x=1", "no _oob parameter"},
		{"https://example.com/path?_oobid=5f0e3ffb-3f92-4648-9868-0d6f8889e6f3", "_oobid"},
		{"https://example.com/path?_oob=", "_oob parameter is empty"},
		{"https://example.com/path?_oob=%zz", "badly escaped"},
		{"https://example.com/path?_oob=!!!notbase64", "not valid base64url"},
		{"https://example.com/path?_oob=" + enc("not json"), "not valid JSON"},
		{`{"type":`, "not valid JSON"},
		{`{"type":"x","id":7}`, "not valid JSON"},
		{`{"type":"https://didcomm.org/trust-ping/2.0/ping","id":"1","from":"did:example:a","body":{}}`, "not an out-of-band invitation"},
		{`{"type":"https://didcomm.org/out-of-band/2.0/invitation","from":"did:example:a","body":{}}`, "has no id"},
		{`{"type":"https://didcomm.org/out-of-band/2.0/invitation","id":"1","body":{}}`, "has no from"},
		{`{"type":"https://didcomm.org/out-of-band/2.0/invitation","id":"1","from":"alice","body":{}}`, "not a DID"},
		{strings.Repeat("A", MaxEncodedLen+1), "longer than"},
	} {
		_, err := Parse(tc.in)
		var e *agent.Error
		if !errors.As(err, &e) || e.Code != agent.CodeMsg {
			t.Errorf("Parse(%.50q): error %v, want *agent.Error %s", tc.in, err, agent.CodeMsg)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%.50q): error %q does not say %q", tc.in, err, tc.want)
		}
	}
}

func TestNewInvitation(t *testing.T) {
	a, err := NewInvitation("did:example:alice")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewInvitation("did:example:alice")
	if a.ID == "" || a.ID == b.ID {
		t.Errorf("ids %q, %q: want fresh ones", a.ID, b.ID)
	}
	if a.Type != InvitationType || !slices.Equal(a.Body.Accept, []string{AcceptDIDCommV2}) || a.ExpiresTime != 0 {
		t.Errorf("default invitation %+v", a)
	}
	exp := time.Unix(2_000_000_000, 0)
	c, err := NewInvitation("did:example:alice", WithAccept("didcomm/v2", "didcomm/aip2;env=rfc587"), WithExpiry(exp), WithAttachment(specAttachment()))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Body.Accept) != 2 || c.ExpiresTime != exp.Unix() || len(c.Attachments) != 1 {
		t.Errorf("options not applied: %+v", c)
	}
	for _, from := range []string{"", "alice"} {
		if _, err := NewInvitation(from); agent.ErrorCode(err) != agent.CodeMsg {
			t.Errorf("NewInvitation(%q) error %v, want %s", from, err, agent.CodeMsg)
		}
	}
	bad := agent.Attachment{Data: agent.AttachmentData{JSON: json.RawMessage(`{`)}}
	if _, err := NewInvitation("did:example:alice", WithAttachment(bad)); agent.ErrorCode(err) != agent.CodeMsg {
		t.Errorf("invalid JSON attachment: error %v, want %s", err, agent.CodeMsg)
	}
}

func TestAttachedMessages(t *testing.T) {
	req, _ := agent.NewMessage("https://didcomm.org/present-proof/3.0/request-presentation", map[string]string{"goal_code": "verify"})
	inv, err := NewInvitation("did:example:alice", WithMessage(req))
	if err != nil {
		t.Fatal(err)
	}
	if a := inv.Attachments[0]; a.ID != req.ID || a.MediaType != agent.MediaTypePlain || len(a.Data.JSON) == 0 {
		t.Errorf("attachment %+v", a)
	}
	// Add one in base64, one by link (skipped) and one that is no message (skipped).
	other, _ := agent.NewMessage("https://didcomm.org/issue-credential/3.0/offer-credential", nil)
	inv.Attachments = append(inv.Attachments,
		agent.Attachment{ID: "link", Data: agent.AttachmentData{Links: []string{"https://x.example/m"}, Hash: "abc"}},
		agent.Attachment{ID: "b64", Data: agent.AttachmentData{Base64: base64.StdEncoding.EncodeToString([]byte(mustJSON(t, other)))}},
		agent.Attachment{ID: "nomsg", Data: agent.AttachmentData{JSON: json.RawMessage(`{"hello":"world"}`)}},
	)
	msgs, err := inv.Messages()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].ID != req.ID || msgs[1].ID != other.ID {
		t.Fatalf("Messages = %+v, want the request then the offer", msgs)
	}
	for _, m := range msgs {
		if m.From != "did:example:alice" || m.PThID != inv.ID {
			t.Errorf("message %s: from %q pthid %q, want the inviter and the invitation id", m.Type, m.From, m.PThID)
		}
	}
	// An answer to an attached message relates to the invitation.
	if r, _ := msgs[0].Reply("https://didcomm.org/present-proof/3.0/presentation", nil); r.PThID != inv.ID || r.ThID != req.ID {
		t.Errorf("reply thid %q pthid %q", r.ThID, r.PThID)
	}

	forged, _ := agent.NewMessage("https://didcomm.org/x/1.0/y", nil)
	forged.From = "did:example:mallory"
	inv.Attachments = append(inv.Attachments, agent.Attachment{Data: agent.AttachmentData{JSON: json.RawMessage(mustJSON(t, forged))}})
	if _, err := inv.Messages(); agent.ErrorCode(err) != agent.CodeTrust {
		t.Errorf("attachment from another DID: error %v, want %s", err, agent.CodeTrust)
	}
}

func newService(t *testing.T) (*Service, *fakes.Records) {
	t.Helper()
	r := new(fakes.Records)
	s := New(r, slog.New(slog.DiscardHandler))
	s.now = func() time.Time { return time.Unix(1_700_000_000, 0) }
	return s, r
}

func TestCreateAndRelate(t *testing.T) {
	s, records := newService(t)
	ctx := context.Background()
	inv, err := s.Create(ctx, "did:example:us", WithGoal("connect", "Connect"))
	if err != nil {
		t.Fatal(err)
	}
	if records.Len(KindInvitation) != 1 {
		t.Fatalf("%d invitation records, want 1", records.Len(KindInvitation))
	}
	got, err := s.Invitation(ctx, inv.ID)
	if err != nil || !reflect.DeepEqual(got, inv) {
		t.Fatalf("Invitation = %+v, %v; want %+v", got, err, inv)
	}
	answer := agent.Message{ID: "m1", Type: "https://didcomm.org/trust-ping/2.0/ping", PThID: inv.ID}
	if got, err := s.Related(ctx, answer); err != nil || got.ID != inv.ID {
		t.Errorf("Related = %+v, %v; want the invitation", got, err)
	}
	for _, m := range []agent.Message{{ID: "m2"}, {ID: "m3", PThID: "not-ours"}} {
		if _, err := s.Related(ctx, m); !errors.Is(err, agent.ErrNotFound) {
			t.Errorf("Related(pthid %q) error %v, want ErrNotFound", m.PThID, err)
		}
	}
	if _, err := s.Create(ctx, "not-a-did"); agent.ErrorCode(err) != agent.CodeMsg {
		t.Errorf("Create with a bad from: %v", err)
	}
}

func TestAccept(t *testing.T) {
	s, records := newService(t)
	ctx := context.Background()
	req, _ := agent.NewMessage("https://didcomm.org/present-proof/3.0/request-presentation", nil)
	inv, err := NewInvitation("did:example:alice", WithGoal("verify", "Prove your age"), WithMessage(req))
	if err != nil {
		t.Fatal(err)
	}
	// Accept what a peer's URL carries, as a user would.
	inv, err = Parse(inv.URL("https://alice.example/oob"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Accept(ctx, inv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Existing || len(c.Messages) != 1 || c.Messages[0].ID != req.ID || c.Messages[0].PThID != inv.ID {
		t.Errorf("first Accept: existing %v, messages %+v", c.Existing, c.Messages)
	}
	want := Connection{InvitationID: inv.ID, TheirDID: "did:example:alice", GoalCode: "verify", Goal: "Prove your age",
		Accept: []string{AcceptDIDCommV2}, AcceptedAt: time.Unix(1_700_000_000, 0).UTC()}
	stored, err := s.Connection(ctx, inv.ID)
	if err != nil || !reflect.DeepEqual(stored, want) {
		t.Errorf("stored connection %+v, %v\nwant %+v", stored, err, want)
	}
	var raw map[string]any
	b, _ := records.Get(ctx, KindConnection, inv.ID)
	if err := json.Unmarshal(b, &raw); err != nil || raw["their_did"] != "did:example:alice" || raw["invitation_id"] != inv.ID {
		t.Errorf("connection record %s", b)
	}

	// Accepting again changes nothing and hands out no messages.
	s.now = func() time.Time { return time.Unix(1_800_000_000, 0) }
	again, err := s.Accept(ctx, inv)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Existing || len(again.Messages) != 0 || !again.AcceptedAt.Equal(want.AcceptedAt) {
		t.Errorf("second Accept: %+v", again)
	}
	if n := records.Len(KindConnection); n != 1 {
		t.Errorf("%d connection records, want 1", n)
	}

	// The same invitation id from someone else is refused.
	mallory := inv
	mallory.From = "did:example:mallory"
	mallory.Attachments = nil
	if _, err := s.Accept(ctx, mallory); agent.ErrorCode(err) != agent.CodeMsg {
		t.Errorf("reused invitation id: error %v, want %s", err, agent.CodeMsg)
	}
}

func TestAcceptRefuses(t *testing.T) {
	s, records := newService(t)
	ctx := context.Background()
	base := func() Invitation {
		inv, _ := NewInvitation("did:example:alice")
		return inv
	}
	expired := base()
	expired.ExpiresTime = time.Unix(1_700_000_000, 0).Add(-time.Second).Unix()
	noV2 := base()
	noV2.Body.Accept = []string{"didcomm/aip1", "didcomm/aip2;env=rfc19"}
	invalid := base()
	invalid.From = ""
	forged := base()
	m, _ := agent.NewMessage("https://didcomm.org/x/1.0/y", nil)
	m.From = "did:example:mallory"
	forged.Attachments = []agent.Attachment{{Data: agent.AttachmentData{JSON: json.RawMessage(mustJSON(t, m))}}}
	for name, tc := range map[string]struct {
		inv  Invitation
		code string
	}{
		"expired":        {expired, agent.CodeMsgExpired},
		"no didcomm/v2":  {noV2, agent.CodeMsgUnsupported},
		"invalid":        {invalid, agent.CodeMsg},
		"forged message": {forged, agent.CodeTrust},
	} {
		if _, err := s.Accept(ctx, tc.inv); agent.ErrorCode(err) != tc.code {
			t.Errorf("%s: error %v, want %s", name, err, tc.code)
		}
	}
	if n := records.Len(KindConnection); n != 0 {
		t.Errorf("refused invitations left %d records", n)
	}
	ok := base()
	ok.Body.Accept = []string{"didcomm/aip2;env=rfc19", "didcomm/v2; foo=bar"}
	if _, err := s.Accept(ctx, ok); err != nil {
		t.Errorf("didcomm/v2 with parameters refused: %v", err)
	}
	ok2 := base()
	ok2.Body.Accept = nil
	if _, err := s.Accept(ctx, ok2); err != nil {
		t.Errorf("invitation without accept refused: %v", err)
	}
}

func TestAcceptConcurrent(t *testing.T) {
	s, records := newService(t)
	req, _ := agent.NewMessage("https://didcomm.org/x/1.0/y", nil)
	inv, _ := NewInvitation("did:example:alice", WithMessage(req))
	var wg sync.WaitGroup
	var mu sync.Mutex
	withMessages := 0
	for range 8 {
		wg.Go(func() {
			c, err := s.Accept(context.Background(), inv)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if len(c.Messages) > 0 {
				withMessages++
			}
		})
	}
	wg.Wait()
	if withMessages != 1 || records.Len(KindConnection) != 1 {
		t.Errorf("%d accepts handed out the messages, %d records; want 1 and 1", withMessages, records.Len(KindConnection))
	}
}

func TestProtocolRefusesInvitationsOverDIDComm(t *testing.T) {
	s, _ := newService(t)
	p := s.Protocol()
	if p.PIURI != PIURI || agent.PIURI(InvitationType) != PIURI {
		t.Errorf("PIURI %q", p.PIURI)
	}
	inv, _ := NewInvitation("did:example:alice")
	m := agent.Message{ID: inv.ID, Type: inv.Type, From: inv.From, Body: json.RawMessage(`{}`)}
	replies, err := p.Handler.HandleMessage(context.Background(), &agent.Inbound{Message: m})
	if replies != nil || agent.ErrorCode(err) != agent.CodeMsgUnsupported {
		t.Errorf("HandleMessage = %v, %v; want %s", replies, err, agent.CodeMsgUnsupported)
	}
}
