-- keygate 0010: events waiting for delivery (with Config.Outbox), in
-- the order they were written; an event's ID is its audit trail's.
CREATE TABLE keygate_outbox (
    seq       BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_seq BIGINT NOT NULL,              -- the event's seq in keygate_events
    account   VARCHAR(128) NOT NULL,
    key_id    VARCHAR(64) NOT NULL,
    event     MEDIUMTEXT NOT NULL,          -- the whole event, JSON
    attempts  INT NOT NULL DEFAULT 0,
    due_at    BIGINT NOT NULL,              -- Unix microseconds: when it may next be leased
    lease     VARCHAR(64) NOT NULL DEFAULT '',  -- the lease of the attempt under way
    INDEX keygate_outbox_due (due_at),
    INDEX keygate_outbox_key (account, key_id, seq),
    INDEX keygate_outbox_lease (lease)
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
