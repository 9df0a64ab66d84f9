package agent_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/store/bolt"
)

// countingCommitter is a bolt DB whose in-flight count the test reads.
type countingCommitter struct {
	*bolt.DB
	n atomic.Int64
}

func (c *countingCommitter) Inflight(delta int) {
	c.n.Add(int64(delta))
	c.DB.Inflight(delta)
}

// TestRouterCountsInflight: the router tells a committer that counts
// messages in hand of each message from its arrival to its answer, the
// refused ones too.
func TestRouterCountsInflight(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "r.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cc := &countingCommitter{DB: db}
	var _ agent.InflightCounter = cc
	id := agent.NewIdentity(nil)
	id.AddDID(self)
	st := agent.Store{Records: db.Records(), Committer: cc}
	r := agent.NewRouter(agent.RouterConfig{Identity: id, Store: st, Replay: db.ReplayCache(), Messenger: &agent.Messenger{Identity: id, Store: st}})
	var during atomic.Int64
	r.Register(agent.Protocol{PIURI: "https://example.org/ok/1.0", Handler: agent.HandlerFunc(
		func(ctx context.Context, in *agent.Inbound) ([]agent.Message, error) {
			during.Store(cc.n.Load())
			in.Work.Put("k", "1", []byte("v"))
			return nil, nil
		})})
	if _, err := r.ReceiveDuplex(context.Background(), "test", plain(t, map[string]any{"type": "https://example.org/ok/1.0/x"}), nil); err != nil {
		t.Fatal(err)
	}
	if during.Load() != 1 || cc.n.Load() != 0 {
		t.Fatalf("in flight during the handler %d (want 1), after %d (want 0)", during.Load(), cc.n.Load())
	}
	if _, err := r.ReceiveDuplex(context.Background(), "test", []byte(`{not json`), nil); err == nil {
		t.Fatal("a malformed message was accepted")
	}
	if cc.n.Load() != 0 {
		t.Fatalf("in flight after a refused message: %d", cc.n.Load())
	}
}
