// Command agentd is the DIDComm v2 agent daemon. With no flags it runs on its
// embedded defaults: data in ./data, HTTP on 127.0.0.1:8080. See
// configs/agentd.example.yaml for every setting, or run agentd -h.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/gctune"
)

// Unless GOGC is set, the garbage collector's target follows the live heap
// (internal/gctune): GOGC 400 while the live heap is small, as it is for a
// mediator busy with forwards (payloads live in the database's memory map,
// not the heap), where 400 took about a fifth off the CPU per forward
// (README, "Mediator"); down to Go's usual 100 as the live heap grows past
// 64 MiB, as it does with thousands of idle WebSockets, so that memory stays
// about twice what is live rather than five times.

func main() {
	if os.Getenv("GOGC") == "" {
		gctune.Start(gctune.Default)
	}
	cfg, err := config.Load(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentd: configuration:", err)
		os.Exit(2)
	}
	log := daemon.NewLogger(cfg.Log, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	d, err := daemon.New(ctx, cfg, log)
	if err != nil {
		log.Error("agentd could not start", "err", err)
		os.Exit(1)
	}
	if err := d.Start(ctx); err != nil {
		log.Error("agentd could not start", "err", err)
		d.Shutdown(context.Background())
		os.Exit(1)
	}
	if err := d.Banner(ctx, os.Stdout); err != nil {
		log.Warn("could not print the invitation", "err", err)
	}
	<-ctx.Done()
	stop()
	log.Info("shutting down: finishing in-flight requests")
	if err := d.Shutdown(context.Background()); err != nil {
		log.Error("shutdown", "err", err)
		os.Exit(1)
	}
	log.Info("stopped")
}
