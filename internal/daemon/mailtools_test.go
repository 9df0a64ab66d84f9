package daemon_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The mail tests drive agentd with real mail software from Debian's
// packages: swaks as a third-party SMTP client and a private Postfix
// instance as a relay. `make test` installs both when run as root (target
// deps-apt). A missing tool fails the test with what to do; it never skips.

const installMailTools = "install the Debian packages swaks and postfix: run `make test` as root (target deps-apt), " +
	"or `apt-get install --no-install-recommends swaks postfix`"

// requireTool returns the path of a program, failing the test when it is missing.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	t.Fatalf("%s is not installed; %s", name, installMailTools)
	return ""
}

// runSwaks runs swaks with args and returns its transcript and exit code.
func runSwaks(t *testing.T, args ...string) (string, int) {
	t.Helper()
	swaks := requireTool(t, "swaks")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, swaks, append([]string{"--timeout", "30s", "--hide-informational"}, args...)...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("swaks did not finish: %s", out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("swaks: %v", err)
	}
	return string(out), code
}

// postfix is a private Postfix instance: its own configuration, queue and
// log in a temporary directory, an smtpd on a loopback port, and every mail
// for relayDomain relayed to one SMTP server. The machine's own Postfix
// configuration (/etc/postfix) is never touched.
type postfix struct {
	dir, conf, Addr string
}

func (p *postfix) log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	return string(b)
}

// startPostfix starts the instance and stops it when the test ends. Mail
// for relayDomain goes to nextHop (HOST:PORT); mail for any other domain is
// refused at RCPT ("Relay access denied"), as a relay that is not open does.
func startPostfix(t *testing.T, relayDomain, nextHop string) *postfix {
	t.Helper()
	bin := requireTool(t, "postfix")
	requireTool(t, "postconf")
	if os.Geteuid() != 0 {
		t.Fatalf("the Postfix relay test starts a private Postfix instance, which needs root; run the tests as root (%s)", installMailTools)
	}
	if _, err := user.Lookup("postfix"); err != nil {
		t.Fatalf("the postfix user is missing (%v); %s", err, installMailTools)
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		t.Fatalf("the postdrop group is missing (%v); %s", err, installMailTools)
	}
	// t.TempDir is private to root (0700); Postfix's daemons need to reach
	// their queue, so the instance gets a directory of its own.
	dir, err := os.MkdirTemp("", "agentd-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	p := &postfix{dir: dir, conf: filepath.Join(dir, "etc"), Addr: freePort(t)}
	for _, d := range []string{dir, p.conf, filepath.Join(dir, "queue")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, 0o755)
	}
	host, port, _ := strings.Cut(nextHop, ":")
	mainCF := fmt.Sprintf(`# private test instance of agentd's mail tests
compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
syslog_name = postfix-agentd-test
myhostname = relay.agentd.test
mydomain = agentd.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = %[2]s
smtpd_relay_restrictions = reject_unauth_destination
transport_maps = inline:{ %[2]s=smtp:[%[3]s]:%[4]s }
relayhost =
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtp_dns_support_level = disabled
smtputf8_enable = no
biff = no
append_dot_mydomain = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_connect_timeout = 5s
`, dir, relayDomain, host, port)
	masterCF := p.Addr + ` inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`
	if err := os.WriteFile(filepath.Join(p.conf, "main.cf"), []byte(mainCF), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.conf, "master.cf"), []byte(masterCF), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"-c", p.conf}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("postfix -c %s %s: %v\n%s\nmaillog:\n%s", p.conf, strings.Join(args, " "), err, out, p.log())
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "-c", p.conf, "stop").CombinedOutput()
		if err != nil {
			t.Logf("postfix stop: %v %s", err, out)
		}
		if t.Failed() {
			t.Logf("postfix maillog:\n%s", p.log())
		}
		// Give the master process a moment to release the queue, then remove it.
		time.Sleep(200 * time.Millisecond)
		os.RemoveAll(dir)
	})
	run("check") // creates the queue's subdirectories with Postfix's ownership
	run("start")
	waitListening(t, p.Addr, 30*time.Second)
	return p
}
