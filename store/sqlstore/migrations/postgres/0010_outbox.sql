-- keygate 0010: events waiting for delivery (with Config.Outbox), in
-- the order they were written; an event's ID is its audit trail's.
CREATE TABLE keygate_outbox (
    seq       BIGSERIAL PRIMARY KEY,
    event_seq BIGINT NOT NULL,           -- the event's seq in keygate_events
    account   TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    event     TEXT NOT NULL,             -- the whole event, JSON
    attempts  INTEGER NOT NULL DEFAULT 0,
    due_at    BIGINT NOT NULL,           -- Unix microseconds: when it may next be leased
    lease     TEXT NOT NULL DEFAULT ''   -- the lease of the attempt under way
);
CREATE INDEX keygate_outbox_due ON keygate_outbox (due_at);
CREATE INDEX keygate_outbox_key ON keygate_outbox (account, key_id, seq);
CREATE INDEX keygate_outbox_lease ON keygate_outbox (lease);
