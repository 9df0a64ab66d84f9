package bolt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/agent/keys"
	"github.com/agentd/agentd/store/seal"
	"github.com/agentd/agentd/store/storetest"
)

// testKey is a fixed master key, so tests need not run argon2id.
func testKey(t testing.TB) seal.Key {
	t.Helper()
	k, err := seal.NewKey(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// openTest opens a database in a fresh directory and closes it at cleanup.
func openTest(t testing.TB, opts Options) *DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "agentd.db"), opts)
}

func openAt(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustKeys(t testing.TB, db *DB) *KeyStore {
	t.Helper()
	ks, err := db.Keys()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// The conformance suite, with real fsync and group commit, as in production.
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
			return mustKeys(t, openTest(t, Options{MasterKey: RawKey(testKey(t))}))
		})
	})
	t.Run("Commit", func(t *testing.T) {
		storetest.TestCommit(t, func(t *testing.T) storetest.Backend { return backendOf(openTest(t, Options{})) })
	})
}

func backendOf(db *DB) storetest.Backend {
	return storetest.Backend{Committer: db, Records: db.Records(), Outbox: db.Outbox(), Queue: db.Queue(), Replay: db.ReplayCache()}
}

// The suite again with every write in its own transaction.
func TestConformanceSoloCommit(t *testing.T) {
	open := func(t *testing.T) *DB {
		db := openTest(t, Options{MasterKey: RawKey(testKey(t)), NoSync: true})
		db.mode = writeSolo
		return db
	}
	t.Run("Outbox", func(t *testing.T) {
		storetest.TestOutbox(t, func(t *testing.T) agent.OutboxStore { return open(t).Outbox() })
	})
	t.Run("ReplayCache", func(t *testing.T) {
		storetest.TestReplayCache(t, func(t *testing.T) agent.ReplayCache { return open(t).ReplayCache() })
	})
	t.Run("Records", func(t *testing.T) {
		storetest.TestRecords(t, func(t *testing.T) agent.Records { return open(t).Records() })
	})
	t.Run("KeyStore", func(t *testing.T) {
		storetest.TestKeyStore(t, func(t *testing.T) keys.Store { return mustKeys(t, open(t)) })
	})
	t.Run("Commit", func(t *testing.T) {
		storetest.TestCommit(t, func(t *testing.T) storetest.Backend { return backendOf(open(t)) })
	})
}

func TestFileMode(t *testing.T) {
	db := openTest(t, Options{})
	fi, err := os.Stat(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("database file mode %o, want 600", perm)
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "agentd.db")
	keyFile := filepath.Join(dir, "master.key")
	if _, err := seal.GenerateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	opts := Options{MasterKey: KeyFile(keyFile)}
	base := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)

	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ob := db.Outbox()
	for i := range 5 {
		m := &agent.OutboundMessage{ID: fmt.Sprintf("m%d", i), Endpoint: "https://x", Payload: []byte{byte(i)}, NextAttempt: base.Add(time.Duration(i) * time.Second)}
		if err := ob.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := ob.Kill(ctx, &agent.OutboundMessage{ID: "m4", LastError: "boom", DeadAt: base}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ReplayCache().Remember(ctx, "seen-1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.Records().Put(ctx, "conn", "c1", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	key, _ := keys.Generate(keys.X25519, "did:example:a#x")
	if err := mustKeys(t, db).Put(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Records().Put(ctx, "conn", "c2", nil); err == nil {
		t.Error("Put after Close succeeded")
	}

	db = openAt(t, path, opts)
	ob = db.Outbox()
	if p, d, err := ob.Depth(ctx); err != nil || p != 4 || d != 1 {
		t.Errorf("Depth after reopen = %d, %d, %v; want 4, 1", p, d, err)
	}
	due, err := ob.Due(ctx, base.Add(time.Hour), 10)
	if err != nil || len(due) != 4 || due[3].ID != "m3" || !bytes.Equal(due[3].Payload, []byte{3}) {
		t.Errorf("Due after reopen = %v, %v", due, err)
	}
	dead, err := ob.Dead(ctx, "", 10)
	if err != nil || len(dead) != 1 || dead[0].ID != "m4" || dead[0].LastError != "boom" || !dead[0].DeadAt.Equal(base) {
		t.Errorf("Dead after reopen = %+v, %v", dead, err)
	}
	if seen, err := db.ReplayCache().Remember(ctx, "seen-1", time.Now().Add(time.Hour)); err != nil || !seen {
		t.Errorf("replay cache forgot across reopen: %v, %v", seen, err)
	}
	if v, err := db.Records().Get(ctx, "conn", "c1"); err != nil || string(v) != `{"a":1}` {
		t.Errorf("record after reopen = %q, %v", v, err)
	}
	got, err := mustKeys(t, db).Get(ctx, key.ID)
	if err != nil || !bytes.Equal(got.D, key.D) {
		t.Errorf("key after reopen: %v", err)
	}
}

// allCurves generates one key on each curve.
func allCurves(t *testing.T) []keys.PrivateKey {
	var out []keys.PrivateKey
	for i, c := range []keys.Curve{keys.Ed25519, keys.X25519, keys.P256, keys.P384, keys.P521, keys.Secp256k1} {
		k, err := keys.Generate(c, fmt.Sprintf("did:example:alice#key-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

func TestKeysEncryptedAtRest(t *testing.T) {
	ctx := context.Background()
	for _, mk := range []struct {
		name string
		key  MasterKey
	}{
		{"passphrase", Passphrase("correct horse battery staple")},
		{"raw", RawKey(testKey(t))},
	} {
		t.Run(mk.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agentd.db")
			db, err := Open(path, Options{MasterKey: mk.key})
			if err != nil {
				t.Fatal(err)
			}
			ks := mustKeys(t, db)
			all := allCurves(t)
			for _, k := range all {
				if err := ks.Put(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			// Exercise page reuse and a read path too, then close.
			for _, k := range all {
				if _, err := ks.Get(ctx, k.ID); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range all {
				for enc, secret := range map[string][]byte{
					"raw":       k.D,
					"base64url": []byte(base64.RawURLEncoding.EncodeToString(k.D)),
					"base64":    []byte(base64.StdEncoding.EncodeToString(k.D)),
					"hex":       []byte(hex.EncodeToString(k.D)),
				} {
					if bytes.Contains(raw, secret) {
						t.Errorf("%s private key found in the database file (%s)", k.Curve, enc)
					}
				}
				// Sanity check of the scan: the public key is stored in the clear.
				if x := k.PublicKey.JWK().X; !bytes.Contains(raw, []byte(x)) {
					t.Errorf("%s public key x not found in the file; is the scan looking at the right bytes?", k.Curve)
				}
			}
		})
	}
}

func TestWrongPassphrase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "agentd.db")
	const good, bad = "Tr0ub4dor&3-the-right-one", "Tr0ub4dor&3-WRONG-one"
	db, err := Open(path, Options{MasterKey: Passphrase(good)})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := keys.Generate(keys.Ed25519, "did:example:a#1")
	if err := mustKeys(t, db).Put(ctx, key); err != nil {
		t.Fatal(err)
	}
	db.Close()

	start := time.Now()
	_, err = Open(path, Options{MasterKey: Passphrase(bad)})
	if !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Open with a wrong passphrase: err = %v, want ErrWrongMasterKey", err)
	}
	t.Logf("wrong passphrase detected in %v: %v", time.Since(start).Round(time.Millisecond), err)
	if msg := err.Error(); strings.Contains(msg, bad) || strings.Contains(msg, good) || strings.Contains(msg, "Tr0ub4dor") {
		t.Fatalf("error message contains a passphrase: %q", msg)
	}
	if !strings.Contains(err.Error(), "passphrase does not match") {
		t.Errorf("error is not clear: %q", err)
	}

	// A key file cannot open a passphrase database; the error says why.
	kf := filepath.Join(dir, "k")
	if _, err := seal.GenerateKeyFile(kf); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{MasterKey: KeyFile(kf)})
	if !errors.Is(err, ErrWrongMasterKey) || !strings.Contains(err.Error(), "sealed under a passphrase") {
		t.Fatalf("Open with a key file: err = %v", err)
	}

	// The lock is released after a failed Open, and the right passphrase works.
	db = openAt(t, path, Options{MasterKey: Passphrase(good), LockTimeout: 100 * time.Millisecond})
	got, err := mustKeys(t, db).Get(ctx, key.ID)
	if err != nil || !bytes.Equal(got.D, key.D) {
		t.Fatalf("Get with the right passphrase: %v", err)
	}
}

func TestWrongKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "agentd.db")
	kf1, kf2 := filepath.Join(dir, "one.key"), filepath.Join(dir, "two.key")
	for _, f := range []string{kf1, kf2} {
		if created, err := seal.GenerateKeyFile(f); err != nil || !created {
			t.Fatalf("GenerateKeyFile: %v, %v", created, err)
		}
	}
	db, err := Open(path, Options{MasterKey: KeyFile(kf1)})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := keys.Generate(keys.P256, "did:example:a#1")
	if err := mustKeys(t, db).Put(ctx, key); err != nil {
		t.Fatal(err)
	}
	db.Close()

	_, err = Open(path, Options{MasterKey: KeyFile(kf2)})
	if !errors.Is(err, ErrWrongMasterKey) || !strings.Contains(err.Error(), "key file does not match") {
		t.Fatalf("Open with the wrong key file: err = %v", err)
	}
	for _, f := range []string{kf1, kf2} {
		content, _ := os.ReadFile(f)
		if s := strings.TrimSpace(string(content)); strings.Contains(err.Error(), s) || strings.Contains(err.Error(), s[:16]) {
			t.Fatalf("error message contains key file contents: %q", err)
		}
	}
	_, err = Open(path, Options{MasterKey: Passphrase("guess")})
	if !errors.Is(err, ErrWrongMasterKey) || strings.Contains(err.Error(), "guess") {
		t.Fatalf("Open with a passphrase: err = %v", err)
	}

	// A malformed key file fails without quoting it.
	bad := filepath.Join(dir, "bad.key")
	secretish := strings.Repeat("g", 64)
	if err := os.WriteFile(bad, []byte(secretish), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{MasterKey: KeyFile(bad)})
	if err == nil || strings.Contains(err.Error(), "gg") {
		t.Fatalf("Open with a malformed key file: err = %v", err)
	}

	db = openAt(t, path, Options{MasterKey: KeyFile(kf1)})
	if got, err := mustKeys(t, db).Get(ctx, key.ID); err != nil || !bytes.Equal(got.D, key.D) {
		t.Fatalf("Get with the right key file: %v", err)
	}
}

func TestNoMasterKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentd.db")
	db := openAt(t, path, Options{MasterKey: RawKey(testKey(t))})
	key, _ := keys.Generate(keys.Ed25519, "did:example:a#1")
	if err := mustKeys(t, db).Put(ctx, key); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Without a master key the rest of the database still works.
	db = openAt(t, path, Options{})
	if _, err := db.Keys(); !errors.Is(err, ErrNoMasterKey) {
		t.Fatalf("Keys() err = %v, want ErrNoMasterKey", err)
	}
	if err := db.Records().Put(ctx, "k", "i", []byte("v")); err != nil {
		t.Fatal(err)
	}
}

func TestSecretsNotFormatted(t *testing.T) {
	const pass = "hunter2-very-secret"
	opts := Options{MasterKey: Passphrase(pass)}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		if s := fmt.Sprintf(f, opts); strings.Contains(s, "hunter2") || strings.Contains(s, hex.EncodeToString([]byte("hunter2"))) {
			t.Errorf("Sprintf(%q, opts) = %s", f, s)
		}
		if s := fmt.Sprintf(f, opts.MasterKey); strings.Contains(s, "hunter2") {
			t.Errorf("Sprintf(%q, MasterKey) = %s", f, s)
		}
	}
	rk := RawKey(testKey(t))
	for _, f := range []string{"%v", "%+v", "%#v", "%x"} {
		if s := fmt.Sprintf(f, rk); strings.Contains(s, "0707") {
			t.Errorf("Sprintf(%q, RawKey) = %s", f, s)
		}
	}
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentd.db")
	db := openAt(t, path, Options{})

	start := time.Now()
	db2, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	elapsed := time.Since(start)
	if err == nil {
		db2.Close()
		t.Fatal("second Open of an open database succeeded")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "database is locked by another process") {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
	if elapsed > 2*time.Second {
		t.Fatalf("second Open took %v to fail", elapsed)
	}
	t.Logf("second Open failed after %v: %v", elapsed.Round(time.Millisecond), err)

	// The default timeout is bounded too.
	start = time.Now()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open with default timeout: %v", err)
	}
	if elapsed := time.Since(start); elapsed > DefaultLockTimeout+time.Second {
		t.Fatalf("second Open with the default timeout took %v", elapsed)
	}

	db.Close()
	openAt(t, path, Options{LockTimeout: 200 * time.Millisecond})
}

// TestLockedAcrossProcesses runs the second Open in a child process, as a
// second daemon would.
func TestLockedAcrossProcesses(t *testing.T) {
	if path := os.Getenv("AGENTD_BOLT_LOCK_CHILD"); path != "" {
		_, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
		fmt.Printf("child: %v\n", err)
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "agentd.db")
	openAt(t, path, Options{})
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockedAcrossProcesses$")
	cmd.Env = append(os.Environ(), "AGENTD_BOLT_LOCK_CHILD="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "child: bolt: open "+path+": database is locked by another process") {
		t.Fatalf("child output: %s", out)
	}
}

func TestKeyStoreChecks(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{MasterKey: RawKey(testKey(t))})
	ks := mustKeys(t, db)
	k1, _ := keys.Generate(keys.Ed25519, "did:example:a#1")
	k2, _ := keys.Generate(keys.Ed25519, "did:example:a#1")
	if err := ks.Put(ctx, k1); err != nil {
		t.Fatal(err)
	}
	if err := ks.Put(ctx, k2); !errors.Is(err, ErrExists) {
		t.Fatalf("Put of another key under a used kid: err = %v, want ErrExists", err)
	}
	if got, _ := ks.Get(ctx, k1.ID); !bytes.Equal(got.D, k1.D) {
		t.Fatal("the first key was overwritten")
	}
	mismatched := k2
	mismatched.ID = "did:example:a#2"
	mismatched.Raw = k1.Raw
	if err := ks.Put(ctx, mismatched); err == nil {
		t.Fatal("Put of a key whose public half does not match succeeded")
	}
	if err := ks.Put(ctx, keys.PrivateKey{}); err == nil {
		t.Fatal("Put of the zero key succeeded")
	}
}

// TestSealedKeysBoundToKid swaps two sealed secrets in the file; each must
// then fail to open instead of yielding the other key.
func TestSealedKeysBoundToKid(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{MasterKey: RawKey(testKey(t))})
	ks := mustKeys(t, db)
	a, _ := keys.Generate(keys.X25519, "did:example:a#1")
	b, _ := keys.Generate(keys.X25519, "did:example:a#2")
	for _, k := range []keys.PrivateKey{a, b} {
		if err := ks.Put(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		priv := tx.Bucket(bKeys).Bucket(bPriv)
		va, vb := clone(priv.Get([]byte(a.ID))), clone(priv.Get([]byte(b.ID)))
		if err := priv.Put([]byte(a.ID), vb); err != nil {
			return err
		}
		return priv.Put([]byte(b.ID), va)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []keys.PrivateKey{a, b} {
		if _, err := ks.Get(ctx, k.ID); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("Get(%s) after swapping sealed secrets: err = %v, want seal.ErrOpen", k.ID, err)
		}
	}
}

func TestRememberExpired(t *testing.T) {
	ctx := context.Background()
	rc := openTest(t, Options{}).ReplayCache()
	past := time.Now().Add(-time.Minute)
	for i, want := range []bool{false, false} {
		if seen, err := rc.Remember(ctx, "old", past); err != nil || seen != want {
			t.Fatalf("Remember #%d of an expired id = %v, %v; want %v", i, seen, err, want)
		}
	}
	if seen, _ := rc.Remember(ctx, "old", time.Now().Add(time.Hour)); seen {
		t.Fatal("an expired id counted as a replay")
	}
	if seen, _ := rc.Remember(ctx, "old", time.Now().Add(time.Hour)); !seen {
		t.Fatal("re-remembered id not seen")
	}
	// The earlier expiries left no index entries behind: nothing to sweep now.
	if n, err := rc.Sweep(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; want 0", n, err)
	}
}

func TestSweepChunks(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{NoSync: true})
	rc := db.ReplayCache()
	exp := time.Now().Add(time.Hour)
	const n = sweepChunk*2 + 17
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		top := tx.Bucket(bReplay)
		for i := range n {
			id := fmt.Sprintf("id-%06d", i)
			if err := top.Bucket(bID).Put([]byte(id), putBE64(timeBits(exp))); err != nil {
				return err
			}
			if err := top.Bucket(bExp).Put(timeIDKey(exp, id), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rc.Sweep(ctx, exp.Add(time.Nanosecond)); err != nil || got != n {
		t.Fatalf("Sweep = %d, %v; want %d", got, err, n)
	}
}

func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2030, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)),
		time.Date(2030, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := timeIDKey(times[i-1], "z"), timeIDKey(times[i], "a")
		if i == 1 {
			// Both clamp to the lowest key; the id decides.
			a, b = timeIDKey(times[0], "a"), timeIDKey(times[1], "b")
		}
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("key(%v) >= key(%v)", times[i-1], times[i])
		}
	}
	if got := bitsTime(timeBits(time.Time{})); !got.IsZero() {
		t.Errorf("zero time round-trips to %v", got)
	}
	now := time.Now()
	if got := bitsTime(timeBits(now)); !got.Equal(now) {
		t.Errorf("%v round-trips to %v", now, got)
	}
}

func TestStats(t *testing.T) {
	db := openTest(t, Options{})
	s, err := db.Stats()
	if err != nil || s.FileSize <= 0 {
		t.Fatalf("Stats = %+v, %v", s, err)
	}
	fi, _ := os.Stat(db.Path())
	if s.FileSize != fi.Size() || s.DataSize <= 0 || s.DataSize > s.FileSize {
		t.Errorf("Stats = %+v, file is %d bytes", s, fi.Size())
	}
}

func TestContextCancelled(t *testing.T) {
	db := openTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := db.Outbox().Enqueue(ctx, &agent.OutboundMessage{ID: "x"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Enqueue with a cancelled context: %v", err)
	}
	if p, _, _ := db.Outbox().Depth(context.Background()); p != 0 {
		t.Fatal("Enqueue with a cancelled context stored the message")
	}
}

// TestGroupCommitFailure commits a group in which some writes fail: the
// others must take effect exactly once, and each failing write must get its
// own error.
func TestGroupCommitFailure(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	ob, rc := db.Outbox(), db.ReplayCache()
	if err := ob.Enqueue(ctx, &agent.OutboundMessage{ID: "taken"}); err != nil {
		t.Fatal(err)
	}
	// A group as the committer would gather it, committed directly.
	var group []*writeCall
	enqueue := func(id string) *writeCall {
		v := fmt.Sprintf(`{"id":%q}`, id)
		return &writeCall{err: make(chan error, 1), fn: func(tx *bbolt.Tx) error {
			ob := outboxOf(tx)
			if ob.msg.Get([]byte(id)) != nil {
				return fmt.Errorf("%q: %w", id, ErrExists)
			}
			if err := ob.msg.Put([]byte(id), []byte(v)); err != nil {
				return err
			}
			if err := ob.due.Put(timeIDKey(time.Time{}, id), nil); err != nil {
				return err
			}
			return ob.add(kNPending, 1)
		}}
	}
	runs := 0
	counted := &writeCall{err: make(chan error, 1), fn: func(tx *bbolt.Tx) error {
		runs++
		return nil
	}}
	panics := &writeCall{err: make(chan error, 1), fn: func(*bbolt.Tx) error { panic("boom") }}
	group = append(group, enqueue("a"), enqueue("taken"), counted, enqueue("b"), panics, enqueue("a"), enqueue("c"))
	db.commitGroup(group)

	wantErr := []string{"", "already exists", "", "", "panic in write: boom", "already exists", ""}
	for i, c := range group {
		err := <-c.err
		switch {
		case wantErr[i] == "" && err != nil:
			t.Errorf("write %d: %v", i, err)
		case wantErr[i] != "" && (err == nil || !strings.Contains(err.Error(), wantErr[i])):
			t.Errorf("write %d: err = %v, want %q", i, err, wantErr[i])
		}
	}
	// Attempts: the first stops at "taken" before reaching it, then it runs
	// in the attempts ended by the panic, by the second "a", and the last.
	if runs != 3 {
		t.Errorf("a write ran %d times, want 3 (once per attempt that reached it)", runs)
	}
	if p, _, _ := ob.Depth(ctx); p != 4 {
		t.Errorf("Depth = %d, want 4 (taken, a, b, c): a retried write took effect twice?", p)
	}
	due, _ := ob.Due(ctx, time.Now(), 10)
	if got := strings.Join(ids(due), " "); got != "a b c taken" {
		t.Errorf("stored %q", got)
	}

	// Concurrent traffic through the committer, with failures mixed in.
	var wg sync.WaitGroup
	var fresh, dupErrs atomic.Int32
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch {
			case i%10 == 0:
				if err := ob.Enqueue(ctx, &agent.OutboundMessage{ID: "taken"}); errors.Is(err, ErrExists) {
					dupErrs.Add(1)
				}
			case i%2 == 0:
				if err := ob.Enqueue(ctx, &agent.OutboundMessage{ID: fmt.Sprintf("m%d", i)}); err != nil {
					t.Error(err)
				}
			default:
				seen, err := rc.Remember(ctx, "shared", time.Now().Add(time.Hour))
				if err != nil {
					t.Error(err)
				} else if !seen {
					fresh.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if dupErrs.Load() != 6 || fresh.Load() != 1 {
		t.Fatalf("%d duplicate errors (want 6), %d fresh Remembers (want 1)", dupErrs.Load(), fresh.Load())
	}
	if p, _, _ := ob.Depth(ctx); p != 4+24 {
		t.Fatalf("Depth = %d, want 28", p)
	}
}

func ids(ms []*agent.OutboundMessage) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func TestWriteAfterClose(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "agentd.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				err := db.Records().Put(context.Background(), "k", fmt.Sprintf("%d-%d", w, i), nil)
				if err != nil {
					if !errors.Is(err, bberrors.ErrDatabaseNotOpen) {
						t.Errorf("write during Close: %v", err)
					}
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait() // every writer saw an error and returned: none hangs
	close(stop)
}

// TestCrashDurability kills a writer with SIGKILL and checks that every
// message it acknowledged is in the database afterwards. The child re-runs
// this test binary; it prints each id after Enqueue returns for it.
//
// SIGKILL loses the process, not the kernel's page cache, so this proves that
// an acknowledgement comes after the commit and that bbolt recovers a file
// abandoned mid-transaction; that acknowledged writes also survive power loss
// rests on the fsync before the acknowledgement.
func TestCrashDurability(t *testing.T) {
	if path := os.Getenv("AGENTD_BOLT_CRASH_CHILD"); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "agentd.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$", "-test.v=false")
	cmd.Env = append(os.Environ(), "AGENTD_BOLT_CRASH_CHILD="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		id, ok := strings.CutPrefix(line, "ack ")
		if !ok {
			continue
		}
		acked[id] = true
		if len(acked) == 200 && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	// Acks already in the pipe when the child died were acknowledged too.
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited after %d acks without being killed: %v", len(acked), err)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}

	db := openAt(t, path, Options{})
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		return first
	}); err != nil {
		t.Fatalf("database inconsistent after the crash: %v", err)
	}
	stored, err := db.Outbox().Due(context.Background(), time.Now().Add(time.Hour), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, m := range stored {
		have[m.ID] = true
		if !bytes.Equal(m.Payload, []byte("payload "+m.ID)) {
			t.Errorf("message %s has payload %q", m.ID, m.Payload)
		}
	}
	var lost []string
	for id := range acked {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged messages lost after SIGKILL: %v", len(lost), len(acked), lost)
	}
	pending, _, err := db.Outbox().Depth(context.Background())
	if err != nil || pending != len(stored) {
		t.Fatalf("Depth = %d, %v after the crash; %d messages stored", pending, err, len(stored))
	}
	t.Logf("%d acknowledged before SIGKILL, %d stored (in-flight writes may have committed unacknowledged)", len(acked), len(stored))
}

// crashChild enqueues until it is killed: four writers, so that group commit
// is exercised, each printing "ack <id>" once Enqueue has returned.
func crashChild(path string) {
	db, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%06d", w, i)
				m := &agent.OutboundMessage{ID: id, Endpoint: "https://bob.example", Payload: []byte("payload " + id)}
				if err := db.Outbox().Enqueue(context.Background(), m); err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %s\n", id)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// BenchmarkOutboxEnqueueParallel measures Enqueue from many goroutines with
// real fsync. Each op is one durable Enqueue of a 1 KiB payload. Modes:
// "group" is the store as shipped; "solo" commits each Enqueue alone;
// "boltbatch" is bbolt's timer-based DB.Batch (10ms default delay), for
// comparison.
func BenchmarkOutboxEnqueueParallel(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1024)
	modes := []struct {
		name string
		mode writeMode
	}{{"group", writeGroup}, {"solo", writeSolo}, {"boltbatch", writeBoltBatch}}
	for _, m := range modes {
		for _, par := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", m.name, par*runtime.GOMAXPROCS(0)), func(b *testing.B) {
				db := openTest(b, Options{})
				db.mode = m.mode
				ob := db.Outbox()
				var n atomic.Int64
				b.SetParallelism(par)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					for pb.Next() {
						m := &agent.OutboundMessage{ID: fmt.Sprintf("m%09d", n.Add(1)), Endpoint: "https://bob.example", Payload: payload}
						if err := ob.Enqueue(ctx, m); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "enqueues/s")
			})
		}
	}
}

// BenchmarkOutboxEnqueueSerial is the latency of one durable Enqueue with no
// other writers.
func BenchmarkOutboxEnqueueSerial(b *testing.B) {
	for _, m := range []struct {
		name string
		mode writeMode
	}{{"group", writeGroup}, {"solo", writeSolo}, {"boltbatch", writeBoltBatch}} {
		b.Run(m.name, func(b *testing.B) {
			db := openTest(b, Options{})
			db.mode = m.mode
			ob := db.Outbox()
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				if err := ob.Enqueue(ctx, &agent.OutboundMessage{ID: fmt.Sprintf("m%09d", i), Payload: []byte("x")}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCommitStatsCountGroupsAndWrites: every write a committed group
// carried is counted once, a refused unit of work too (it shared the
// transaction, writing nothing).
func TestCommitStatsCountGroupsAndWrites(t *testing.T) {
	db := openTest(t, Options{NoSync: true})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := agent.NewWork(nil)
			w.Put("kind", fmt.Sprint(i), []byte("v"))
			if err := db.Commit(ctx, w); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	groups, writes := db.CommitStats()
	if writes != 20 || groups < 1 || groups > 20 {
		t.Fatalf("%d groups, %d writes; want 20 writes in 1 to 20 groups", groups, writes)
	}
	w := agent.NewWork(nil)
	w.Remember("once", time.Now().Add(time.Hour))
	db.Commit(ctx, w)
	w = agent.NewWork(nil)
	w.Remember("once", time.Now().Add(time.Hour))
	if err := db.Commit(ctx, w); !errors.Is(err, agent.ErrReplay) {
		t.Fatalf("replayed: %v", err)
	}
	if _, writes := db.CommitStats(); writes != 22 {
		t.Fatalf("%d writes counted after one more and one refused; want 22", writes)
	}
}
