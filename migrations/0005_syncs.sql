-- Roster sync connections (SPEC §6): OneRoster 1.1 REST, Clever, OneRoster 1.1 CSV bulk.
-- A sync's runs are ordinary `runs` rows (kind 'sync', source 'sync:<connection id>').

CREATE TABLE sync_connections (
    district_id       uuid NOT NULL REFERENCES districts (id) ON DELETE CASCADE,
    id                uuid NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('oneroster_rest', 'clever', 'oneroster_csv')),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    base_url          text,                   -- REST kinds
    token_url         text,                   -- OneRoster: OAuth2 token endpoint
    client_id         text,                   -- OneRoster: OAuth2 client id
    secret_sealed     bytea,                  -- client secret / district token, AEAD-encrypted
    interval_minutes  integer NOT NULL DEFAULT 360 CHECK (interval_minutes BETWEEN 15 AND 10080),
    paused            boolean NOT NULL DEFAULT false,
    next_run_at       timestamptz,            -- NULL: not scheduled (CSV connections)
    last_run_id       uuid,
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, id),
    CONSTRAINT sync_connections_district_name_key UNIQUE (district_id, name)
);
CREATE INDEX sync_connections_due_idx ON sync_connections (next_run_at) WHERE NOT paused;
CREATE TRIGGER sync_connections_updated_at BEFORE UPDATE ON sync_connections
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
