-- Issue 16, items 1 and 4: search that ignores accents both ways, and exact user counts.

-- 1. Folding for search (src/domain/fold.rs holds the same rule in Rust, which folds what a
-- person types; tests/it/search_fold.rs runs both over names and whole Unicode blocks and
-- requires the same text): lower-case, decompose (NFD), drop the combining marks
-- U+0300–U+036F, then spell out the letters without a decomposition that read as plain
-- Latin ones (ø đ ð ł ħ ı ŧ æ œ ß þ).
-- ASCII text (most names, every email) takes the short way: lower() alone is the same fold
-- there, and the import of a million users pays for normalize() only on the names that
-- need it. (Not STRICT, so that PostgreSQL inlines it.)
CREATE FUNCTION search_fold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN octet_length(t) = char_length(t) THEN lower(t) ELSE
              replace(replace(replace(replace(
              translate(regexp_replace(normalize(lower(t), NFD), '[\u0300-\u036f]', '', 'g'),
                        'øđðłħıŧ', 'oddlhit'),
              'æ', 'ae'), 'œ', 'oe'), 'ß', 'ss'), 'þ', 'th') END $$;

-- The stored search text, folded (it was lower-cased only, so `jose` missed "José"). A
-- generated column: every way users are written (the importer's COPY, the form, undo) fills
-- it alike. PostgreSQL 15 cannot change a generated expression in place: the column, the
-- two indexes that carry it and the change-note trigger that reads it are made again, as
-- migration 0003 and 0007 made them.
DROP TRIGGER users_note_update ON users;
DROP INDEX users_list_name_idx;
DROP INDEX users_search_trgm_idx;
ALTER TABLE users DROP COLUMN search_text;
ALTER TABLE users ADD COLUMN search_text text GENERATED ALWAYS AS (
    search_fold(first_name || ' ' || last_name || ' ' || coalesce(email, '') || ' ' || username || ' ' || coalesce(custom_id, ''))
) STORED;
CREATE INDEX users_search_trgm_idx ON users USING gin (search_text gin_trgm_ops);
CREATE INDEX users_list_name_idx ON users (district_id, last_name, first_name, id)
    INCLUDE (search_text, status, role, source) WHERE archived_at IS NULL;
CREATE TRIGGER users_note_update AFTER UPDATE ON users
    FOR EACH ROW
    WHEN (OLD.district_id IS DISTINCT FROM NEW.district_id
          OR OLD.last_name IS DISTINCT FROM NEW.last_name
          OR OLD.first_name IS DISTINCT FROM NEW.first_name
          OR OLD.search_text IS DISTINCT FROM NEW.search_text
          OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.archived_at IS DISTINCT FROM NEW.archived_at)
    EXECUTE FUNCTION note_user_change();

-- 4. Exact counts for the Users screen without counting a million rows per view: how many
-- users each (district, role, grade, source, status, archived) group holds, as signed
-- deltas. Statement-level triggers add one row per group a statement changed (a statement
-- that changes no counted column, like an identical re-sync, adds none); rows are only ever
-- inserted by writers, so concurrent writers never wait on each other here. A reader sums a
-- district's rows (a few hundred at most) and, past a threshold, folds them into one row
-- per group (db::user_list::compact_counts).
CREATE TABLE user_count_deltas (
    district_id uuid NOT NULL,
    role text NOT NULL,
    grade text NOT NULL,
    source text NOT NULL,
    status text NOT NULL,
    archived boolean NOT NULL,
    n bigint NOT NULL
);
CREATE INDEX user_count_deltas_district_idx ON user_count_deltas (district_id);

CREATE FUNCTION count_users_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_count_deltas (district_id, role, grade, source, status, archived, n)
    SELECT district_id, role, grade, source, status, archived_at IS NOT NULL, count(*)
    FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6;
    RETURN NULL;
END
$$;

CREATE FUNCTION count_users_deleted() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_count_deltas (district_id, role, grade, source, status, archived, n)
    SELECT district_id, role, grade, source, status, archived_at IS NOT NULL, -count(*)
    FROM old_rows GROUP BY 1, 2, 3, 4, 5, 6;
    RETURN NULL;
END
$$;

CREATE FUNCTION count_users_updated() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_count_deltas (district_id, role, grade, source, status, archived, n)
    SELECT district_id, role, grade, source, status, archived, sum(n)
    FROM (SELECT district_id, role, grade, source, status, archived_at IS NOT NULL AS archived, 1 AS n
          FROM new_rows
          UNION ALL
          SELECT district_id, role, grade, source, status, archived_at IS NOT NULL, -1
          FROM old_rows) d
    GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum(n) <> 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION count_users_truncated() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM user_count_deltas;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_count_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_users_inserted();
CREATE TRIGGER users_count_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_users_deleted();
CREATE TRIGGER users_count_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_users_updated();
CREATE TRIGGER users_count_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION count_users_truncated();

INSERT INTO user_count_deltas (district_id, role, grade, source, status, archived, n)
SELECT district_id, role, grade, source, status, archived_at IS NOT NULL, count(*)
FROM users GROUP BY 1, 2, 3, 4, 5, 6;
