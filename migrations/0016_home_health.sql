-- Issue 14, items 1, 4 and 5 (home page, sync health, summer pause by date).

-- A retried sync waits in the queue, not in a worker: `not_before` is when it may be taken
-- again (NULL: at once). The queue's claim skips runs whose time has not come.
ALTER TABLE runs ADD COLUMN not_before timestamptz;

-- A source's latest runs (home page cards, staleness, the connections list).
CREATE INDEX runs_district_source_idx ON runs (district_id, source, received_at DESC);

-- Runs that may need the admin's attention (held for review, failed).
CREATE INDEX runs_attention_idx ON runs (district_id, finished_at DESC)
    WHERE status IN ('needs_review', 'failed');
