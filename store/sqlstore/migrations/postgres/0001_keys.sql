-- keygate 0001: key records, with the columns their lookups need.
CREATE TABLE keygate_keys (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    hash       BYTEA NOT NULL UNIQUE,  -- the verification lookup
    hash_version INTEGER NOT NULL,
    created_at BIGINT NOT NULL,        -- Unix microseconds
    expires_at BIGINT,                 -- Unix microseconds, rounded up; NULL = never
    revoked_at BIGINT,                 -- Unix microseconds; NULL = not revoked
    record     TEXT NOT NULL           -- the whole record, JSON
);
CREATE INDEX keygate_keys_owner ON keygate_keys (owner, created_at);
CREATE INDEX keygate_keys_expiry ON keygate_keys (expires_at) WHERE revoked_at IS NULL;
-- One row per owner, locked by the transactions that count an owner's
-- active keys, so that the per-owner limit holds under concurrency.
CREATE TABLE keygate_owners (
    owner TEXT PRIMARY KEY
);
