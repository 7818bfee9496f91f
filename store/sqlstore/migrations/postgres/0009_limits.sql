-- keygate 0009: rate-limit state, kept by ratelimit/sqllimit. One row per
-- account's windows ('a:' and the account), key's windows ('k:' and the
-- first key of its rotation chain) and account's credit balance ('c:'
-- and the account), locked by the transaction that decides a request.
CREATE TABLE keygate_limits (
    name       TEXT PRIMARY KEY,
    state      TEXT NOT NULL,    -- the state as text; sqllimit's doc says how
    expires_at BIGINT NOT NULL   -- Unix nanoseconds: from then on the state equals a new one, and the row may go
);
CREATE INDEX keygate_limits_expiry ON keygate_limits (expires_at);
