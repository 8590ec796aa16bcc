-- The enrollments a run adds are recorded one `run_roster_changes` row per class (issue 15):
-- kind `enrollment_added`, `user_id` NULL, `user_ids` the users added to that class. A first
-- sync of 3,000,000 enrollments wrote 3,000,000 rows here (9.3 s of its 105 s, two index
-- entries each); it now writes one per class (40,000). The undo reads them back one per
-- enrollment (`unnest`), as before. Rows written before this migration (one per enrollment,
-- `user_id` set, `user_ids` NULL) read the same way.
ALTER TABLE run_roster_changes ADD COLUMN user_ids uuid[];
