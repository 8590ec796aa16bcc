-- Undo a run (SPEC §4 "Undo"): a run of kind 'undo' names the run it undoes; the users it
-- leaves because they changed again since are its rows with outcome 'skipped'. Old → new
-- values of a run come from the audit log by run, so the log gets an index by run.

ALTER TABLE runs DROP CONSTRAINT runs_kind_check;
ALTER TABLE runs ADD CONSTRAINT runs_kind_check CHECK (kind IN ('upload', 'api', 'drop', 'cli', 'sync', 'undo'));
ALTER TABLE runs ADD COLUMN undoes uuid;    -- kind 'undo': the run it undoes (same district)
CREATE INDEX runs_undoes_idx ON runs (district_id, undoes) WHERE undoes IS NOT NULL;

-- 'skipped' rows (also added by issue 13's owner rules): not this run's to change.
ALTER TABLE run_rows DROP CONSTRAINT IF EXISTS run_rows_outcome_check;
ALTER TABLE run_rows ADD CONSTRAINT run_rows_outcome_check
    CHECK (outcome IN ('created', 'updated', 'unchanged', 'restored', 'archived', 'skipped', 'error'));

CREATE INDEX audit_log_run_idx ON audit_log (district_id, run_id, entity_id) WHERE run_id IS NOT NULL;
