-- keygate 0006: the audit trail, newest last; the latest events of each
-- account are kept (see 0007).
CREATE TABLE keygate_events (
    seq     BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    account VARCHAR(128) NOT NULL,
    key_id  VARCHAR(64) NOT NULL,
    event   MEDIUMTEXT NOT NULL,  -- the whole event, JSON
    INDEX keygate_events_account (account, seq),
    INDEX keygate_events_key (account, key_id, seq)
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX keygate_keys_revoked ON keygate_keys (revoked_at);
