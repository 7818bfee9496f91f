-- keygate 0008: account changes in the change feed by their account ID,
-- apart from key changes (their rows have a zero hash).
ALTER TABLE keygate_changes ADD COLUMN account VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '';
