package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestIsPublic(t *testing.T) {
	for s, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700:4700::1111": true, "1.1.1.1": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fc00::1": false, "0.0.0.0": false, "::": false,
		"224.0.0.1": false, "100.64.0.1": false, "192.0.2.1": false, "198.51.100.7": false, "203.0.113.9": false,
		"::ffff:127.0.0.1": false, "::ffff:8.8.8.8": true, "2001:db8::1": false, "255.255.255.255": false,
	} {
		if got := IsPublic(netip.MustParseAddr(s)); got != want {
			t.Errorf("IsPublic(%s) = %v, want %v", s, got, want)
		}
	}
}

// The dialer refuses a loopback listener unless the policy allows private
// addresses, also when it is reached by a host name ("localhost").
func TestDialerRefusesPrivate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx := context.Background()
	for _, addr := range []string{ln.Addr().String(), net.JoinHostPort("localhost", port)} {
		if _, err := (Policy{}).Dialer(time.Second).DialContext(ctx, "tcp", addr); !errors.Is(err, ErrPrivate) {
			t.Errorf("dial %s with the default policy: %v, want ErrPrivate", addr, err)
		}
		c, err := (Policy{AllowPrivate: true}).Dialer(time.Second).DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Errorf("dial %s with private allowed: %v", addr, err)
			continue
		}
		c.Close()
	}
}
