package iden3auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
)

// TestVerdictHook: a hook sees every verdict in the verdict's unit of work
// (its write commits with it), and its error undoes the verdict.
func TestVerdictHook(t *testing.T) {
	f := newFixture(t, vectorChain(t))
	ctx := context.Background()
	var seen []string
	fail := true
	f.svc.OnVerdict(func(ctx context.Context, w *agent.Work, s *Session, now time.Time) error {
		if fail {
			return errors.New("hook refuses")
		}
		seen = append(seen, s.ID+":"+string(s.State))
		return w.PutJSON("hook-test", s.ID, map[string]string{"state": string(s.State)})
	})
	f.create(t, vecThread, vecCreate())
	f.create(t, "b", vecCreate())
	if _, err := f.svc.Verify(ctx, vecThread, readFile(t, "mtpv2_token.txt")); err == nil {
		t.Fatal("a failing hook did not undo the verdict")
	}
	if s, _ := f.svc.Get(ctx, vecThread); s.State != StatePending {
		t.Fatalf("state %s after a failed hook, want pending", s.State)
	}
	fail = false
	if _, err := f.svc.Verify(ctx, vecThread, readFile(t, "mtpv2_token.txt")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Cancel(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != vecThread+":verified" || seen[1] != "b:cancelled" {
		t.Fatalf("hook saw %v", seen)
	}
	if _, err := f.db.Records().Get(ctx, "hook-test", "b"); err != nil {
		t.Fatalf("the hook's write was not committed: %v", err)
	}
	// Recheck verifies the token again, changing nothing; another
	// session's token is refused.
	before := f.stored(t, vecThread)
	r, err := f.svc.Recheck(ctx, vecThread, readFile(t, "mtpv2_token.txt"))
	if err != nil || r.Scopes[0].ProofKind != ProofKindMTP || r.UserDID != vecUser {
		t.Fatalf("recheck %+v %v", r, err)
	}
	if f.stored(t, vecThread) != before {
		t.Fatal("recheck changed the session")
	}
	if _, err := f.svc.Recheck(ctx, "b", readFile(t, "mtpv2_token.txt")); !agent.HasCode(err, CodeRefused) {
		t.Fatalf("recheck against another session: %v", err)
	}
}

// TestMaxRefusals: a session with a refusal limit fails at its limit, with
// its hooks; a valid answer then is refused; a session without a limit
// stores nothing on a refusal.
func TestMaxRefusals(t *testing.T) {
	f := newFixture(t, vectorChain(t))
	ctx := context.Background()
	var seen []string
	f.svc.OnVerdict(func(ctx context.Context, w *agent.Work, s *Session, now time.Time) error {
		seen = append(seen, s.ID+":"+string(s.State)+":"+s.Reason)
		return nil
	})
	req := vecCreate()
	req.MaxRefusals = 2
	f.create(t, vecThread, req)
	f.create(t, "free", vecCreate())
	before := f.stored(t, "free")
	if _, err := f.svc.Verify(ctx, "free", []byte("garbage")); !agent.HasCode(err, CodeRefused) {
		t.Fatal(err)
	}
	if f.stored(t, "free") != before {
		t.Fatal("a refusal changed a session without a limit")
	}
	for i := 0; i < 2; i++ {
		if _, err := f.svc.Verify(ctx, vecThread, []byte("garbage")); !agent.HasCode(err, CodeRefused) {
			t.Fatal(err)
		}
	}
	s, _ := f.svc.Get(ctx, vecThread)
	if s.State != StateFailed || s.Refusals != 2 || len(seen) != 1 || !strings.Contains(seen[0], "2 answers refused") {
		t.Fatalf("session %s %d, hooks %v", s.State, s.Refusals, seen)
	}
	if _, err := f.svc.Verify(ctx, vecThread, readFile(t, "mtpv2_token.txt")); !agent.HasCode(err, agent.CodeConflict) {
		t.Fatalf("a valid answer after failing: %v", err)
	}
	f.ids = append(f.ids, "neg")
	if _, err := f.svc.Create(ctx, CreateRequest{Reason: "x", Scope: vecScope(), MaxRefusals: -1}); !agent.HasCode(err, agent.CodeMsg) {
		t.Fatalf("negative limit: %v", err)
	}
}
