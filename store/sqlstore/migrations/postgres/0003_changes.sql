-- keygate 0003: the change feed, read by every instance's cache.
CREATE TABLE keygate_changes (
    seq  BIGSERIAL PRIMARY KEY,
    hash BYTEA NOT NULL,   -- of a key revoked, rotated or deleted
    at   BIGINT NOT NULL   -- Unix microseconds
);
CREATE INDEX keygate_changes_at ON keygate_changes (at);
