-- keygate 0011: facts recorded once each (event.Facts), as "key.expiring/<id>/7d/<expiry>".
CREATE TABLE keygate_facts (
    fact TEXT PRIMARY KEY,
    at   BIGINT NOT NULL  -- Unix microseconds of its event: claims older than the retention go
);
CREATE INDEX keygate_facts_at ON keygate_facts (at);
