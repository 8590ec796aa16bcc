-- Runs: one per upload, sync or command-line import; their per-row outcomes; and the
-- header mappings districts saved for their SIS exports.

CREATE TABLE runs (
    district_id       uuid NOT NULL REFERENCES districts (id) ON DELETE CASCADE,
    id                uuid NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('upload', 'api', 'drop', 'cli', 'sync')),
    source            text NOT NULL,          -- the source key, as users.source stores it
    file_name         text,
    file_sha256       text,
    file_path         text,                   -- where the uploaded bytes are kept
    status            text NOT NULL DEFAULT 'queued' CHECK (status IN
                      ('queued', 'in_progress', 'completed', 'completed_with_errors', 'needs_review', 'failed', 'cancelled')),
    dry_run           boolean NOT NULL DEFAULT false,
    approved          boolean NOT NULL DEFAULT false,
    options           jsonb NOT NULL DEFAULT '{}',   -- column overrides and fixed values
    submitted_kind    text NOT NULL,                 -- user | token | drop | cli | sync
    submitted_by      text NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    attempts          integer NOT NULL DEFAULT 0,
    total_rows        integer NOT NULL DEFAULT 0,
    done_rows         integer NOT NULL DEFAULT 0,
    created           integer NOT NULL DEFAULT 0,
    updated           integer NOT NULL DEFAULT 0,
    unchanged         integer NOT NULL DEFAULT 0,
    restored          integer NOT NULL DEFAULT 0,
    archived          integer NOT NULL DEFAULT 0,
    errors            integer NOT NULL DEFAULT 0,
    message           text,                   -- file error, or why it needs review
    ignored_columns   text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (district_id, id)
);
CREATE INDEX runs_district_received_idx ON runs (district_id, received_at DESC);
CREATE INDEX runs_queue_idx ON runs (received_at) WHERE status = 'queued';

-- One row per data row of a run (file order), for the completed and error files.
CREATE TABLE run_rows (
    district_id    uuid NOT NULL,
    run_id         uuid NOT NULL,
    line           bigint NOT NULL,
    outcome        text NOT NULL CHECK (outcome IN ('created', 'updated', 'unchanged', 'restored', 'archived', 'error')),
    user_id        uuid,
    username       text,
    temp_password  text,                       -- shown in the completed file; purged after 30 days
    changed        text[] NOT NULL DEFAULT '{}',
    error          text,
    PRIMARY KEY (district_id, run_id, line),
    FOREIGN KEY (district_id, run_id) REFERENCES runs (district_id, id) ON DELETE CASCADE
);

-- Users a run archives (or would archive, for dry runs and runs waiting for review).
CREATE TABLE run_archives (
    district_id  uuid NOT NULL,
    run_id       uuid NOT NULL,
    user_id      uuid NOT NULL,
    PRIMARY KEY (district_id, run_id, user_id),
    FOREIGN KEY (district_id, run_id) REFERENCES runs (district_id, id) ON DELETE CASCADE
);

CREATE TABLE header_mappings (
    district_id  uuid NOT NULL REFERENCES districts (id) ON DELETE CASCADE,
    signature    text NOT NULL,            -- the folded, sorted header set
    mapping      jsonb NOT NULL,
    updated_by   text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, signature)
);
