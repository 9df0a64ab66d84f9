// Package connlimit caps the connections a listener holds open, in all and
// per client address, so that one client cannot take all of them. A
// connection over a cap is accepted, given a short answer in the listener's
// protocol (an HTTP 503 or 429, an SMTP 421) and closed; the server behind
// the listener never sees it.
//
// The client is the connection's remote IP address; IPv6 clients are
// grouped by /64, the block one subscriber usually gets. Behind a reverse
// proxy every client has the proxy's address.
package connlimit

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits are the caps; 0 (or less) means no cap.
type Limits struct {
	// Total caps the connections open at once.
	Total int
	// PerClient caps the connections open at once from one client address.
	PerClient int
}

// Refusal says which cap a connection was over.
type Refusal struct {
	// PerClient is true when the client's own cap was hit, false for the
	// total.
	PerClient bool
	// Limit is the cap that was hit.
	Limit int
	// Client is the client's address (its /64 for IPv6).
	Client string
}

// Refuser writes the answer to a refused connection. It should be short:
// the connection is closed after it, and at most maxRefusing answers are
// written at once (beyond that, refused connections are closed without one).
type Refuser func(c net.Conn, r Refusal)

// maxRefusing bounds the goroutines answering refused connections.
const maxRefusing = 64

// refuseTime bounds writing a refusal and draining what the client sent.
const refuseTime = time.Second

// Listener is a net.Listener that enforces Limits.
type Listener struct {
	net.Listener
	limits Limits
	refuse Refuser

	mu       sync.Mutex
	open     int
	perIP    map[netip.Prefix]int
	refusing int
}

// Wrap returns ln with the limits applied; refuse (nil: none) answers the
// connections over them.
func Wrap(ln net.Listener, limits Limits, refuse Refuser) *Listener {
	return &Listener{Listener: ln, limits: limits, refuse: refuse, perIP: map[netip.Prefix]int{}}
}

// Accept returns the next connection within the limits; those over them are
// answered and closed in the background.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(c.RemoteAddr())
		l.mu.Lock()
		var refusal *Refusal
		switch {
		case l.limits.Total > 0 && l.open >= l.limits.Total:
			refusal = &Refusal{Limit: l.limits.Total, Client: KeyString(key)}
		case l.limits.PerClient > 0 && key.IsValid() && l.perIP[key] >= l.limits.PerClient:
			refusal = &Refusal{PerClient: true, Limit: l.limits.PerClient, Client: KeyString(key)}
		}
		if refusal == nil {
			l.open++
			if key.IsValid() {
				l.perIP[key]++
			}
			l.mu.Unlock()
			return &conn{Conn: c, l: l, key: key}, nil
		}
		answer := l.refuse != nil && l.refusing < maxRefusing
		if answer {
			l.refusing++
		}
		l.mu.Unlock()
		if !answer {
			c.Close()
			continue
		}
		go l.answer(c, *refusal)
	}
}

// answer writes the refusal, lets the client read it and closes.
func (l *Listener) answer(c net.Conn, r Refusal) {
	defer func() {
		l.mu.Lock()
		l.refusing--
		l.mu.Unlock()
	}()
	c.SetDeadline(time.Now().Add(refuseTime))
	l.refuse(c, r)
	// Closing with unread input makes the kernel send a reset, which can
	// destroy the answer before the client reads it: half-close, then read
	// what the client sends until it closes or the deadline.
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		buf := make([]byte, 4096)
		for n := 0; n < 1<<20; {
			m, err := c.Read(buf)
			n += m
			if err != nil {
				break
			}
		}
	}
	c.Close()
}

// Open returns the number of connections open through the listener.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

func (l *Listener) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if key.IsValid() {
		if l.perIP[key]--; l.perIP[key] <= 0 {
			delete(l.perIP, key)
		}
	}
}

// conn is an accepted connection; closing it frees its place.
type conn struct {
	net.Conn
	l    *Listener
	key  netip.Prefix
	once sync.Once
}

// Close closes the connection and frees its place under the limits.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}

// CloseWrite half-closes the connection when the underlying one can (a TCP
// connection): net/http uses it for a graceful close.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Unwrap returns the underlying connection.
func (c *conn) Unwrap() net.Conn { return c.Conn }

// ClientKey returns the key clients are counted under: the IP address, or
// its /64 for IPv6; the zero Prefix when addr has no IP address.
func ClientKey(addr net.Addr) netip.Prefix { return clientKey(addr) }

func clientKey(addr net.Addr) netip.Prefix {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if addr == nil {
			return netip.Prefix{}
		}
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return netip.Prefix{}
		}
		ip = ap.Addr()
	}
	return keyOf(ip)
}

// KeyOf returns the key ip is counted under (see ClientKey).
func KeyOf(ip netip.Addr) netip.Prefix { return keyOf(ip) }

func keyOf(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// KeyString shows a client key: the address for an IPv4 client, the /64
// prefix for IPv6.
func KeyString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	if p.Addr().Is4() {
		return p.Addr().String()
	}
	return p.String()
}
