-- Issue 13, owners: how each row found its user and whose it was before a run moved it,
-- the skipped outcome, moved/skipped counts per run, and the per-school guard's settings.

ALTER TABLE run_rows ADD COLUMN matched_by text
    CHECK (matched_by IN ('guid', 'custom_id', 'email', 'new'));
-- The user's owner before the run when the row moved them (as users.source stores it).
ALTER TABLE run_rows ADD COLUMN previous_source text;

ALTER TABLE run_rows DROP CONSTRAINT run_rows_outcome_check;
ALTER TABLE run_rows ADD CONSTRAINT run_rows_outcome_check
    CHECK (outcome IN ('created', 'updated', 'unchanged', 'restored', 'archived', 'skipped', 'error'));

ALTER TABLE runs ADD COLUMN moved integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN skipped integer NOT NULL DEFAULT 0;

-- A run that would archive more than guard_school_pct % of one school's users in its scope,
-- where that school had at least guard_school_min of them, stops in Needs Review.
ALTER TABLE districts ADD COLUMN guard_school_pct double precision NOT NULL DEFAULT 50
    CHECK (guard_school_pct >= 0 AND guard_school_pct <= 100);
ALTER TABLE districts ADD COLUMN guard_school_min integer NOT NULL DEFAULT 20
    CHECK (guard_school_min >= 0);
