package presentproof

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/store/bolt"
)

// seed stores n exchanges directly (as the service would: records and
// index entries in units of work), created one millisecond apart, with
// role, state and connection cycling by the given functions.
func seed(t testing.TB, store agent.Store, n int, start time.Time, at func(i int) (aip.ProofExRole, aip.ProofExState, string)) []*record {
	t.Helper()
	out := make([]*record, 0, n)
	for lo := 0; lo < n; lo += 1000 {
		var batch []*record
		err := store.Update(context.Background(), func(w *agent.Work) error {
			batch = batch[:0]
			for i := lo; i < min(lo+1000, n); i++ {
				role, st, conn := at(i)
				c := start.Add(time.Duration(i) * time.Millisecond)
				r := &record{ProofExchange: aip.ProofExchange{ID: fmt.Sprintf("x%07d", i), ThreadID: fmt.Sprintf("t%07d", i),
					ConnectionID: conn, MyRole: role, State: st, Created: c, Modified: c}}
				if err := saveNew(w, r); err != nil {
					return err
				}
				batch = append(batch, r)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, batch...)
	}
	return out
}

func cycle(i int) (aip.ProofExRole, aip.ProofExState, string) {
	return allRoles[i%2], allStates[(i/2)%5], fmt.Sprintf("conn-%d", i%7)
}

// listAll pages through a listing with limit and returns the ids.
func listAll(t testing.TB, s *Service, limit int, f aip.ProofExchangeFilter) []string {
	t.Helper()
	var ids []string
	tok := ""
	for pages := 0; ; pages++ {
		items, next, err := s.ProofExchanges(context.Background(), aip.Page{NextToken: tok, Limit: limit}, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) > limit || (next != "" && len(items) != limit) {
			t.Fatalf("page of %d with next %q (limit %d)", len(items), next, limit)
		}
		for _, x := range items {
			ids = append(ids, x.ID)
		}
		if next == "" {
			return ids
		}
		if pages > 1000 {
			t.Fatal("no end")
		}
		tok = next
	}
}

// TestListFilters: every filter returns exactly the matching exchanges,
// newest first, across pages, through its indexes.
func TestListFilters(t *testing.T) {
	n := newNode(t, "lister")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	recs := seed(t, n.store, 700, start, cycle)
	filters := []aip.ProofExchangeFilter{
		{},
		{Role: aip.ProofExProver},
		{States: []aip.ProofExState{aip.ProofExRequest, aip.ProofExDone}},
		{Role: aip.ProofExVerifier, States: []aip.ProofExState{aip.ProofExPresented}},
		{ConnectionIDs: []string{"conn-3"}},
		{ConnectionIDs: []string{"conn-1", "conn-4", "conn-1"}, Role: aip.ProofExProver},
		{ConnectionIDs: []string{"conn-2"}, States: []aip.ProofExState{aip.ProofExAbandoned}, Role: aip.ProofExVerifier},
		{ConnectionIDs: []string{"nobody"}},
	}
	for _, f := range filters {
		var want []string
		for i := len(recs) - 1; i >= 0; i-- {
			if matches(&recs[i].ProofExchange, f) {
				want = append(want, recs[i].ID)
			}
		}
		for _, limit := range []int{1, 7, 100} {
			got := listAll(t, n.svc, limit, f)
			if !slices.Equal(got, want) {
				t.Fatalf("filter %+v limit %d: %d items, want %d (first %v vs %v)", f, limit, len(got), len(want), head(got), head(want))
			}
		}
	}
	_, _, err := n.svc.ProofExchanges(context.Background(), aip.Page{NextToken: "!!"}, aip.ProofExchangeFilter{})
	code(t, err, agent.CodeMsg)
	_, _, err = n.svc.ProofExchanges(context.Background(), aip.Page{}, aip.ProofExchangeFilter{States: []aip.ProofExState{"BOGUS"}})
	code(t, err, agent.CodeMsg)
}

func head(s []string) []string { return s[:min(3, len(s))] }

// TestListStableUnderInserts: exchanges created while a client pages do
// not shift the pages it has yet to read.
func TestListStableUnderInserts(t *testing.T) {
	n := newNode(t, "lister")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(int) (aip.ProofExRole, aip.ProofExState, string) {
		return aip.ProofExProver, aip.ProofExRequest, "c"
	}
	seed(t, n.store, 50, start, at)
	f := aip.ProofExchangeFilter{Role: aip.ProofExProver, States: []aip.ProofExState{aip.ProofExRequest}}
	first, next, err := n.svc.ProofExchanges(context.Background(), aip.Page{Limit: 20}, f)
	if err != nil || len(first) != 20 || next == "" {
		t.Fatal(len(first), next, err)
	}
	// 30 newer exchanges arrive (ids sort after, times after).
	err = n.store.Update(context.Background(), func(w *agent.Work) error {
		for i := 0; i < 30; i++ {
			c := start.Add(time.Hour + time.Duration(i)*time.Millisecond)
			if err := saveNew(w, &record{ProofExchange: aip.ProofExchange{ID: fmt.Sprintf("y%03d", i), ThreadID: "n", ConnectionID: "c",
				MyRole: aip.ProofExProver, State: aip.ProofExRequest, Created: c}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rest := listAllFrom(t, n.svc, next, 20, f)
	if len(rest) != 30 || rest[0] != "x0000029" || rest[29] != "x0000000" {
		t.Fatalf("rest %d items %v…", len(rest), head(rest))
	}
}

func listAllFrom(t testing.TB, s *Service, tok string, limit int, f aip.ProofExchangeFilter) []string {
	var ids []string
	for {
		items, next, err := s.ProofExchanges(context.Background(), aip.Page{NextToken: tok, Limit: limit}, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range items {
			ids = append(ids, x.ID)
		}
		if next == "" {
			return ids
		}
		tok = next
	}
}

// countingRecords counts index reads, to show a filtered page does not
// walk the whole store.
type countingRecords struct {
	agent.Records
	listed, got int
}

func (c *countingRecords) List(ctx context.Context, kind, after string, limit int) ([]agent.Record, error) {
	rs, err := c.Records.List(ctx, kind, after, limit)
	c.listed += len(rs)
	return rs, err
}

func (c *countingRecords) Get(ctx context.Context, kind, id string) ([]byte, error) {
	c.got++
	return c.Records.Get(ctx, kind, id)
}

// TestListReadsWhatItReturns: a filtered page of 20 among 20,000
// exchanges reads a few dozen index entries and 20 records.
func TestListReadsWhatItReturns(t *testing.T) {
	n := newNode(t, "lister")
	seed(t, n.store, 20000, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), cycle)
	cr := &countingRecords{Records: n.store.Records}
	cfg := n.cfg
	cfg.Store.Records = cr
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []aip.ProofExchangeFilter{
		{Role: aip.ProofExProver, States: []aip.ProofExState{aip.ProofExRequest, aip.ProofExDone}},
		{ConnectionIDs: []string{"conn-1", "conn-2"}},
		{ConnectionIDs: []string{"conn-5"}, Role: aip.ProofExVerifier, States: []aip.ProofExState{aip.ProofExPresented}},
	} {
		cr.listed, cr.got = 0, 0
		items, next, err := s.ProofExchanges(context.Background(), aip.Page{Limit: 20}, f)
		if err != nil || len(items) != 20 || next == "" {
			t.Fatal(len(items), next, err)
		}
		if cr.got != 20 || cr.listed > 4*21 {
			t.Fatalf("filter %+v: %d records and %d index entries read for a page of 20", f, cr.got, cr.listed)
		}
	}
}

// BenchmarkListFiltered: a filtered page (role and state; connection,
// role and state) among 100,000 exchanges on bbolt.
func BenchmarkListFiltered(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	store := agent.Store{Records: db.Records(), Committer: db}
	seed(b, store, 100000, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), cycle)
	s, err := New(Config{Store: store, Messenger: memMessenger{}, Connections: &memConns{}, Credentials: &memCreds{}})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		f    aip.ProofExchangeFilter
	}{
		{"role+state", aip.ProofExchangeFilter{Role: aip.ProofExProver, States: []aip.ProofExState{aip.ProofExRequest}}},
		{"states", aip.ProofExchangeFilter{States: []aip.ProofExState{aip.ProofExRequest, aip.ProofExPresented}}},
		{"connections+role+state", aip.ProofExchangeFilter{ConnectionIDs: []string{"conn-1", "conn-2", "conn-3"}, Role: aip.ProofExProver,
			States: []aip.ProofExState{aip.ProofExRequest, aip.ProofExDone}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			// The second page: a token to resume from, as clients page.
			_, tok, err := s.ProofExchanges(context.Background(), aip.Page{Limit: 20}, bc.f)
			if err != nil || tok == "" {
				b.Fatal(tok, err)
			}
			b.ResetTimer()
			for b.Loop() {
				items, _, err := s.ProofExchanges(context.Background(), aip.Page{Limit: 20, NextToken: tok}, bc.f)
				if err != nil || len(items) != 20 {
					b.Fatal(len(items), err)
				}
			}
		})
	}
}
