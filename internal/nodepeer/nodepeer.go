// Package nodepeer runs a Node.js driver script as a child process and talks
// to it with line-delimited JSON over stdin/stdout: each request is one JSON
// object on one line, with an "op" naming what to do and an "id" the driver
// echoes in its one-line response. It is the plumbing shared by the interop
// test harnesses (internal/veramo, internal/didcommnode); what the other
// members of requests and responses mean is up to them.
package nodepeer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrClosed is returned by Call after Close.
var ErrClosed = errors.New("peer is closed")

// ModuleRoot walks up from the working directory to the directory holding
// go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found in any parent of the working directory")
		}
		dir = parent
	}
}

// Requirement is what a driver needs before Start: Node.js on PATH and one
// npm package, at a pinned version, in the node_modules of its directory.
type Requirement struct {
	// Driver is the name of the driver's directory under interop/ in the
	// module, e.g. "veramo".
	Driver string
	// Package is the npm package name, e.g. "@veramo/did-comm".
	Package string
	// Version is the version its package.json must give.
	Version string
	// NodeVersion is the Node.js versions the driver supports, for the
	// error message, e.g. ">= 20".
	NodeVersion string
	// InstallHint tells how to install the packages, for the error messages.
	InstallHint string
}

// Check returns the driver's directory, interop/<Driver> under ModuleRoot.
// It reports, with an error naming the fix, when node is not on PATH or the
// directory's node_modules does not hold Package at Version.
func (r Requirement) Check() (dir string, err error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	dir = filepath.Join(root, "interop", r.Driver)
	if _, err := exec.LookPath("node"); err != nil {
		return "", fmt.Errorf("Node.js (node) is not on PATH; install Node.js %s and %s", r.NodeVersion, r.InstallHint)
	}
	pkg := filepath.Join(dir, "node_modules", filepath.FromSlash(r.Package), "package.json")
	raw, err := os.ReadFile(pkg)
	if err != nil {
		return "", fmt.Errorf("%s is not installed (%v); %s", r.Package, err, r.InstallHint)
	}
	var meta struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil || meta.Version != r.Version {
		return "", fmt.Errorf("%s has version %q, want %s; %s", pkg, meta.Version, r.Version, r.InstallHint)
	}
	return dir, nil
}

// Proc is a running driver process. Its methods may be called from any
// goroutine; calls are serialised.
type Proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte // response lines; closed at EOF
	done   chan struct{}
	stderr *tailBuffer // the last 64 KiB the driver wrote to stderr

	mu     sync.Mutex
	nextID int64
	closed bool
}

// Start runs `node script` in dir. The driver is expected to answer each
// request line with one response line and to exit at EOF on stdin.
func Start(dir, script string) (*Proc, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(node, script)
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &Proc{cmd: cmd, stdin: stdin, lines: make(chan []byte, 1), done: make(chan struct{}),
		stderr: &tailBuffer{max: 64 << 10}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node %s: %w", script, err)
	}
	go func() {
		defer close(p.lines)
		r := bufio.NewReaderSize(stdout, 1<<20)
		for {
			line, err := r.ReadBytes('\n')
			if len(bytes.TrimSpace(line)) > 0 {
				p.lines <- line
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Call sends one request, the members of req (which may be nil) with "op"
// and a fresh "id", waits for its response line and decodes it into resp.
// It fails when the process exits or ctx ends first, or when the response is
// not JSON or has another id; the error then ends with the driver's recent
// stderr. After such a failure the request stream is out of step: a caller
// that goes on using the driver should Close this Proc and Start another.
func (p *Proc) Call(ctx context.Context, op string, req map[string]any, resp any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.nextID++
	id := p.nextID
	msg := make(map[string]any, len(req)+2)
	for k, v := range req {
		msg[k] = v
	}
	msg["id"], msg["op"] = id, op
	line, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write request: %w%s", err, p.stderr.suffix())
	}
	start := time.Now()
	var respLine []byte
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.done
			return fmt.Errorf("peer exited (%v)%s", p.cmd.ProcessState, p.stderr.suffix())
		}
		respLine = l
	case <-ctx.Done():
		if dl, ok := ctx.Deadline(); ok && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no response within %v%s", dl.Sub(start).Round(time.Millisecond), p.stderr.suffix())
		}
		return fmt.Errorf("no response: %w%s", ctx.Err(), p.stderr.suffix())
	}
	var head struct {
		ID any `json:"id"`
	}
	if err := json.Unmarshal(respLine, &head); err != nil {
		return fmt.Errorf("bad response line %q: %w", truncate(string(respLine), 200), err)
	}
	if got, ok := head.ID.(float64); !ok || int64(got) != id {
		return fmt.Errorf("response id %v, want %d", head.ID, id)
	}
	if err := json.Unmarshal(respLine, resp); err != nil {
		return fmt.Errorf("bad response line %q: %w", truncate(string(respLine), 200), err)
	}
	return nil
}

// Close stops the process: it closes its stdin, which ends the driver, and
// kills it if it has not exited within five seconds. Calling it again is
// harmless.
func (p *Proc) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the process at once, as a crash would, for tests of how a caller
// recovers. Close must still be called.
func (p *Proc) Kill() error { return p.cmd.Process.Kill() }

// tailBuffer keeps the last max bytes written (the driver's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

// suffix formats the captured stderr for an error message.
func (b *tailBuffer) suffix() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(string(b.buf))
	if s == "" {
		return ""
	}
	return "; peer stderr:\n" + truncate(s, 4000)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// DriverError is a failure the driver reported: its response had "ok":
// false and an "error" message.
type DriverError struct {
	Op      string
	Message string
}

func (e *DriverError) Error() string { return e.Op + ": " + e.Message }

// Result is Call for the drivers that answer {"ok": true, "result": ...}
// or {"ok": false, "error": "..."}: it decodes the result into out (unless
// out is nil) and turns a refusal into a *DriverError.
func (p *Proc) Result(ctx context.Context, op string, req map[string]any, out any) error {
	var resp struct {
		OK     bool            `json:"ok"`
		Error  string          `json:"error"`
		Result json.RawMessage `json:"result"`
	}
	if err := p.Call(ctx, op, req, &resp); err != nil {
		return err
	}
	if !resp.OK {
		return &DriverError{Op: op, Message: resp.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, out); err != nil {
		return fmt.Errorf("%s: bad result %s: %w", op, truncate(string(resp.Result), 200), err)
	}
	return nil
}
