-- keygate 0003: the change feed, read by every instance's cache.
CREATE TABLE keygate_changes (
    seq  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    hash BINARY(32) NOT NULL,  -- of a key revoked, rotated or deleted
    at   BIGINT NOT NULL,      -- Unix microseconds
    INDEX keygate_changes_at (at)
);
