package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MediatorFigures are the mediator's figures read at scrape time.
type MediatorFigures struct {
	// Messages and Bytes are queued for pickup, for Recipients recipient DIDs.
	Messages, Recipients int
	Bytes                int64
	// LiveSessions are connections in live delivery mode.
	LiveSessions int
	// Pushed, PushSkipped and PushFailed count live deliveries (skipped and
	// failed messages stay queued).
	Pushed, PushSkipped, PushFailed int64
}

// WatchMediator exports the mediator's queue and live-delivery figures,
// read from figures at scrape time (once per scrape for all of them).
func (m *Metrics) WatchMediator(figures func(ctx context.Context) (MediatorFigures, error)) {
	var (
		mu   sync.Mutex
		last MediatorFigures
		at   time.Time
		bad  bool
	)
	read := func() (MediatorFigures, bool) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) > 500*time.Millisecond {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			f, err := figures(ctx)
			cancel()
			last, bad, at = f, err != nil, time.Now()
		}
		return last, !bad
	}
	gauge := func(name, help string, v func(MediatorFigures) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "agentd", Subsystem: "mediator", Name: name, Help: help}, func() float64 {
			f, ok := read()
			if !ok {
				return -1
			}
			return v(f)
		})
	}
	counter := func(name, help string, v func(MediatorFigures) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "agentd", Subsystem: "mediator", Name: name, Help: help}, func() float64 {
			f, _ := read()
			return v(f)
		})
	}
	m.reg.MustRegister(
		gauge("queue_messages", "Messages queued for pickup.", func(f MediatorFigures) float64 { return float64(f.Messages) }),
		gauge("queue_bytes", "Bytes queued for pickup.", func(f MediatorFigures) float64 { return float64(f.Bytes) }),
		gauge("queue_recipients", "Recipient DIDs with queued messages.", func(f MediatorFigures) float64 { return float64(f.Recipients) }),
		gauge("live_sessions", "Connections in live delivery mode.", func(f MediatorFigures) float64 { return float64(f.LiveSessions) }),
		counter("live_pushed_total", "Messages pushed live.", func(f MediatorFigures) float64 { return float64(f.Pushed) }),
		counter("live_skipped_total", "Live pushes skipped because a connection was slow (the messages stay queued).", func(f MediatorFigures) float64 { return float64(f.PushSkipped) }),
		counter("live_failed_total", "Messages whose live push failed (they stay queued).", func(f MediatorFigures) float64 { return float64(f.PushFailed) }),
	)
}
