package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// servePprof serves Go's runtime profiles (CPU, heap, allocations,
// goroutines, ...) under /debug/pprof/ on a listener of its own, so that an
// operator can profile the running daemon under real load without the
// profiles ever being reachable on the public listener. The address is
// checked to be loopback by the configuration. It returns a function that
// stops the listener.
func servePprof(addr string, log *slog.Logger) (stop func(context.Context), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin.pprof_addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("profiling listener stopped", "err", err)
		}
	}()
	log.Info("serving runtime profiles", "addr", ln.Addr().String(), "path", "/debug/pprof/")
	return func(ctx context.Context) { srv.Shutdown(ctx) }, nil
}
