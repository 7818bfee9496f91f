-- keygate 0002: usage counters, per key and per key and endpoint.
CREATE TABLE keygate_usage (
    key_id       VARCHAR(64) NOT NULL PRIMARY KEY,
    requests     BIGINT NOT NULL,
    errors       BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL  -- Unix microseconds
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE TABLE keygate_usage_endpoints (
    key_id   VARCHAR(64) NOT NULL,
    endpoint VARCHAR(300) NOT NULL,
    requests BIGINT NOT NULL,
    PRIMARY KEY (key_id, endpoint)
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
