-- keygate 0012: the latest delivery attempts of each account's webhook
-- endpoint (event.DeliveryLog).
CREATE TABLE keygate_deliveries (
    seq      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    account  VARCHAR(128) NOT NULL,
    endpoint VARCHAR(64) NOT NULL,
    attempt  MEDIUMTEXT NOT NULL,  -- the whole attempt, JSON
    INDEX keygate_deliveries_endpoint (account, endpoint, seq)
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
