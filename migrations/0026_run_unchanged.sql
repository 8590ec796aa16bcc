-- A run's rows that found their user and changed nothing ("unchanged", not moved, no kept
-- fields, no temporary password), kept compactly: one row per run instead of one `run_rows`
-- row per data row, so an identical re-import writes no per-row results (issue 19).
-- Row `lines[i]` found user `users[i]` by `matched_by[i]`; readers unnest the three arrays
-- beside `run_rows` (`db::runs`), so the completed file and the run page are as before.
CREATE TABLE run_unchanged (
    district_id  uuid NOT NULL,
    run_id       uuid NOT NULL,
    lines        bigint[] NOT NULL,
    users        uuid[] NOT NULL,
    matched_by   text[] NOT NULL,
    PRIMARY KEY (district_id, run_id),
    FOREIGN KEY (district_id, run_id) REFERENCES runs (district_id, id) ON DELETE CASCADE,
    CHECK (cardinality(lines) = cardinality(users) AND cardinality(lines) = cardinality(matched_by))
);
