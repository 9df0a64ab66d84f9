package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentd/agentd/agent"
)

// Outbox is the outbound message queue, implementing agent.OutboxStore.
// Get it from DB.Outbox.
//
// Pending messages and dead letters are rows of one table, so an id is
// unique across both. Due claims what it returns for its DB (see
// Options.ClaimLease): several instances running their outbox on one
// database deliver each message once, and a message claimed by an instance
// that crashed is due again for the others when the claim's lease expires.
// Every write is its own transaction, durable on return.
type Outbox struct{ db *DB }

var _ agent.OutboxStore = (*Outbox)(nil)

// serverNow is the database server's clock in Unix nanoseconds: claims
// are timed by it, so that instances whose clocks differ agree on when a
// lease expires.
const serverNow = `(extract(epoch FROM clock_timestamp()) * 1000000000)::bigint`

const outboxColumns = `id, recipient, endpoint, media_type, message_type, payload, attempts, created_at, next_attempt, last_error, dead_at`

func checkOutbound(m *agent.OutboundMessage) error {
	if err := checkID("message id", m.ID); err != nil {
		return err
	}
	if len(m.Endpoint) > maxEndpointLen {
		return fmt.Errorf("postgres: outbox message endpoint longer than %d bytes", maxEndpointLen)
	}
	for what, s := range map[string]string{"recipient": m.To, "endpoint": m.Endpoint, "media type": m.MediaType, "message type": m.MessageType} {
		if err := checkText("outbox message "+what, s); err != nil {
			return err
		}
	}
	return nil
}

func cloneOutbound(m *agent.OutboundMessage) *agent.OutboundMessage {
	c := *m
	c.Payload = bytes.Clone(m.Payload)
	if c.Payload == nil {
		c.Payload = []byte{}
	}
	return &c
}

// cleanText makes an error text storable: invalid UTF-8 and NULs replaced.
func cleanText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// outboundInsert is the statement that inserts ms, and its arguments.
func outboundInsert(ms []*agent.OutboundMessage) (string, []any) {
	n := len(ms)
	ids, payloads := make([][]byte, n), make([][]byte, n)
	to, eps, mts, types, lastErr := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	attempts := make([]int32, n)
	created, next := make([]int64, n), make([]int64, n)
	for i, m := range ms {
		ids[i], payloads[i] = []byte(m.ID), m.Payload
		to[i], eps[i], mts[i], types[i], lastErr[i] = m.To, m.Endpoint, m.MediaType, m.MessageType, cleanText(m.LastError)
		attempts[i] = int32(min(m.Attempts, 1<<30))
		created[i], next[i] = nanos(m.CreatedAt), nanos(m.NextAttempt)
	}
	return `INSERT INTO agentd_outbox (id, recipient, endpoint, media_type, message_type, payload, attempts, created_at, next_attempt, last_error)
		SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::integer[], $8::bigint[], $9::bigint[], $10::text[])`,
		[]any{ids, to, eps, mts, types, payloads, attempts, created, next, lastErr}
}

// outboundErr turns a unique violation of the outbox's id into ErrExists.
func outboundErr(err error) error {
	if isCode(err, codeUniqueViolation) {
		return fmt.Errorf("postgres: outbox message id taken: %w", ErrExists)
	}
	return err
}

func insertOutbound(ctx context.Context, q querier, ms []*agent.OutboundMessage) error {
	sql, args := outboundInsert(ms)
	_, err := q.Exec(ctx, sql, args...)
	return outboundErr(err)
}

// outboxColumnsOf is outboxColumns qualified by the table alias t.
func outboxColumnsOf(t string) string {
	cols := strings.Split(outboxColumns, ", ")
	for i, c := range cols {
		cols[i] = t + "." + c
	}
	return strings.Join(cols, ", ")
}

// scanOutbound scans a row of outboxColumns, then into extra.
func scanOutbound(rows pgx.Rows, extra ...any) (*agent.OutboundMessage, error) {
	var (
		m                     agent.OutboundMessage
		id                    []byte
		attempts              int32
		created, next         int64
		deadAt                *int64
		messageType, lastErrS string
	)
	if err := rows.Scan(append([]any{&id, &m.To, &m.Endpoint, &m.MediaType, &messageType, &m.Payload, &attempts, &created, &next, &lastErrS, &deadAt}, extra...)...); err != nil {
		return nil, err
	}
	m.ID, m.MessageType, m.LastError = string(id), messageType, lastErrS
	m.Attempts = int(attempts)
	m.CreatedAt, m.NextAttempt = fromNanos(created), fromNanos(next)
	if deadAt != nil {
		m.DeadAt = fromNanos(*deadAt)
	}
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	return &m, nil
}

func collectOutbound(rows pgx.Rows, err error) ([]*agent.OutboundMessage, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*agent.OutboundMessage
	for rows.Next() {
		m, err := scanOutbound(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Enqueue adds m to the outbox, due at m.NextAttempt. m.ID must be non-empty
// and not already in the outbox or the dead letters; a taken id gives an
// error wrapping ErrExists. Text fields must be valid UTF-8 without NUL.
func (o *Outbox) Enqueue(ctx context.Context, m *agent.OutboundMessage) error {
	if err := checkOutbound(m); err != nil {
		return err
	}
	return insertOutbound(ctx, o.db.pool, []*agent.OutboundMessage{cloneOutbound(m)})
}

// Due claims and returns up to limit pending messages whose NextAttempt is
// at or before now, in (NextAttempt, id) order, skipping those another DB
// holds a live claim on (FOR UPDATE SKIP LOCKED, then the claim is written,
// so two DBs calling Due at once get disjoint messages). Messages this DB
// already claimed are returned again. The claim lasts Options.ClaimLease by
// the database server's clock; Reschedule, Delete and Kill end it.
func (o *Outbox) Due(ctx context.Context, now time.Time, limit int) ([]*agent.OutboundMessage, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := o.db.pool.Query(ctx, `UPDATE agentd_outbox o SET claimed_by = $1, claim_until = `+serverNow+` + $2
		FROM (SELECT id, claimed_by FROM agentd_outbox
			WHERE dead_at IS NULL AND next_attempt <= $3
			  AND (claimed_by IS NULL OR claimed_by = $1 OR claim_until < `+serverNow+`)
			ORDER BY next_attempt, id LIMIT $4 FOR UPDATE SKIP LOCKED) AS c
		WHERE o.id = c.id
		RETURNING `+outboxColumnsOf("o")+`, c.claimed_by`,
		o.db.owner, o.db.lease.Nanoseconds(), nanos(now), limit)
	if err != nil {
		return nil, err
	}
	var out []*agent.OutboundMessage
	var takeovers int64
	for rows.Next() {
		var prev *string
		m, err := scanOutbound(rows, &prev)
		if err != nil {
			rows.Close()
			return nil, err
		}
		if prev != nil && *prev != o.db.owner {
			takeovers++ // claimed by another instance whose claim expired
		}
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if takeovers > 0 {
		o.db.outboxTakeovers.Add(takeovers)
		if o.db.log != nil {
			o.db.log.Warn("outbox: took over messages another instance claimed and did not deliver within its lease", "messages", takeovers)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.NextAttempt.Equal(b.NextAttempt) {
			return a.NextAttempt.Before(b.NextAttempt)
		}
		return a.ID < b.ID
	})
	return out, nil
}

// NextDue returns when the outbox next has a message for this DB: the
// earliest NextAttempt among the pending messages no other DB holds a live
// claim on, or the earliest end of such a claim, whichever comes first.
func (o *Outbox) NextDue(ctx context.Context) (time.Time, bool, error) {
	var next, claim *int64
	err := o.db.pool.QueryRow(ctx, `WITH now AS (SELECT `+serverNow+` AS t) SELECT
		(SELECT next_attempt FROM agentd_outbox, now WHERE dead_at IS NULL
			AND (claimed_by IS NULL OR claimed_by = $1 OR claim_until < now.t)
			ORDER BY next_attempt, id LIMIT 1),
		(SELECT min(claim_until) FROM agentd_outbox, now WHERE dead_at IS NULL
			AND claimed_by IS NOT NULL AND claimed_by <> $1 AND claim_until >= now.t)`,
		o.db.owner).Scan(&next, &claim)
	if err != nil {
		return time.Time{}, false, err
	}
	switch {
	case next == nil && claim == nil:
		return time.Time{}, false, nil
	case next == nil:
		return fromNanos(*claim), true, nil
	case claim == nil || *next <= *claim:
		return fromNanos(*next), true, nil
	}
	return fromNanos(*claim), true, nil
}

func notPending(id string) error {
	return fmt.Errorf("postgres: outbox message %q: %w", id, agent.ErrNotFound)
}

// Reschedule saves a failed attempt of a pending message (Attempts,
// NextAttempt, LastError) and ends its claim; an id that is not pending
// gives an error wrapping agent.ErrNotFound.
func (o *Outbox) Reschedule(ctx context.Context, m *agent.OutboundMessage) error {
	tag, err := o.db.pool.Exec(ctx, `UPDATE agentd_outbox SET attempts = $2, next_attempt = $3, last_error = $4,
		claimed_by = NULL, claim_until = NULL WHERE id = $1 AND dead_at IS NULL`,
		[]byte(m.ID), int32(min(m.Attempts, 1<<30)), nanos(m.NextAttempt), cleanText(m.LastError))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notPending(m.ID)
	}
	return nil
}

// Delete removes a delivered (pending) message; an id that is not pending
// gives an error wrapping agent.ErrNotFound.
func (o *Outbox) Delete(ctx context.Context, id string) error {
	tag, err := o.db.pool.Exec(ctx, `DELETE FROM agentd_outbox WHERE id = $1 AND dead_at IS NULL`, []byte(id))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notPending(id)
	}
	return nil
}

// Kill moves a pending message to the dead letters, saving m.Attempts and
// m.LastError and stamping it with m.DeadAt; if m.DeadAt is zero, Kill
// first sets it (on m) to the current time.
func (o *Outbox) Kill(ctx context.Context, m *agent.OutboundMessage) error {
	if m.DeadAt.IsZero() {
		m.DeadAt = time.Now()
	}
	tag, err := o.db.pool.Exec(ctx, `UPDATE agentd_outbox SET attempts = $2, last_error = $3, dead_at = $4,
		claimed_by = NULL, claim_until = NULL WHERE id = $1 AND dead_at IS NULL`,
		[]byte(m.ID), int32(min(m.Attempts, 1<<30)), cleanText(m.LastError), nanos(m.DeadAt))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notPending(m.ID)
	}
	return nil
}

// Dead lists up to limit dead letters in (DeadAt, id) order, starting after
// the cursor after (see agent.OutboxStore), by the (dead_at, id) index.
func (o *Outbox) Dead(ctx context.Context, after string, limit int) ([]*agent.OutboundMessage, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	if after == "" {
		return collectOutbound(o.db.pool.Query(ctx, `SELECT `+outboxColumns+` FROM agentd_outbox
			WHERE dead_at IS NOT NULL ORDER BY dead_at, id LIMIT $1`, limit))
	}
	var at int64
	var id []byte
	err := o.db.pool.QueryRow(ctx, `SELECT dead_at, id FROM agentd_outbox WHERE id = $1 AND dead_at IS NOT NULL`, []byte(after)).Scan(&at, &id)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		t, cid, ok := agent.ParseDeadLetterCursor(after)
		if !ok {
			return nil, fmt.Errorf("postgres: dead-letter cursor %q: %w", after, agent.ErrNotFound)
		}
		at, id = nanos(t), []byte(cid)
	case err != nil:
		return nil, err
	}
	return collectOutbound(o.db.pool.Query(ctx, `SELECT `+outboxColumns+` FROM agentd_outbox
		WHERE dead_at IS NOT NULL AND (dead_at, id) > ($1, $2) ORDER BY dead_at, id LIMIT $3`, at, id, limit))
}

func notDead(id string) error {
	return fmt.Errorf("postgres: dead letter %q: %w", id, agent.ErrNotFound)
}

// Revive moves a dead letter back to the outbox, due at now, with Attempts
// reset to zero and DeadAt cleared. LastError is kept until the next
// attempt replaces it.
func (o *Outbox) Revive(ctx context.Context, id string, now time.Time) error {
	tag, err := o.db.pool.Exec(ctx, `UPDATE agentd_outbox SET attempts = 0, next_attempt = $2, dead_at = NULL
		WHERE id = $1 AND dead_at IS NOT NULL`, []byte(id), nanos(now))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notDead(id)
	}
	return nil
}

// PurgeDead deletes a dead letter for good.
func (o *Outbox) PurgeDead(ctx context.Context, id string) error {
	tag, err := o.db.pool.Exec(ctx, `DELETE FROM agentd_outbox WHERE id = $1 AND dead_at IS NOT NULL`, []byte(id))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notDead(id)
	}
	return nil
}

// PurgeDeadBefore deletes the dead letters whose DeadAt is before t, in
// transactions of at most 10,000 letters, and returns how many it deleted.
func (o *Outbox) PurgeDeadBefore(ctx context.Context, t time.Time) (int, error) {
	total := 0
	for {
		tag, err := o.db.pool.Exec(ctx, `DELETE FROM agentd_outbox WHERE id IN (SELECT id FROM agentd_outbox
			WHERE dead_at IS NOT NULL AND dead_at < $1 ORDER BY dead_at LIMIT 10000)`, nanos(t))
		if err != nil {
			return total, err
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < 10000 {
			return total, nil
		}
	}
}

// Depth returns the number of pending messages and of dead letters. It
// counts them through the partial indexes, in time proportional to the
// outbox's size (which agent.OutboxLimits bound).
func (o *Outbox) Depth(ctx context.Context) (pending, dead int, err error) {
	err = o.db.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM agentd_outbox WHERE dead_at IS NULL),
		(SELECT count(*) FROM agentd_outbox WHERE dead_at IS NOT NULL)`).Scan(&pending, &dead)
	return pending, dead, err
}
