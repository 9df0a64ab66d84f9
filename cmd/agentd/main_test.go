package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/pgtest"
	"github.com/agentd/agentd/internal/testport"
)

func TestMain(m *testing.M) {
	if os.Getenv("AGENTD_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(pgtest.Main(m))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return testport.Addr(t)
}

// startAgentd runs this test binary as agentd and waits until it answers /healthz.
// waitOutput waits until o holds s: the daemon prints its banner after it
// starts listening, so /healthz can answer before the banner is out.
func waitOutput(t *testing.T, o *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(o.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("agentd did not print %q:\n%s", s, o)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startAgentd(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "AGENTD_TEST_RUN_MAIN=1")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, &stdout, &stderr
}

func waitHealthy(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("agentd did not become healthy")
}

var didLine = regexp.MustCompile(`DID:\s+(did:peer:2\.\S+)`)

func TestSignalStopsCleanlyAndDIDPersists(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cmd, stdout, stderr := startAgentd(t, "--data-dir", dir, "--http-addr", addr, "--log-level", "debug")
	waitHealthy(t, addr)
	waitOutput(t, stdout, "█")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agentd exited with %v after SIGTERM\n%s", err, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("agentd did not stop after SIGTERM")
	}
	if !strings.Contains(stderr.String(), "stopped") {
		t.Fatalf("no clean-stop log line:\n%s", stderr)
	}
	m := didLine.FindStringSubmatch(stdout.String())
	if m == nil || !strings.Contains(stdout.String(), "?_oob=") || !strings.Contains(stdout.String(), "█") {
		t.Fatalf("banner lacks the DID, the invitation URL or its QR code:\n%s", stdout)
	}
	for _, f := range []string{"agentd.db", "admin.token", "master.key"} {
		info, err := os.Stat(filepath.Join(dir, f))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want a 0600 file", f, err, info.Mode().Perm())
		}
	}

	// Secrets never reach the output.
	for _, f := range []string{"admin.token", "master.key"} {
		secret, _ := os.ReadFile(filepath.Join(dir, f))
		s := strings.TrimSpace(string(secret))
		if len(s) < 16 || strings.Contains(stdout.String()+stderr.String(), s) {
			t.Fatalf("%s content appears in agentd's output (or is empty)", f)
		}
	}

	// The store was closed cleanly: a second start opens it and keeps the DID.
	cmd2, stdout2, _ := startAgentd(t, "--data-dir", dir, "--http-addr", addr)
	waitHealthy(t, addr)
	waitOutput(t, stdout2, "DID:")
	cmd2.Process.Signal(syscall.SIGINT)
	cmd2.Wait()
	m2 := didLine.FindStringSubmatch(stdout2.String())
	if m2 == nil || m2[1] != m[1] {
		t.Fatalf("DID changed across restarts")
	}
}

func TestBadConfigurationExitsWithReason(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--http-addr", "not-an-address")
	cmd.Env = append(os.Environ(), "AGENTD_TEST_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "http.addr") {
		t.Fatalf("exit %v, output %q; want exit 2 naming http.addr", err, out)
	}
}

func TestSecondInstanceOnSameDataDirFails(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	startAgentd(t, "--data-dir", dir, "--http-addr", addr)
	waitHealthy(t, addr)
	cmd := exec.Command(os.Args[0], "--data-dir", dir, "--http-addr", freeAddr(t))
	cmd.Env = append(os.Environ(), "AGENTD_TEST_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "locked") {
		t.Fatalf("second instance: %v %q; want a failure saying the database is locked", err, out)
	}
}
