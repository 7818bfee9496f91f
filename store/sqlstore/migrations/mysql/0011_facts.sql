-- keygate 0011: facts recorded once each (event.Facts), as "key.expiring/<id>/7d/<expiry>".
CREATE TABLE keygate_facts (
    fact VARCHAR(255) NOT NULL PRIMARY KEY,
    at   BIGINT NOT NULL,  -- Unix microseconds of its event: claims older than the retention go
    INDEX keygate_facts_at (at)
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
