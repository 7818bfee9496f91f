-- keygate 0008: account changes in the change feed by their account ID,
-- apart from key changes (their rows have a zero hash).
ALTER TABLE keygate_changes ADD COLUMN account TEXT NOT NULL DEFAULT '';
