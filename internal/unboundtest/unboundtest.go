// Package unboundtest runs a private unbound DNS server for tests: on a free
// loopback port, with its own configuration in a temporary directory, serving
// the TXT records a test gives it, stopped when the test ends. unbound comes
// from Debian's package (make deps installs it); without it the test fails
// with a message that says so.
package unboundtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Start runs unbound serving TXT records (name -> values) as local data
// under the zones of their names' last two labels, and returns its HOST:PORT.
func Start(t testing.TB, txt map[string][]string) string {
	t.Helper()
	bin, err := exec.LookPath("unbound")
	if err != nil {
		bin = "/usr/sbin/unbound"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("unbound is not installed: run `make deps` (it installs Debian's unbound package) or `apt-get install unbound`")
		}
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  interface: 127.0.0.1\n  port: %d\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n", port)
	fmt.Fprintf(&b, "  directory: %q\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  do-ip6: no\n  module-config: \"iterator\"\n", dir)
	b.WriteString("  access-control: 127.0.0.0/8 allow\n  num-threads: 1\n  verbosity: 1\n")
	b.WriteString("  local-zone: \"unbound-ready.test.\" static\n") // answered at once, for the readiness probe
	zones := map[string]bool{}
	names := make([]string, 0, len(txt))
	for name := range txt {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		labels := strings.Split(strings.TrimSuffix(name, "."), ".")
		if len(labels) >= 2 {
			zones[strings.Join(labels[len(labels)-2:], ".")] = true
		}
	}
	for z := range zones {
		fmt.Fprintf(&b, "  local-zone: \"%s.\" static\n", z)
	}
	for _, name := range names {
		for _, v := range txt[name] {
			fmt.Fprintf(&b, "  local-data: '%s. 60 IN TXT \"%s\"'\n", strings.TrimSuffix(name, "."), v)
		}
	}
	b.WriteString("remote-control:\n  control-enable: no\n")
	conf := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", "-c", conf)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting unbound: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := r.LookupTXT(ctx, "probe.unbound-ready.test")
		cancel()
		var de *net.DNSError
		if err == nil || (asDNSError(err, &de) && de.IsNotFound) {
			return addr // it answers (NXDOMAIN for an unknown name is an answer)
		}
		select {
		case <-exited:
			t.Fatalf("unbound exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("unbound did not answer on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func asDNSError(err error, target **net.DNSError) bool {
	de, ok := err.(*net.DNSError)
	if ok {
		*target = de
	}
	return ok
}
