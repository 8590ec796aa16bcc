-- What the `users` table's indexes and triggers cost an import (issue 19's index audit).
-- Measured on a 10,000-user create: each index's share of inserting the users, and which
-- query plans read it (EXPLAIN on a populated database). Kept, each for the query it serves:
--   users_pkey, users_district_custom_id_key, users_district_email_key,
--   users_district_username_key      the keys (matching, uniqueness; username is also the
--                                    Username sort order of the Users screen)
--   users_list_name_idx              the Users screen's default page (name order, live users,
--                                    its filters carried) and the search walk
--   users_list_custom_id_idx, users_list_role_idx, users_list_grade_idx,
--   users_list_updated_idx           the other sort orders, keyset-paged: without one, each
--                                    page of that order sorts the whole district
--   users_list_inactive_idx, users_list_archived_idx
--                                    the Inactive and Archived pages; partial, so a run
--                                    creating active users pays only their predicate
--   users_search_trgm_idx            searches the in-memory index does not serve (any filter
--                                    but status, another sort order, a school admin's scope,
--                                    a district too small or too large for the index)
--   users_district_source_idx        the Users screen's list of sources, a loose index scan
--                                    (db::user_list::sources): without it, a pass over every user

-- users_id_idx (id alone) duplicates the primary key (district_id, id): every query names
-- the district, so the key answers each of them; the planner only picked this index because
-- it is smaller. It cost a 10,000-user create one btree insert per user for nothing.
DROP INDEX users_id_idx;

-- The change note for inserted users (migration 0007) ran a PL/pgSQL function for every
-- inserted user to add one note per transaction and district; a run creating 10,000 users
-- called it 10,000 times. Once per statement over the statement's new rows notes the same
-- districts, in the same transaction (so the same xid). Deletes and updates are left as they
-- are (a run deletes no users; updates note only when a searched field changes).
CREATE FUNCTION note_users_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    d uuid;
BEGIN
    FOR d IN SELECT DISTINCT district_id FROM new_rows LOOP
        IF current_setting('rollcall.user_change_noted', true) IS DISTINCT FROM d::text THEN
            INSERT INTO user_changes (district_id) VALUES (d);
            PERFORM set_config('rollcall.user_change_noted', d::text, true);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

DROP TRIGGER users_note_insert ON users;
CREATE TRIGGER users_note_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION note_users_inserted();
