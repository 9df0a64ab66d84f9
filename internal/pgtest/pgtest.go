// Package pgtest runs a private PostgreSQL server for a test package: one
// server per test binary, started by Main from TestMain on a random port of
// 127.0.0.1 with its data in a temporary directory, and a fresh, empty
// database per test from Start.
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		url := pgtest.Start(t) // postgres://postgres@127.0.0.1:PORT/t_N?sslmode=disable
//		...
//	}
//
// The server binaries come from Debian's postgresql package
// (/usr/lib/postgresql/VERSION/bin, the newest version found), which
// `make deps-apt` installs. When they are missing, Start fails the test with
// that advice: a test that needs PostgreSQL never skips.
//
// PostgreSQL refuses to run as root. When the tests run as root, the server
// runs as the unprivileged user nobody (the data directory is handed to it);
// otherwise as the current user. The server runs with fsync off: it is for
// tests, and its data is thrown away; benchmarks that measure durable
// commits set AGENTD_PGTEST_FSYNC=on in the environment. It is stopped and its directory removed
// when Main returns, and it is told to stop (parent-death signal) if the test
// binary dies first.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Advice is what a test is told when the PostgreSQL server binaries are not
// installed.
const Advice = "PostgreSQL is not installed: run `make deps-apt` as root (it installs Debian's postgresql package), or `apt-get install postgresql`"

var (
	mu      sync.Mutex
	srv     *server
	srvErr  error
	started bool
	dbSeq   atomic.Int64
)

// server is a running postgres process.
type server struct {
	dir  string // temporary directory: data/ and the log
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  string

	bin, data string // for a restart
	cred      *syscall.Credential
}

// Main starts the package's server, runs the tests and stops the server;
// call it from TestMain and pass its result to os.Exit. If the server cannot
// start, the tests still run, and every Start fails with the reason.
func Main(m *testing.M) int {
	mu.Lock()
	started = true
	srv, srvErr = startServer()
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if srv != nil {
		srv.stop()
		srv = nil
	}
	return code
}

// Start creates a fresh, empty database on the package's server and returns
// its URL; the database is dropped when the test ends. It fails the test if
// the server is not running (PostgreSQL not installed, or Main not called
// from TestMain).
func Start(t testing.TB) string {
	t.Helper()
	mu.Lock()
	s, err, ok := srv, srvErr, started
	mu.Unlock()
	switch {
	case !ok:
		t.Fatal("pgtest: the test package must run the server from TestMain: func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }")
	case err != nil:
		t.Fatalf("pgtest: %v", err)
	}
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return s.url(name)
}

// URL returns the URL of database name on the package's server (for a test
// that wants to reach the maintenance database "postgres"), or "" if the
// server is not running.
func URL(name string) string {
	mu.Lock()
	defer mu.Unlock()
	if srv == nil {
		return ""
	}
	return srv.url(name)
}

func (s *server) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

func (s *server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// BinDir finds the PostgreSQL server binaries: the newest
// /usr/lib/postgresql/VERSION/bin with initdb and postgres, else the
// directory of an initdb on $PATH. The error carries Advice.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New(Advice)
}

func pgVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// runAs is the credential the server runs under: nobody when we are root,
// nil (ourselves) otherwise.
func runAs() (*syscall.Credential, int, int, error) {
	if os.Geteuid() != 0 {
		return nil, -1, -1, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, 0, 0, fmt.Errorf("running as root, and there is no unprivileged user nobody to run PostgreSQL as: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, 0, 0, fmt.Errorf("user nobody has a non-numeric uid or gid")
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, uid, gid, nil
}

func startServer() (*server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, uid, gid, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "agentd-pgtest-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	var lastErr error
	for range 3 { // the free port may be taken between choosing and binding it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := launch(bin, dir, data, cred, port)
		if err == nil {
			ok = true
			s.bin, s.data, s.cred = bin, data, cred
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func launch(bin, dir, data string, cred *syscall.Credential, port int) (*server, error) {
	logPath := filepath.Join(dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fsync := "off"
	if os.Getenv("AGENTD_PGTEST_FSYNC") == "on" {
		fsync = "on"
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "fsync="+fsync, "-c", "full_page_writes="+fsync, "-c", "max_connections=200",
		"-c", "shared_buffers=64MB")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// SIGINT is PostgreSQL's fast shutdown: the server goes when the test
	// binary does, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	s := &server{dir: dir, port: port, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := s.exec(ctx, "SELECT 1")
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("postgres exited at start-up:\n%s", s.tail())
		default:
		}
		if time.Now().After(deadline) {
			s.halt()
			return nil, fmt.Errorf("postgres did not accept connections on 127.0.0.1:%d within 30s: %v\n%s", port, err, s.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail returns the end of the server log.
func (s *server) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return strings.TrimSpace(string(b))
}

// halt shuts the server process down: fast shutdown, then SIGKILL after
// 10s.
func (s *server) halt() {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// stop halts the server and removes its directory.
func (s *server) stop() {
	s.halt()
	os.RemoveAll(s.dir)
}

// Server is a private PostgreSQL server of one test, for the tests that stop
// and restart it (the package's shared server from Main must stay up).
type Server struct {
	t  testing.TB
	mu sync.Mutex
	s  *server
}

// NewServer starts a server of the test's own (a second or so: initdb, then
// the start), stopped and removed when the test ends. Like Start, it fails
// the test with Advice when PostgreSQL is not installed.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s, err := startServer()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	srv := &Server{t: t, s: s}
	t.Cleanup(func() {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		select {
		case <-srv.s.done:
			os.RemoveAll(srv.s.dir)
		default:
			srv.s.stop()
		}
	})
	return srv
}

// URL returns the URL of the maintenance database "postgres" on the
// server, which the tests may use as theirs.
func (p *Server) URL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.s.url("postgres")
}

// Stop shuts the server down (fast shutdown: open connections are closed);
// its data stay for Restart.
func (p *Server) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.s.halt()
}

// Restart starts the stopped server again, on the same port with the same
// data.
func (p *Server) Restart() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.s
	s, err := launch(old.bin, old.dir, old.data, old.cred, old.port)
	if err != nil {
		p.t.Fatalf("pgtest: restarting: %v", err)
	}
	s.bin, s.data, s.cred = old.bin, old.data, old.cred
	p.s = s
}

// Serve starts a private server outside a test, for benchmarks and tools
// (internal/pgtest/pgserve): it creates the databases named and returns
// their URLs, and a function that stops the server and removes its data.
func Serve(databases ...string) (urls []string, stop func(), err error) {
	s, err := startServer()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, db := range databases {
		if err := s.exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
			s.stop()
			return nil, nil, fmt.Errorf("creating database %s: %w", db, err)
		}
		urls = append(urls, s.url(db))
	}
	return urls, s.stop, nil
}
