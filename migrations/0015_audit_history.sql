-- Issue 14, items 3 and 6: the district audit log (/audit) and an upload history that scales.
--
-- The audit log is `audit_log` UNION ALL the runs that reached a final status (never dry
-- runs): runs are read from `runs` (never copied into `audit_log`), so each needs a stable
-- keyset id of its own.
ALTER TABLE runs ADD COLUMN log_seq bigint GENERATED ALWAYS AS IDENTITY;

-- /audit pages: newest first, keyset on (at, id).
CREATE INDEX audit_log_page_idx ON audit_log (district_id, at DESC, id DESC);

-- A run's place in the audit log: when it ended (finished, or cancelled/dismissed when it
-- was reviewed), keyset on log_seq.
CREATE INDEX runs_log_idx ON runs (district_id, (coalesce(finished_at, reviewed_at, received_at)) DESC, log_seq DESC)
    WHERE NOT dry_run AND status IN ('completed', 'completed_with_errors', 'needs_review', 'failed', 'cancelled');

-- /uploads pages: newest first, keyset on (received_at, id).
DROP INDEX IF EXISTS runs_district_received_idx;
CREATE INDEX runs_district_history_idx ON runs (district_id, received_at DESC, id DESC);
