package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
)

// BenchmarkCommitForwardParallel commits what a mediator's forward commits
// (a replay key and a queued message for one of 100 recipients) from many
// goroutines, with and without batching, and with the signals agentd sends
// (DB.Signals: a NOTIFY per queue recipient, in the transaction). The test server runs with
// fsync=off (internal/pgtest), so the figures measure round trips and the
// server's CPU, not the disk's flush, which group commit saves most on.
//
//	go test -tags prover_disabled -run '^$' -bench CommitForward -benchtime 3000x ./store/postgres/
func BenchmarkCommitForwardParallel(b *testing.B) {
	for _, c := range []struct {
		name              string
		batch, committers int
		signals           bool
	}{
		{"unbatched-1", 1, 1, false},
		{"unbatched-4", 1, 4, false},
		{"group-1", 0, 1, false},
		{"group-2", 0, 2, false},
		{"group-4", 0, 4, false},
		{"group-2-signals", 0, 2, true},
		{"group-4-signals", 0, 4, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := openTest(b, Options{MaxBatchSize: c.batch, Committers: c.committers, MaxConns: 16})
			if c.signals { // as agentd runs it: each commit notifies its recipients
				db.Signals()
			}
			ctx := context.Background()
			var n atomic.Int64
			far := time.Now().Add(time.Hour)
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					w := agent.NewWork(nil)
					w.Remember(fmt.Sprintf("fwd-%d", i), far)
					w.Queue(agent.QueueLimits{MaxMessages: 1 << 20},
						&agent.QueuedMessage{Recipient: fmt.Sprintf("did:example:r%d", i%100), Payload: make([]byte, 512), Expires: far})
					if err := db.Commit(ctx, w); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			groups, works := db.CommitStats()
			b.ReportMetric(float64(works)/float64(max(groups, 1)), "works/group")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
		})
	}
}
