package iden3auth

import (
	"context"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/iden3/iden3comm/v2/protocol"
)

func TestCreateValidation(t *testing.T) {
	f := newFixture(t, vectorChain(t))
	base := vecScope()[0]
	with := func(mut func(s *protocol.ZeroKnowledgeProofRequest)) []protocol.ZeroKnowledgeProofRequest {
		s := base
		s.Query = map[string]any{}
		for k, v := range base.Query {
			s.Query[k] = v
		}
		mut(&s)
		return []protocol.ZeroKnowledgeProofRequest{s}
	}
	for name, tc := range map[string]struct {
		req  CreateRequest
		want string
	}{
		"no scope":       {CreateRequest{}, "1 to 10 entries"},
		"id 0":           {CreateRequest{Scope: with(func(s *protocol.ZeroKnowledgeProofRequest) { s.ID = 0 })}, "scope[0].id"},
		"big id":         {CreateRequest{Scope: with(func(s *protocol.ZeroKnowledgeProofRequest) { s.ID, s.ExtendedID = 0, big.NewInt(1<<40) })}, "scope[0].id"},
		"duplicate id":   {CreateRequest{Scope: append(vecScope(), vecScope()...)}, "used twice"},
		"circuit":        {CreateRequest{Scope: with(func(s *protocol.ZeroKnowledgeProofRequest) { s.CircuitID = "authV2" })}, "circuitId"},
		"context":        {CreateRequest{Scope: with(func(s *protocol.ZeroKnowledgeProofRequest) { delete(s.Query, "context") })}, "query.context"},
		"type":           {CreateRequest{Scope: with(func(s *protocol.ZeroKnowledgeProofRequest) { s.Query["type"] = "" })}, "query.type"},
		"issuers":        {CreateRequest{Scope: with(func(s *protocol.ZeroKnowledgeProofRequest) { s.Query["allowedIssuers"] = []any{} })}, "allowedIssuers"},
		"chain":          {CreateRequest{Scope: vecScope(), Chain: "eth:main"}, "not configured"},
		"expiry":         {CreateRequest{Scope: vecScope(), ExpiresIn: time.Second}, "expires_in"},
		"message length": {CreateRequest{Scope: vecScope(), Message: strings.Repeat("x", MaxMessageLen+1)}, "message"},
	} {
		f.ids = append(f.ids[:0], "id-"+name)
		_, err := f.svc.Create(context.Background(), tc.req)
		if !agent.HasCode(err, agent.CodeMsg) || !strings.Contains(agent.ErrorComment(err), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if recs, _ := f.db.Records().List(context.Background(), KindSession, "", 10); len(recs) != 0 {
		t.Fatalf("refused requests stored %d sessions", len(recs))
	}
}

func TestCreateAndList(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, vectorChain(t))
	s := f.create(t, "a", CreateRequest{Reason: "why", Message: "12345", Scope: vecScope(), ExpiresIn: 10 * time.Minute})
	f.create(t, "b", vecCreate())
	f.create(t, "c", vecCreate())
	if s.Chain != "polygon:mumbai" || s.Request.Body.Message != "12345" || *s.Request.ExpiresTime != f.now.Add(10*time.Minute).Unix() ||
		s.Request.Type != protocol.AuthorizationRequestMessageType || s.Request.ID != "a" || s.Request.ThreadID != "a" {
		t.Fatalf("session %+v", s)
	}
	// The request the wallet fetches is the stored one.
	b, err := f.svc.RequestMessage(ctx, "a")
	if err != nil || string(b) != mustJSON(t, s.Request) {
		t.Fatalf("request %s %v", b, err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["thid"] != "a" || m["body"].(map[string]any)["callbackUrl"] != f.svc.CallbackURL("a") {
		t.Fatalf("request JSON %s", b)
	}
	if _, err := f.svc.Cancel(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(30 * time.Minute) // a expires (10m); c (1h) is pending
	for state, want := range map[State]string{"": "a,b,c", StateExpired: "a", StateCancelled: "b", StatePending: "c", StateVerified: ""} {
		got, err := f.svc.List(ctx, state, "", 10)
		var ids []string
		for _, s := range got {
			ids = append(ids, s.ID)
		}
		if err != nil || strings.Join(ids, ",") != want {
			t.Errorf("List(%q) = %v %v, want %s", state, ids, err, want)
		}
	}
	if got, _ := f.svc.List(ctx, "", "a", 1); len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("paging: %+v", got)
	}
	if _, err := f.svc.List(ctx, "bogus", "", 1); !agent.HasCode(err, agent.CodeMsg) {
		t.Fatalf("bad state: %v", err)
	}
	if want := "iden3comm://?request_uri=https%3A%2F%2Fverifier.example%2Fiden3%2Frequests%2Fa"; f.svc.DeepLink("a") != want {
		t.Fatalf("deep link %s", f.svc.DeepLink("a"))
	}
}

func TestTransitions(t *testing.T) {
	for _, s := range []State{StateVerified, StateFailed, StateCancelled, StateExpired} {
		if !StatePending.CanMoveTo(s) || !s.Final() {
			t.Errorf("pending -> %s", s)
		}
		for _, back := range []State{StatePending, StateVerified, StateCancelled} {
			if s.CanMoveTo(back) {
				t.Errorf("%s -> %s allowed", s, back)
			}
		}
	}
	sess := Session{State: StateVerified}
	if err := sess.moveTo(StatePending, time.Now(), ""); err == nil {
		t.Fatal("went back to pending")
	}
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, vectorChain(t), func(c *Config) {
		c.WebhookEndpoint, c.Retention = "webhook+https://ops.example/hook", time.Hour
	})
	f.create(t, "a", CreateRequest{Scope: vecScope(), ExpiresIn: 10 * time.Minute})
	f.create(t, "b", vecCreate())
	f.create(t, "c", vecCreate())
	if _, err := f.svc.Cancel(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	start := f.now
	f.now = start.Add(30 * time.Minute)
	res, err := f.svc.Sweep(ctx)
	if err != nil || res != (SweepResult{Expired: 1}) {
		t.Fatalf("sweep 1: %+v %v", res, err)
	}
	var a Session
	json.Unmarshal([]byte(f.stored(t, "a")), &a)
	if a.State != StateExpired || a.Reason == "" {
		t.Fatalf("a %+v", a)
	}
	// Each verdict (the cancel, the expiry) queued its webhook with it.
	due, err := f.db.Outbox().Due(ctx, time.Now().Add(time.Hour), 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("webhooks %d %v", len(due), err)
	}
	var ev WebhookEvent
	for _, m := range due {
		json.Unmarshal(m.Payload, &ev)
		if m.Endpoint != "webhook+https://ops.example/hook" || (ev.Event != "iden3.session.expired" && ev.Event != "iden3.session.cancelled") {
			t.Fatalf("webhook %s %s", m.Endpoint, m.Payload)
		}
	}
	// Past the retention, final sessions go; b expires now and stays.
	f.now = start.Add(150 * time.Minute)
	res, err = f.svc.Sweep(ctx)
	if err != nil || res != (SweepResult{Expired: 1, Deleted: 2}) {
		t.Fatalf("sweep 2: %+v %v", res, err)
	}
	if got, _ := f.svc.List(ctx, "", "", 10); len(got) != 1 || got[0].ID != "b" || got[0].State != StateExpired {
		t.Fatalf("left %+v", got)
	}
}

func TestVerifyBusy(t *testing.T) {
	defer func(d time.Duration) { slotWait = d }(slotWait)
	slotWait = 20 * time.Millisecond
	f := newFixture(t, vectorChain(t), func(c *Config) { c.MaxConcurrent = 1 })
	f.create(t, vecThread, vecCreate())
	before := f.stored(t, vecThread)
	f.svc.slots <- struct{}{} // another verification holds the only slot
	_, err := f.svc.Verify(context.Background(), vecThread, readFile(t, "mtpv2_token.txt"))
	if !agent.HasCode(err, agent.CodeBusy) || agent.RetryAfter(err) <= 0 || f.stored(t, vecThread) != before {
		t.Fatalf("busy: %v", err)
	}
	<-f.svc.slots
	if _, err := f.svc.Verify(context.Background(), vecThread, readFile(t, "mtpv2_token.txt")); err != nil {
		t.Fatal(err)
	}
}

func TestInlineLink(t *testing.T) {
	l := InlineLink([]byte(`{"id":"a"}`))
	if l != "iden3comm://?i_m=eyJpZCI6ImEifQ%3D%3D" {
		t.Fatalf("inline link %s", l)
	}
}
