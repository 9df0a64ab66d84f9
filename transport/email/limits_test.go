package email

import (
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// dialFrom connects from the loopback address from (a separate client) and
// returns the connection and the first reply.
func dialFrom(t *testing.T, from, addr string) (*textproto.Conn, int, string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(conn)
	t.Cleanup(func() { tp.Close() })
	code, msg, err := tp.ReadResponse(0)
	if err != nil && code == 0 {
		t.Fatalf("no reply from the server: %v", err)
	}
	return tp, code, msg
}

func TestServerSessionCaps(t *testing.T) {
	ts := startServer(t, "", false, func(c *ServerConfig) { c.MaxSessions = 3; c.MaxSessionsPerIP = 2 })
	var first []*textproto.Conn
	for i := 0; i < 2; i++ {
		tp, code, msg := dialFrom(t, "127.0.0.1", ts.addr)
		if code != 220 {
			t.Fatalf("session %d within the caps: %d %s", i+1, code, msg)
		}
		id, _ := tp.Cmd("EHLO client.test")
		tp.StartResponse(id)
		code, _, err := tp.ReadResponse(250)
		tp.EndResponse(id)
		if err != nil {
			t.Fatalf("session %d EHLO: %d %v", i+1, code, err)
		}
		first = append(first, tp)
	}
	// A third session from the same client: 421 instead of the greeting.
	tp, code, msg := dialFrom(t, "127.0.0.1", ts.addr)
	if code != 421 || !strings.Contains(msg, "4.7.0") || !strings.Contains(msg, "127.0.0.1") || !strings.Contains(msg, "limit 2") {
		t.Fatalf("over the per-client cap: %d %s, want 421 4.7.0 naming the client and the limit", code, msg)
	}
	if _, err := tp.ReadLine(); err == nil {
		t.Error("the refused connection stayed open")
	}
	// Another client is served, up to the total.
	if _, code, msg := dialFrom(t, "127.0.0.2", ts.addr); code != 220 {
		t.Fatalf("another client: %d %s", code, msg)
	}
	if _, code, msg := dialFrom(t, "127.0.0.3", ts.addr); code != 421 || !strings.Contains(msg, "limit 3") {
		t.Fatalf("over the total cap: %d %s", code, msg)
	}
	if ts.obs.In("rate-limited") != 2 {
		t.Errorf("rate-limited count %d, want 2", ts.obs.In("rate-limited"))
	}
	// A session that ends frees its place.
	first[0].Cmd("QUIT")
	first[0].ReadResponse(221)
	first[0].Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, code, _ := dialFrom(t, "127.0.0.1", ts.addr); code == 220 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the place of a closed session was not freed")
		}
	}
}
