-- Issue 14 (SPEC §5, "the district's health"): the events alerts are sent for, and the
-- settings the home page and the staleness check read.

-- One row per thing a district may be told about. Written in the same transaction as what
-- caused it (a run's final status, by the trigger below; a stale source or a resumed pause,
-- by the app), once: `dedupe_key` is unique per district, so a restart or a second pass
-- never raises it twice. The alert loop fans each event out into deliveries
-- (`fanned_out_at`) after it has committed.
CREATE TABLE alert_events (
    district_id    uuid NOT NULL REFERENCES districts (id) ON DELETE CASCADE,
    id             bigserial NOT NULL,
    kind           text NOT NULL CHECK (kind IN
                   ('run_failed', 'sync_failed', 'needs_review', 'run_errors', 'source_stale', 'sync_resumed', 'test')),
    dedupe_key     text NOT NULL,
    run_id         uuid,
    source         text,                  -- the source key (users.source / runs.source)
    at             timestamptz NOT NULL DEFAULT now(),
    detail         jsonb NOT NULL DEFAULT '{}',
    fanned_out_at  timestamptz,
    PRIMARY KEY (district_id, id),
    CONSTRAINT alert_events_dedupe_key UNIQUE (district_id, dedupe_key)
);
CREATE INDEX alert_events_unsent_idx ON alert_events (id) WHERE fanned_out_at IS NULL;
CREATE INDEX alert_events_run_idx ON alert_events (district_id, run_id) WHERE run_id IS NOT NULL;

-- A run's final status raises its event in the same transaction (never for a dry run):
-- failed → run_failed (sync_failed for a sync), needs_review, completed_with_errors →
-- run_errors (the threshold is the district's rule, applied when the event is fanned out).
CREATE FUNCTION runs_raise_alert_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event_kind text;
BEGIN
    IF NEW.dry_run THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status = NEW.status THEN
        RETURN NULL;
    END IF;
    event_kind := CASE NEW.status
        WHEN 'failed' THEN CASE WHEN NEW.kind = 'sync' THEN 'sync_failed' ELSE 'run_failed' END
        WHEN 'needs_review' THEN 'needs_review'
        WHEN 'completed_with_errors' THEN 'run_errors'
        ELSE NULL
    END;
    IF event_kind IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO alert_events (district_id, kind, dedupe_key, run_id, source, at, detail)
    VALUES (NEW.district_id, event_kind, event_kind || ':' || NEW.id::text, NEW.id, NEW.source,
            coalesce(NEW.finished_at, now()),
            jsonb_build_object('status', NEW.status, 'run_kind', NEW.kind, 'file_name', NEW.file_name,
                               'errors', NEW.errors, 'created', NEW.created, 'updated', NEW.updated,
                               'archived', NEW.archived, 'restored', NEW.restored,
                               'total_rows', NEW.total_rows, 'message', NEW.message))
    ON CONFLICT ON CONSTRAINT alert_events_dedupe_key DO NOTHING;
    RETURN NULL;
END;
$$;
CREATE TRIGGER runs_alert_event AFTER INSERT OR UPDATE OF status ON runs
    FOR EACH ROW EXECUTE FUNCTION runs_raise_alert_event();

-- A source that usually runs is "stale" once quiet for longer than this (a nightly file:
-- 36 hours).
ALTER TABLE districts ADD COLUMN stale_after_hours integer NOT NULL DEFAULT 36
    CHECK (stale_after_hours BETWEEN 1 AND 8760);

-- Summer pause by date: a connection paused until a date resumes on it (UTC). `paused`
-- stays the switch; `paused_until` NULL with `paused` = an open-ended pause.
ALTER TABLE sync_connections ADD COLUMN paused_until date;

-- A file source (drop folder, uploads) paused, optionally until a date. While paused, its
-- drop-folder files wait in the folder; it is never reported stale.
CREATE TABLE source_pauses (
    district_id   uuid NOT NULL REFERENCES districts (id) ON DELETE CASCADE,
    source        text NOT NULL,
    paused_until  date,                    -- NULL: until resumed by hand
    paused_by     text NOT NULL,
    paused_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, source)
);
