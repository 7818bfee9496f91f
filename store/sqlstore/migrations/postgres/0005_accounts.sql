-- keygate 0005: accounts, with their plan and custom limits.
CREATE TABLE keygate_accounts (
    id     TEXT PRIMARY KEY,
    record TEXT NOT NULL  -- the whole account, JSON
);
