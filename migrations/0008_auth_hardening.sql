-- Sign-in hardening (issue 20).
--
-- Session generations: a session records its account's `session_epoch` at sign-in and is
-- signed out when the two differ. Any change of password (an admin's reset, one's own
-- change, a file), of status or of archiving moves the epoch on, whichever path made it, so
-- every session of that account ends; the person changing their own password is stamped
-- with the new epoch by the app and stays signed in.
ALTER TABLE users ADD COLUMN session_epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE operators ADD COLUMN session_epoch bigint NOT NULL DEFAULT 0;

-- A temporary password works once (SPEC §2): the first sign-in with it sets this; a new
-- password (of any kind) clears it.
ALTER TABLE users ADD COLUMN temp_password_used_at timestamptz;

CREATE FUNCTION users_end_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.session_epoch := OLD.session_epoch + 1;
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
        NEW.temp_password_used_at := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_end_sessions BEFORE UPDATE OF password_hash, status, archived_at ON users
    FOR EACH ROW
    WHEN (OLD.password_hash IS DISTINCT FROM NEW.password_hash
          OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.archived_at IS DISTINCT FROM NEW.archived_at)
    EXECUTE FUNCTION users_end_sessions();

CREATE FUNCTION operators_end_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.session_epoch := OLD.session_epoch + 1;
    RETURN NEW;
END $$;
CREATE TRIGGER operators_end_sessions BEFORE UPDATE OF password_hash ON operators
    FOR EACH ROW WHEN (OLD.password_hash IS DISTINCT FROM NEW.password_hash)
    EXECUTE FUNCTION operators_end_sessions();

-- Throttling: an attempt is counted against every account the typed name resolved to
-- (one account whatever name was typed; an unknown name counts as itself), and against the
-- address across accounts.
ALTER TABLE login_attempts ADD COLUMN accounts text[] NOT NULL DEFAULT '{}';
CREATE INDEX login_attempts_ip_idx ON login_attempts (ip, at);
