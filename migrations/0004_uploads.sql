-- Uploads: runs waiting for a header mapping, progress phases, review decisions, file
-- retention, and per-district drop folders.

ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check CHECK (status IN
    ('needs_mapping', 'queued', 'in_progress', 'completed', 'completed_with_errors', 'needs_review', 'failed', 'cancelled'));
ALTER TABLE runs ADD COLUMN phase text;                -- reading | planning | applying, while in progress
ALTER TABLE runs ADD COLUMN reviewed_by text;          -- who approved or cancelled
ALTER TABLE runs ADD COLUMN reviewed_at timestamptz;
ALTER TABLE runs ADD COLUMN files_purged_at timestamptz;
ALTER TABLE runs ADD COLUMN passwords_purged_at timestamptz;
CREATE INDEX runs_in_progress_idx ON runs (district_id) WHERE status = 'in_progress';

-- A district's drop folder, when not the default <data>/drop/<slug>.
ALTER TABLE districts ADD COLUMN drop_dir text;
