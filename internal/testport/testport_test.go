package testport

import (
	"net"
	"strconv"
	"testing"
)

// TestAddr: the address is on loopback, below the ephemeral range, and
// can be listened on.
func TestAddr(t *testing.T) {
	for range 20 {
		addr := Addr(t)
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("address %q", addr)
		}
		if n, _ := strconv.Atoi(port); n < lowest || n >= ephemeralLow() {
			t.Fatalf("port %d outside [%d, %d)", n, lowest, ephemeralLow())
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
	}
}
