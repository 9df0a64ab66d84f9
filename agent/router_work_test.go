package agent_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/store/bolt"
)

// failingCommitter refuses every unit of work, as a full disk would.
type failingCommitter struct{}

func (failingCommitter) Commit(context.Context, *agent.Work) error { return errors.New("disk full") }

// TestRouterCommitFailureChangesNothing: when a message's unit of work cannot
// be committed, the message is refused with an internal error (the sender
// retries), the handler's staged write is not stored, the replay record is
// not kept, and the after-commit action does not run.
func TestRouterCommitFailureChangesNothing(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "r.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	id := agent.NewIdentity(nil)
	id.AddDID(self)
	var commit agent.Committer = failingCommitter{}
	st := agent.Store{Records: db.Records(), Committer: committerFunc(func(ctx context.Context, w *agent.Work) error { return commit.Commit(ctx, w) })}
	r := agent.NewRouter(agent.RouterConfig{Identity: id, Store: st, Replay: db.ReplayCache(), Messenger: &agent.Messenger{Identity: id, Store: st}})
	ran := 0
	r.Register(agent.Protocol{PIURI: "https://example.org/w/1.0", Handler: agent.HandlerFunc(
		func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
			in.Work.Put("w", "rec", []byte("v"))
			in.Work.AfterCommit(func() { ran++ })
			reply, _ := in.Message.Reply("https://example.org/w/1.0/ok", nil)
			return []agent.Message{reply}, nil
		})})
	raw := plain(t, map[string]any{"type": "https://example.org/w/1.0/do"})
	rep, err := r.ReceiveDuplex(context.Background(), "test", raw, nil)
	if agent.ErrorCode(err) != agent.CodeMe {
		t.Fatalf("Receive with a failing commit = %v, want an %s error", err, agent.CodeMe)
	}
	if rep != nil && rep.Payload != nil {
		t.Fatal("a reply was returned for a message that was not recorded")
	}
	if _, err := db.Records().Get(context.Background(), "w", "rec"); !errors.Is(err, agent.ErrNotFound) || ran != 0 {
		t.Fatalf("the handler's write or after-commit action took effect: %v, ran %d", err, ran)
	}
	// The same message is handled once the store works again: it was not
	// recorded as seen.
	commit = db
	if rep, err := r.ReceiveDuplex(context.Background(), "test", raw, nil); err != nil || rep.Payload == nil {
		t.Fatalf("retry: %v, %+v", err, rep)
	}
	if _, err := db.Records().Get(context.Background(), "w", "rec"); err != nil || ran != 1 {
		t.Fatalf("after the retry: %v, ran %d", err, ran)
	}
}

type committerFunc func(ctx context.Context, w *agent.Work) error

func (f committerFunc) Commit(ctx context.Context, w *agent.Work) error { return f(ctx, w) }

// TestRouterRerunsConflictingHandlers: handlers that read and update the same
// record through their unit of work, for many concurrent messages, lose no
// update: a conflicting work is discarded and its handler run again.
func TestRouterRerunsConflictingHandlers(t *testing.T) {
	r, db := newRouter(t)
	r.Register(agent.Protocol{PIURI: "https://example.org/inc/1.0", Handler: agent.HandlerFunc(
		func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
			n := 0
			if v, err := in.Work.Get(ctx, "c", "counter"); err == nil {
				n, _ = strconv.Atoi(string(v))
			} else if !errors.Is(err, agent.ErrNotFound) {
				return nil, err
			}
			in.Work.Put("c", "counter", []byte(strconv.Itoa(n+1)))
			return nil, nil
		})})
	const n = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.ReceiveDuplex(context.Background(), "test", plain(t, map[string]any{"type": "https://example.org/inc/1.0/x", "from": "did:example:alice"}), nil)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else if !errors.Is(err, agent.ErrConflict) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	v, err := db.Records().Get(context.Background(), "c", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := strconv.Atoi(string(v)); got != ok || ok < n/2 {
		t.Fatalf("counter = %d after %d accepted messages of %d", got, ok, n)
	}
}

// TestRouterRefusesUnanswerableProblems: a problem with a message whose
// sender cannot be answered (not authenticated, no return route) is the
// transport's refusal on a transport that can answer, with nothing kept; on
// a one-way transport the message is consumed as before.
func TestRouterRefusesUnanswerableProblems(t *testing.T) {
	r, _ := newRouter(t)
	raw := plain(t, map[string]any{"type": "https://example.org/nobody/1.0/x", "return_route": "none"})
	_, err := r.ReceiveDuplex(context.Background(), "test", raw, nil)
	if agent.ErrorCode(err) != agent.CodeMsgUnsupported || !agent.IsRefusal(err) {
		t.Fatalf("unanswerable problem: %v, want a refusal with %s", err, agent.CodeMsgUnsupported)
	}
	// Nothing was kept: the same message is not a replay.
	if _, err := r.ReceiveDuplex(context.Background(), "test", raw, nil); agent.ErrorCode(err) != agent.CodeMsgUnsupported {
		t.Fatalf("second try: %v", err)
	}
	// One-way: no status to answer with; the message is consumed.
	if _, err := r.Receive(context.Background(), "smtp", raw); err != nil {
		t.Fatalf("one-way: %v", err)
	}
}

func TestWorkPutJSON(t *testing.T) {
	w := agent.NewWork(nil)
	if err := w.PutJSON("kind", "id", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if len(w.Writes) != 1 || string(w.Writes[0].Value) != `{"n":1}` || w.Writes[0].Kind != "kind" || w.Writes[0].ID != "id" {
		t.Fatalf("staged %+v", w.Writes)
	}
	if err := w.PutJSON("kind", "bad", make(chan int)); err == nil || !strings.Contains(err.Error(), "kind/bad") {
		t.Fatalf("unencodable value: %v", err)
	}
	if len(w.Writes) != 1 {
		t.Fatal("a value that does not encode was staged")
	}
}
