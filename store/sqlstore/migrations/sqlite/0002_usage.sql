-- keygate 0002: usage counters, per key and per key and endpoint.
CREATE TABLE keygate_usage (
    key_id       TEXT PRIMARY KEY,
    requests     BIGINT NOT NULL,
    errors       BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL  -- Unix microseconds
);
CREATE TABLE keygate_usage_endpoints (
    key_id   TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    requests BIGINT NOT NULL,
    PRIMARY KEY (key_id, endpoint)
);
