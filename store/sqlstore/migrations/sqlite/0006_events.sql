-- keygate 0006: the audit trail, newest last; the latest events of each
-- account are kept (see 0007).
CREATE TABLE keygate_events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    key_id  TEXT NOT NULL,
    event   TEXT NOT NULL  -- the whole event, JSON
);
CREATE INDEX keygate_events_account ON keygate_events (account, seq);
CREATE INDEX keygate_events_key ON keygate_events (account, key_id, seq);
CREATE INDEX keygate_keys_revoked ON keygate_keys (revoked_at) WHERE revoked_at IS NOT NULL;
