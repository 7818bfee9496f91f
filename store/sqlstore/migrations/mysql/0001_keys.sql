-- keygate 0001: key records, with the columns their lookups need.
CREATE TABLE keygate_keys (
    id         VARCHAR(64) NOT NULL PRIMARY KEY,
    owner      VARCHAR(128) NOT NULL,
    hash       BINARY(32) NOT NULL UNIQUE,  -- the verification lookup
    hash_version INT NOT NULL,
    created_at BIGINT NOT NULL,             -- Unix microseconds
    expires_at BIGINT NULL,                 -- Unix microseconds, rounded up; NULL = never
    revoked_at BIGINT NULL,                 -- Unix microseconds; NULL = not revoked
    record     MEDIUMTEXT NOT NULL,         -- the whole record, JSON
    INDEX keygate_keys_owner (owner, created_at),
    INDEX keygate_keys_expiry (expires_at)
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
-- One row per owner, locked by the transactions that count an owner's
-- active keys, so that the per-owner limit holds under concurrency.
CREATE TABLE keygate_owners (
    owner VARCHAR(128) NOT NULL PRIMARY KEY
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
