package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentd/agentd/agent"
)

// signalChannel is the one PostgreSQL notification channel of agentd. A
// payload is "<owner> <topic> <data>": the sending DB's owner id (a DB
// ignores its own signals), the topic and what changed.
const signalChannel = "agentd_signal"

// Topics the commit signals by itself (see DB.Signals).
const (
	// TopicQueue is a commit that queued messages; the payload is their
	// recipient (one signal per recipient and transaction).
	TopicQueue = agent.SignalQueue
	// TopicRecord is a commit that wrote or deleted a record of a kind
	// given to Signals.Watch; the payload is the kind, a unit separator
	// (0x1f) and the id.
	TopicRecord = agent.SignalRecord
)

// maxSignalData bounds a signal's data: PostgreSQL refuses payloads of
// 8000 bytes or more, and identifiers are bounded to 1 KiB anyway.
const maxSignalData = 7000

// Signals carries agent.Signals over PostgreSQL's LISTEN/NOTIFY: the
// instances sharing a database learn of each other's commits within
// milliseconds. Get it from DB.Signals. It listens on a dedicated
// connection (outside the pool), reconnecting with a backoff when that
// connection breaks, and runs the OnResync functions after each
// connection, the first included. Signals are sent in the transaction
// that commits the change (pg_notify), so they are delivered at its commit
// and dropped with its rollback (a refused work's savepoint included).
type Signals struct {
	db *DB

	mu      sync.RWMutex
	subs    map[string][]func(string)
	resync  []func()
	watched atomic.Pointer[map[string]bool]

	startOnce sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
	connected atomic.Bool

	received, reconnects atomic.Int64

	syncMu sync.Mutex
	syncs  map[string]chan struct{} // Sync tokens sent, awaiting their return
}

// topicSync is the topic of the signals an instance sends itself (Sync).
const topicSync = "sync"

var _ agent.Signals = (*Signals)(nil)

// Signals returns the database's signals. Commits signal queued messages
// (TopicQueue) and writes of watched record kinds (TopicRecord) once this
// has been called; the listener starts with the first Subscribe or
// OnResync.
func (db *DB) Signals() *Signals {
	db.signals.db = db
	db.signalsOn.Store(true)
	return &db.signals
}

// Watch makes commits signal writes and deletes of records of the kinds
// (TopicRecord), for instances that cache them.
func (s *Signals) Watch(kinds ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]bool{}
	if old := s.watched.Load(); old != nil {
		for k := range *old {
			m[k] = true
		}
	}
	for _, k := range kinds {
		m[k] = true
	}
	s.watched.Store(&m)
}

// Subscribe implements agent.Signals.
func (s *Signals) Subscribe(topic string, fn func(payload string)) {
	s.mu.Lock()
	if s.subs == nil {
		s.subs = map[string][]func(string){}
	}
	s.subs[topic] = append(s.subs[topic], fn)
	s.mu.Unlock()
	s.start()
}

// OnResync implements agent.Signals.
func (s *Signals) OnResync(fn func()) {
	s.mu.Lock()
	s.resync = append(s.resync, fn)
	s.mu.Unlock()
	s.start()
}

// Signal implements agent.Signals.
func (s *Signals) Signal(ctx context.Context, topic, payload string) error {
	_, err := s.db.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, signalChannel, s.payload(topic, payload))
	return err
}

// Sync returns once every signal committed before it was called has been
// received and handed to the subscribers: it sends a signal to itself and
// waits for it to come back (PostgreSQL delivers notifications in commit
// order). It is for reading one's writes across instances: a client told
// by instance B that a change committed, then asking instance A, finds
// the change in A's caches. It fails when the listener is not connected
// (the OnResync functions catch up when it is back) or ctx ends first.
func (s *Signals) Sync(ctx context.Context) error {
	if !s.connected.Load() {
		return fmt.Errorf("postgres: signal listener not connected: %w", agent.ErrUnavailable)
	}
	var raw [12]byte
	_, _ = rand.Read(raw[:])
	token := hex.EncodeToString(raw[:])
	back := make(chan struct{})
	s.syncMu.Lock()
	if s.syncs == nil {
		s.syncs = map[string]chan struct{}{}
	}
	s.syncs[token] = back
	s.syncMu.Unlock()
	defer func() {
		s.syncMu.Lock()
		delete(s.syncs, token)
		s.syncMu.Unlock()
	}()
	if _, err := s.db.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, signalChannel, s.payload(topicSync, token)); err != nil {
		return unavailable(err)
	}
	select {
	case <-back:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// synced ends the Sync that sent token, if it still waits.
func (s *Signals) synced(token string) {
	s.syncMu.Lock()
	if back, ok := s.syncs[token]; ok {
		close(back)
		delete(s.syncs, token)
	}
	s.syncMu.Unlock()
}

// Stats returns how many signals of other instances were received and how
// often the listening connection was re-established after a loss.
func (s *Signals) Stats() (received, reconnects int64) {
	return s.received.Load(), s.reconnects.Load()
}

// Connected reports whether the listening connection is up.
func (s *Signals) Connected() bool { return s.connected.Load() }

func (s *Signals) payload(topic, data string) string {
	return s.db.owner + " " + topic + " " + data
}

func (s *Signals) start() {
	s.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel, s.done = cancel, make(chan struct{})
		go s.run(ctx)
	})
}

// stop ends the listener (DB.Close).
func (s *Signals) stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

// Backoff of the listener's reconnections.
const (
	listenMinBackoff = 50 * time.Millisecond
	listenMaxBackoff = 2 * time.Second
)

func (s *Signals) run(ctx context.Context) {
	defer close(s.done)
	backoff := listenMinBackoff
	first := true
	for ctx.Err() == nil {
		err := s.listen(ctx, func() {
			backoff = listenMinBackoff
			if !first {
				s.reconnects.Add(1)
			}
			first = false
		})
		s.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		if s.db.log != nil {
			s.db.log.Warn("postgres: the signal listener lost its connection; reconnecting", "err", redactErr(err, s.db.url), "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, listenMaxBackoff)
	}
}

// listen connects, LISTENs, runs the resync functions (connected is
// called first) and dispatches signals until the connection fails.
func (s *Signals) listen(ctx context.Context, connected func()) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, s.db.pool.Config().ConnConfig.Copy())
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+signalChannel); err != nil {
		return err
	}
	s.connected.Store(true)
	connected()
	s.mu.RLock()
	resync := append([]func(){}, s.resync...)
	s.mu.RUnlock()
	for _, fn := range resync {
		fn()
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		owner, rest, ok := strings.Cut(n.Payload, " ")
		if !ok {
			continue
		}
		topic, data, ok := strings.Cut(rest, " ")
		if !ok {
			continue
		}
		if owner == s.db.owner {
			if topic == topicSync {
				s.synced(data)
			}
			continue
		}
		s.received.Add(1)
		s.mu.RLock()
		subs := s.subs[topic]
		s.mu.RUnlock()
		for _, fn := range subs {
			fn(data)
		}
	}
}

// signalsOf returns the payloads the commit of w sends (see DB.Signals),
// without duplicates.
func (db *DB) signalsOf(w *agent.Work) []string {
	if !db.signalsOn.Load() {
		return nil
	}
	s := &db.signals
	var out []string
	seen := map[string]bool{}
	add := func(topic, data string) {
		if len(data) > maxSignalData {
			return
		}
		p := s.payload(topic, data)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, m := range w.Queued {
		add(TopicQueue, m.Recipient)
	}
	if watched := s.watched.Load(); watched != nil {
		for _, wr := range w.Writes {
			if (*watched)[wr.Kind] {
				add(TopicRecord, wr.Kind+"\x1f"+wr.ID)
			}
		}
	}
	return out
}
