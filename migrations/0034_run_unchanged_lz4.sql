-- A run's unchanged rows (0026) compressed with lz4 instead of PostgreSQL's default pglz
-- (issue 19). An identical re-import of 10,000 rows stores three arrays of 10,000 entries in
-- one `run_unchanged` row; pglz took 17-90 ms to compress them (a tenth to a third of the
-- whole no-op), lz4 4-8 ms, for 126 KB stored against pglz's 111 KB and 400 KB uncompressed
-- (measured with the release binary on a throwaway cluster, SQL statement timings).
-- A server built without lz4 keeps pglz: the import works the same, only slower.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE run_unchanged
                 ALTER COLUMN lines SET COMPRESSION lz4,
                 ALTER COLUMN users SET COMPRESSION lz4,
                 ALTER COLUMN matched_by SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available here: run_unchanged keeps pglz';
END
$$;
