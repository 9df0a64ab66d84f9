// Package gctune bounds the garbage collector's memory headroom while
// keeping collections rare.
//
// Go's GOGC sets the heap goal as a ratio of the live heap: at 100 the heap
// may grow to twice what is live before the next collection. A mediator's
// live heap is small when it is busy with forwards (payloads live in the
// database's memory map) and large when it holds many idle WebSockets. A
// high ratio saves CPU in the first case (collections are rarer: agentd
// measured about a fifth off the CPU per forward at 400) but multiplies
// memory in the second (10,000 idle sockets with a live heap of about
// 140 MB would be allowed 700 MB). What saves CPU is the absolute headroom,
// the bytes allocated between collections, so the tuner fixes that instead:
// after every collection it sets GOGC so that the headroom is Headroom bytes,
// within [MinPercent, MaxPercent]. A small heap gets MaxPercent; a heap
// larger than Headroom gets Go's usual ratio of MinPercent (100).
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// Config are the tuner's bounds.
type Config struct {
	// Headroom is the bytes the heap may grow by between collections while
	// the ratio stays within the bounds.
	Headroom uint64
	// MinPercent and MaxPercent bound GOGC.
	MinPercent, MaxPercent int
}

// Default is the daemon's setting: 64 MiB of headroom, GOGC between 100 and
// 400.
var Default = Config{Headroom: 64 << 20, MinPercent: 100, MaxPercent: 400}

// Percent is the GOGC that gives c.Headroom over a live heap of live bytes,
// within the bounds.
func (c Config) Percent(live uint64) int {
	if live == 0 {
		return c.MaxPercent
	}
	p := c.Headroom * 100 / live
	return int(min(max(p, uint64(c.MinPercent)), uint64(c.MaxPercent)))
}

// Tuner adjusts GOGC after each garbage collection until stopped.
type Tuner struct {
	cfg     Config
	stopped atomic.Bool
	percent atomic.Int64
	sample  []metrics.Sample
}

// Start sets GOGC to cfg.MaxPercent and adjusts it after every collection.
// The adjustment runs on the runtime's finalizer goroutine, a few
// microseconds per collection.
func Start(cfg Config) *Tuner {
	t := &Tuner{cfg: cfg, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.set(cfg.MaxPercent)
	t.arm()
	return t
}

// Percent is the GOGC the tuner set last.
func (t *Tuner) Percent() int { return int(t.percent.Load()) }

// Stop ends the adjustments; GOGC keeps its last value.
func (t *Tuner) Stop() { t.stopped.Store(true) }

// sentinel is garbage whose finalizer runs once per collection and makes a
// new one.
type sentinel struct{ t *Tuner }

func (t *Tuner) arm() {
	s := &sentinel{t: t}
	runtime.SetFinalizer(s, func(s *sentinel) {
		if s.t.stopped.Load() {
			return
		}
		s.t.tune()
		s.t.arm()
	})
}

func (t *Tuner) tune() {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	t.set(t.cfg.Percent(t.sample[0].Value.Uint64()))
}

func (t *Tuner) set(p int) {
	if int64(p) != t.percent.Load() {
		debug.SetGCPercent(p)
		t.percent.Store(int64(p))
	}
}
