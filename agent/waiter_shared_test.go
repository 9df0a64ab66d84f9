package agent_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/store/bolt"
)

// watchingSignals is an agent.Signals that, like store/postgres's, can
// watch record kinds; the test delivers the signals a commit would send by
// hand (the PostgreSQL side is tested in store/postgres and across
// processes in internal/daemon).
type watchingSignals struct {
	mu      sync.Mutex
	subs    map[string][]func(string)
	watched []string
	sent    []string // Signal calls: topic " " payload
}

func (s *watchingSignals) Watch(kinds ...string) {
	s.mu.Lock()
	s.watched = append(s.watched, kinds...)
	s.mu.Unlock()
}
func (s *watchingSignals) Subscribe(topic string, fn func(string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs == nil {
		s.subs = map[string][]func(string){}
	}
	s.subs[topic] = append(s.subs[topic], fn)
}
func (s *watchingSignals) OnResync(func()) {}
func (s *watchingSignals) Signal(_ context.Context, topic, payload string) error {
	s.mu.Lock()
	s.sent = append(s.sent, topic+" "+payload)
	s.mu.Unlock()
	return nil
}
func (s *watchingSignals) fire(topic, payload string) {
	s.mu.Lock()
	subs := s.subs[topic]
	s.mu.Unlock()
	for _, fn := range subs {
		fn(payload)
	}
}

// An answer for a waiter on another instance is kept in the unit of work
// of the handler that got it: stored when that work commits, never when
// it does not, and signalled as a record write (by the commit), not
// separately.
func TestWaiterAnswerInHandlersWork(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "w.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := agent.Store{Records: db.Records(), Committer: db}
	ctx := context.Background()

	here, there := &agent.Waiters{}, &agent.Waiters{}
	sigHere, sigThere := &watchingSignals{}, &watchingSignals{}
	here.Share(st, sigHere)
	there.Share(st, sigThere)
	if len(sigHere.watched) != 1 || sigHere.watched[0] != agent.KindWaiterAnswer {
		t.Fatalf("watched kinds %q, want the waiter answers'", sigHere.watched)
	}
	wait, cancel := there.Expect("thread-1")
	defer cancel()

	answer := func(thid string) *agent.Inbound {
		m, err := agent.NewMessage("https://didcomm.org/trust-ping/2.0/ping-response", map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		m.ThID = thid
		return &agent.Inbound{Message: m, Work: st.New(), Received: time.Now()}
	}

	// A handler whose work fails: nothing kept.
	in := answer("thread-1")
	if !here.Notify(in) {
		t.Fatal("Notify: not kept for the other instance")
	}
	if _, err := db.Records().Get(ctx, agent.KindWaiterAnswer, "thread-1"); err == nil {
		t.Fatal("the answer was stored before the handler's work committed")
	}
	if len(sigHere.sent) != 0 {
		t.Fatalf("signalled outside the commit: %q", sigHere.sent)
	}
	// (the work is dropped: not committed)
	if _, err := db.Records().Get(ctx, agent.KindWaiterAnswer, "thread-1"); err == nil {
		t.Fatal("an uncommitted work's answer is stored")
	}

	// A handler whose work commits: kept, and the waiter there gets it
	// when the commit's record signal arrives.
	in = answer("thread-1")
	here.Notify(in)
	if err := st.Commit(ctx, in.Work); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Records().Get(ctx, agent.KindWaiterAnswer, "thread-1"); err != nil {
		t.Fatalf("the committed answer: %v", err)
	}
	sigThere.fire(agent.SignalRecord, agent.KindWaiterAnswer+"\x1fthread-1")
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	got, err := wait(wctx)
	if err != nil {
		t.Fatalf("the waiter on the other instance: %v", err)
	}
	if got.Message.ThID != "thread-1" || got.Message.Type != in.Message.Type {
		t.Fatalf("the waiter got %+v", got.Message)
	}
	if _, err := db.Records().Get(ctx, agent.KindWaiterAnswer, "thread-1"); err == nil {
		t.Fatal("the answer is still stored after its waiter took it")
	}

	// Notified after its work committed (an after-commit function): kept
	// in a unit of work of its own, and signalled.
	in = answer("thread-2")
	if err := st.Commit(ctx, in.Work); err != nil {
		t.Fatal(err)
	}
	if !here.Notify(in) {
		t.Fatal("Notify after commit: not kept")
	}
	if _, err := db.Records().Get(ctx, agent.KindWaiterAnswer, "thread-2"); err != nil {
		t.Fatalf("the answer notified after commit: %v", err)
	}
	if len(sigHere.sent) != 1 || sigHere.sent[0] != agent.SignalWaiter+" thread-2" {
		t.Fatalf("signals sent: %q", sigHere.sent)
	}
}
