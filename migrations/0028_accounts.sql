-- Accounts (issue 17 items 2-7): the operator's one-time password, TOTP MFA with recovery
-- codes, the district's MFA requirement for admins, password reset tokens, and the list of
-- a person's signed-in sessions.

-- The operator's password from `rollcall operator create` / `reset-password` works once and
-- must then be changed (like a user's temporary password). A new password forgets the use.
ALTER TABLE operators ADD COLUMN password_temporary boolean NOT NULL DEFAULT false;
ALTER TABLE operators ADD COLUMN temp_password_used_at timestamptz;
CREATE OR REPLACE FUNCTION operators_end_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.session_epoch := OLD.session_epoch + 1;
    NEW.temp_password_used_at := NULL;
    RETURN NEW;
END $$;

-- TOTP (RFC 6238): the secret sealed with the installation key (bound to the account), set
-- when enrolment starts and confirmed by a first code; the last time step used (a code
-- works once); recovery codes as SHA-256 hashes, each removed when used.
ALTER TABLE users ADD COLUMN mfa_secret bytea;
ALTER TABLE users ADD COLUMN mfa_enabled_at timestamptz;
ALTER TABLE users ADD COLUMN mfa_last_step bigint;
ALTER TABLE users ADD COLUMN mfa_recovery bytea[] NOT NULL DEFAULT '{}';
ALTER TABLE operators ADD COLUMN mfa_secret bytea;
ALTER TABLE operators ADD COLUMN mfa_enabled_at timestamptz;
ALTER TABLE operators ADD COLUMN mfa_last_step bigint;
ALTER TABLE operators ADD COLUMN mfa_recovery bytea[] NOT NULL DEFAULT '{}';

-- A district may require MFA of its district and school admins.
ALTER TABLE districts ADD COLUMN mfa_required_for_admins boolean NOT NULL DEFAULT false;

-- Forgot password: a single-use token sent by email, stored as its SHA-256.
CREATE TABLE password_resets (
    district_id  uuid NOT NULL,
    token_hash   bytea NOT NULL,
    user_id      uuid NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    PRIMARY KEY (district_id, token_hash),
    FOREIGN KEY (district_id, user_id) REFERENCES users (district_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX password_resets_token_key ON password_resets (token_hash);
CREATE INDEX password_resets_user_idx ON password_resets (district_id, user_id);

-- Signed-in sessions as their person sees them (device, last seen), for "My sessions". A
-- row belongs to an account (the throttle's key: `user:<district>:<id>` or
-- `operator:<id>`) and to the account's session epoch it signed in under: once the epoch
-- moves on (password change or reset, "sign out other sessions"), the session is over.
CREATE TABLE account_sessions (
    id            uuid PRIMARY KEY,
    district_id   uuid REFERENCES districts (id) ON DELETE CASCADE,  -- NULL for the operator
    account       text NOT NULL,
    epoch         bigint NOT NULL,
    device        text NOT NULL,
    ip            text NOT NULL,
    signed_in_at  timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    ended_at      timestamptz
);
CREATE INDEX account_sessions_account_idx ON account_sessions (account, last_seen_at);
