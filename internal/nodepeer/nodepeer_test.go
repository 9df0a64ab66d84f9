package nodepeer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// driver answers each request with its op and x, never answers "hang", and
// exits on "die" after writing to stderr.
const driver = `
const rl = require("readline").createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const req = JSON.parse(line);
  if (req.op === "hang") return;
  if (req.op === "die") { process.stderr.write("dying\n"); process.exit(3); }
  if (req.op === "ok") { process.stdout.write(JSON.stringify({ id: req.id, ok: true, result: { x: req.x } }) + "\n"); return; }
  if (req.op === "refuse") { process.stdout.write(JSON.stringify({ id: req.id, ok: false, error: "no " + req.x }) + "\n"); return; }
  process.stdout.write(JSON.stringify({ id: req.id, op: req.op, x: req.x }) + "\n");
});
`

func startDriver(t *testing.T) *Proc {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "driver.js"), []byte(driver), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Start(dir, "driver.js")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestCall(t *testing.T) {
	p := startDriver(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		var resp struct {
			ID int64
			Op string
			X  int
		}
		if err := p.Call(ctx, "echo", map[string]any{"x": i, "op": "ignored"}, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.ID != int64(i+1) || resp.Op != "echo" || resp.X != i {
			t.Fatalf("response %+v", resp)
		}
	}

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := p.Call(short, "hang", nil, &struct{}{}); err == nil || !strings.Contains(err.Error(), "no response within") {
		t.Fatalf("hang: %v", err)
	}
}

func TestExitAndClose(t *testing.T) {
	p := startDriver(t)
	err := p.Call(context.Background(), "die", nil, &struct{}{})
	if err == nil || !strings.Contains(err.Error(), "peer exited") || !strings.Contains(err.Error(), "peer stderr:\ndying") {
		t.Fatalf("die: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after the exit")
	}
	p.Close()
	p.Close()
	if err := p.Call(context.Background(), "echo", nil, &struct{}{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestCheckMissingPackage(t *testing.T) {
	r := Requirement{Driver: "no-such-driver", Package: "@scope/pkg", Version: "1.0.0", NodeVersion: ">= 20", InstallHint: "install it"}
	if _, err := r.Check(); err == nil || !strings.HasSuffix(err.Error(), "; install it") {
		t.Fatalf("Check: %v", err)
	}
}

func TestResult(t *testing.T) {
	p := startDriver(t)
	ctx := context.Background()
	var out struct{ X int }
	if err := p.Result(ctx, "ok", map[string]any{"x": 7}, &out); err != nil || out.X != 7 {
		t.Fatalf("ok: %v %+v", err, out)
	}
	err := p.Result(ctx, "refuse", map[string]any{"x": "way"}, &out)
	var de *DriverError
	if !errors.As(err, &de) || de.Op != "refuse" || de.Message != "no way" {
		t.Fatalf("refuse: %v", err)
	}
	if err := p.Result(ctx, "ok", map[string]any{"x": "str"}, &out); err == nil || !strings.Contains(err.Error(), "bad result") {
		t.Fatalf("bad result: %v", err)
	}
}
