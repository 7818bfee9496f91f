-- keygate 0007: each event's time (Unix microseconds), so that the audit
-- trail is kept by age (apikey.EventRetention) with a bound per key
-- (apikey.EventsPerKey). Events written before this migration have 0 and
-- are kept until their key's bound drops them.
ALTER TABLE keygate_events ADD COLUMN at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX keygate_events_at ON keygate_events (account, at);
