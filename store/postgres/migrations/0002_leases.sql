-- agentd schema version 2: leases (DB.Lead), electing one instance at a
-- time for work that must not run twice at once: the sweeps, a spooled
-- mail. until is Unix nanoseconds; an expired lease is free.
CREATE TABLE agentd_leases (
	name  text PRIMARY KEY,
	owner text NOT NULL,
	until bigint NOT NULL
);
