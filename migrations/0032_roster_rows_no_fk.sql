-- A roster run's per-record tables without a per-row foreign key check (issue 15): a first
-- sync of 3,000,000 enrollments writes one `run_roster_changes` row (its undo) and one
-- `run_roster_rows` row (its result) per enrollment added, and the check of each against
-- `runs` (a trigger event and an index probe a row) cost as much as the rows themselves.
-- Like `enrollments` (0017): the reconcile engine writes only the run it is running, in the
-- transaction that holds that run. Deleting a run still deletes its rows (as the cascade did).
ALTER TABLE run_roster_rows DROP CONSTRAINT run_roster_rows_district_id_run_id_fkey;
ALTER TABLE run_roster_changes DROP CONSTRAINT run_roster_changes_district_id_run_id_fkey;

CREATE FUNCTION runs_delete_roster_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM run_roster_rows WHERE district_id = OLD.district_id AND run_id = OLD.id;
    DELETE FROM run_roster_changes WHERE district_id = OLD.district_id AND run_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER runs_delete_roster_rows AFTER DELETE ON runs
    FOR EACH ROW EXECUTE FUNCTION runs_delete_roster_rows();
