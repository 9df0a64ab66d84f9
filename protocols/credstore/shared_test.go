package credstore

import (
	"crypto/rand"
	"os"
	"sync"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/anoncreds"
	"github.com/agentd/agentd/internal/pgtest"
	"github.com/agentd/agentd/store/postgres"
	"github.com/agentd/agentd/store/seal"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// pgInstances returns n services on one PostgreSQL database, as n agentd
// instances sharing it (one master key).
func pgInstances(t *testing.T, n int) []*Service {
	t.Helper()
	url := pgtest.Start(t)
	raw := make([]byte, 32)
	rand.Read(raw)
	key, err := seal.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../anoncreds/testdata/issuer/test_key_cred_def_private.json")
	if err != nil {
		t.Fatal(err)
	}
	primes, err := anoncreds.ParseCredentialDefinitionPrivate(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []*Service
	for range n {
		db, err := postgres.Open(ctx, postgres.Options{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		s, err := New(Config{Store: agent.Store{Records: db.Records(), Committer: db}, Sealer: key,
			IssuerDID: func() string { return issuerDID }, CredDefOptions: anoncreds.CredentialDefinitionConfig{Primes: primes}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestLinkSecretOnceAcrossInstances: two instances on one PostgreSQL
// database asking for the link secret at once, four times each, all get
// the same one, and one record is stored.
func TestLinkSecretOnceAcrossInstances(t *testing.T) {
	svcs := pgInstances(t, 2)
	got := make([]string, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls, err := svcs[i%2].LinkSecret(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = ls.Decimal()
		}()
	}
	wg.Wait()
	for i := range got {
		if got[i] == "" || got[i] != got[0] {
			t.Fatalf("instance %d got another link secret", i%2)
		}
	}
	recs, err := svcs[0].cfg.Store.Records.List(ctx, KindLinkSecret, "", 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%d link secret records (%v)", len(recs), err)
	}
}

// TestCredDefOnceAcrossInstances: the same credential definition created
// through two instances at once is created once; the other is told it
// exists (conflict), and both read the winner's.
func TestCredDefOnceAcrossInstances(t *testing.T) {
	svcs := pgInstances(t, 2)
	sc, err := svcs[0].CreateAnoncredsSchema(ctx, "degree", "1.0", []string{"name", "age"})
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.CreateAnoncredsCredDef(ctx, sc.ID, "default", false)
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("errors %v: want exactly one success", errs)
	}
	for _, err := range errs {
		if err != nil && !agent.HasCode(err, agent.CodeConflict) {
			t.Fatalf("loser: %v, want a conflict", err)
		}
	}
	id := CredDefID(issuerDID, sc.ID, "default")
	a, err := svcs[0].credDefRecord(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := svcs[1].credDefRecord(ctx, id)
	if err != nil || string(a.SealedPrivate) != string(b.SealedPrivate) || !a.Created.Equal(b.Created) {
		t.Fatalf("the instances read different credential definitions: %v", err)
	}
	recs, err := svcs[0].cfg.Store.Records.List(ctx, KindCredDefNew, "", 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%d listing entries (%v), want 1", len(recs), err)
	}
}
