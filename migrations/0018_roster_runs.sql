-- Issue 15 (rosters): a run's roster counts, and its roster records' results.

ALTER TABLE runs
    ADD COLUMN classes_created       integer NOT NULL DEFAULT 0,
    ADD COLUMN classes_updated       integer NOT NULL DEFAULT 0,
    ADD COLUMN classes_unchanged     integer NOT NULL DEFAULT 0,
    ADD COLUMN classes_restored      integer NOT NULL DEFAULT 0,
    ADD COLUMN classes_archived      integer NOT NULL DEFAULT 0,
    ADD COLUMN enrollments_added     integer NOT NULL DEFAULT 0,
    ADD COLUMN enrollments_changed   integer NOT NULL DEFAULT 0,
    ADD COLUMN enrollments_unchanged integer NOT NULL DEFAULT 0,
    ADD COLUMN enrollments_ended     integer NOT NULL DEFAULT 0,
    ADD COLUMN roster_errors         integer NOT NULL DEFAULT 0;

-- One row per roster record of a run (a class record, an enrollment record), in feed order.
-- Kept compact: a file run stores every record (its completed file lists every row); a sync
-- stores errors and changes only (not 3,000,000 unchanged enrollments).
CREATE TABLE run_roster_rows (
    district_id  uuid NOT NULL,
    run_id       uuid NOT NULL,
    seq          integer NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('term', 'class', 'enrollment')),
    file         text NOT NULL DEFAULT '',
    line         bigint NOT NULL,
    outcome      text NOT NULL,
    class_id     uuid,
    user_id      uuid,
    key          text NOT NULL DEFAULT '',
    changed      text[] NOT NULL DEFAULT '{}',
    error        text,
    PRIMARY KEY (district_id, run_id, seq),
    FOREIGN KEY (district_id, run_id) REFERENCES runs (district_id, id) ON DELETE CASCADE
);
