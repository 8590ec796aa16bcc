-- The Users screen at district scale (a million users): every list query walks one btree
-- index in its sort order (keyset pagination, never a large OFFSET), and searches use one
-- trigram index. The sort expressions here are repeated exactly in src/db/user_list.rs: the
-- planner matches index expressions structurally.

-- Grades in school order (Unspecified, PreK, K, 1…12, Other); anything else sorts last.
CREATE FUNCTION grade_rank(grade text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(array_position(ARRAY['Unspecified', 'PreK', 'K', '1', '2', '3', '4', '5', '6',
                                               '7', '8', '9', '10', '11', '12', 'Other']::text[], grade), 99) $$;

-- Search: name, email, username and custom ID in one lower-cased text, matched with
-- LIKE '%term%' (partial, case-insensitive). Stored, so that the name-order index can carry
-- it and test it without visiting the table.
ALTER TABLE users ADD COLUMN search_text text GENERATED ALWAYS AS (
    lower(first_name || ' ' || last_name || ' ' || coalesce(email, '') || ' ' || username || ' ' || coalesce(custom_id, ''))
) STORED;
-- Rare terms (an ID, an email) come straight from the trigram index.
CREATE INDEX users_search_trgm_idx ON users USING gin (search_text gin_trgm_ops);

-- Sort orders (each ends in id, the keyset tie-break). Sorting by username uses the unique
-- (district_id, lower(username)) index.
-- The default view (name order, not archived) covers its filters: a common search term or a
-- status / role / source filter is tested on the index alone while walking it in order.
CREATE INDEX users_list_name_idx ON users (district_id, last_name, first_name, id)
    INCLUDE (search_text, status, role, source) WHERE archived_at IS NULL;
CREATE INDEX users_list_custom_id_idx ON users (district_id, coalesce(custom_id, ''), id);
CREATE INDEX users_list_role_idx ON users (district_id, role, last_name, first_name, id);
CREATE INDEX users_list_grade_idx ON users (district_id, grade_rank(grade), last_name, first_name, id);
CREATE INDEX users_list_updated_idx ON users (district_id, updated_at, id);

-- The Inactive and Archived filters select few users: small partial indexes in name order.
CREATE INDEX users_list_inactive_idx ON users (district_id, last_name, first_name, id)
    WHERE status = 'inactive' AND archived_at IS NULL;
CREATE INDEX users_list_archived_idx ON users (district_id, last_name, first_name, id)
    WHERE archived_at IS NOT NULL;
