package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentd/agentd/agent"
)

// Queue is a mediator's message queue, implementing agent.QueueStore. Get
// it from DB.Queue.
//
// Messages are rows of agentd_queue, listed by the (recipient, received,
// seq) index; per-recipient totals are kept in agentd_queue_recipients in
// the same transactions, for quotas and Totals. Add is a unit of work (see
// DB.Commit): group-committed, and concurrent adds for one recipient, from
// any number of DBs, are serialized on its totals row, so a quota holds
// across instances. Every write is durable on return.
type Queue struct{ db *DB }

var _ agent.QueueStore = (*Queue)(nil)

func checkRecipient(r string) error {
	if err := checkID("queue recipient", r); err != nil {
		return err
	}
	return checkText("queue recipient", r)
}

// Add queues msgs in one group-committed transaction, assigning each an ID.
// Received defaults to now. If the batch would take a recipient over
// limits, nothing is stored and the error wraps agent.ErrQuota.
func (q *Queue) Add(ctx context.Context, msgs []*agent.QueuedMessage, limits agent.QueueLimits) error {
	if len(msgs) == 0 {
		return nil
	}
	w := agent.NewWork(nil)
	w.Queue(limits, msgs...)
	return q.db.Commit(ctx, w)
}

func dedupe(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}

// List returns up to limit messages queued for any of the recipients whose
// expiry is not before now, oldest first (by receive time, then queue id).
func (q *Queue) List(ctx context.Context, recipients []string, now time.Time, limit int) ([]*agent.QueuedMessage, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	if len(recipients) == 0 {
		return nil, nil
	}
	// One index scan per recipient, in the index's order, merged: unlike
	// a bitmap scan of all of them (the planner's choice for "recipient =
	// ANY"), an index scan marks the entries of deleted messages dead as
	// it passes them, so the next listing skips them rather than visiting
	// every delivered message's row until a vacuum (a live connection
	// lists after every message). "expires + 0" keeps the sweeper's
	// expiry index out of it.
	rows, err := q.db.pool.Query(ctx, `SELECT q.seq, q.recipient, q.payload, q.received, q.expires
		FROM unnest($1::text[]) AS r(recipient), LATERAL (
			SELECT * FROM agentd_queue WHERE recipient = r.recipient AND expires + 0 >= $2
			ORDER BY received, seq LIMIT $3) AS q
		ORDER BY q.received, q.seq LIMIT $3`, dedupe(recipients), nanos(now), limit)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []*agent.QueuedMessage
	for rows.Next() {
		var (
			m                  agent.QueuedMessage
			seq, recv, expires int64
		)
		if err := rows.Scan(&seq, &m.Recipient, &m.Payload, &recv, &expires); err != nil {
			return nil, err
		}
		m.ID, m.Received, m.Expires = formatQueueID(seq), fromNanos(recv), fromNanos(expires)
		if m.Payload == nil {
			m.Payload = []byte{}
		}
		out = append(out, &m)
	}
	return out, rows.Err()
}

// removed is what one statement deleted, per recipient.
type removed struct {
	recipients []string
	n, size    []int64
	total      int
}

// deleteAndAccount runs a DELETE … RETURNING recipient, length(payload)
// statement in tx and takes what it deleted off the recipients' totals.
func deleteAndAccount(ctx context.Context, tx pgx.Tx, sql string, args ...any) (int, error) {
	rows, err := tx.Query(ctx, `WITH d AS (`+sql+` RETURNING recipient, length(payload) AS size)
		SELECT recipient, count(*), coalesce(sum(size), 0)::bigint FROM d GROUP BY recipient ORDER BY recipient`, args...)
	if err != nil {
		return 0, err
	}
	var r removed
	for rows.Next() {
		var rc string
		var n, size int64
		if err := rows.Scan(&rc, &n, &size); err != nil {
			rows.Close()
			return 0, err
		}
		r.recipients = append(r.recipients, rc)
		r.n, r.size = append(r.n, n), append(r.size, size)
		r.total += int(n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if r.total == 0 {
		return 0, nil
	}
	// The recipients' locks, in the order group commits take them (sorted
	// keys), before their totals rows.
	locks := make([]int64, len(r.recipients))
	for i, rc := range r.recipients {
		locks[i] = lockKey('q', rc)
	}
	slices.Sort(locks)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, slices.Compact(locks)); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `UPDATE agentd_queue_recipients t SET messages = t.messages - d.n, bytes = t.bytes - d.size
		FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS d(recipient, n, size) WHERE t.recipient = d.recipient`,
		r.recipients, r.n, r.size); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM agentd_queue_recipients WHERE recipient = ANY($1) AND messages <= 0`, r.recipients); err != nil {
		return 0, err
	}
	return r.total, nil
}

func (q *Queue) deleteTx(ctx context.Context, sql string, args ...any) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, q.db.pool, func(tx pgx.Tx) error {
		var err error
		n, err = deleteAndAccount(ctx, tx, sql, args...)
		return err
	})
	return n, err
}

// Remove deletes the messages with the given ids that are queued for one of
// the recipients and returns how many it deleted; other ids are ignored.
func (q *Queue) Remove(ctx context.Context, recipients []string, ids []string) (int, error) {
	var seqs []int64
	for _, id := range ids {
		if s, ok := parseQueueID(id); ok {
			seqs = append(seqs, s)
		}
	}
	if len(seqs) == 0 || len(recipients) == 0 {
		return 0, nil
	}
	return q.deleteKnown(ctx, dedupe(recipients), `DELETE FROM agentd_queue WHERE recipient = ANY($1) AND seq = ANY($2)`, seqs)
}

// deleteKnown is deleteTx for a DELETE of messages of known recipients
// (its $1; args are $2…): the recipients' locks, the delete with the totals' update, and
// the removal of totals at zero go to the server in one round trip
// (a client acknowledges every message it is pushed: this runs as often
// as forwards do).
func (q *Queue) deleteKnown(ctx context.Context, recipients []string, sql string, args ...any) (int, error) {
	locks := make([]int64, len(recipients))
	for i, rc := range recipients {
		locks[i] = lockKey('q', rc)
	}
	slices.Sort(locks)
	var n int64
	err := pgx.BeginFunc(ctx, q.db.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, slices.Compact(locks))
		b.Queue(`WITH d AS (`+sql+` RETURNING recipient, length(payload) AS size),
			g AS (SELECT recipient, count(*) AS n, coalesce(sum(size), 0)::bigint AS size FROM d GROUP BY recipient),
			u AS (UPDATE agentd_queue_recipients t SET messages = t.messages - g.n, bytes = t.bytes - g.size
				FROM g WHERE t.recipient = g.recipient)
			SELECT coalesce(sum(n), 0)::bigint FROM g`, append([]any{recipients}, args...)...).QueryRow(func(row pgx.Row) error { return row.Scan(&n) })
		b.Queue(`DELETE FROM agentd_queue_recipients WHERE recipient = ANY($1) AND messages <= 0`, recipients)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return 0, unavailable(err)
	}
	return int(n), nil
}

// Stats describes the messages queued for the recipients, expired ones
// included until Sweep removes them.
func (q *Queue) Stats(ctx context.Context, recipients []string) (agent.QueueStats, error) {
	var st agent.QueueStats
	if len(recipients) == 0 {
		return st, nil
	}
	var oldest, newest *int64
	var n, size int64
	// The totals kept per recipient, and the oldest and newest message of
	// each read from the ends of its index (index scans: see List).
	err := q.db.pool.QueryRow(ctx, `SELECT coalesce(sum(t.messages), 0)::bigint, coalesce(sum(t.bytes), 0)::bigint,
		min((SELECT q.received FROM agentd_queue q WHERE q.recipient = t.recipient ORDER BY q.received, q.seq LIMIT 1)),
		max((SELECT q.received FROM agentd_queue q WHERE q.recipient = t.recipient ORDER BY q.received DESC, q.seq DESC LIMIT 1))
		FROM agentd_queue_recipients t WHERE t.recipient = ANY($1) AND t.messages > 0`, dedupe(recipients)).Scan(&n, &size, &oldest, &newest)
	if err != nil {
		return st, err
	}
	st.Messages, st.Bytes = int(n), size
	if oldest != nil {
		st.Oldest = fromNanos(*oldest)
	}
	if newest != nil {
		st.Newest = fromNanos(*newest)
	}
	return st, nil
}

// Totals describes the whole queue, from the per-recipient totals (one row
// per recipient with messages queued).
func (q *Queue) Totals(ctx context.Context) (agent.QueueTotals, error) {
	var n, size, rcpts int64
	err := q.db.pool.QueryRow(ctx, `SELECT coalesce(sum(messages), 0)::bigint, coalesce(sum(bytes), 0)::bigint, count(*)
		FROM agentd_queue_recipients WHERE messages > 0`).Scan(&n, &size, &rcpts)
	return agent.QueueTotals{Messages: int(n), Bytes: size, Recipients: int(rcpts)}, err
}

// Purge deletes every message queued for recipient and returns how many.
func (q *Queue) Purge(ctx context.Context, recipient string) (int, error) {
	return q.deleteKnown(ctx, []string{recipient}, `DELETE FROM agentd_queue WHERE recipient = ANY($1)`)
}

// Sweep deletes the messages that expired before now (by the expiry index)
// and returns how many, in transactions of at most 10,000 messages.
func (q *Queue) Sweep(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		n, err := q.deleteTx(ctx, `DELETE FROM agentd_queue WHERE seq IN
			(SELECT seq FROM agentd_queue WHERE expires < $1 ORDER BY expires LIMIT $2)`, nanos(now), sweepChunk)
		total += n
		if err != nil || n < sweepChunk {
			return total, err
		}
	}
}
