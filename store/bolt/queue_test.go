package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/store/storetest"
)

func TestQueueConformance(t *testing.T) {
	t.Run("GroupCommit", func(t *testing.T) {
		storetest.TestQueue(t, func(t *testing.T) agent.QueueStore { return openTest(t, Options{}).Queue() })
	})
	t.Run("SoloCommit", func(t *testing.T) {
		storetest.TestQueue(t, func(t *testing.T) agent.QueueStore {
			db := openTest(t, Options{NoSync: true})
			db.mode = writeSolo
			return db.Queue()
		})
	})
}

// TestQueueSurvivesReopen: messages, counters and replay keys are on disk.
func TestQueueSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	m := &agent.QueuedMessage{Recipient: "did:example:alice", Payload: []byte("hello"), Expires: exp}
	forward := func(m *agent.QueuedMessage) error {
		w := agent.NewWork(nil)
		w.Queue(agent.QueueLimits{}, m)
		w.Remember("\x00fwd", exp)
		return db.Commit(ctx, w)
	}
	if err := forward(m); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openAt(t, path, Options{})
	got, err := db.Queue().List(ctx, []string{"did:example:alice"}, time.Now(), 10)
	if err != nil || len(got) != 1 || got[0].ID != m.ID || string(got[0].Payload) != "hello" {
		t.Fatalf("after reopen: %v, %v", got, err)
	}
	if tt, _ := db.Queue().Totals(ctx); tt.Messages != 1 || tt.Bytes != 5 || tt.Recipients != 1 {
		t.Fatalf("totals after reopen %+v", tt)
	}
	// The replay key was committed with the message.
	if err := forward(&agent.QueuedMessage{Recipient: "did:example:alice", Payload: []byte("x"), Expires: exp}); !errors.Is(err, agent.ErrReplay) {
		t.Fatalf("replayed forward after reopen: %v, want ErrReplay", err)
	}
	// Ids keep growing across openings.
	m2 := &agent.QueuedMessage{Recipient: "did:example:alice", Payload: []byte("x"), Expires: exp}
	if err := db.Queue().Add(ctx, []*agent.QueuedMessage{m2}, agent.QueueLimits{}); err != nil || m2.ID == m.ID {
		t.Fatalf("second id %q (first %q), %v", m2.ID, m.ID, err)
	}
}

// TestQueueQuotaInGroup: a batch refused for quota, committed in the same
// group as others, neither fails them nor is stored.
func TestQueueQuotaInGroup(t *testing.T) {
	ctx := context.Background()
	q := openTest(t, Options{}).Queue()
	exp := time.Now().Add(time.Hour)
	lim := agent.QueueLimits{MaxMessages: 5}
	var wg sync.WaitGroup
	var ok, quota atomic.Int64
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := &agent.QueuedMessage{Recipient: fmt.Sprintf("did:example:r%d", i%4), Payload: []byte("p"), Expires: exp}
			err := q.Add(ctx, []*agent.QueuedMessage{m}, lim)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, agent.ErrQuota):
				quota.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 20 || quota.Load() != 20 {
		t.Fatalf("%d accepted, %d refused; want 20 and 20 (4 recipients, quota 5)", ok.Load(), quota.Load())
	}
	if tt, _ := q.Totals(ctx); tt.Messages != 20 {
		t.Fatalf("totals %+v", tt)
	}
}

// TestQueueReplayKeySharesReplayCache: a forward's replay key, committed
// with its messages in one unit of work, lives in the replay cache, so the cache's sweep forgets it like any other id.
func TestQueueReplayKeySharesReplayCache(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	soon := time.Now().Add(50 * time.Millisecond)
	m := func() []*agent.QueuedMessage {
		return []*agent.QueuedMessage{{Recipient: "did:example:alice", Payload: []byte("x"), Expires: time.Now().Add(time.Hour)}}
	}
	forward := func() error {
		w := agent.NewWork(nil)
		w.Queue(agent.QueueLimits{}, m()...)
		w.Remember("\x00fwd-1", soon)
		return db.Commit(ctx, w)
	}
	if err := forward(); err != nil {
		t.Fatal(err)
	}
	if seen, err := db.ReplayCache().Remember(ctx, "\x00fwd-1", soon); err != nil || !seen {
		t.Fatalf("the replay cache does not know the forward: %v %v", seen, err)
	}
	time.Sleep(60 * time.Millisecond)
	if n, err := db.ReplayCache().Sweep(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if err := forward(); err != nil {
		t.Fatalf("after the key expired: %v", err)
	}
}

// BenchmarkQueueAddParallel measures durable Adds of one 2 KiB message from
// many goroutines (real fsync, group commit), as a mediator accepting
// forwards does.
func BenchmarkQueueAddParallel(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 2048)
	for _, journal := range []bool{true, false} {
		for _, par := range []int{8, 32} {
			b.Run(fmt.Sprintf("journal=%v/goroutines=%d", journal, par*runtime.GOMAXPROCS(0)), func(b *testing.B) {
				benchForwards(b, openTest(b, Options{NoJournal: !journal}), par, payload)
			})
		}
	}
}

// benchForwards commits b.N forwards' units of work (one queued message and
// its replay record each) from par goroutines per CPU, reporting adds/s and
// the pages bbolt wrote per forward. The replay keys are those of anonymous
// forwards (agent.Router): a random message id and the message's digest,
// remembered until a time that grows.
func benchForwards(b *testing.B, db *DB, par int, payload []byte) {
	exp := time.Now().Add(time.Hour)
	var n atomic.Int64
	s0 := db.bolt.Stats()
	c0 := cpuTime()
	b.SetParallelism(par)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		rnd := make([]byte, 48)
		for pb.Next() {
			i := n.Add(1)
			m := &agent.QueuedMessage{Recipient: fmt.Sprintf("did:example:r%d", i%100), Payload: payload, Expires: exp}
			w := agent.NewWork(nil)
			w.Queue(agent.QueueLimits{}, m)
			rand.Read(rnd)
			w.Remember("\x00"+hex.EncodeToString(rnd[:16])+"\x00"+base64.RawURLEncoding.EncodeToString(rnd[16:]), time.Now().Add(7*24*time.Hour))
			if err := db.Commit(ctx, w); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "adds/s")
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N)/1e3, "cpu-µs/op")
	s1 := db.bolt.Stats()
	d := s1.TxStats.Sub(&s0.TxStats)
	b.ReportMetric(float64(d.GetWrite())/float64(b.N), "pages/op")
}

// BenchmarkQueueAddAfterChurn is BenchmarkQueueAddParallel on a database
// that has queued and delivered 40,000 messages first, as a mediator's has:
// the pages they took are free, and what the store does with its list of
// free pages at every commit shows.
func BenchmarkQueueAddAfterChurn(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 2048)
	db := openTest(b, Options{})
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	for round := range 40 {
		var msgs []*agent.QueuedMessage
		for i := range 1000 {
			msgs = append(msgs, &agent.QueuedMessage{Recipient: fmt.Sprintf("did:example:r%d", i%100), Payload: payload, Expires: exp})
		}
		if err := db.Queue().Add(ctx, msgs, agent.QueueLimits{}); err != nil {
			b.Fatal(round, err)
		}
	}
	rcpts := make([]string, 100)
	for i := range rcpts {
		rcpts[i] = fmt.Sprintf("did:example:r%d", i)
	}
	for {
		got, err := db.Queue().List(ctx, rcpts, time.Now(), 1000)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		ids := make([]string, len(got))
		for i, m := range got {
			ids[i] = m.ID
		}
		if _, err := db.Queue().Remove(ctx, rcpts, ids); err != nil {
			b.Fatal(err)
		}
	}
	benchForwards(b, db, 16, payload)
}

// cpuTime is the process's CPU time (user and system) in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
