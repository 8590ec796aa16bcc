-- Change notes for the in-memory search index (src/search, src/db/search_index.rs): every
-- transaction that inserts or deletes users, or changes what the Users screen's search and
-- name order read (name, search text, status, archived), notes each district it touched
-- once, with its transaction id. An index read in snapshot S is current while every noted
-- transaction is visible in S.
CREATE TABLE user_changes (
    district_id uuid NOT NULL,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    noted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_changes_district_xid_idx ON user_changes (district_id, xid);
CREATE INDEX user_changes_noted_idx ON user_changes (noted_at);

-- Once per transaction and district: the transaction-local setting remembers the last
-- district noted, so a million-row import adds one note, not a million.
CREATE FUNCTION note_user_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    d uuid;
BEGIN
    IF TG_OP = 'DELETE' THEN
        d := OLD.district_id;
    ELSE
        d := NEW.district_id;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.district_id IS DISTINCT FROM NEW.district_id THEN
        INSERT INTO user_changes (district_id) VALUES (OLD.district_id);
    END IF;
    IF current_setting('rollcall.user_change_noted', true) IS DISTINCT FROM d::text THEN
        INSERT INTO user_changes (district_id) VALUES (d);
        PERFORM set_config('rollcall.user_change_noted', d::text, true);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_note_insert AFTER INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION note_user_change();
CREATE TRIGGER users_note_delete AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION note_user_change();
CREATE TRIGGER users_note_update AFTER UPDATE ON users
    FOR EACH ROW
    WHEN (OLD.district_id IS DISTINCT FROM NEW.district_id
          OR OLD.last_name IS DISTINCT FROM NEW.last_name
          OR OLD.first_name IS DISTINCT FROM NEW.first_name
          OR OLD.search_text IS DISTINCT FROM NEW.search_text
          OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.archived_at IS DISTINCT FROM NEW.archived_at)
    EXECUTE FUNCTION note_user_change();
