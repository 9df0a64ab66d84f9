// Package metrics exposes the agent's measurements to Prometheus: messages in
// and out by type and result, processing latency, outbox depth and HTTP
// request latency.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentd/agentd/agent"
)

// Metrics is the agent's Prometheus registry and collectors. It implements
// agent.Observer.
type Metrics struct {
	reg         *prometheus.Registry
	messagesIn  *prometheus.CounterVec
	messagesOut *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	httpLatency *prometheus.HistogramVec
	mailIn      *prometheus.CounterVec
	mailOut     *prometheus.CounterVec
	limited     *prometheus.CounterVec

	// in caches the children of messagesIn and latency that MessageIn
	// uses, so that a message costs a map lookup instead of hashing and
	// checking its labels in the vectors (see inChildren).
	inMu sync.RWMutex
	in   map[[2]string]inChildren
}

// inChildren are the counter and histogram MessageIn takes for one message
// type and result.
type inChildren struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// maxInChildren bounds the cache of MessageIn: message types come from
// peers. Past it, MessageIn looks its labels up in the vectors each time.
const maxInChildren = 1024

// New returns Metrics with the Go runtime and process collectors registered.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		messagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentd", Name: "messages_in_total",
			Help: "Inbound DIDComm messages by message type and result (ok, problem, rejected, replay, refused, rate-limited, outbox-full).",
		}, []string{"type", "result"}),
		messagesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentd", Name: "messages_out_total",
			Help: "Outbound DIDComm messages by message type and result (return-route, delivered, retry, dead, unauthenticated-dropped).",
		}, []string{"type", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "agentd", Name: "message_processing_seconds",
			Help:    "Time from receiving a packed message to finishing its handling.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"result"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "agentd", Name: "http_request_seconds",
			Help:    "HTTP request latency by route and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "code"}),
		mailIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentd", Name: "email_in_total",
			Help: "Inbound mail by SMTP outcome (accepted, refused, relay-denied, too-large, rate-limited, auth-failed, deferred, dsn).",
		}, []string{"result"}),
		mailOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentd", Name: "email_out_total",
			Help: "Outbound mail delivery attempts by outcome (delivered, deferred, bounced).",
		}, []string{"result"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentd", Name: "rate_limited_total",
			Help: "Inbound messages refused by a rate limit, by limit (client: per client IP on the DIDComm endpoint).",
		}, []string{"by"}),
	}
	m.reg.MustRegister(m.messagesIn, m.messagesOut, m.latency, m.httpLatency, m.mailIn, m.mailOut, m.limited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// MessageIn counts an inbound message and observes its processing time.
func (m *Metrics) MessageIn(msgType, result string, elapsed time.Duration) {
	key := [2]string{label(msgType), result}
	m.inMu.RLock()
	c, ok := m.in[key]
	m.inMu.RUnlock()
	if !ok {
		c = inChildren{m.messagesIn.WithLabelValues(key[0], result), m.latency.WithLabelValues(result)}
		m.inMu.Lock()
		if m.in == nil {
			m.in = make(map[[2]string]inChildren)
		}
		if len(m.in) < maxInChildren {
			m.in[key] = c
		}
		m.inMu.Unlock()
	}
	c.count.Inc()
	c.latency.Observe(elapsed.Seconds())
}

// MessageOut counts an outbound message event.
func (m *Metrics) MessageOut(msgType, result string) {
	m.messagesOut.WithLabelValues(label(msgType), result).Inc()
}

// label bounds the label's cardinality: message types come from peers.
func label(msgType string) string {
	if msgType == "" {
		return "unknown"
	}
	if len(msgType) > 120 {
		return "other"
	}
	return msgType
}

// WatchOutbox exports the outbox depth (pending and dead) as gauges read at scrape time.
func (m *Metrics) WatchOutbox(store agent.OutboxStore) {
	depth := func(dead bool) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			p, d, err := store.Depth(ctx)
			if err != nil {
				return -1
			}
			if dead {
				return float64(d)
			}
			return float64(p)
		}
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "agentd", Name: "outbox_pending", Help: "Messages waiting in the outbox."}, depth(false)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "agentd", Name: "outbox_dead", Help: "Messages in the dead-letter list."}, depth(true)),
	)
}

// MailIn counts an inbound mail's SMTP outcome (transport/email's Observer).
func (m *Metrics) MailIn(result string) { m.mailIn.WithLabelValues(result).Inc() }

// MailOut counts an outbound mail delivery attempt's outcome; "bounced" is a
// 5xx answer, after which the message is in the dead-letter list.
func (m *Metrics) MailOut(result string) { m.mailOut.WithLabelValues(result).Inc() }

// WatchStore exports the database's write health: the count of failed
// commits and whether commits are failing now, read at scrape time.
func (m *Metrics) WatchStore(failures func() int64, failing func() bool) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "agentd", Name: "store_write_failures_total",
			Help: "Database commits that failed for the file's sake (no space left, I/O error).",
		}, func() float64 { return float64(failures()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "agentd", Name: "store_writes_failing",
			Help: "1 while the database's commits fail (since the last failure, no commit succeeded), else 0.",
		}, func() float64 {
			if failing() {
				return 1
			}
			return 0
		}),
	)
}

// WatchCommits exports the database's group commits: transactions
// committed and the writes they carried, read at scrape time from stats.
func (m *Metrics) WatchCommits(stats func() (groups, writes int64)) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "agentd", Name: "store_commits_total",
			Help: "Database transactions committed (each one fsync), concurrent writes grouped into each.",
		}, func() float64 { g, _ := stats(); return float64(g) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "agentd", Name: "store_committed_writes_total",
			Help: "Writes committed; divided by agentd_store_commits_total, the mean group size.",
		}, func() float64 { _, w := stats(); return float64(w) }),
	)
}

// WatchEmailSpool exports the number of accepted mails not yet processed,
// read at scrape time from pending.
func (m *Metrics) WatchEmailSpool(pending func(ctx context.Context) (int, error)) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "agentd", Name: "email_spool_pending",
		Help: "Mails accepted by the SMTP listener and not yet processed.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := pending(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	}))
}

// RateLimited counts a message a rate limit refused; by names the limit.
func (m *Metrics) RateLimited(by string) { m.limited.WithLabelValues(by).Inc() }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Instrument wraps h to observe request latency under the route name.
func (m *Metrics) Instrument(route string, h http.Handler) http.Handler {
	// The route's histograms by status code, looked up once per code.
	var byCode sync.Map // int → prometheus.Observer
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		o, ok := byCode.Load(sw.code)
		if !ok {
			o, _ = byCode.LoadOrStore(sw.code, m.httpLatency.WithLabelValues(route, strconv.Itoa(sw.code)))
		}
		o.(prometheus.Observer).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer (needed for
// WebSocket hijacking and flushing).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// JournalFigures describe the bbolt store's journal (store/bolt's
// journal.go): forwards acknowledged after one append and fsync, moved into
// the database file later.
type JournalFigures struct {
	// Frames counts the groups appended; Migrations the times what the
	// journal held was moved into the database file.
	Frames, Migrations int64
	// PendingMessages and PendingBytes are what the journal holds now that
	// the file does not (bounded: a migration starts past 4,096 messages
	// or 768 KiB).
	PendingMessages int
	PendingBytes    int64
}

// WatchJournal exports the journal, read at scrape time from figures.
func (m *Metrics) WatchJournal(figures func() JournalFigures) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "agentd", Name: "store_journal_frames_total",
			Help: "Groups of writes acknowledged after one append and fsync of the journal."},
			func() float64 { return float64(figures().Frames) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "agentd", Name: "store_journal_migrations_total",
			Help: "Times the journal's content was moved into the database file."},
			func() float64 { return float64(figures().Migrations) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "agentd", Name: "store_journal_pending_messages",
			Help: "Queued messages held by the journal and not yet in the database file."},
			func() float64 { return float64(figures().PendingMessages) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "agentd", Name: "store_journal_pending_bytes",
			Help: "Payload bytes of the messages held by the journal and not yet in the database file."},
			func() float64 { return float64(figures().PendingBytes) }),
	)
}

// PoolFigures describe a database connection pool (store.driver postgres).
type PoolFigures struct {
	// Total, Idle and Acquired are the connections now: open, idle, in use.
	Total, Idle, Acquired int32
	// Max is the pool's size.
	Max int32
	// Acquires counts the connections taken from the pool; Waits those for
	// which a caller had to wait (none was idle); WaitSeconds the time
	// spent acquiring, in all.
	Acquires, Waits int64
	WaitSeconds     float64
}

// WatchPool exports the database connection pool, read at scrape time from
// figures.
func (m *Metrics) WatchPool(figures func() PoolFigures) {
	gauge := func(name, help string, v func(PoolFigures) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "agentd", Name: name, Help: help},
			func() float64 { return v(figures()) })
	}
	counter := func(name, help string, v func(PoolFigures) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "agentd", Name: name, Help: help},
			func() float64 { return v(figures()) })
	}
	m.reg.MustRegister(
		gauge("db_pool_connections", "Open database connections.", func(f PoolFigures) float64 { return float64(f.Total) }),
		gauge("db_pool_idle_connections", "Idle database connections.", func(f PoolFigures) float64 { return float64(f.Idle) }),
		gauge("db_pool_acquired_connections", "Database connections in use.", func(f PoolFigures) float64 { return float64(f.Acquired) }),
		gauge("db_pool_max_connections", "The database connection pool's size (store.postgres.max_conns).", func(f PoolFigures) float64 { return float64(f.Max) }),
		counter("db_pool_acquires_total", "Connections taken from the database pool.", func(f PoolFigures) float64 { return float64(f.Acquires) }),
		counter("db_pool_waits_total", "Connections taken from the pool after waiting (none was idle): a pool too small if it grows.", func(f PoolFigures) float64 { return float64(f.Waits) }),
		counter("db_pool_acquire_seconds_total", "Time spent taking connections from the database pool.", func(f PoolFigures) float64 { return f.WaitSeconds }),
	)
}

// SharedFigures describe the coordination of instances sharing one
// database (store.driver postgres).
type SharedFigures struct {
	// Connected is whether the signal listener is connected.
	Connected bool
	// Received counts the signals of other instances received;
	// Reconnects the times the listener reconnected after losing its
	// connection.
	Received, Reconnects int64
	// Takeovers counts the leases (sweeps, spooled mails) taken over from
	// another instance whose lease had expired.
	Takeovers int64
	// OutboxTakeovers counts the outbound messages claimed after another
	// instance's claim on them expired.
	OutboxTakeovers int64
	// ReadThroughs counts the mediator registry's store reads of grants
	// and registrations missing from its index.
	ReadThroughs int64
}

// WatchShared exports the coordination with other instances, read at
// scrape time from figures.
func (m *Metrics) WatchShared(figures func() SharedFigures) {
	gauge := func(name, help string, v func(SharedFigures) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "agentd", Name: name, Help: help},
			func() float64 { return v(figures()) })
	}
	counter := func(name, help string, v func(SharedFigures) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "agentd", Name: name, Help: help},
			func() float64 { return v(figures()) })
	}
	m.reg.MustRegister(
		gauge("db_signal_connected", "1 while the listener for other instances' signals (LISTEN/NOTIFY) is connected.", func(f SharedFigures) float64 {
			if f.Connected {
				return 1
			}
			return 0
		}),
		counter("db_signals_received_total", "Signals of other instances received (LISTEN/NOTIFY).", func(f SharedFigures) float64 { return float64(f.Received) }),
		counter("db_signal_reconnects_total", "Reconnections of the signal listener after it lost its connection.", func(f SharedFigures) float64 { return float64(f.Reconnects) }),
		counter("db_lease_takeovers_total", "Leases (sweeps, spooled mails) taken over from another instance whose lease had expired.", func(f SharedFigures) float64 { return float64(f.Takeovers) }),
		counter("db_outbox_takeovers_total", "Outbound messages claimed for delivery after another instance's claim on them expired (it crashed or stalled).", func(f SharedFigures) float64 { return float64(f.OutboxTakeovers) }),
		counter("mediator_registry_read_throughs_total", "Store reads of mediation grants and registrations missing from the registry's index.", func(f SharedFigures) float64 { return float64(f.ReadThroughs) }),
	)
}
