// Package testport hands tests a loopback address for a server they start
// later. The port comes from below the kernel's ephemeral range: a port the
// kernel handed out (":0") and the test released can be taken, before the
// server binds it, as the source port of any outbound connection the tests
// running in parallel make, since those come from that range.
package testport

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// lowest is the first port handed out.
const lowest = 10000

// Addr returns "127.0.0.1:PORT" for a port nothing listened on a moment
// ago, below the ephemeral range.
func Addr(t testing.TB) string {
	t.Helper()
	high := ephemeralLow() - 1
	for range 200 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lowest+rand.IntN(high-lowest)))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatal("testport: no free port below the ephemeral range")
	return ""
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > lowest+1000 {
				return n
			}
		}
	}
	return 32768
}
