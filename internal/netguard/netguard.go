// Package netguard keeps connections that a peer can steer (a reply to the
// endpoint a sender's DID document names, a did:web document's host) off
// the operator's own networks: loopback, private, link-local, multicast and
// other non-public addresses are refused unless the operator allows them.
//
// The check runs when the connection is made, on the address actually
// dialled, after name resolution: a host name that resolves to a private
// address is refused too, and so is one that changes its answer between a
// check and the connection (DNS rebinding).
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrPrivate is returned (wrapped) for a connection to a non-public address
// that the policy refuses.
var ErrPrivate = errors.New("the address is not public (loopback, private, link-local or reserved)")

// IsPublic reports whether a is a public unicast address: not loopback,
// private (RFC 1918, RFC 4193), link-local, multicast, unspecified, the
// shared address space of RFC 6598, or a documentation or benchmarking
// range.
func IsPublic(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() {
		return false
	}
	for _, p := range reserved {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var reserved = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (carrier-grade NAT)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use IPv4/IPv6 translation
}

// Policy says which addresses connections may go to.
type Policy struct {
	// AllowPrivate allows non-public addresses too: for tests and for
	// deployments whose peers live on private networks.
	AllowPrivate bool
}

// Check returns an error wrapping ErrPrivate when the policy refuses a.
func (p Policy) Check(a netip.Addr) error {
	if p.AllowPrivate || IsPublic(a) {
		return nil
	}
	return fmt.Errorf("%s: %w", a, ErrPrivate)
}

// Dialer returns a net.Dialer that refuses, at connect time, the addresses
// the policy refuses. timeout bounds the connection set-up (0: none).
func (p Policy) Dialer(timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !p.AllowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("netguard: %s: %w", address, err)
			}
			return p.Check(ap.Addr())
		}
	}
	return d
}

// DialContext is Dialer(timeout).DialContext, for an http.Transport.
func (p Policy) DialContext(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return p.Dialer(timeout).DialContext
}

// Client is an HTTP client for fetching what others name (status lists,
// issuers' objects): direct connections (no proxy) under p, every phase
// bounded by timeout, response headers at most 64 KiB, and at most five
// redirects, to https only.
func (p Policy) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            p.DialContext(timeout),
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 || req.URL.Scheme != "https" {
				return errors.New("redirect refused")
			}
			return nil
		},
	}
}
