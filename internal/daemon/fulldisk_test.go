package daemon_test

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
)

// TestFullDiskIsVisible puts the data directory on a small tmpfs, fills it,
// and checks what an operator sees: forwards are refused with a 5xx (never a
// 202 for something not stored), the log says why at error level ("no space
// left on device"), /healthz answers 503 with the reason and the metrics
// count the failures; once room is made, /healthz is healthy again without
// anything else writing, and forwards are accepted.
func TestFullDiskIsVisible(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("this test fills a 4 MiB tmpfs, and mounting one needs root (make test runs as root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	cfg := testConfig(t, filepath.Join(dir, "data"))
	cfg.Mediator.Enabled = true
	cfg.Admin.MetricsPublic = true
	r, logs := startLogged(t, cfg)
	w := newGoWallet(t, r.base)
	inbox := "did:example:fulldisk-inbox"
	w.setup(t, inbox)
	if code, _, body := post(t, r.base+"/didcomm", agent.MediaTypeEncrypted, w.forward(t, inbox, "before", 2048)); code != http.StatusAccepted {
		t.Fatalf("forward before the disk is full: %d %s", code, body)
	}

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{1}, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	f.Close()

	refused := 0
	for i := 0; i < 400 && refused == 0; i++ {
		code, _, body := post(t, r.base+"/didcomm", agent.MediaTypeEncrypted, w.forward(t, inbox, "full", 16<<10))
		switch {
		case code == http.StatusAccepted:
		case code >= 500:
			refused++
		default:
			t.Fatalf("forward on a full disk: %d %s", code, body)
		}
	}
	if refused == 0 {
		t.Fatal("400 forwards of 16 KiB were accepted on a full 4 MiB disk")
	}
	code, _, body := getRaw(t, r.base+"/healthz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no space left on device") || strings.Contains(body, dir) {
		t.Fatalf("/healthz on a full disk: %d %s (want 503 with the cause and without the path)", code, body)
	}
	waitFor(t, 10*time.Second, "an error-level log line with the cause", func() bool {
		return strings.Contains(logs.String(), "level=ERROR") && strings.Contains(logs.String(), "no space left on device")
	})
	_, _, metrics := getRaw(t, r.base+"/metrics", "")
	if !strings.Contains(metrics, "agentd_store_writes_failing 1") || strings.Contains(metrics, "agentd_store_write_failures_total 0") {
		t.Fatalf("metrics do not show the failing writes:\n%s", grepLines(metrics, "agentd_store_"))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "/healthz healthy again after room was made", func() bool {
		code, _, _ := getRaw(t, r.base+"/healthz", "")
		return code == http.StatusOK
	})
	if code, _, body := post(t, r.base+"/didcomm", agent.MediaTypeEncrypted, w.forward(t, inbox, "after", 2048)); code != http.StatusAccepted {
		t.Fatalf("forward after room was made: %d %s", code, body)
	}
	var status struct {
		Status string `json:"status"`
	}
	if getJSON(t, r.base+"/healthz", "", &status) != http.StatusOK || status.Status != "ok" {
		t.Fatalf("healthz %+v", status)
	}
	if !strings.Contains(logs.String(), "database writes work again") {
		t.Fatal("the recovery was not logged")
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
