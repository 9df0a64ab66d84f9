package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/internal/pgtest"
)

// two opens two DBs on one fresh database, as two agentd instances would.
func two(t *testing.T, opts Options) (*DB, *DB) {
	t.Helper()
	url := pgtest.Start(t)
	return openURL(t, url, opts), openURL(t, url, opts)
}

// The same replay key committed through two DBs at once is accepted once,
// and only the accepted work's record is stored.
func TestSharedReplayAcceptedOnce(t *testing.T) {
	ctx := context.Background()
	a, b := two(t, Options{})
	far := time.Now().Add(time.Hour)
	for round := range 20 {
		key := fmt.Sprintf("msg-%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		start := make(chan struct{})
		for i := range errs {
			db := a
			if i%2 == 1 {
				db = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				w := agent.NewWork(db.Records())
				w.Remember(key, far)
				w.Put("handled", key+"/"+strconv.Itoa(i), []byte("x"))
				errs[i] = db.Commit(ctx, w)
			}()
		}
		close(start)
		wg.Wait()
		accepted := 0
		for i, err := range errs {
			switch {
			case err == nil:
				accepted++
			case !errors.Is(err, agent.ErrReplay):
				t.Fatalf("round %d, work %d: %v", round, i, err)
			}
		}
		if accepted != 1 {
			t.Fatalf("round %d: %d of %d works with one replay key accepted, want 1", round, accepted, len(errs))
		}
		recs, err := a.Records().List(ctx, "handled", key+"/", 100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range recs {
			if strings.HasPrefix(r.ID, key+"/") {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("round %d: %d records stored, want the accepted work's only", round, n)
		}
	}
}

// Standalone Remember through two DBs: one reports the id new.
func TestSharedRememberOnce(t *testing.T) {
	ctx := context.Background()
	a, b := two(t, Options{})
	for round := range 20 {
		id := fmt.Sprintf("r-%d", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		fresh := 0
		for i := range 10 {
			db := a
			if i%2 == 1 {
				db = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				seen, err := db.ReplayCache().Remember(ctx, id, time.Now().Add(time.Hour))
				if err != nil {
					t.Error(err)
					return
				}
				if !seen {
					mu.Lock()
					fresh++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if fresh != 1 {
			t.Fatalf("round %d: %d calls reported the id new, want 1", round, fresh)
		}
	}
}

// Read-modify-write units of work through two DBs lose no update: the
// optimistic checks hold across instances.
func TestSharedUpdatesLoseNothing(t *testing.T) {
	ctx := context.Background()
	a, b := two(t, Options{})
	const workers, each = 6, 15
	var wg sync.WaitGroup
	var mu sync.Mutex
	succeeded := 0
	for i := range workers {
		db := a
		if i%2 == 1 {
			db = b
		}
		s := agent.Store{Records: db.Records(), Committer: db}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := s.Update(ctx, func(w *agent.Work) error {
					n := 0
					v, err := w.Get(ctx, "k", "counter")
					if err == nil {
						n, _ = strconv.Atoi(string(v))
					} else if !errors.Is(err, agent.ErrNotFound) {
						return err
					}
					w.Put("k", "counter", []byte(strconv.Itoa(n+1)))
					return nil
				})
				if err != nil && !errors.Is(err, agent.ErrConflict) {
					t.Error(err)
				}
				if err == nil {
					mu.Lock()
					succeeded++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	v, err := b.Records().Get(ctx, "k", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := strconv.Atoi(string(v)); got != succeeded || succeeded == 0 {
		t.Fatalf("counter = %d after %d successful increments through two DBs", got, succeeded)
	}
}

// A recipient's quota holds across DBs: concurrent adds through two of them
// never take it over its limit.
func TestSharedQuota(t *testing.T) {
	ctx := context.Background()
	a, b := two(t, Options{})
	lim := agent.QueueLimits{MaxMessages: 25}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := range 60 {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := &agent.QueuedMessage{Recipient: "did:example:alice", Payload: []byte("p"), Expires: time.Now().Add(time.Hour)}
			err := db.Queue().Add(ctx, []*agent.QueuedMessage{m}, lim)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, agent.ErrQuota):
				refused++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st, err := a.Queue().Stats(ctx, []string{"did:example:alice"})
	if err != nil {
		t.Fatal(err)
	}
	if ok != 25 || refused != 35 || st.Messages != 25 {
		t.Fatalf("accepted %d, refused %d, stored %d; want 25, 35, 25", ok, refused, st.Messages)
	}
	if tt, err := b.Queue().Totals(ctx); err != nil || tt.Messages != 25 || tt.Recipients != 1 {
		t.Fatalf("Totals = %+v, %v", tt, err)
	}
}

// An outbox message is handed to exactly one of two DBs calling Due at
// once; the other takes it over once the first's claim lease expires.
func TestSharedOutboxClaimedOnce(t *testing.T) {
	ctx := context.Background()
	const lease = 2 * time.Second
	a, b := two(t, Options{ClaimLease: lease})
	const n = 200
	now := time.Now()
	for i := range n {
		m := &agent.OutboundMessage{ID: fmt.Sprintf("m%03d", i), To: "did:example:bob", Endpoint: "https://bob.example/",
			MediaType: agent.MediaTypeEncrypted, Payload: []byte("x"), CreatedAt: now, NextAttempt: now.Add(-time.Second)}
		if err := a.Outbox().Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 8 {
		db, name := a, "a"
		if i%2 == 1 {
			db, name = b, "b"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms, err := db.Outbox().Due(ctx, time.Now(), 40)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range ms {
				if prev, dup := got[m.ID]; dup && prev != name {
					t.Errorf("message %s handed to both DBs", m.ID)
				}
				got[m.ID] = name
			}
		}()
	}
	wg.Wait()
	if len(got) == 0 {
		t.Fatal("no message handed out")
	}
	// Everything a holds is invisible to b until the lease expires...
	var heldByA []string
	for id, name := range got {
		if name == "a" {
			heldByA = append(heldByA, id)
		}
	}
	rest, err := b.Outbox().Due(ctx, time.Now(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rest {
		if got[m.ID] == "a" {
			t.Fatalf("b was handed %s, which a holds", m.ID)
		}
	}
	if len(rest)+len(heldByA) != n {
		t.Fatalf("b holds %d messages and a %d, want %d in all", len(rest), len(heldByA), n)
	}
	// b delivers everything it holds.
	for _, m := range rest {
		if err := b.Outbox().Delete(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	// ... and b's NextDue points at the lease's end, not at a busy loop.
	if next, ok, err := b.Outbox().NextDue(ctx); err != nil || !ok || next.Before(time.Now().Add(lease/2)) {
		t.Fatalf("b's NextDue = %v, %v, %v; want about the end of a's lease", next, ok, err)
	}
	// a delivers one message; a message it delivered is gone for both.
	if err := a.Outbox().Delete(ctx, heldByA[0]); err != nil {
		t.Fatal(err)
	}
	// a "crashes": after the lease, b takes over the rest of a's messages.
	time.Sleep(lease + 100*time.Millisecond)
	taken, err := b.Outbox().Due(ctx, time.Now(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	takenIDs := map[string]bool{}
	for _, m := range taken {
		takenIDs[m.ID] = true
	}
	for _, id := range heldByA[1:] {
		if !takenIDs[id] {
			t.Fatalf("after the lease, b was not handed %s", id)
		}
	}
	if takenIDs[heldByA[0]] {
		t.Fatalf("b was handed %s, which was delivered", heldByA[0])
	}
	if len(taken) != len(heldByA)-1 {
		t.Fatalf("after the lease b holds %d messages, want %d", len(taken), len(heldByA)-1)
	}
	if got := b.OutboxTakeovers(); got != int64(len(heldByA)-1) {
		t.Fatalf("b counted %d outbox takeovers, want %d", got, len(heldByA)-1)
	}
	if got := a.OutboxTakeovers(); got != 0 {
		t.Fatalf("a counted %d outbox takeovers, want 0", got)
	}
	// a, back, gets nothing b holds.
	if ms, err := a.Outbox().Due(ctx, time.Now(), 1000); err != nil || len(ms) != 0 {
		t.Fatalf("a's Due while b holds everything = %d messages, %v", len(ms), err)
	}
}

// Two Opens of a fresh database at once: the migrations are applied once,
// under the lock, and both open.
func TestConcurrentMigrations(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	var wg sync.WaitGroup
	dbs := make([]*DB, 4)
	errs := make([]error, len(dbs))
	for i := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = Open(ctx, Options{URL: url})
		}()
	}
	wg.Wait()
	applied := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		applied += dbs[i].migrated
		defer dbs[i].Close()
	}
	if applied != SchemaVersion() {
		t.Errorf("%d migrations applied in all, want %d (each once)", applied, SchemaVersion())
	}
	st, err := dbs[0].SchemaStatus(ctx)
	if err != nil || st.Version != SchemaVersion() || st.Known != SchemaVersion() {
		t.Fatalf("SchemaStatus = %+v, %v", st, err)
	}
	var rows int
	if err := dbs[0].pool.QueryRow(ctx, `SELECT count(*) FROM agentd_schema_migrations`).Scan(&rows); err != nil || rows != SchemaVersion() {
		t.Fatalf("%d migration rows, %v", rows, err)
	}
}

// A database migrated by a newer agentd is refused.
func TestSchemaTooNew(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	db := openURL(t, url, Options{})
	if _, err := db.pool.Exec(ctx, `INSERT INTO agentd_schema_migrations (version, name) VALUES ($1, 'from the future')`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, Options{URL: url})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema = %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(SchemaVersion()+1)) {
		t.Errorf("the error does not say the database's version: %v", err)
	}
}

// The first master key is recorded; another is refused.
func TestWrongMasterKey(t *testing.T) {
	url := pgtest.Start(t)
	openURL(t, url, Options{MasterKey: testKey(t, 1)})
	openURL(t, url, Options{MasterKey: testKey(t, 1)})
	if _, err := Open(context.Background(), Options{URL: url, MasterKey: testKey(t, 2)}); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Open with another master key = %v, want ErrWrongMasterKey", err)
	}
	db := openURL(t, url, Options{})
	if _, err := db.Keys(); !errors.Is(err, ErrNoMasterKey) {
		t.Fatalf("Keys without a master key = %v", err)
	}
}

// The password of the URL is in no error.
func TestPasswordNotInErrors(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	base := pgtest.Start(t)
	withPW := strings.Replace(base, "postgres@", "postgres:"+secret+"@", 1)
	for _, url := range []string{
		strings.Replace(withPW, "/t_", "/no_such_db_", 1),                              // the server refuses
		strings.Replace(withPW, "127.0.0.1:", "127.0.0.1:1", 1) + "&connect_timeout=2", // nobody listens (port 1xxxxx is invalid or closed)
		"postgres://postgres:" + secret + "@127.0.0.1:notaport/x",                      // unparsable
		"host=127.0.0.1 port=1 user=postgres password=" + secret + " dbname=x connect_timeout=2",
	} {
		_, err := Open(context.Background(), Options{URL: url})
		if err == nil {
			t.Fatalf("Open(%s) succeeded", Redact(url))
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	if r := Redact(withPW); strings.Contains(r, secret) || !strings.Contains(r, "xxxxx") {
		t.Errorf("Redact(url) = %s", r)
	}
	if r := Redact("postgres://u@h/db?password=" + secret); strings.Contains(r, secret) {
		t.Errorf("Redact(password parameter) = %s", r)
	}
	if r := Redact("host=h password=" + secret + " dbname=x"); strings.Contains(r, secret) {
		t.Errorf("Redact(keyword/value) = %s", r)
	}
}

// Concurrent works share transactions (group commit), and a refused work
// leaves its group's others committed (storetest checks the outcome; this
// checks that groups formed).
func TestGroupCommitBatches(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := db.Records().Put(ctx, "k", strconv.Itoa(i), []byte("v")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	groups, works := db.CommitStats()
	t.Logf("%d works in %d group commits", works, groups)
	if works != 200 || groups >= works {
		t.Fatalf("%d works in %d groups: no batching", works, groups)
	}
}

// Closed DBs refuse work instead of hanging.
func TestClosed(t *testing.T) {
	db, err := Open(context.Background(), Options{URL: pgtest.Start(t)})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := db.Records().Put(context.Background(), "k", "a", []byte("v")); err == nil {
		t.Fatal("Put after Close succeeded")
	}
}

// A passphrase derives the same key on every instance (the KDF parameters
// are in the database); another passphrase is refused.
func TestPassphrase(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	a := openURL(t, url, Options{Passphrase: "correct horse"})
	ka, err := a.Keys()
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.Generate(keys.Ed25519, "did:example:a#1")
	if err != nil {
		t.Fatal(err)
	}
	if err := ka.Put(ctx, k); err != nil {
		t.Fatal(err)
	}
	b := openURL(t, url, Options{Passphrase: "correct horse"})
	kb, err := b.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kb.Get(ctx, k.ID); err != nil || string(got.D) != string(k.D) {
		t.Fatalf("the second instance's Get = %v", err)
	}
	if _, err := Open(ctx, Options{URL: url, Passphrase: "wrong horse"}); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Open with another passphrase = %v, want ErrWrongMasterKey", err)
	}
	if s := fmt.Sprintf("%v %+v %#v", Options{URL: url, Passphrase: "correct horse"}, Options{Passphrase: "correct horse"}, Options{Passphrase: "correct horse"}); strings.Contains(s, "horse") {
		t.Fatalf("Options print their passphrase: %s", s)
	}
}

// A work's own failure (a taken outbox id) fails that work only: it is not
// a failure of the database's writes, and a group it shares commits.
func TestWorkErrorIsNotAWriteFailure(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	out := func(id string) *agent.OutboundMessage {
		return &agent.OutboundMessage{ID: id, To: "did:example:bob", Endpoint: "https://bob.example/", MediaType: agent.MediaTypeEncrypted, Payload: []byte("x")}
	}
	if err := db.Outbox().Enqueue(ctx, out("taken")); err != nil {
		t.Fatal(err)
	}
	w := agent.NewWork(nil)
	w.Enqueue(out("taken"))
	if err := db.Commit(ctx, w); !errors.Is(err, ErrExists) {
		t.Fatalf("Commit with a taken id = %v, want ErrExists", err)
	}
	if err, _ := db.WriteFailure(); err != nil || db.WriteFailures() != 0 {
		t.Fatalf("a work's own failure marked the writes failing: %v, %d", err, db.WriteFailures())
	}
	// In a group: the other works commit.
	var wg sync.WaitGroup
	errs := make([]error, 30)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := agent.NewWork(nil)
			if i%3 == 0 {
				w.Enqueue(out("taken"))
			} else {
				w.Enqueue(out(fmt.Sprintf("fresh-%d", i)))
			}
			errs[i] = db.Commit(ctx, w)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i%3 == 0) != errors.Is(err, ErrExists) || (i%3 != 0 && err != nil) {
			t.Errorf("work %d: %v", i, err)
		}
	}
	if p, _, err := db.Outbox().Depth(ctx); err != nil || p != 1+20 {
		t.Fatalf("Depth = %d, %v; want 21", p, err)
	}
	if err, _ := db.WriteFailure(); err != nil {
		t.Fatalf("WriteFailure = %v", err)
	}
}

// Oversized identifiers: a peer's long message id is still remembered
// (hashed); a long record id is refused with a clear error before it
// reaches the database, failing that work only.
func TestLongIdentifiers(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	long := strings.Repeat("x", 5000)
	for i := range 2 {
		seen, err := db.ReplayCache().Remember(ctx, long, time.Now().Add(time.Hour))
		if err != nil || seen != (i == 1) {
			t.Fatalf("Remember(long id) #%d = %v, %v", i, seen, err)
		}
	}
	if seen, err := db.ReplayCache().Remember(ctx, long+"y", time.Now().Add(time.Hour)); err != nil || seen {
		t.Fatalf("another long id = %v, %v", seen, err)
	}
	w := agent.NewWork(nil)
	w.Remember(long, time.Now().Add(time.Hour))
	if err := db.Commit(ctx, w); !errors.Is(err, agent.ErrReplay) {
		t.Fatalf("a work with a remembered long replay key = %v, want ErrReplay", err)
	}
	w = agent.NewWork(nil)
	w.Put("k", long, []byte("v"))
	if err := db.Commit(ctx, w); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("a work with a 5000-byte record id = %v", err)
	}
	if err := db.Outbox().Enqueue(ctx, &agent.OutboundMessage{ID: "m", Endpoint: "https://x.example/" + long}); err == nil {
		t.Fatal("an outbox message with a 5 KB endpoint was accepted")
	}
	if err, _ := db.WriteFailure(); err != nil {
		t.Fatalf("WriteFailure = %v", err)
	}
}

// Works that touch the same records, replay keys and recipients in every
// order, through two DBs and grouped, never deadlock: each group takes all
// its locks at once in one global order. (A deadlock would cost the
// server's deadlock_timeout, a second, and show in pg_stat_database.)
func TestNoDeadlocks(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	a, b := openURL(t, url, Options{}), openURL(t, url, Options{})
	far := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	for g := range 16 {
		db := a
		if g%2 == 1 {
			db = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				w := agent.NewWork(nil)
				// One hot record and one recipient each, so that groups
				// of works reach them in every order.
				k, r := rand.IntN(3), rand.IntN(3)
				w.Put("hot", strconv.Itoa(k), []byte{byte(g)})
				for range 3 {
					w.Queue(agent.QueueLimits{}, &agent.QueuedMessage{Recipient: "did:example:r" + strconv.Itoa(r), Payload: []byte("p"), Expires: far})
				}
				w.Remember(fmt.Sprintf("k-%d-%d", g, i), far)
				if err := db.Commit(ctx, w); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if tt, err := a.Queue().Totals(ctx); err != nil || tt.Messages != 16*30*3 {
		t.Fatalf("Totals = %+v, %v", tt, err)
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	a.Close()
	b.Close()
	time.Sleep(1500 * time.Millisecond) // the backends' statistics reach the server
	var deadlocks int64
	if err := c.QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&deadlocks); err != nil {
		t.Fatal(err)
	}
	if deadlocks != 0 {
		t.Fatalf("%d deadlocks among agentd's own transactions", deadlocks)
	}
}
