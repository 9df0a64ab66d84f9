// Command pgserve runs a private PostgreSQL server (internal/pgtest) for
// the benchmarks (make bench-postgres): it creates the databases named on
// its command line, prints one URL a line, "ready", and runs until its
// standard input closes or it is interrupted; then it stops the server and
// removes its data. AGENTD_PGTEST_FSYNC=on makes the server durable (fsync
// on), as a production one is.
//
//	pgserve bench1 bench2
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/agentd/agentd/internal/pgtest"
)

func main() {
	urls, stop, err := pgtest.Serve(os.Args[1:]...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgserve:", err)
		os.Exit(1)
	}
	for _, u := range urls {
		fmt.Println(u)
	}
	fmt.Println("ready")
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-done:
	case <-sig:
	}
	stop()
}
