-- The keys of the tables a run writes by the million checked once a statement, not once a
-- row (issue 19). A first import of a million users COPYs a million rows into each of
-- `users`, `user_schools`, `audit_log` and `run_rows` in one transaction; each row's
-- foreign-key check (a trigger event, an index probe and a KEY SHARE lock on its parent)
-- cost 65-115 ms a 10,000 rows, together a fifth of a 10,000-user import (measured on a
-- 10,000-row COPY with and without each key).
--
-- Unlike 0006, 0017 and 0032 the rule still holds in the database for `users`,
-- `user_schools` and `run_rows`: each gets one statement-level trigger over the statement's
-- new rows (its transition table) that locks the parents the rows name FOR KEY SHARE, as the
-- foreign key did, and fails the statement with SQLSTATE 23503 (foreign_key_violation) when
-- one is missing. `audit_log` gets no check, as 0006's memberships: a million new audit rows,
-- each with the user's JSON, made a transition table that spilled to disk and cost more than
-- the per-row check it replaced (24.6 s against ~18 s at 1,000,000 users); its rows are
-- written only by the SQL layer, for the district whose run or request writes them. Deleting a
-- parent deletes its rows, as ON DELETE CASCADE did. No code updates these key columns (a
-- user never moves district; memberships, audit entries and results are inserted and
-- deleted, never re-keyed).
ALTER TABLE users DROP CONSTRAINT users_district_id_fkey;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_district_id_fkey;
ALTER TABLE user_schools DROP CONSTRAINT user_schools_district_id_school_id_fkey;
ALTER TABLE run_rows DROP CONSTRAINT run_rows_district_id_run_id_fkey;

-- Users name their district.
CREATE FUNCTION check_new_rows_district() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted uuid[];
    locked bigint;
BEGIN
    SELECT array_agg(district_id) INTO wanted FROM (SELECT DISTINCT district_id FROM new_rows) k;
    IF wanted IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM districts WHERE id = ANY (wanted) FOR KEY SHARE;
    GET DIAGNOSTICS locked = ROW_COUNT;
    IF locked < cardinality(wanted) THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('insert into %I names a district that does not exist', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER users_district_key AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION check_new_rows_district();

-- Memberships name a school of their district.
CREATE FUNCTION check_new_memberships_school() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint;
    locked bigint;
BEGIN
    SELECT count(*) INTO wanted FROM (SELECT DISTINCT district_id, school_id FROM new_rows) k;
    IF wanted = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM schools s
    WHERE (s.district_id, s.id) IN (SELECT DISTINCT district_id, school_id FROM new_rows)
    FOR KEY SHARE;
    GET DIAGNOSTICS locked = ROW_COUNT;
    IF locked < wanted THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'insert into user_schools names a school that is not in its district';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER user_schools_school_key AFTER INSERT ON user_schools
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION check_new_memberships_school();

-- A run's results name their run.
CREATE FUNCTION check_new_run_rows_run() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint;
    locked bigint;
BEGIN
    SELECT count(*) INTO wanted FROM (SELECT DISTINCT district_id, run_id FROM new_rows) k;
    IF wanted = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM runs r
    WHERE (r.district_id, r.id) IN (SELECT DISTINCT district_id, run_id FROM new_rows)
    FOR KEY SHARE;
    GET DIAGNOSTICS locked = ROW_COUNT;
    IF locked < wanted THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'insert into run_rows names a run that does not exist';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER run_rows_run_key AFTER INSERT ON run_rows
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION check_new_run_rows_run();

-- The cascades.
CREATE FUNCTION districts_delete_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM audit_log WHERE district_id IN (SELECT id FROM old_rows);
    DELETE FROM users WHERE district_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;
CREATE TRIGGER districts_delete_rows AFTER DELETE ON districts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION districts_delete_rows();

CREATE FUNCTION schools_delete_memberships() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM user_schools WHERE (district_id, school_id) IN (SELECT district_id, id FROM old_rows);
    RETURN NULL;
END $$;
CREATE TRIGGER schools_delete_memberships AFTER DELETE ON schools
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION schools_delete_memberships();

CREATE FUNCTION runs_delete_run_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM run_rows WHERE (district_id, run_id) IN (SELECT district_id, id FROM old_rows);
    RETURN NULL;
END $$;
CREATE TRIGGER runs_delete_run_rows AFTER DELETE ON runs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION runs_delete_run_rows();
