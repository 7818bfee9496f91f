-- keygate 0004: usage in one table, so that a batch is one statement.
-- The row with endpoint '' holds a key's totals; the others count the
-- requests per endpoint.
CREATE TABLE keygate_usage_counts (
    key_id       TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    requests     BIGINT NOT NULL,
    errors       BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,  -- Unix microseconds
    PRIMARY KEY (key_id, endpoint)
);
INSERT INTO keygate_usage_counts (key_id, endpoint, requests, errors, last_used_at)
    SELECT key_id, '', requests, errors, last_used_at FROM keygate_usage;
INSERT INTO keygate_usage_counts (key_id, endpoint, requests, errors, last_used_at)
    SELECT key_id, endpoint, requests, 0, 0 FROM keygate_usage_endpoints WHERE endpoint <> '';
DROP TABLE keygate_usage;
DROP TABLE keygate_usage_endpoints;
