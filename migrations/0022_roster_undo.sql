-- Undo of roster changes (SPEC §4 "Undo", §6a): an applied run records the earlier values of
-- every class and enrollment it changed, written set-based with its roster writes (never for
-- an unchanged record: an identical re-sync writes no row here). An undo reads them back and
-- puts them back; its own writes are recorded the same way, so undoing an undo redoes.
--
-- kind             before
-- class_created    NULL (the class did not exist)
-- class_updated    the changed fields' earlier values (+ external_id), as in the audit entry
-- class_restored   likewise, with "archived": true
-- class_archived   {"archived": false}
-- enrollment_added NULL (the enrollment did not exist)
-- enrollment_changed, enrollment_ended
--                  the whole earlier row: role, primary, begin, end
--
-- `id` orders the changes: runs of a district are serialised, so a change of a later run has
-- a larger id (an undo leaves a class or enrollment a later run changed again).
CREATE TABLE run_roster_changes (
    district_id  uuid NOT NULL,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    run_id       uuid NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('class_created', 'class_updated', 'class_restored',
                     'class_archived', 'enrollment_added', 'enrollment_changed', 'enrollment_ended')),
    class_id     uuid NOT NULL,
    user_id      uuid,                          -- enrollments only
    before       jsonb,
    PRIMARY KEY (district_id, id),
    FOREIGN KEY (district_id, run_id) REFERENCES runs (district_id, id) ON DELETE CASCADE
);
-- A run's changes (the undo reads them), in order.
CREATE INDEX run_roster_changes_run_idx ON run_roster_changes (district_id, run_id, id);
