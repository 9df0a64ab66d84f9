package daemon

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/netguard"
)

// TestResolverRefusesPrivateDIDWebHosts checks the wiring of did.* into the
// daemon's resolver: a did:web on loopback is refused without connecting
// unless did.web_allow_private, and a failure is remembered.
func TestResolverRefusesPrivateDIDWebHosts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close() // not TLS: the resolution fails after connecting
		}
	}()
	id := "did:web:" + strings.Replace(ln.Addr().String(), ":", "%3A", 1)
	ctx := context.Background()

	cfg := config.Default()
	if _, err := newResolver(cfg).Resolve(ctx, id); !errors.Is(err, netguard.ErrPrivate) {
		t.Fatalf("default config: %v, want netguard.ErrPrivate", err)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the default resolver connected to loopback %d times", n)
	}

	cfg.DID.WebAllowPrivate = true
	r := newResolver(cfg)
	for i := 0; i < 3; i++ {
		if _, err := r.Resolve(ctx, id); err == nil || errors.Is(err, netguard.ErrPrivate) {
			t.Fatalf("did.web_allow_private: %v, want a TLS failure after connecting", err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections for 3 resolutions, want 1 (the failure is remembered)", n)
	}
}
