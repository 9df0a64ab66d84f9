// Package postgres keeps the agent's durable state in a PostgreSQL database
// (through github.com/jackc/pgx/v5), so that several agentd instances can
// share it: the outbox and its dead letters, the replay cache, protocol
// records, a mediator's message queue, and the agent's private keys, sealed
// under a master key. It implements the same interfaces as store/bolt and
// passes the same conformance suite (store/storetest).
//
// # Opening
//
// Open connects a pool to the database named by a URL (see [Options]) and
// brings its schema up to date: the migrations embedded in the binary are
// applied in order, each in its own transaction, under a session advisory
// lock, so that two instances starting together do not race (the second
// waits, then finds nothing left to do). Open refuses a database whose
// schema is newer than this binary knows (ErrSchemaTooNew). Errors never
// contain the URL's password.
//
// # Durability
//
// Every method that writes returns only after its transaction has committed;
// with PostgreSQL's default synchronous_commit (on), that means the commit
// record is flushed to the server's disk. When a write returns an error the
// change was not made, except when the connection was lost during COMMIT
// itself, when the outcome is unknown (as with any client of any database).
//
// Units of work (Commit, and Records.Put, Records.Delete and Queue.Add,
// which are units of work of one change) use group commit: works that
// arrive while others are being committed are applied together in one
// transaction, each under a savepoint, so that a refused work (a changed
// read, a replay, a quota) is rolled back alone and does not fail the group.
//
// # Concurrency
//
// A DB and the stores it hands out are safe for concurrent use, and so are
// several DBs, in one process or in many, on one database: a unit of work
// takes transaction-scoped advisory locks on the records it reads and writes
// before checking its reads, so the optimistic checks hold across instances;
// the replay cache is a unique key (INSERT … ON CONFLICT), so the same key
// committed by two instances at once is accepted once; queue quotas lock the
// recipient's totals row. The outbox is claimed: Due hands a message to one
// DB only until its claim lease expires (see Options.ClaimLease).
package postgres

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/store/seal"
)

// ErrSchemaTooNew is returned (wrapped) by Open and Migrate when the database
// has a schema version this binary does not know: a newer agentd migrated it.
var ErrSchemaTooNew = errors.New("database schema is newer than this agentd")

// ErrWrongMasterKey is returned (wrapped) by Open when the configured master
// key is not the one the database's private keys are sealed under.
var ErrWrongMasterKey = errors.New("wrong master key")

// ErrNoMasterKey is returned (wrapped) by DB.Keys when the database was
// opened without a master key.
var ErrNoMasterKey = errors.New("no master key configured")

// ErrExists is returned (wrapped) when creating something whose id is taken:
// Enqueue of a message id already in the outbox or the dead letters, or
// KeyStore.Put of a different key under an existing kid.
var ErrExists = errors.New("already exists")

// Defaults for Options.
const (
	DefaultMaxConns     = 10
	DefaultMaxBatchSize = 64
	DefaultClaimLease   = 5 * time.Minute
	DefaultCommitters   = 2
)

// Options configures Open. Only URL is required.
type Options struct {
	// URL is the database's connection string, a postgres:// URL or a
	// keyword/value string as libpq accepts. Its password is never logged
	// or put in an error (see Redact).
	URL string

	// MaxConns is the size of the connection pool. Zero means
	// DefaultMaxConns.
	MaxConns int

	// MasterKey seals the private keys. The zero value means none: every
	// store but DB.Keys works. The first Open with a key records a check
	// value sealed under it; later Opens with another key fail with
	// ErrWrongMasterKey. Every instance sharing the database needs the same
	// key.
	MasterKey seal.Key

	// Passphrase, instead of MasterKey, derives the master key with
	// argon2id (store/seal). The first Open with a passphrase stores a
	// random salt and the argon2id parameters in the database (meta key
	// master-kdf); later Opens, on any instance, use them.
	Passphrase string

	// MaxBatchSize caps the units of work in one group commit. Zero means
	// DefaultMaxBatchSize, 64: each work is a subtransaction (savepoint),
	// and past 64 of them in one transaction PostgreSQL's per-backend
	// cache of subtransaction ids overflows, which slows every snapshot
	// taken meanwhile.
	MaxBatchSize int

	// Committers is the number of group commits in flight at once. Zero
	// means DefaultCommitters.
	Committers int

	// ClaimLease is how long a message handed out by Outbox.Due stays
	// claimed by this DB: other DBs on the database skip it until the
	// lease expires, so a crashed instance's messages are taken over after
	// it. Reschedule, Delete and Kill end the claim. Zero means
	// DefaultClaimLease; it must exceed the time the outbox takes to
	// attempt a batch of due messages.
	ClaimLease time.Duration

	// Logger receives the warnings of background work (the signal
	// listener's reconnections). Nil means none.
	Logger *slog.Logger
}

// Format prints the options without secrets, for every verb: the URL
// redacted, and whether a master key or passphrase is set.
func (o Options) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "postgres.Options{URL: %s, MaxConns: %d, MasterKey: %t, Passphrase: %t, ClaimLease: %s}",
		Redact(o.URL), o.MaxConns, !o.MasterKey.IsZero(), o.Passphrase != "", o.ClaimLease)
}

// DB is an open agentd database. Get the stores from its methods. Close it
// when done.
type DB struct {
	pool  *pgxpool.Pool
	key   seal.Key
	owner string // this DB's claim owner id
	lease time.Duration

	outbox  Outbox
	replay  ReplayCache
	records Records
	keys    KeyStore
	queue   Queue

	commit   committer
	health   writeHealth
	migrated int // migrations Open applied

	url       string       // for redacting errors
	log       *slog.Logger // may be nil
	signals   Signals
	signalsOn atomic.Bool  // commits send signals (DB.Signals was called)
	takeovers atomic.Int64 // leases taken over from another holder
	// outboxTakeovers counts outbound messages claimed after another
	// instance's claim expired.
	outboxTakeovers atomic.Int64
}

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations are the embedded migrations in version order; the versions
// are 1, 2, … without gaps.
var migrations = mustLoadMigrations()

func mustLoadMigrations() []migration {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		panic(err)
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			panic("postgres: migration file without a version: " + e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			panic(fmt.Sprintf("postgres: migration %s: version %d, want %d", m.name, m.version, i+1))
		}
	}
	return ms
}

// SchemaVersion is the newest schema version this binary knows.
func SchemaVersion() int { return len(migrations) }

// Advisory-lock keys. The migration lock uses the two-int4 form, whose key
// space does not overlap the single-bigint form the record locks use.
const (
	lockSpace     = 0x61676e74 // "agnt"
	lockMigrate   = 1
	lockOutboxCap = 2
)

// Open connects to the database, applies the migrations it lacks (see the
// package documentation) and checks the master key. It fails with an error
// wrapping ErrSchemaTooNew for a database a newer agentd migrated, and with
// one wrapping ErrWrongMasterKey for the wrong master key.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.URL == "" {
		return nil, errors.New("postgres: no database URL configured")
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: database URL %s: %w", Redact(opts.URL), redact(err, opts.URL))
	}
	maxConns := opts.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	if maxConns > math.MaxInt32 {
		return nil, fmt.Errorf("postgres: pool size %d too large", maxConns)
	}
	cfg.MaxConns = int32(maxConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connecting to %s: %w", Redact(opts.URL), redact(err, opts.URL))
	}
	db := &DB{pool: pool, lease: opts.ClaimLease, url: opts.URL, log: opts.Logger}
	if db.lease <= 0 {
		db.lease = DefaultClaimLease
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	db.owner = hex.EncodeToString(id[:])
	db.outbox.db, db.replay.db, db.records.db, db.keys.db, db.queue.db = db, db, db, db, db
	if db.migrated, err = db.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %s: %w", Redact(opts.URL), redact(err, opts.URL))
	}
	key := opts.MasterKey
	if opts.Passphrase != "" {
		if !key.IsZero() {
			pool.Close()
			return nil, errors.New("postgres: set a master key or a passphrase, not both")
		}
		if key, err = db.passphraseKey(ctx, opts.Passphrase); err != nil {
			pool.Close()
			return nil, fmt.Errorf("postgres: master key: %w", err)
		}
	}
	if !key.IsZero() {
		if err := db.checkMasterKey(ctx, key); err != nil {
			pool.Close()
			return nil, fmt.Errorf("postgres: %w", err)
		}
		db.key = key
	}
	db.startCommitter(opts.MaxBatchSize, opts.Committers)
	return db, nil
}

// Close waits for the group commits in flight, then closes the pool. Works
// waiting to join a group commit fail, and so do calls after Close.
func (db *DB) Close() {
	db.signals.stop()
	db.stopCommitter()
	db.pool.Close()
}

// Pool returns the connection pool, for metrics (Pool().Stat()) and tests.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Outbox returns the outbound message queue. It implements agent.OutboxStore.
func (db *DB) Outbox() *Outbox { return &db.outbox }

// ReplayCache returns the replay cache. It implements agent.ReplayCache.
func (db *DB) ReplayCache() *ReplayCache { return &db.replay }

// Records returns the protocol-state document store. It implements
// agent.Records.
func (db *DB) Records() *Records { return &db.records }

// Queue returns the mediator's message queue. It implements
// agent.QueueStore.
func (db *DB) Queue() *Queue { return &db.queue }

// Keys returns the private-key store. It implements keys.Store. It returns
// an error wrapping ErrNoMasterKey if the database was opened without
// Options.MasterKey.
func (db *DB) Keys() (*KeyStore, error) {
	if db.key.IsZero() {
		return nil, fmt.Errorf("postgres: keys: %w", ErrNoMasterKey)
	}
	return &db.keys, nil
}

// Sealer returns the master key, for services that seal small secrets of
// their own at rest (each with its own additional data, so that no sealed
// value can be opened as another), as bolt.DB.Sealer does. It returns an
// error wrapping ErrNoMasterKey if the database was opened without one.
func (db *DB) Sealer() (seal.Key, error) {
	if db.key.IsZero() {
		return seal.Key{}, fmt.Errorf("postgres: sealer: %w", ErrNoMasterKey)
	}
	return db.key, nil
}

// Status describes a database's schema.
type Status struct {
	// Version is the schema version of the database (0: none yet).
	Version int
	// Known is the newest version this binary knows (SchemaVersion).
	Known int
}

// SchemaStatus reports the database's schema version without changing it.
func (db *DB) SchemaStatus(ctx context.Context) (Status, error) {
	v, err := currentVersion(ctx, db.pool)
	return Status{Version: v, Known: SchemaVersion()}, err
}

type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func currentVersion(ctx context.Context, q querier) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('agentd_schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	var v int
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM agentd_schema_migrations`).Scan(&v)
	return v, err
}

// migrate applies the missing migrations under the migration lock and
// returns how many it applied.
func (db *DB) migrate(ctx context.Context) (int, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	// A session lock, held across the migrations' transactions; a second
	// instance waits here until the first is done.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, lockSpace, lockMigrate); err != nil {
		return 0, fmt.Errorf("taking the migration lock: %w", err)
	}
	defer func() {
		// Unlock even if ctx is done; a broken connection drops the lock anyway.
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, $2)`, lockSpace, lockMigrate); err != nil {
			conn.Conn().Close(uctx)
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS agentd_schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("creating the migrations table: %w", err)
	}
	cur, err := currentVersion(ctx, conn)
	if err != nil {
		return 0, err
	}
	if cur > len(migrations) {
		return 0, fmt.Errorf("%w: the database is at schema version %d, this agentd knows up to %d; upgrade agentd", ErrSchemaTooNew, cur, len(migrations))
	}
	n := 0
	for _, m := range migrations[cur:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO agentd_schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("migration %s: %w", m.name, err)
		}
		n++
	}
	return n, nil
}

// ReadStatus reports the schema version of the database at databaseURL
// without changing anything (for agentctl db status). Its errors never
// contain the URL's password.
func ReadStatus(ctx context.Context, databaseURL string) (Status, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return Status{}, fmt.Errorf("postgres: connecting to %s: %w", Redact(databaseURL), redact(err, databaseURL))
	}
	defer conn.Close(context.Background())
	v, err := currentVersion(ctx, conn)
	if err != nil {
		return Status{}, fmt.Errorf("postgres: %s: %w", Redact(databaseURL), redact(err, databaseURL))
	}
	return Status{Version: v, Known: SchemaVersion()}, nil
}

// Migrate applies the migrations the database lacks, as Open does (under
// the same lock; it opens and closes a small pool), for agentctl db
// migrate, and returns the schema status after it and how many migrations
// it applied.
func Migrate(ctx context.Context, databaseURL string) (Status, int, error) {
	db, err := Open(ctx, Options{URL: databaseURL, MaxConns: 2})
	if err != nil {
		return Status{}, 0, err
	}
	defer db.Close()
	st, err := db.SchemaStatus(ctx)
	return st, db.migrated, err
}

// checkPlaintext is sealed into the meta row master-check when the database
// first gets a master key; opening it proves a later master key is the same.
var (
	checkPlaintext = []byte("agentd master key check v1")
	checkAAD       = []byte("agentd/meta/master-check/v1")
)

// passphraseKey derives the master key from a passphrase with the KDF
// parameters stored in the database, storing new ones on first use (the
// first instance to store them wins; the others read them back).
func (db *DB) passphraseKey(ctx context.Context, passphrase string) (seal.Key, error) {
	fresh, err := seal.NewKDFParams()
	if err != nil {
		return seal.Key{}, err
	}
	js, err := json.Marshal(fresh)
	if err != nil {
		return seal.Key{}, err
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO agentd_meta (key, value) VALUES ('master-kdf', $1) ON CONFLICT (key) DO NOTHING`, js); err != nil {
		return seal.Key{}, err
	}
	var stored []byte
	if err := db.pool.QueryRow(ctx, `SELECT value FROM agentd_meta WHERE key = 'master-kdf'`).Scan(&stored); err != nil {
		return seal.Key{}, err
	}
	var kdf seal.KDFParams
	if err := json.Unmarshal(stored, &kdf); err != nil {
		return seal.Key{}, fmt.Errorf("meta master-kdf: %w", err)
	}
	return seal.DeriveKey(passphrase, kdf)
}

func (db *DB) checkMasterKey(ctx context.Context, key seal.Key) error {
	sealed, err := key.Seal(checkPlaintext, checkAAD)
	if err != nil {
		return err
	}
	// The first instance to get here records its key's check value; every
	// later one (and every concurrent one) checks against it.
	if _, err := db.pool.Exec(ctx, `INSERT INTO agentd_meta (key, value) VALUES ('master-check', $1) ON CONFLICT (key) DO NOTHING`, sealed); err != nil {
		return err
	}
	var check []byte
	if err := db.pool.QueryRow(ctx, `SELECT value FROM agentd_meta WHERE key = 'master-check'`).Scan(&check); err != nil {
		return err
	}
	pt, err := key.Open(check, checkAAD)
	if err != nil || string(pt) != string(checkPlaintext) {
		return fmt.Errorf("%w: the master key does not match the one this database was set up with", ErrWrongMasterKey)
	}
	return nil
}

// Redact returns the connection string with its password replaced by
// "xxxxx", for logs and errors. A string it cannot parse is replaced whole.
func Redact(connString string) string {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "(unparsable database URL)"
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	// keyword/value form: password=... (possibly quoted)
	fields := strings.Fields(connString)
	for i, f := range fields {
		if strings.HasPrefix(f, "password=") {
			fields[i] = "password=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// redactedError is an error whose text has the connection string's
// password removed; errors.Is and errors.As still see the error it wraps.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, connString string) error {
	return &redactedError{msg: redactErr(err, connString), err: err}
}

// redactErr formats err with any occurrence of the connection string's
// password removed.
func redactErr(err error, connString string) string {
	s := err.Error()
	if pw := password(connString); pw != "" {
		s = strings.ReplaceAll(s, pw, "xxxxx")
		if esc := url.QueryEscape(pw); esc != pw {
			s = strings.ReplaceAll(s, esc, "xxxxx")
		}
		if esc := url.PathEscape(pw); esc != pw {
			s = strings.ReplaceAll(s, esc, "xxxxx")
		}
	}
	return s
}

func password(connString string) string {
	if cfg, err := pgconn.ParseConfig(connString); err == nil && cfg.Password != "" {
		return cfg.Password
	}
	if u, err := url.Parse(connString); err == nil {
		if pw, ok := u.User.Password(); ok {
			return pw
		}
		return u.Query().Get("password")
	}
	return ""
}

// Times are stored as Unix nanoseconds; the zero time is math.MinInt64, and
// times outside the int64 nanosecond range (before 1678 or after 2262) are
// clamped to its ends, as in the bbolt store.
var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

func nanos(t time.Time) int64 {
	switch {
	case t.IsZero() || !t.After(minNanoTime):
		return math.MinInt64
	case !t.Before(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// MaxIDLen bounds identifiers (record kinds and ids, outbox message ids,
// replay keys, key ids, queue recipients): they are index keys, and a
// PostgreSQL B-tree entry must fit in a third of a page.
const MaxIDLen = 1024

// maxEndpointLen bounds an outbox message's endpoint, which is indexed too.
const maxEndpointLen = 2048

func checkID(what, id string) error {
	if id == "" {
		return fmt.Errorf("postgres: empty %s", what)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("postgres: %s longer than %d bytes", what, MaxIDLen)
	}
	return nil
}

func checkLimit(limit int) error {
	if limit <= 0 {
		return fmt.Errorf("postgres: limit must be positive, got %d", limit)
	}
	return nil
}

// checkText rejects a string PostgreSQL's text type cannot hold: invalid
// UTF-8, or a NUL.
func checkText(what, s string) error {
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("postgres: %s is not valid UTF-8 text without NUL", what)
	}
	return nil
}

// isCode reports whether err is a PostgreSQL error with one of the codes.
func isCode(err error, codes ...string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	for _, c := range codes {
		if pe.Code == c {
			return true
		}
	}
	return false
}

const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

var _ agent.Committer = (*DB)(nil)
