-- Foundation: districts, schools, users, memberships, sessions, API tokens, audit log.
-- Conventions: every tenant table carries district_id and has it first in its primary and
-- unique keys (ready for distribution by district_id); updated_at kept by one trigger;
-- emails and usernames unique case-insensitively per district.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TABLE operators (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX operators_email_key ON operators (lower(email));

CREATE TABLE districts (
    id                  uuid PRIMARY KEY,
    slug                text NOT NULL CONSTRAINT districts_slug_key UNIQUE
                        CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- mass-change guard (SPEC §4), per district
    guard_archive_pct   double precision NOT NULL DEFAULT 10,
    guard_archive_min   integer NOT NULL DEFAULT 10,
    guard_update_pct    double precision NOT NULL DEFAULT 75,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER districts_updated_at BEFORE UPDATE ON districts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE schools (
    district_id  uuid NOT NULL REFERENCES districts (id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    external_id  text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 100),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    low_grade    text,
    high_grade   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, id),
    CONSTRAINT schools_district_external_id_key UNIQUE (district_id, external_id)
);
CREATE TRIGGER schools_updated_at BEFORE UPDATE ON schools
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE users (
    district_id            uuid NOT NULL REFERENCES districts (id) ON DELETE CASCADE,
    id                     uuid NOT NULL,               -- the user_guid; never changes
    custom_id              text,
    email                  text,                        -- stored lower-cased
    username               text NOT NULL,
    first_name             text NOT NULL DEFAULT '',
    middle_name            text NOT NULL DEFAULT '',
    last_name              text NOT NULL DEFAULT '',
    role                   text NOT NULL CHECK (role IN ('Student', 'Teacher', 'Staff', 'Administrator')),
    grade                  text NOT NULL DEFAULT 'Unspecified',
    position               text NOT NULL DEFAULT '',
    status                 text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    archived_at            timestamptz,
    source                 text NOT NULL DEFAULT 'manual', -- manual | file:<name> | sync:<uuid>
    source_key             text,                          -- provider id within a sync
    prevent_archiving      boolean NOT NULL DEFAULT false,
    portal_role            text NOT NULL DEFAULT 'user'
                           CHECK (portal_role IN ('user', 'school_admin', 'district_admin')),
    password_hash          text,
    password_temporary     boolean NOT NULL DEFAULT false,
    password_set_at        timestamptz,
    version                bigint NOT NULL DEFAULT 1,     -- optimistic concurrency
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, id)
);
CREATE UNIQUE INDEX users_district_custom_id_key ON users (district_id, custom_id) WHERE custom_id IS NOT NULL;
CREATE UNIQUE INDEX users_district_email_key ON users (district_id, lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX users_district_username_key ON users (district_id, lower(username));
CREATE INDEX users_district_source_idx ON users (district_id, source);
CREATE INDEX users_id_idx ON users (id);
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE user_schools (
    district_id  uuid NOT NULL,
    user_id      uuid NOT NULL,
    school_id    uuid NOT NULL,
    PRIMARY KEY (district_id, user_id, school_id),
    FOREIGN KEY (district_id, user_id) REFERENCES users (district_id, id) ON DELETE CASCADE,
    FOREIGN KEY (district_id, school_id) REFERENCES schools (district_id, id) ON DELETE CASCADE
);
CREATE INDEX user_schools_school_idx ON user_schools (district_id, school_id, user_id);

-- Server-side sessions (the tower-sessions PostgreSQL store's layout).
CREATE TABLE sessions (
    id           text PRIMARY KEY NOT NULL,
    data         bytea NOT NULL,
    expiry_date  timestamptz NOT NULL
);
CREATE INDEX sessions_expiry_idx ON sessions (expiry_date);

-- Failed and successful sign-ins, for throttling (not tenant data: the district is unknown
-- until the password checks).
CREATE TABLE login_attempts (
    id        bigserial PRIMARY KEY,
    login     text NOT NULL,       -- lower-cased identifier as typed
    ip        text NOT NULL,
    success   boolean NOT NULL,
    at        timestamptz NOT NULL
);
CREATE INDEX login_attempts_lookup_idx ON login_attempts (login, ip, at);

CREATE TABLE api_tokens (
    district_id   uuid NOT NULL REFERENCES districts (id) ON DELETE CASCADE,
    id            uuid NOT NULL,
    name          text NOT NULL,
    token_hash    bytea NOT NULL,       -- SHA-256 of a 256-bit random token
    prefix        text NOT NULL,        -- first characters, to recognise it in lists
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    PRIMARY KEY (district_id, id)
);
CREATE UNIQUE INDEX api_tokens_hash_key ON api_tokens (token_hash);

CREATE TABLE audit_log (
    district_id  uuid NOT NULL REFERENCES districts (id) ON DELETE CASCADE,
    id           bigserial NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    actor_kind   text NOT NULL,   -- user | operator | token | cli | upload | sync | system
    actor_id     uuid,
    actor_label  text NOT NULL,
    action       text NOT NULL,   -- e.g. user.create, user.update, user.archive, school.create
    entity_kind  text NOT NULL,   -- user | school | district | token | run
    entity_id    uuid,
    run_id       uuid,
    before       jsonb,
    after        jsonb,
    PRIMARY KEY (district_id, id)
);
CREATE INDEX audit_log_entity_idx ON audit_log (district_id, entity_id, at DESC);
