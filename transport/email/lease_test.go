package email

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// otherHolder is an agent.Leases where another instance holds every lease
// while busy is set (the PostgreSQL leases are tested in store/postgres).
type otherHolder struct {
	mu       sync.Mutex
	busy     bool
	led      []string
	released []string
}

func (o *otherHolder) Lead(_ context.Context, name string, d time.Duration) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.busy {
		return false, nil
	}
	o.led = append(o.led, name)
	return true, nil
}

func (o *otherHolder) Release(_ context.Context, name string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.released = append(o.released, name)
	return nil
}

// With Leases, a spooled mail is processed only under its lease: while
// another instance holds it the mail waits in the spool, untouched; once
// the lease is free it is processed once and the lease released.
func TestSpooledMailProcessedUnderItsLease(t *testing.T) {
	leases := &otherHolder{busy: true}
	ts := startServer(t, "", true, func(c *ServerConfig) { c.Leases = leases })
	c := dial(t, ts.addr)
	c.expect(250, "EHLO client.test")
	if code, msg := c.send("alice@example.org", "agent@agent.test", encryptedMail(jwe)); code != 250 {
		t.Fatalf("good mail: %d %s", code, msg)
	}
	time.Sleep(300 * time.Millisecond) // several retry delays
	if n := ts.router.receivedCount(); n != 0 || ts.pending(t) != 1 {
		t.Fatalf("while another instance holds its lease: processed %d times, %d pending", n, ts.pending(t))
	}
	leases.mu.Lock()
	leases.busy = false
	leases.mu.Unlock()
	// The lease is released after the mail leaves the spool: wait for both.
	waitFor(t, "the spool to empty and the lease to be released", func() bool {
		leases.mu.Lock()
		released := len(leases.released)
		leases.mu.Unlock()
		return ts.pending(t) == 0 && released > 0
	})
	if n := ts.router.receivedCount(); n != 1 {
		t.Fatalf("processed %d times", n)
	}
	leases.mu.Lock()
	defer leases.mu.Unlock()
	if len(leases.led) != 1 || !strings.HasPrefix(leases.led[0], "smtp-mail/") || len(leases.released) != 1 || leases.released[0] != leases.led[0] {
		t.Fatalf("leases taken %q, released %q", leases.led, leases.released)
	}
}
