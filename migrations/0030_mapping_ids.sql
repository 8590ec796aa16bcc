-- Saved column mappings get an id of their own (issue 16, item 9): the pages that list,
-- show, edit and delete them name one by it; the signature stays the lookup key.
ALTER TABLE header_mappings ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX header_mappings_district_id_id ON header_mappings (district_id, id);
