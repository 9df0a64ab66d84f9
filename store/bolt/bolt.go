// Package bolt keeps the agent's durable state in a single bbolt
// (go.etcd.io/bbolt) file: the outbox and its dead letters, the replay cache,
// protocol records, a mediator's message queue, and the agent's private
// keys, sealed under a master key.
//
// # Opening
//
// Open takes an exclusive lock on the file. A second process (or a second
// Open in the same process) that opens the same file waits at most
// Options.LockTimeout and then fails with an error wrapping ErrLocked, so a
// second daemon pointed at the same data directory stops at start-up instead
// of hanging. The file is created with mode 0600; the mode of an existing
// file is left alone.
//
// # Durability
//
// Every method that writes returns only after its transaction has been
// committed and the file fsynced (fdatasync on Linux): when Enqueue, Remember,
// Put, Reschedule, Kill or any other write returns nil, the change survives a
// crash of the process or of the machine, provided the disk honours fsync.
// When a write returns an error the change was not made, with one exception:
// after an I/O error during the commit itself the outcome is unknown until the
// file is reopened.
//
// Writes use group commit: a write that arrives while another transaction is
// being committed waits for it, then is applied together with every other
// write that arrived meanwhile, in one transaction with a single fsync. A
// lone writer commits at once; under load, many concurrent Enqueue, Remember
// or Put calls share each fsync, which multiplies write throughput (see
// BenchmarkOutboxEnqueueParallel). Sweep, whose transactions can be large,
// commits alone.
//
// A unit of work that only queues messages and remembers replay keys (a
// mediator's forward) is made durable by the journal instead: two files
// beside the database (its path with ".journal.0" and ".journal.1" added)
// to which a group of such works is appended with one write and one
// fdatasync, and whose content is moved into the database file soon after
// (see journal.go). Open recovers what the journal holds before anything
// else runs, so the files belong together: copy or back up all three, with
// the daemon stopped. Close moves the journal's content into the database
// file.
//
// Options.NoSync turns fsync off. It is for tests and benchmarks only: with it
// a machine crash or power loss can lose acknowledged writes or corrupt the
// file.
//
// # Concurrency
//
// A DB and all the stores it hands out are safe for concurrent use by many
// goroutines. bbolt allows one writer at a time and any number of readers;
// a reader sees a consistent snapshot and does not block writers (except that
// a commit which must grow the file's memory map waits for open reads; the
// stores' reads are short). Only one process may have the file open.
//
// # Private keys
//
// Private keys are encrypted at rest with AES-256-GCM under a master key given
// in Options.MasterKey (see [Passphrase], [KeyFile], [RawKey] and package
// store/seal); public keys are stored in the clear beside them so they can be
// listed without the master key. Open verifies the master key against a check
// value sealed when the database first saw a master key, so a wrong
// passphrase or key file fails at Open with ErrWrongMasterKey, not later.
//
// # Layout
//
// Top-level buckets, with nested buckets and keys (be64 is a big-endian
// uint64; times are Unix nanoseconds with the sign bit flipped so that byte
// order is time order):
//
//	meta     schema → be64 version (3; a version 1 database is upgraded on
//	                  open by dropping queue/msg, a version 1 or 2 one by
//	                  adding replay/runs)
//	         journal-lsn → be64 number of the last journal frame moved into
//	                  the file (journal.go)
//	         master-kind → "passphrase" | "key" (key file or raw key)
//	         master-kdf → JSON seal.KDFParams (salt and argon2id cost)
//	         master-check → sealed check value
//	outbox   n-pending, n-dead → be64 counters (for Depth)
//	         msg/     id → JSON agent.OutboundMessage (pending messages)
//	         due/     be64 NextAttempt || id → empty
//	         dead/    be64 DeadAt || id → JSON agent.OutboundMessage
//	         deadid/  id → be64 DeadAt (locates a dead letter by id)
//	         dest/    endpoint → be64 count of its pending messages (for
//	                  agent.OutboxLimits; added to older databases, and
//	                  filled from msg/, when they are opened)
//	replay   id/      id → be64 expiry (the ids written by a bbolt transaction)
//	         exp/     be64 expiry || id → empty
//	         runs/    be64 day || be64 seq → bucket: r → be64 least expiry ||
//	                  sorted (16-byte digest || be64 expiry) entries (the
//	                  ids the journal took: replayruns.go)
//	records  <kind>/  id → value
//	queue    n-msgs, n-bytes, n-rcpt → be64 counters (for Totals)
//	         data/    be64 seq → be64 received || be64 expires || uvarint n || recipient (n bytes) || payload
//	         exp/     be64 expires || be64 seq → empty
//	         rcpt/    recipient → be64 count || be64 bytes || be64 0
//	         (the index by recipient and receive time is kept in memory,
//	         rebuilt from data/ on open: qindex.go)
//	         (the queue id of a message is its seq in base 36)
//	keys     pub/     kid → public JWK (JSON)
//	         priv/    kid → seal(D), additional data "agentd/key/v1" 0 curve 0 kid
package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/store/seal"
)

// ErrLocked is returned (wrapped) by Open when another process, or another
// Open in this process, holds the database file.
var ErrLocked = errors.New("database is locked by another process")

// ErrWrongMasterKey is returned (wrapped) by Open when the configured master
// key is not the one the database's private keys are sealed under.
var ErrWrongMasterKey = errors.New("wrong master key")

// ErrNoMasterKey is returned by DB.Keys when the database was opened without
// a master key.
var ErrNoMasterKey = errors.New("no master key configured")

// ErrExists is returned (wrapped) when creating something whose id is taken:
// Enqueue of a message id already in the outbox or the dead letters, or
// KeyStore.Put of a different key under an existing kid.
var ErrExists = errors.New("already exists")

// schemaVersion is the layout described in the package documentation.
const schemaVersion = 3

// Defaults for Options.
const (
	DefaultLockTimeout  = time.Second
	DefaultMaxBatchSize = 1000
)

// Options configures Open. The zero value is valid: no master key, the
// default lock timeout and group-commit settings, and full fsync.
type Options struct {
	// MasterKey is where the key that seals private keys comes from. The zero
	// value means none: the outbox, replay cache and records work, but
	// DB.Keys returns ErrNoMasterKey.
	MasterKey MasterKey

	// LockTimeout bounds how long Open waits for the file lock held by
	// another process. Zero means DefaultLockTimeout; it is never unbounded.
	LockTimeout time.Duration

	// MaxBatchSize caps the number of writes in one group commit. Zero means
	// DefaultMaxBatchSize.
	MaxBatchSize int

	// NoSync skips fsync on commit. UNSAFE: acknowledged writes may be lost
	// and the file may be corrupted by a machine crash or power loss. For
	// tests and benchmarks only.
	NoSync bool

	// NoJournal commits every write in a bbolt transaction, the journal
	// unused (see journal.go). For tests and benchmarks that compare.
	NoJournal bool

	// CommitHook, when set, is called at each CommitPoint of every Commit
	// with the work being committed. It is a fault-injection point for
	// tests (a crash test kills the process there); production leaves it
	// nil.
	CommitHook func(CommitPoint, *agent.Work)
}

// DB is an open agentd database file. Get the stores from its methods. Close
// it when done; it holds an exclusive lock on the file until then.
type DB struct {
	bolt *bbolt.DB
	key  seal.Key // zero when opened without a master key

	outbox  Outbox
	replay  ReplayCache
	records Records
	keys    KeyStore
	queue   Queue

	commit committer
	health writeHealth
	// wmu orders the write transactions that can change the queue index
	// with the index's update after their commit (see qindex.go).
	wmu    sync.Mutex
	qidx   qindex
	qdelta *qdelta // the open write transaction's index changes
	// jnl is the journal (nil without one: Options.NoJournal); pend is
	// what it holds that the file does not yet; seq is the last queue
	// sequence given out, used under wmu. mmu is held by a migration
	// (the migrator's, or any other bbolt write's); migrations wakes the
	// migrator (journal.go, migrate.go).
	jnl          *journal
	fileRecs     fileRecords // under wmu
	replayF      *replayFilter
	pend         pending
	seq          uint64
	mmu          sync.Mutex
	migrations   chan struct{}
	migratorDone sync.WaitGroup
	mode         writeMode // tests and benchmarks only; set before the first write
	commitHook   func(CommitPoint, *agent.Work)
}

// Bucket names; see the package documentation.
var (
	bMeta    = []byte("meta")
	bOutbox  = []byte("outbox")
	bReplay  = []byte("replay")
	bRecords = []byte("records")
	bKeys    = []byte("keys")

	bMsg    = []byte("msg")
	bDue    = []byte("due")
	bDead   = []byte("dead")
	bDeadID = []byte("deadid")
	bDest   = []byte("dest")
	bID     = []byte("id")
	bExp    = []byte("exp")
	bPub    = []byte("pub")
	bPriv   = []byte("priv")

	kSchema      = []byte("schema")
	kMasterKind  = []byte("master-kind")
	kMasterKDF   = []byte("master-kdf")
	kMasterCheck = []byte("master-check")
	kNPending    = []byte("n-pending")
	kNDead       = []byte("n-dead")
)

// Open opens the database file at path, creating it (mode 0600) if it does
// not exist. The directory must exist. See Options for the settings and the
// package documentation for locking and durability.
//
// Open fails with an error wrapping ErrLocked if the file is held by another
// process, and with one wrapping ErrWrongMasterKey if Options.MasterKey does
// not match the key the database was set up with. With a passphrase, Open
// runs argon2id once (see store/seal), which takes a noticeable fraction of a
// second.
func Open(path string, opts Options) (*DB, error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	// The list of free pages is not written at each commit (NoFreelistSync)
	// but rebuilt by a scan of the file on open: a mediator's database frees
	// the pages of every message delivered, and writing that list again at
	// every commit cost a third of a commit's time after churn
	// (BenchmarkQueueAddAfterChurn). It is derived data, so durability is
	// the same; opening a 250 MB database takes about 100 ms instead of 1 ms.
	// The map form keeps allocation from a long list cheap.
	bdb, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout, NoSync: opts.NoSync,
		NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bberrors.ErrTimeout) {
			return nil, fmt.Errorf("bolt: open %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	db := &DB{bolt: bdb, commitHook: opts.CommitHook, replayF: newReplayFilter()}
	db.pend.act = newPendSet(0)
	db.outbox.db, db.replay.db, db.records.db, db.keys.db, db.queue.db = db, db, db, db, db
	if err := db.init(); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	// Before the journal's recovery, whose migration adds what it records.
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		db.replayF.load(tx, time.Now())
		return nil
	}); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("bolt: open %s: reading the replay cache: %w", path, err)
	}
	if opts.MasterKey.kind != 0 {
		if db.key, err = opts.MasterKey.resolve(db); err != nil {
			bdb.Close()
			return nil, fmt.Errorf("bolt: open %s: %w", path, err)
		}
	}
	if !opts.NoJournal {
		if err := db.recoverJournal(path, opts.NoSync); err != nil {
			if db.jnl != nil {
				db.jnl.close()
			}
			bdb.Close()
			return nil, fmt.Errorf("bolt: open %s: the journal: %w", path, err)
		}
		db.startMigrator()
	}
	if err := db.loadIndex(); err != nil {
		db.closeJournal()
		bdb.Close()
		return nil, fmt.Errorf("bolt: open %s: reading the queue: %w", path, err)
	}
	db.startCommitter(opts.MaxBatchSize)
	return db, nil
}

// init creates the buckets and checks the schema version.
func (db *DB) init() error {
	return db.bolt.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(kSchema); {
		case v == nil:
		case be64(v) == 1:
			// Schema 1 kept the queue's recipient index in queue/msg; it
			// is now rebuilt in memory on open (qindex.go).
			if q := tx.Bucket(bQueue); q != nil && q.Bucket(bMsg) != nil {
				if err := q.DeleteBucket(bMsg); err != nil {
					return err
				}
			}
		case be64(v) == 2:
			// Schema 2 had no replay runs: the bucket is created below.
		case be64(v) != schemaVersion:
			return fmt.Errorf("database schema version %d, this agentd supports %d", be64(v), schemaVersion)
		}
		if err := meta.Put(kSchema, putBE64(schemaVersion)); err != nil {
			return err
		}
		for top, subs := range map[string][][]byte{
			string(bOutbox):  {bMsg, bDue, bDead, bDeadID},
			string(bReplay):  {bID, bExp, bRuns},
			string(bRecords): nil,
			string(bKeys):    {bPub, bPriv},
			string(bQueue):   queueSubs,
		} {
			b, err := tx.CreateBucketIfNotExists([]byte(top))
			if err != nil {
				return err
			}
			for _, s := range subs {
				if _, err := b.CreateBucketIfNotExists(s); err != nil {
					return err
				}
			}
		}
		return fillDestCounts(tx)
	})
}

// Close waits for the writes and transactions in progress to finish, then
// closes the file and releases its lock. Writes waiting to join a group
// commit when Close is called fail, and so do all methods called after Close.
func (db *DB) Close() error {
	db.stopCommitter()
	err := db.closeJournal()
	if cerr := db.bolt.Close(); err == nil {
		err = cerr
	}
	return err
}

// Path returns the path of the database file.
func (db *DB) Path() string { return db.bolt.Path() }

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
// ErrNoMasterKey if the database was opened without Options.MasterKey.
func (db *DB) Keys() (*KeyStore, error) {
	if db.key.IsZero() {
		return nil, fmt.Errorf("bolt: keys: %w", ErrNoMasterKey)
	}
	return &db.keys, nil
}

// Sealer returns the master key, for services that seal small secrets of
// their own at rest (each with its own additional data, so that no sealed
// value can be opened as another). It returns ErrNoMasterKey if the
// database was opened without Options.MasterKey.
func (db *DB) Sealer() (seal.Key, error) {
	if db.key.IsZero() {
		return seal.Key{}, fmt.Errorf("bolt: sealer: %w", ErrNoMasterKey)
	}
	return db.key, nil
}

// Stats are cheap figures about the database file, for metrics.
type Stats struct {
	// FileSize is the size of the file on disk in bytes. bbolt grows the file
	// ahead of need and never shrinks it.
	FileSize int64
	// DataSize is the part of the file in use by the last commit, in bytes,
	// free pages included.
	DataSize int64
	// FreeBytes is the size of the free pages within DataSize, which later
	// writes reuse before the file grows.
	FreeBytes int
	// OpenReadTx is the number of read transactions currently open.
	OpenReadTx int
}

// Stats returns current figures about the database file. It costs a stat
// system call and a read transaction.
func (db *DB) Stats() (Stats, error) {
	var s Stats
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		s.DataSize = tx.Size()
		return nil
	})
	if err != nil {
		return s, err
	}
	fi, err := os.Stat(db.bolt.Path())
	if err != nil {
		return s, err
	}
	s.FileSize = fi.Size()
	bs := db.bolt.Stats()
	s.FreeBytes = bs.FreeAlloc
	s.OpenReadTx = bs.OpenTxN
	return s, nil
}

// update runs fn in a read-write transaction of its own.
func (db *DB) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var fnErr error
	db.wmu.Lock()
	err := db.boltUpdate(func(tx *bbolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	db.wmu.Unlock()
	if fnErr == nil {
		db.health.record(err)
	}
	return err
}

// view runs fn in a read-only transaction.
func (db *DB) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bolt.View(fn)
}

// Master-key handling.

// MasterKey says where the master key that seals private keys comes from.
// Build one with Passphrase, KeyFile or RawKey; the zero value means no
// master key. It never formats its secret: fmt prints only its kind (and a
// key file's path).
type MasterKey struct {
	kind       masterKind
	passphrase string
	path       string
	key        seal.Key
}

type masterKind int

const (
	_ masterKind = iota
	kindPassphrase
	kindKeyFile
	kindRawKey
)

// Passphrase derives the master key from a passphrase with argon2id. The first
// Open that uses it generates a random salt and stores the salt and the
// argon2id parameters (store/seal's defaults: t=3, 64 MiB, 4 lanes) in the
// meta bucket; later Opens use the stored ones. Changing the passphrase is not
// supported yet.
func Passphrase(passphrase string) MasterKey {
	return MasterKey{kind: kindPassphrase, passphrase: passphrase}
}

// KeyFile reads the master key from a key file (see seal.KeyFromFile and
// seal.GenerateKeyFile) when the database is opened. Back the file up: the
// private keys cannot be recovered without it.
func KeyFile(path string) MasterKey { return MasterKey{kind: kindKeyFile, path: path} }

// RawKey uses a master key already in hand, from a secret manager for
// example. The database treats it like a key file.
func RawKey(k seal.Key) MasterKey { return MasterKey{kind: kindRawKey, key: k} }

// String describes the key source without its secret.
func (m MasterKey) String() string {
	switch m.kind {
	case kindPassphrase:
		return "MasterKey{passphrase}"
	case kindKeyFile:
		return fmt.Sprintf("MasterKey{key file %s}", m.path)
	case kindRawKey:
		return "MasterKey{raw key}"
	}
	return "MasterKey{none}"
}

// Format prints the key source as String does, for every verb (including
// %#v and %+v), so that its secret cannot be formatted.
func (m MasterKey) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(m.String())) }

// storedKind is the master-kind value in the meta bucket.
func (m MasterKey) storedKind() string {
	if m.kind == kindPassphrase {
		return "passphrase"
	}
	return "key"
}

func (m MasterKey) describe() string {
	switch m.kind {
	case kindPassphrase:
		return "passphrase"
	case kindKeyFile:
		return "key file"
	}
	return "key"
}

// checkPlaintext is sealed into master-check when the database first gets a
// master key; opening it proves a later master key is the same one.
var (
	checkPlaintext = []byte("agentd master key check v1")
	checkAAD       = []byte("agentd/meta/master-check/v1")
)

// resolve obtains the key from its source and checks it against (or, on
// first use, records it in) the meta bucket.
func (m MasterKey) resolve(db *DB) (seal.Key, error) {
	var kind, kdfJSON, check []byte
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bMeta)
		kind = clone(meta.Get(kMasterKind))
		kdfJSON = clone(meta.Get(kMasterKDF))
		check = clone(meta.Get(kMasterCheck))
		return nil
	}); err != nil {
		return seal.Key{}, err
	}
	if check != nil && string(kind) != m.storedKind() {
		return seal.Key{}, fmt.Errorf("%w: the database's private keys are sealed under a %s, but a %s was given",
			ErrWrongMasterKey, kindName(string(kind)), m.describe())
	}

	var (
		key     seal.Key
		err     error
		newKDF  []byte
		kdf     seal.KDFParams
		haveKDF = kdfJSON != nil
	)
	switch m.kind {
	case kindPassphrase:
		if haveKDF {
			if err := json.Unmarshal(kdfJSON, &kdf); err != nil {
				return seal.Key{}, fmt.Errorf("meta: master-kdf: %w", err)
			}
		} else {
			if kdf, err = seal.NewKDFParams(); err != nil {
				return seal.Key{}, err
			}
			if newKDF, err = json.Marshal(kdf); err != nil {
				return seal.Key{}, err
			}
		}
		key, err = seal.DeriveKey(m.passphrase, kdf)
	case kindKeyFile:
		key, err = seal.KeyFromFile(m.path)
	case kindRawKey:
		key = m.key
		if key.IsZero() {
			err = errors.New("bolt: RawKey given the zero seal.Key")
		}
	}
	if err != nil {
		return seal.Key{}, err
	}

	if check != nil {
		pt, err := key.Open(check, checkAAD)
		if err != nil || string(pt) != string(checkPlaintext) {
			return seal.Key{}, fmt.Errorf("%w: the %s does not match the one this database was set up with",
				ErrWrongMasterKey, m.describe())
		}
		return key, nil
	}
	// First use: record the key's kind, its KDF parameters and a check value.
	sealed, err := key.Seal(checkPlaintext, checkAAD)
	if err != nil {
		return seal.Key{}, err
	}
	err = db.bolt.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if err := meta.Put(kMasterKind, []byte(m.storedKind())); err != nil {
			return err
		}
		if newKDF != nil {
			if err := meta.Put(kMasterKDF, newKDF); err != nil {
				return err
			}
		}
		return meta.Put(kMasterCheck, sealed)
	})
	if err != nil {
		return seal.Key{}, err
	}
	return key, nil
}

func kindName(stored string) string {
	if stored == "passphrase" {
		return "passphrase"
	}
	return "key file or raw key"
}

// Encoding helpers.

func be64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func putBE64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// Times in keys: Unix nanoseconds as a big-endian uint64 with the sign bit
// flipped, so that byte order is time order, including before 1970. Times
// outside the int64 nanosecond range (before 1678 or after 2262), and the zero
// time, are clamped to its ends.
var (
	minNanoTime = time.Unix(0, minInt64)
	maxNanoTime = time.Unix(0, maxInt64)
)

const (
	minInt64 = -1 << 63
	maxInt64 = 1<<63 - 1
)

func timeBits(t time.Time) uint64 {
	var n int64
	switch {
	case t.IsZero() || !t.After(minNanoTime):
		n = minInt64
	case !t.Before(maxNanoTime):
		n = maxInt64
	default:
		n = t.UnixNano()
	}
	return uint64(n) ^ (1 << 63)
}

func bitsTime(u uint64) time.Time {
	n := int64(u ^ (1 << 63))
	if n == minInt64 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// timeIDKey is be64(time) || id, the key of the time-ordered indexes.
func timeIDKey(t time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, timeBits(t))
	return append(k, id...)
}

// checkID rejects ids bbolt cannot use as keys.
func checkID(what, id string) error {
	if id == "" {
		return fmt.Errorf("bolt: empty %s", what)
	}
	if len(id) > bbolt.MaxKeySize-8 {
		return fmt.Errorf("bolt: %s longer than %d bytes", what, bbolt.MaxKeySize-8)
	}
	return nil
}

func checkLimit(limit int) error {
	if limit <= 0 {
		return fmt.Errorf("bolt: limit must be positive, got %d", limit)
	}
	return nil
}
