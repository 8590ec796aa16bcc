-- Rosters (SPEC §6a): terms, classes and enrollments. Tenant keys lead with district_id.
-- Classes have an owner (`source`, as users.source: file:<key> | sync:<uuid> | manual) and
-- are archived, never deleted, so a returning class keeps its id. Enrollments link a user to
-- a class as teacher or student; an enrollment a feed no longer lists is removed (the run
-- that removed it records it, for undo and history).

CREATE TABLE terms (
    district_id  uuid NOT NULL REFERENCES districts (id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    external_id  text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 200),
    title        text NOT NULL DEFAULT '',
    start_date   date,
    end_date     date,
    source       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, id),
    CONSTRAINT terms_district_external_id_key UNIQUE (district_id, external_id)
);
CREATE TRIGGER terms_updated_at BEFORE UPDATE ON terms
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE classes (
    district_id  uuid NOT NULL REFERENCES districts (id) ON DELETE CASCADE,
    id           uuid NOT NULL,                 -- the class GUID; never changes
    external_id  text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 200),
    school_id    uuid NOT NULL,
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    course_code  text NOT NULL DEFAULT '',
    subject      text NOT NULL DEFAULT '',
    period       text NOT NULL DEFAULT '',
    grades       text[] NOT NULL DEFAULT '{}',
    term_id      uuid,
    source       text NOT NULL,                 -- owner: file:<key> | sync:<uuid> | manual
    archived_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, id),
    CONSTRAINT classes_district_external_id_key UNIQUE (district_id, external_id),
    FOREIGN KEY (district_id, school_id) REFERENCES schools (district_id, id),
    FOREIGN KEY (district_id, term_id) REFERENCES terms (district_id, id)
);
CREATE TRIGGER classes_updated_at BEFORE UPDATE ON classes
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- The Classes screen: keyset pages by title, per school, per term; search by title.
CREATE INDEX classes_title_idx ON classes (district_id, lower(title), id);
CREATE INDEX classes_school_idx ON classes (district_id, school_id, lower(title), id);
CREATE INDEX classes_term_idx ON classes (district_id, term_id);
CREATE INDEX classes_source_idx ON classes (district_id, source);
CREATE INDEX classes_title_trgm_idx ON classes USING gin (lower(title) gin_trgm_ops);

-- No foreign keys to users or classes (like user_schools since 0006): at 3,000,000 rows a
-- per-row check doubles a bulk COPY; the reconcile engine writes only ids it has just read
-- or created in the same transaction, and neither users nor classes are ever deleted.
CREATE TABLE enrollments (
    district_id  uuid NOT NULL,
    class_id     uuid NOT NULL,
    user_id      uuid NOT NULL,
    role         text NOT NULL CHECK (role IN ('teacher', 'student')),
    is_primary   boolean NOT NULL DEFAULT false,
    begin_date   date,
    end_date     date,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, class_id, user_id)
);
-- A user's classes (the user page, a teacher's home).
CREATE INDEX enrollments_user_idx ON enrollments (district_id, user_id, class_id);
