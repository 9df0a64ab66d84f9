package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/metrics"
	"github.com/agentd/agentd/store/bolt"
	"github.com/agentd/agentd/store/postgres"
	"github.com/agentd/agentd/store/seal"
)

// backend is the store the daemon runs on (store.driver): the agent's
// stores and committer, and what /healthz and the metrics watch. Both
// store/bolt and store/postgres provide it through the adapters below.
type backend interface {
	agent.Committer
	Records() agent.Records
	Outbox() agent.OutboxStore
	Queue() agent.QueueStore
	ReplayCache() agent.ReplayCache
	Keys() (keys.Store, error)
	// Sealer returns the master key, for services that seal secrets of
	// their own.
	Sealer() (seal.Key, error)
	// WriteFailure reports whether commits are failing, since when.
	WriteFailure() (err error, since time.Time)
	// WriteFailures counts the failed commits, for a metric.
	WriteFailures() int64
	// CommitStats counts the group commits and the writes they held.
	CommitStats() (groups, writes int64)
	// Probe tries a small write, recording its outcome in WriteFailure.
	Probe(ctx context.Context) error
	Close() error
}

// openBackend opens the store that cfg.Store selects.
func openBackend(ctx context.Context, cfg config.Config, log *slog.Logger) (backend, error) {
	switch cfg.Store.Driver {
	case config.DriverPostgres:
		return openPostgres(ctx, cfg, log)
	case config.DriverBolt, "":
	default:
		return nil, fmt.Errorf("store.driver: %q is not bolt or postgres", cfg.Store.Driver)
	}
	master, err := masterKey(cfg)
	if err != nil {
		return nil, err
	}
	hook, err := faultHook(os.Getenv(FaultEnv))
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(cfg.DataDir, "agentd.db"), bolt.Options{MasterKey: master, CommitHook: hook})
	if err != nil {
		return nil, fmt.Errorf("opening the database: %w", err)
	}
	return boltBackend{db}, nil
}

// openPostgres opens the PostgreSQL store, applying its migrations. The
// master key comes from the same settings as with bbolt; every instance
// sharing the database needs the same one.
func openPostgres(ctx context.Context, cfg config.Config, log *slog.Logger) (backend, error) {
	if os.Getenv(FaultEnv) != "" {
		return nil, fmt.Errorf("%s: the crash-test hook works with store.driver bolt only", FaultEnv)
	}
	pc := cfg.Store.Postgres
	opts := postgres.Options{URL: pc.URL, MaxConns: pc.MaxConns, ClaimLease: pc.ClaimLease, Logger: log.With("component", "store")}
	switch {
	case cfg.Keys.Passphrase != "":
		opts.Passphrase = cfg.Keys.Passphrase
	case cfg.Keys.PassphraseFile != "":
		b, err := os.ReadFile(cfg.Keys.PassphraseFile)
		if err != nil {
			return nil, fmt.Errorf("keys.passphrase_file: %w", err)
		}
		if opts.Passphrase = strings.TrimRight(string(b), "\r\n"); opts.Passphrase == "" {
			return nil, errors.New("keys.passphrase_file: the file is empty")
		}
	default:
		path := cfg.Keys.KeyFile
		if path == "" {
			// As with bbolt: a key file in the data directory, made on
			// first start. A second instance must be given a copy.
			path = filepath.Join(cfg.DataDir, "master.key")
			if _, err := seal.GenerateKeyFile(path); err != nil {
				return nil, fmt.Errorf("creating the master key file: %w", err)
			}
		}
		k, err := seal.KeyFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("keys.key_file: %w", err)
		}
		opts.MasterKey = k
	}
	start := time.Now()
	db, err := postgres.Open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("opening the PostgreSQL database: %w", err)
	}
	st, err := db.SchemaStatus(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("reading the PostgreSQL schema version: %w", err)
	}
	log.Info("store: PostgreSQL", "url", postgres.Redact(pc.URL), "schema", st.Version, "pool", pc.MaxConns, "took", time.Since(start).Round(time.Millisecond))
	return pgBackend{db}, nil
}

// boltBackend adapts *bolt.DB, whose methods return its concrete stores.
type boltBackend struct{ *bolt.DB }

func (b boltBackend) Records() agent.Records         { return b.DB.Records() }
func (b boltBackend) Outbox() agent.OutboxStore      { return b.DB.Outbox() }
func (b boltBackend) Queue() agent.QueueStore        { return b.DB.Queue() }
func (b boltBackend) ReplayCache() agent.ReplayCache { return b.DB.ReplayCache() }
func (b boltBackend) Keys() (keys.Store, error) {
	ks, err := b.DB.Keys()
	if err != nil {
		return nil, err
	}
	return ks, nil
}

// pgBackend adapts *postgres.DB.
type pgBackend struct{ *postgres.DB }

func (b pgBackend) Records() agent.Records         { return b.DB.Records() }
func (b pgBackend) Outbox() agent.OutboxStore      { return b.DB.Outbox() }
func (b pgBackend) Queue() agent.QueueStore        { return b.DB.Queue() }
func (b pgBackend) ReplayCache() agent.ReplayCache { return b.DB.ReplayCache() }
func (b pgBackend) Keys() (keys.Store, error) {
	ks, err := b.DB.Keys()
	if err != nil {
		return nil, err
	}
	return ks, nil
}
func (b pgBackend) Close() error { b.DB.Close(); return nil }

// PoolFigures reads the connection pool's statistics, for WatchPool.
func (b pgBackend) PoolFigures() metrics.PoolFigures {
	st := b.DB.Pool().Stat()
	return metrics.PoolFigures{Total: st.TotalConns(), Idle: st.IdleConns(), Acquired: st.AcquiredConns(), Max: st.MaxConns(),
		Acquires: st.AcquireCount(), Waits: st.EmptyAcquireCount(), WaitSeconds: st.AcquireDuration().Seconds()}
}

// JournalFigures reads the journal's figures, for WatchJournal.
func (b boltBackend) JournalFigures() metrics.JournalFigures {
	st := b.DB.JournalStats()
	return metrics.JournalFigures{Frames: st.Frames, Migrations: st.Migrations, PendingMessages: st.PendingMessages, PendingBytes: st.PendingBytes}
}

// journaled is a backend with a journal to watch.
type journaled interface{ JournalFigures() metrics.JournalFigures }

// pooled is a backend with a connection pool to watch.
type pooled interface{ PoolFigures() metrics.PoolFigures }
