package postgres

import (
	"context"
	"os"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/internal/pgtest"
	"github.com/agentd/agentd/store/seal"
	"github.com/agentd/agentd/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func testKey(t testing.TB, b byte) seal.Key {
	t.Helper()
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = b
	}
	k, err := seal.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// openURL opens a DB on url, closed when the test ends.
func openURL(t testing.TB, url string, opts Options) *DB {
	t.Helper()
	opts.URL = url
	db, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// openTest opens a DB on a fresh database.
func openTest(t testing.TB, opts Options) *DB {
	t.Helper()
	return openURL(t, pgtest.Start(t), opts)
}

func backendOf(db *DB) storetest.Backend {
	return storetest.Backend{Committer: db, Records: db.Records(), Outbox: db.Outbox(), Queue: db.Queue(), Replay: db.ReplayCache()}
}

// The conformance suite every store passes, against a real PostgreSQL.
func TestConformance(t *testing.T) {
	t.Run("Outbox", func(t *testing.T) {
		storetest.TestOutbox(t, func(t *testing.T) agent.OutboxStore { return openTest(t, Options{}).Outbox() })
	})
	t.Run("ReplayCache", func(t *testing.T) {
		storetest.TestReplayCache(t, func(t *testing.T) agent.ReplayCache { return openTest(t, Options{}).ReplayCache() })
	})
	t.Run("Records", func(t *testing.T) {
		storetest.TestRecords(t, func(t *testing.T) agent.Records { return openTest(t, Options{}).Records() })
	})
	t.Run("KeyStore", func(t *testing.T) {
		storetest.TestKeyStore(t, func(t *testing.T) keys.Store {
			ks, err := openTest(t, Options{MasterKey: testKey(t, 1)}).Keys()
			if err != nil {
				t.Fatal(err)
			}
			return ks
		})
	})
	t.Run("Queue", func(t *testing.T) {
		storetest.TestQueue(t, func(t *testing.T) agent.QueueStore { return openTest(t, Options{}).Queue() })
	})
	t.Run("Commit", func(t *testing.T) {
		storetest.TestCommit(t, func(t *testing.T) storetest.Backend { return backendOf(openTest(t, Options{})) })
	})
}
