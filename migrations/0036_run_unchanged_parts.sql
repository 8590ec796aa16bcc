-- A run's plainly unchanged rows are stored in parts of at most 65,536 lines (one
-- `run_unchanged` row each, numbered from 0 in line order) instead of one row holding them
-- all: a re-import of a million unchanged rows no longer builds and encodes three arrays of a
-- million entries at once (~120 MB beside the run's other state; issue 19). Readers unnest
-- every part of the run and order by line, as before.
ALTER TABLE run_unchanged ADD COLUMN part integer NOT NULL DEFAULT 0;
ALTER TABLE run_unchanged DROP CONSTRAINT run_unchanged_pkey;
ALTER TABLE run_unchanged ADD PRIMARY KEY (district_id, run_id, part);
ALTER TABLE run_unchanged ALTER COLUMN part DROP DEFAULT;
