package connlimit

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestKeyOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":         "192.0.2.7/32",
		"::ffff:192.0.2.7":  "192.0.2.7/32",
		"2001:db8:1:2:3::4": "2001:db8:1:2::/64",
	} {
		ip, err := netip.ParseAddr(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := KeyOf(ip).String(); got != want {
			t.Errorf("KeyOf(%s) = %s, want %s", in, got, want)
		}
	}
	a, _ := netip.ParseAddr("2001:db8:1:2:aaaa::1")
	b, _ := netip.ParseAddr("2001:db8:1:2:bbbb::2")
	if KeyOf(a) != KeyOf(b) {
		t.Error("two addresses of one /64 are different clients")
	}
	if KeyString(KeyOf(netip.MustParseAddr("192.0.2.7"))) != "192.0.2.7" {
		t.Error("IPv4 key not shown as the address")
	}
	if ClientKey(&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}) != KeyOf(netip.MustParseAddr("192.0.2.7")) {
		t.Error("ClientKey of a TCP address")
	}
}

func TestListenerCapsAndFrees(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan Refusal, 10)
	ln := Wrap(raw, Limits{Total: 3, PerClient: 2}, func(c net.Conn, r Refusal) {
		refused <- r
		io.WriteString(c, "no\n")
	})
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	expectRefusal := func(c net.Conn, perClient bool, limit int) {
		t.Helper()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "no" {
			t.Fatalf("refused connection read %q, %v", line, err)
		}
		r := <-refused
		if r.PerClient != perClient || r.Limit != limit {
			t.Fatalf("refusal %+v, want per-client %v limit %d", r, perClient, limit)
		}
	}
	got := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("connection not accepted")
			return nil
		}
	}
	dial("127.0.0.1")
	a1 := got()
	dial("127.0.0.1")
	got()
	expectRefusal(dial("127.0.0.1"), true, 2)
	dial("127.0.0.2")
	got()
	expectRefusal(dial("127.0.0.3"), false, 3)
	if n := ln.Open(); n != 3 {
		t.Errorf("Open = %d, want 3", n)
	}
	a1.Close()
	a1.Close() // a second Close frees nothing more
	if n := ln.Open(); n != 2 {
		t.Errorf("Open after a close = %d, want 2", n)
	}
	dial("127.0.0.1")
	got()
}
