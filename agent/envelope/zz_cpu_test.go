package envelope

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func threadNS() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return ts.Nano()
}

func cpuMedian(n, reps int, f func()) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var r []float64
	for i := 0; i < reps; i++ {
		t0 := threadNS()
		for j := 0; j < n; j++ {
			f()
		}
		r = append(r, float64(threadNS()-t0)/float64(n))
	}
	sort.Float64s(r)
	return r[len(r)/2]
}

func TestZZCPU(t *testing.T) {
	which := os.Getenv("ZZ")
	if which == "" {
		t.Skip()
	}
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	peer, _ := ecdh.X25519().GenerateKey(rand.Reader)
	pub := peer.PublicKey()
	var d, u, out [32]byte
	rand.Read(d[:])
	copy(u[:], pub.Bytes())
	fns := map[string]func(){
		"ecdh":   func() { priv.ECDH(pub) },
		"ladder": func() { x25519(&out, &d, &u) },
		"pub":    func() { x25519PublicKey(&out, &d) },
	}
	for _, name := range strings.Split(which, ",") {
		fmt.Printf("%s %.0f ns\n", name, cpuMedian(2000, 15, fns[name]))
	}
}
