-- The district's own external ID (SPEC §1, seed 002: its SIS district code; a user file row
-- whose school column holds it is a district-level user with no school) and its time zone
-- (issue 16, item 10: an IANA name; every time a page shows, and the downloads, read in it).
ALTER TABLE districts
    ADD COLUMN external_id text CHECK (length(external_id) BETWEEN 1 AND 100),
    ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC' CHECK (length(time_zone) BETWEEN 1 AND 64);
