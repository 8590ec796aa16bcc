-- Issue 13, items 3 and 4 (SPEC §4, "Fields an admin edited" and "Passwords in files").
--
-- kept_fields: canonical field names (`grade`, `email`, `school_external_id`, …) an admin
-- changed by hand on a user owned by a file or a sync. Feeds leave these fields as they are
-- until the admin releases them on the user page.
ALTER TABLE users ADD COLUMN kept_fields text[] NOT NULL DEFAULT '{}';

-- feed_password_mac: HMAC-SHA256 (keyed with a key derived from the installation's secret
-- key, which is not in the database) of the user's GUID and the last password a feed gave
-- them. A feed row whose password has the same fingerprint changes nothing, so the same
-- file uploaded again neither re-hashes nor rewrites anyone's password.
ALTER TABLE users ADD COLUMN feed_password_mac bytea;

-- The kept fields a row would otherwise have changed: the completed file's `kept` column.
ALTER TABLE run_rows ADD COLUMN kept text[] NOT NULL DEFAULT '{}';
