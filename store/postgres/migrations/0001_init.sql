-- agentd schema version 1: the state the bbolt store keeps, as tables.
-- Times are Unix nanoseconds (bigint): PostgreSQL's timestamps keep
-- microseconds only, and the agent compares times to the nanosecond.
-- Identifiers chosen by peers (record kinds and ids, outbox ids, replay keys)
-- are bytea, compared byte by byte like the bbolt store's keys.

CREATE TABLE agentd_meta (
	key   text PRIMARY KEY,
	value bytea NOT NULL
);

CREATE TABLE agentd_records (
	kind  bytea NOT NULL,
	id    bytea NOT NULL,
	value bytea NOT NULL,
	PRIMARY KEY (kind, id)
);

CREATE TABLE agentd_replay (
	key     bytea PRIMARY KEY,
	expires bigint NOT NULL
);
CREATE INDEX agentd_replay_expires ON agentd_replay (expires);

-- One row per message: pending while dead_at is NULL, a dead letter after.
-- claimed_by/claim_until: the instance delivering the message and until
-- when its claim holds (Outbox.Due).
CREATE TABLE agentd_outbox (
	id           bytea PRIMARY KEY,
	recipient    text NOT NULL,
	endpoint     text NOT NULL,
	media_type   text NOT NULL,
	message_type text NOT NULL,
	payload      bytea NOT NULL,
	attempts     integer NOT NULL,
	created_at   bigint NOT NULL,
	next_attempt bigint NOT NULL,
	last_error   text NOT NULL,
	dead_at      bigint,
	claimed_by   text,
	claim_until  bigint
);
CREATE INDEX agentd_outbox_due ON agentd_outbox (next_attempt, id) WHERE dead_at IS NULL;
CREATE INDEX agentd_outbox_endpoint ON agentd_outbox (endpoint) WHERE dead_at IS NULL;
CREATE INDEX agentd_outbox_dead ON agentd_outbox (dead_at, id) WHERE dead_at IS NOT NULL;

-- The mediator's queue; the queue id of a message is its seq in base 36.
CREATE TABLE agentd_queue (
	seq       bigserial PRIMARY KEY,
	recipient text NOT NULL,
	payload   bytea NOT NULL,
	received  bigint NOT NULL,
	expires   bigint NOT NULL
);
CREATE INDEX agentd_queue_recipient ON agentd_queue (recipient, received, seq);
CREATE INDEX agentd_queue_expires ON agentd_queue (expires);

-- Per-recipient totals of agentd_queue, kept in the same transactions: the
-- quota check locks the recipient's row, which serializes concurrent adds
-- for one recipient across instances. Rows at zero are deleted.
CREATE TABLE agentd_queue_recipients (
	recipient text PRIMARY KEY,
	messages  bigint NOT NULL,
	bytes     bigint NOT NULL
);

-- Private keys: the public JWK in the clear, the secret sealed under the
-- master key (AES-256-GCM, additional data "agentd/key/v1" 0 curve 0 kid).
CREATE TABLE agentd_keys (
	kid        text PRIMARY KEY,
	public_jwk bytea NOT NULL,
	sealed     bytea NOT NULL
);
