-- keygate 0005: accounts, with their plan and custom limits.
CREATE TABLE keygate_accounts (
    id     VARCHAR(128) NOT NULL PRIMARY KEY,
    record MEDIUMTEXT NOT NULL  -- the whole account, JSON
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
