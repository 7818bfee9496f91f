-- keygate 0003: the change feed, read by every instance's cache.
CREATE TABLE keygate_changes (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    hash BLOB NOT NULL,     -- of a key revoked, rotated or deleted
    at   INTEGER NOT NULL   -- Unix microseconds
);
CREATE INDEX keygate_changes_at ON keygate_changes (at);
