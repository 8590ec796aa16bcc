-- Issue 14 item 2 (SPEC §5): who a district tells about its alert events, and how each
-- telling went. A district without an `alert_settings` row uses the defaults below.

CREATE TABLE alert_settings (
    district_id            uuid PRIMARY KEY REFERENCES districts (id) ON DELETE CASCADE,
    run_failed             boolean NOT NULL DEFAULT true,
    needs_review           boolean NOT NULL DEFAULT true,
    run_errors             boolean NOT NULL DEFAULT false,
    errors_above           integer NOT NULL DEFAULT 0 CHECK (errors_above >= 0),
    sync_failed            boolean NOT NULL DEFAULT true,
    source_stale           boolean NOT NULL DEFAULT true,
    sync_resumed           boolean NOT NULL DEFAULT true,
    webhook_url            text,
    webhook_enabled        boolean NOT NULL DEFAULT false,
    webhook_secret_sealed  bytea,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alert_recipients (
    district_id  uuid NOT NULL REFERENCES districts (id) ON DELETE CASCADE,
    email        text NOT NULL,
    added_by     text NOT NULL,
    added_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, email)
);

-- One row per event × channel × target. The sender claims due rows (FOR UPDATE SKIP
-- LOCKED) and leases them for five minutes, so a crashed sender's rows come back.
CREATE TABLE alert_deliveries (
    district_id      uuid NOT NULL,
    id               bigserial NOT NULL,
    event_id         bigint NOT NULL,
    channel          text NOT NULL CHECK (channel IN ('email', 'webhook')),
    target           text NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    last_code        integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    PRIMARY KEY (district_id, id),
    CONSTRAINT alert_deliveries_event_fk FOREIGN KEY (district_id, event_id)
        REFERENCES alert_events (district_id, id) ON DELETE CASCADE,
    CONSTRAINT alert_deliveries_once UNIQUE (district_id, event_id, channel, target)
);
CREATE INDEX alert_deliveries_due_idx ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_log_idx ON alert_deliveries (district_id, id DESC);
