package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/agentd/agentd/agent"
)

// errClosed is returned for works submitted after Close.
var errClosed = errors.New("postgres: database closed")

// groupTimeout bounds one group commit, which runs on its own context so
// that one caller giving up does not abort the others' works.
const groupTimeout = 30 * time.Second

// maxGroupRetries bounds how often a group that lost a deadlock or a
// serialization failure (nothing of it committed) is run again.
const maxGroupRetries = 5

type commitCall struct {
	ctx  context.Context
	work *prepared
	done chan error
}

type committer struct {
	mu       sync.RWMutex // guards closed and sends on calls
	closed   bool
	calls    chan *commitCall
	maxBatch int
	wg       sync.WaitGroup

	groups, works atomic.Int64
	merged        atomic.Int64 // works committed as part of a merged work
}

func (db *DB) startCommitter(maxBatch, n int) {
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatchSize
	}
	if n <= 0 {
		n = DefaultCommitters
	}
	c := &db.commit
	c.calls = make(chan *commitCall, maxBatch)
	c.maxBatch = maxBatch
	for range n {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			db.commitLoop()
		}()
	}
}

func (db *DB) stopCommitter() {
	c := &db.commit
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.calls)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// CommitStats returns how many group commits ran and how many units of work
// they held (for tests and metrics: works/groups is the batching factor).
func (db *DB) CommitStats() (groups, works int64) {
	return db.commit.groups.Load(), db.commit.works.Load()
}

func (db *DB) commitLoop() {
	c := &db.commit
	for first := range c.calls {
		group := []*commitCall{first}
	fill:
		for len(group) < c.maxBatch {
			select {
			case call, ok := <-c.calls:
				if !ok {
					break fill
				}
				group = append(group, call)
			default:
				break fill
			}
		}
		db.commitGroup(group)
	}
}

// commitGroup applies the group's works in one transaction, each under a
// savepoint, and tells each caller its outcome.
func (db *DB) commitGroup(group []*commitCall) {
	live := group[:0:0]
	for _, call := range group {
		if err := call.ctx.Err(); err != nil {
			call.done <- err
			continue
		}
		live = append(live, call)
	}
	if len(live) == 0 {
		return
	}
	db.commit.groups.Add(1)
	db.commit.works.Add(int64(len(live)))
	results := make([]error, len(live))
	var err error
	for attempt := 0; ; attempt++ {
		err = db.runGroup(live, results)
		if err == nil || attempt >= maxGroupRetries || !isCode(err, codeDeadlockDetected, codeSerializationFailure) {
			break
		}
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
	db.health.record(err)
	err = unavailable(err)
	for i, call := range live {
		if err != nil {
			call.done <- err
		} else {
			call.done <- results[i]
		}
	}
}

// runGroup runs one attempt at the group's transaction. A nil return means
// it committed, with each work's outcome in results.
func (db *DB) runGroup(live []*commitCall, results []error) error {
	clear(results) // from an attempt that lost a deadlock
	if done, err := db.runGroupPipelined(live); done || err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	if err := takeLocks(ctx, tx, live); err != nil {
		return err
	}
	single := len(live) == 1
	prev := ""
	for i, call := range live {
		if single {
			// A group of one needs no savepoint: a refusal rolls the
			// whole transaction back.
			refused, err := call.work.apply(ctx, tx)
			if err != nil && isWorkError(err) {
				results[i] = err // the deferred rollback undoes the work
				return nil
			}
			if err != nil {
				return err
			}
			if refused != nil {
				results[i] = refused
				return nil
			}
			break
		}
		// Each work under a savepoint of its own, set (and the previous
		// one released) in the work's own round trip.
		name := "w" + strconv.Itoa(i)
		pre := []string{"SAVEPOINT " + name}
		if prev != "" {
			pre = []string{"RELEASE SAVEPOINT " + prev, "SAVEPOINT " + name}
		}
		prev = name
		refused, err := call.work.apply(ctx, tx, pre...)
		switch {
		case err != nil && !isWorkError(err):
			return err
		case err != nil || refused != nil:
			if _, rerr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+name); rerr != nil {
				return fmt.Errorf("postgres: rollback to savepoint: %w", rerr)
			}
			results[i] = refused
			if err != nil {
				results[i] = err
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// unreachable reports whether a group's failure is the database's being
// out of reach (a refused or lost connection, a server shutting down or
// out of connections, a timeout) rather than an error PostgreSQL reported
// about the statements.
func unreachable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || pe.Code == "53300"
	}
	return !errors.Is(err, context.Canceled)
}

// unavailable wraps err with agent.ErrUnavailable when it is the
// database's being out of reach (unreachable).
func unavailable(err error) error {
	if err == nil || !unreachable(err) || errors.Is(err, agent.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", agent.ErrUnavailable, err)
}

// isWorkError reports whether err is the failure of one work's statement
// (a taken id, bad data, a value too large: SQLSTATE classes 22 and 23,
// and 54000), which fails that work
// only, as opposed to a failure of the transaction or the database (a lost
// connection, a deadlock, a full disk), which fails the group.
func isWorkError(err error) bool {
	if errors.Is(err, ErrExists) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23") ||
		pe.Code == "54000") // program_limit_exceeded: a value too large for an index
}

// submit hands a prepared work to the group committer and waits for its
// outcome.
func (db *DB) submit(ctx context.Context, p *prepared) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	call := &commitCall{ctx: ctx, work: p, done: make(chan error, 1)}
	c := &db.commit
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return errClosed
	}
	select {
	case c.calls <- call:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	// Once handed over, the work is committed or not regardless of ctx:
	// wait for the outcome so that the caller never returns before it
	// is known.
	return <-call.done
}

// Commit applies a unit of work in one group-committed transaction: it
// locks the records the work reads and writes, then checks that every
// record the work read is unchanged (agent.ErrConflict), that no replay key
// is recorded (agent.ErrReplay), that every recipient stays within its
// queue limits (agent.ErrQuota) and that the outbox stays within
// w.OutboxLimits (agent.ErrOutboxFull), then stores the record writes, the
// outbound messages (an id already taken fails with ErrExists), the queued
// messages and the replay keys. It returns once the transaction has
// committed; on any refusal or error nothing of the work is stored, and the
// failure does not affect the other works of the group. After the commit,
// the queued messages have their IDs.
func (db *DB) Commit(ctx context.Context, w *agent.Work) error {
	p, err := prepare(w, time.Now())
	if err != nil {
		return err
	}
	p.signals = db.signalsOf(w)
	if err := db.submit(ctx, p); err != nil {
		return err
	}
	for i, m := range w.Queued {
		m.ID = formatQueueID(p.seqs[i])
	}
	return nil
}

// prepared is a unit of work checked and laid out as the statements'
// arguments.
type prepared struct {
	now   int64
	locks []int64 // advisory-lock keys: records read or written, replay keys, recipients

	readKinds, readIDs [][]byte
	reads              []agent.RecordRead

	putKinds, putIDs, putValues [][]byte
	delKinds, delIDs            [][]byte

	replayKeys [][]byte
	replayExp  []int64

	outs   []*agent.OutboundMessage
	limits agent.OutboxLimits

	queued      []*agent.QueuedMessage
	queueLimits agent.QueueLimits
	// recipientLimits, when set (merged works), are the limits each
	// recipient's total is checked against instead of queueLimits.
	recipientLimits []recipientLimit
	seqs            []int64 // assigned by apply

	signals []string // pg_notify payloads on signalChannel (DB.Signals)
}

// lockKey is an advisory-lock key: a domain byte ('r' a record, 'p' a
// replay key, 'q' a queue recipient's totals) and a name, hashed.
func lockKey(domain byte, parts ...string) int64 {
	h := fnv.New64a()
	h.Write([]byte{domain})
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return int64(h.Sum64())
}

func recordLock(kind, id string) int64 { return lockKey('r', kind, id) }

// takeLocks takes, in tx, the advisory locks that the group's works need,
// all at once and in one global order (the outbox-limit lock first, then
// the keys in ascending order), so that transactions of agentd never wait
// for each other in a cycle, whichever works they group.
func takeLocks(ctx context.Context, tx pgx.Tx, live []*commitCall) error {
	b := &pgx.Batch{}
	n := queueLocks(b, live)
	if n == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, b)
	var err error
	for range n {
		if _, e := br.Exec(); e != nil && err == nil {
			err = e
		}
	}
	if cerr := br.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// queueLocks adds to b the statements that take the group's locks (see
// takeLocks) and returns how many it added.
func queueLocks(b *pgx.Batch, live []*commitCall) int {
	var keys []int64
	outboxCap := false
	for _, call := range live {
		keys = append(keys, call.work.locks...)
		outboxCap = outboxCap || (len(call.work.outs) > 0 && call.work.limits != (agent.OutboxLimits{}))
	}
	n := 0
	if outboxCap {
		b.Queue(`SELECT pg_advisory_xact_lock($1, $2)`, lockSpace, lockOutboxCap)
		n++
	}
	if len(keys) > 0 {
		slices.Sort(keys)
		keys = slices.Compact(keys)
		b.Queue(`SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, keys)
		n++
	}
	return n
}

// runGroupPipelined is the common case of a group: its locks and every
// work's statements go to the server in one pipeline, in one transaction,
// without savepoints, and it commits if no work was refused or failed. If
// one was, nothing is committed and it reports false: the group is then
// run again with a savepoint per work (runGroup), which settles each
// work's outcome on its own. A failure of the commit itself is returned
// (the group may or may not have committed).
func (db *DB) runGroupPipelined(live []*commitCall) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	b := &pgx.Batch{}
	locks := queueLocks(b, live)
	var reads []func(pgx.BatchResults) (error, error)
	m, rest := mergeable(live)
	if m != nil {
		read := m.p.queueOn(b)
		reads = append(reads, func(br pgx.BatchResults) (error, error) {
			refused, err := read(br)
			if refused == nil && err == nil {
				m.scatter()
			}
			return refused, err
		})
	}
	for _, call := range rest {
		reads = append(reads, call.work.queueOn(b))
	}
	br := tx.SendBatch(ctx, b)
	clean := true
	for range locks {
		if _, err := br.Exec(); err != nil {
			clean = false
		}
	}
	for _, read := range reads {
		if refused, err := read(br); refused != nil || err != nil {
			clean = false // and, after a failed statement, the transaction is aborted
		}
	}
	if err := br.Close(); err != nil {
		clean = false
	}
	if !clean {
		return false, nil
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("postgres: commit: %w", err)
	}
	if m != nil {
		db.commit.merged.Add(int64(len(m.works)))
	}
	return true, nil
}

// merged is the works of a group that only read records, remember replay
// keys, queue messages and signal (a mediator's forwards), laid out as one work, so
// that the group sends one statement of each kind for all of them rather
// than one per work: most of the server's work per forward is per
// statement. Its outcome is all or nothing (runGroupPipelined); the
// refusal of one of the works makes the group run again with a savepoint
// per work.
type merged struct {
	works []*prepared
	p     prepared
}

// mergeable splits a group into the works that can be merged (see merged;
// nil when fewer than two) and the rest. Works that write records or
// outbound messages are not merged: a later work's check must see them.
// Reads merge: no merged work writes, so each read sees what it would
// have seen alone (the group's other works run after the merged ones). A work whose replay key another
// mergeable work has is left with the rest, since one statement cannot
// insert a key twice.
func mergeable(live []*commitCall) (*merged, []*commitCall) {
	var cand []*prepared
	var rest []*commitCall
	keys := map[string]bool{}
	for _, call := range live {
		w := call.work
		simple := len(w.putIDs) == 0 && len(w.delIDs) == 0 && len(w.outs) == 0
		if simple {
			for _, k := range w.replayKeys {
				if keys[string(k)] {
					simple = false
					break
				}
			}
		}
		if !simple {
			rest = append(rest, call)
			continue
		}
		for _, k := range w.replayKeys {
			keys[string(k)] = true
		}
		cand = append(cand, w)
	}
	if len(cand) < 2 {
		return nil, live
	}
	m := &merged{works: cand, p: prepared{now: cand[0].now}}
	signals := map[string]bool{}
	for _, w := range cand {
		m.p.reads = append(m.p.reads, w.reads...)
		m.p.readKinds = append(m.p.readKinds, w.readKinds...)
		m.p.readIDs = append(m.p.readIDs, w.readIDs...)
		m.p.replayKeys = append(m.p.replayKeys, w.replayKeys...)
		m.p.replayExp = append(m.p.replayExp, w.replayExp...)
		m.p.queued = append(m.p.queued, w.queued...)
		for _, q := range w.queued {
			m.p.recipientLimits = append(m.p.recipientLimits, recipientLimit{q.Recipient, w.queueLimits})
		}
		for _, sig := range w.signals {
			if !signals[sig] {
				signals[sig] = true
				m.p.signals = append(m.p.signals, sig)
			}
		}
	}
	return m, rest
}

// scatter hands the queue ids the merged statement assigned to the works
// their messages came from.
func (m *merged) scatter() {
	seqs := m.p.seqs
	for _, w := range m.works {
		n := len(w.queued)
		w.seqs = append(w.seqs[:0], seqs[:n]...)
		seqs = seqs[n:]
	}
}

func prepare(w *agent.Work, now time.Time) (*prepared, error) {
	p := &prepared{now: nanos(now), reads: w.Reads, limits: w.OutboxLimits,
		queued: w.Queued, queueLimits: w.QueueLimits}
	locks := map[int64]bool{}
	for _, r := range w.Reads {
		p.readKinds = append(p.readKinds, []byte(r.Kind))
		p.readIDs = append(p.readIDs, []byte(r.ID))
		locks[recordLock(r.Kind, r.ID)] = true
	}
	// Only the last write to a record counts.
	type rk struct{ kind, id string }
	last := map[rk]int{}
	for i, wr := range w.Writes {
		if err := checkID("record kind", wr.Kind); err != nil {
			return nil, err
		}
		if err := checkID("record id", wr.ID); err != nil {
			return nil, err
		}
		last[rk{wr.Kind, wr.ID}] = i
		locks[recordLock(wr.Kind, wr.ID)] = true
	}
	for i, wr := range w.Writes {
		if last[rk{wr.Kind, wr.ID}] != i {
			continue
		}
		if wr.Delete {
			p.delKinds = append(p.delKinds, []byte(wr.Kind))
			p.delIDs = append(p.delIDs, []byte(wr.ID))
			continue
		}
		v := wr.Value
		if v == nil {
			v = []byte{}
		}
		p.putKinds = append(p.putKinds, []byte(wr.Kind))
		p.putIDs = append(p.putIDs, []byte(wr.ID))
		p.putValues = append(p.putValues, v)
	}

	// Replay keys, sorted (so that two works inserting the same keys wait
	// on each other in one order) and without duplicates.
	exp := map[string]int64{}
	for _, r := range w.Replay {
		if r.Key == "" {
			return nil, errors.New("postgres: empty replay key")
		}
		k := string(replayKey(r.Key))
		if e, ok := exp[k]; !ok || nanos(r.Until) > e {
			exp[k] = nanos(r.Until)
		}
	}
	keys := make([]string, 0, len(exp))
	for k := range exp {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p.replayKeys = append(p.replayKeys, []byte(k))
		p.replayExp = append(p.replayExp, exp[k])
		locks[lockKey('p', k)] = true
	}

	for _, m := range w.Outbound {
		if err := checkOutbound(m); err != nil {
			return nil, err
		}
		p.outs = append(p.outs, cloneOutbound(m))
	}
	for _, m := range w.Queued {
		if err := checkRecipient(m.Recipient); err != nil {
			return nil, err
		}
		locks[lockKey('q', m.Recipient)] = true
	}
	for k := range locks {
		p.locks = append(p.locks, k)
	}
	return p, nil
}

// apply sends the work's statements to tx in one round trip (a pipeline of
// statements, after the statements pre: the savepoint's), then reads their
// results in order. tx holds the work's locks (takeLocks). Every statement
// runs, the checks' included; refused is the work's first refusal
// (ErrConflict, ErrReplay, ErrQuota, ErrOutboxFull) and err the first
// statement's failure; after either the caller rolls tx back (to the
// work's savepoint), which undoes what the statements did. The checks come
// before the writes, so they see the state the work is applied to.
func (p *prepared) apply(ctx context.Context, tx pgx.Tx, pre ...string) (refused, err error) {
	b := &pgx.Batch{}
	read := p.queueOn(b, pre...)
	br := tx.SendBatch(ctx, b)
	refused, err = read(br)
	if cerr := br.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return refused, nil
}

// queueOn adds the work's statements to b (after the statements pre) and
// returns the function that reads their results from the batch's results,
// in order, returning the work's first refusal and its first statement's
// failure (see apply).
func (p *prepared) queueOn(b *pgx.Batch, pre ...string) func(br pgx.BatchResults) (refused, err error) {
	var refused error
	var readers []func(br pgx.BatchResults) error
	refuse := func(err error) {
		if refused == nil {
			refused = err
		}
	}
	exec := func(sql string, args ...any) {
		b.Queue(sql, args...)
		readers = append(readers, func(br pgx.BatchResults) error { _, err := br.Exec(); return err })
	}
	query := func(scan func(rows pgx.Rows) error, sql string, args ...any) {
		b.Queue(sql, args...)
		readers = append(readers, func(br pgx.BatchResults) error {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				if err := scan(rows); err != nil {
					return err
				}
			}
			return rows.Err()
		})
	}
	for _, sql := range pre {
		exec(sql)
	}
	if len(p.reads) > 0 {
		query(func(rows pgx.Rows) error {
			var i int64
			var v []byte
			if err := rows.Scan(&i, &v); err != nil {
				return err
			}
			r := p.reads[i-1]
			found := v != nil
			if r.Missing != !found || (found && !bytes.Equal(v, r.Value)) {
				refuse(fmt.Errorf("postgres: record %s/%s: %w", r.Kind, r.ID, agent.ErrConflict))
			}
			return nil
		}, `SELECT k.i, r.value FROM unnest($1::bytea[], $2::bytea[]) WITH ORDINALITY AS k(kind, id, i)
			LEFT JOIN agentd_records r ON r.kind = k.kind AND r.id = k.id`, p.readKinds, p.readIDs)
	}
	if len(p.replayKeys) > 0 {
		b.Queue(`INSERT INTO agentd_replay (key, expires)
			SELECT * FROM unnest($1::bytea[], $2::bigint[])
			ON CONFLICT (key) DO UPDATE SET expires = EXCLUDED.expires WHERE agentd_replay.expires < $3`,
			p.replayKeys, p.replayExp, p.now)
		readers = append(readers, func(br pgx.BatchResults) error {
			tag, err := br.Exec()
			if err == nil && tag.RowsAffected() != int64(len(p.replayKeys)) {
				refuse(fmt.Errorf("postgres: %w", agent.ErrReplay))
			}
			return err
		})
	}
	if len(p.queued) > 0 {
		p.queueQuota(query, refuse)
	}
	if len(p.outs) > 0 && p.limits != (agent.OutboxLimits{}) {
		p.outboxLimits(query, refuse)
	}
	if len(p.delIDs) > 0 {
		exec(`DELETE FROM agentd_records r USING unnest($1::bytea[], $2::bytea[]) AS d(kind, id)
			WHERE r.kind = d.kind AND r.id = d.id`, p.delKinds, p.delIDs)
	}
	if len(p.putIDs) > 0 {
		exec(`INSERT INTO agentd_records (kind, id, value)
			SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[])
			ON CONFLICT (kind, id) DO UPDATE SET value = EXCLUDED.value`, p.putKinds, p.putIDs, p.putValues)
	}
	if len(p.outs) > 0 {
		sql, args := outboundInsert(p.outs)
		b.Queue(sql, args...)
		readers = append(readers, func(br pgx.BatchResults) error { _, err := br.Exec(); return outboundErr(err) })
	}
	if len(p.queued) > 0 {
		p.seqs = p.seqs[:0]
		query(func(rows pgx.Rows) error {
			var seq int64
			err := rows.Scan(&seq)
			p.seqs = append(p.seqs, seq)
			return err
		}, queueInsert, p.queueArgs()...)
	}
	if len(p.signals) > 0 {
		// Delivered when the transaction commits; dropped with the
		// work's savepoint when it is refused.
		exec(`SELECT pg_notify($1, s) FROM unnest($2::text[]) AS s`, signalChannel, p.signals)
	}

	return func(br pgx.BatchResults) (error, error) {
		var err error
		for _, read := range readers {
			if rerr := read(br); rerr != nil && err == nil {
				err = rerr
			}
		}
		if err != nil {
			return nil, err
		}
		if refused == nil && len(p.seqs) != len(p.queued) {
			return nil, fmt.Errorf("postgres: got %d queue ids for %d messages", len(p.seqs), len(p.queued))
		}
		return refused, nil
	}
}

// recipientLimit is the queue limits one work puts on a recipient.
type recipientLimit struct {
	recipient string
	limits    agent.QueueLimits
}

// queueQuota adds the statement that adds the work's messages to their
// recipients' totals (locking the rows) and checks the totals against the
// limits.
func (p *prepared) queueQuota(query func(func(pgx.Rows) error, string, ...any), refuse func(error)) {
	type add struct{ n, size int64 }
	per := map[string]*add{}
	for _, m := range p.queued {
		a := per[m.Recipient]
		if a == nil {
			a = &add{}
			per[m.Recipient] = a
		}
		a.n++
		a.size += int64(len(m.Payload))
	}
	rcpts := make([]string, 0, len(per))
	for r := range per {
		rcpts = append(rcpts, r)
	}
	slices.Sort(rcpts)
	ns, sizes := make([]int64, len(rcpts)), make([]int64, len(rcpts))
	for i, r := range rcpts {
		ns[i], sizes[i] = per[r].n, per[r].size
	}
	limits := func(string) []agent.QueueLimits { return []agent.QueueLimits{p.queueLimits} }
	if p.recipientLimits != nil {
		byRecipient := map[string][]agent.QueueLimits{}
		for _, rl := range p.recipientLimits {
			byRecipient[rl.recipient] = append(byRecipient[rl.recipient], rl.limits)
		}
		limits = func(r string) []agent.QueueLimits { return byRecipient[r] }
	}
	query(func(rows pgx.Rows) error {
		var r string
		var n, size int64
		if err := rows.Scan(&r, &n, &size); err != nil {
			return err
		}
		a := per[r]
		for _, lim := range limits(r) {
			if lim.MaxMessages > 0 && n > int64(lim.MaxMessages) {
				refuse(fmt.Errorf("%w: %s has %d messages queued, the limit is %d", agent.ErrQuota, r, n-a.n, lim.MaxMessages))
			}
			if lim.MaxBytes > 0 && size > lim.MaxBytes {
				refuse(fmt.Errorf("%w: %s has %d bytes queued, the limit is %d", agent.ErrQuota, r, size-a.size, lim.MaxBytes))
			}
		}
		return nil
	}, `INSERT INTO agentd_queue_recipients (recipient, messages, bytes)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
		ON CONFLICT (recipient) DO UPDATE SET messages = agentd_queue_recipients.messages + EXCLUDED.messages,
			bytes = agentd_queue_recipients.bytes + EXCLUDED.bytes
		RETURNING recipient, messages, bytes`, rcpts, ns, sizes)
}

// outboxLimits adds the statement that counts the pending messages, in
// total and for the work's endpoints, and checks them against the limits.
// The group holds the outbox-limit lock (takeLocks): the counts stay true
// until it commits.
func (p *prepared) outboxLimits(query func(func(pgx.Rows) error, string, ...any), refuse func(error)) {
	adding := map[string]int64{}
	for _, m := range p.outs {
		adding[m.Endpoint]++
	}
	eps := make([]string, 0, len(adding))
	for ep := range adding {
		eps = append(eps, ep)
	}
	lim := p.limits
	query(func(rows pgx.Rows) error {
		var ep *string
		var n int64
		if err := rows.Scan(&ep, &n); err != nil {
			return err
		}
		switch {
		case ep == nil:
			if lim.MaxPending > 0 && n+int64(len(p.outs)) > int64(lim.MaxPending) {
				refuse(fmt.Errorf("postgres: %d messages pending, limit %d: %w", n, lim.MaxPending, agent.ErrOutboxFull))
			}
		case lim.MaxPendingPerDestination > 0 && n+adding[*ep] > int64(lim.MaxPendingPerDestination):
			refuse(fmt.Errorf("postgres: %d messages pending for one endpoint, limit %d: %w", n, lim.MaxPendingPerDestination, agent.ErrOutboxFull))
		}
		return nil
	}, `SELECT NULL::text, count(*) FROM agentd_outbox WHERE dead_at IS NULL AND $2
		UNION ALL
		SELECT e.ep, (SELECT count(*) FROM agentd_outbox o WHERE o.dead_at IS NULL AND o.endpoint = e.ep)
		FROM unnest($1::text[]) AS e(ep) WHERE $3`, eps, lim.MaxPending > 0, lim.MaxPendingPerDestination > 0)
}

// queueInsert inserts the queued messages with ids drawn from the sequence
// and returns the ids in the messages' order.
const queueInsert = `WITH ids AS MATERIALIZED (
		SELECT nextval(pg_get_serial_sequence('agentd_queue', 'seq')) AS seq, g AS ord FROM generate_series(1, $1::int) AS g),
	ins AS (INSERT INTO agentd_queue (seq, recipient, payload, received, expires)
		SELECT ids.seq, u.recipient, u.payload, u.received, u.expires
		FROM unnest($2::text[], $3::bytea[], $4::bigint[], $5::bigint[]) WITH ORDINALITY AS u(recipient, payload, received, expires, ord)
		JOIN ids USING (ord))
	SELECT seq FROM ids ORDER BY ord`

func (p *prepared) queueArgs() []any {
	n := len(p.queued)
	rcpts, payloads := make([]string, n), make([][]byte, n)
	received, expires := make([]int64, n), make([]int64, n)
	now := fromNanos(p.now)
	for i, m := range p.queued {
		rcpts[i] = m.Recipient
		payloads[i] = m.Payload
		if payloads[i] == nil {
			payloads[i] = []byte{}
		}
		r := m.Received
		if r.IsZero() {
			r = now
		}
		received[i], expires[i] = nanos(r), nanos(m.Expires)
	}
	return []any{n, rcpts, payloads, received, expires}
}

// Queue ids are the sequence numbers in base 36, as in the bbolt store.
func formatQueueID(seq int64) string { return strconv.FormatInt(seq, 36) }

func parseQueueID(id string) (int64, bool) {
	if id == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(id, 36, 64)
	return n, err == nil && n > 0
}
