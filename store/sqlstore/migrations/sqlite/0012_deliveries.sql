-- keygate 0012: the latest delivery attempts of each account's webhook
-- endpoint (event.DeliveryLog).
CREATE TABLE keygate_deliveries (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    account  TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    attempt  TEXT NOT NULL  -- the whole attempt, JSON
);
CREATE INDEX keygate_deliveries_endpoint ON keygate_deliveries (account, endpoint, seq);
