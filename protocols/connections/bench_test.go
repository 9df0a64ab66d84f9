package connections

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/store/bolt"
)

// BenchmarkFilteredPage lists one filtered page (role + two states, 20
// items) of 100k connection exchanges in a bbolt store, a tenth of them
// matching.
func BenchmarkFilteredPage(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "agentd.db"), bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	st := agent.Store{Records: db.Records(), Committer: db}
	s := &Service{cfg: Config{Store: st, Now: time.Now}, log: quiet}
	start := time.Now()
	const n, batch = 100_000, 1000
	for i := 0; i < n; i += batch {
		w := st.New()
		for j := range batch {
			k := i + j
			e := &exchange{ConnectionExchange: aip.ConnectionExchange{ID: agent.NewID(), MyRole: aip.ConnExInviter, State: aip.ConnExInvitation,
				Created: start.Add(time.Duration(k) * time.Millisecond)}}
			if k%10 == 0 {
				e.MyRole, e.State = aip.ConnExInvitee, []aip.ConnExState{aip.ConnExRequest, aip.ConnExDone}[k%20/10]
			}
			e.Key = newestKey(e.Created, e.ID)
			if err := putExchange(w, nil, e); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.Commit(ctx, w); err != nil {
			b.Fatal(err)
		}
	}
	f := aip.ConnectionExchangeFilter{Role: aip.ConnExInvitee, States: []aip.ConnExState{aip.ConnExRequest, aip.ConnExDone}}
	b.ResetTimer()
	var next string
	for i := 0; i < b.N; i++ {
		items, nx, err := s.ConnectionExchanges(ctx, aip.Page{NextToken: next}, f)
		if err != nil || len(items) != aip.DefaultLimit {
			b.Fatal(len(items), err)
		}
		if next = nx; i%100 == 99 {
			next = ""
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/page")
}
