-- Single sign-on (issue 17, item 1): a district's OpenID Connect providers, the identities
-- they vouched for (the subject, stored at the first match by verified email), and the
-- district's "Require SSO" choices. Accounts still come only from feeds and admins: an
-- identity only ever points at an existing user.
CREATE TABLE sso_providers (
    district_id           uuid NOT NULL REFERENCES districts (id) ON DELETE CASCADE,
    id                    uuid NOT NULL,
    label                 text NOT NULL,               -- the button's words
    issuer_url            text NOT NULL,               -- discovery: <issuer>/.well-known/openid-configuration
    client_id             text NOT NULL,
    client_secret_sealed  bytea NOT NULL,              -- crate::crypto, sealed to (district, id)
    allowed_domains       text[] NOT NULL,             -- lower-cased email domains
    enabled               boolean NOT NULL DEFAULT true,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, id)
);
CREATE UNIQUE INDEX sso_providers_id_key ON sso_providers (id);

CREATE TABLE sso_identities (
    district_id   uuid NOT NULL,
    provider_id   uuid NOT NULL,
    subject       text NOT NULL,
    user_id       uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, provider_id, subject),
    FOREIGN KEY (district_id, provider_id) REFERENCES sso_providers (district_id, id) ON DELETE CASCADE,
    FOREIGN KEY (district_id, user_id) REFERENCES users (district_id, id) ON DELETE CASCADE
);
CREATE INDEX sso_identities_user_idx ON sso_identities (district_id, user_id);

-- "Require SSO": password sign-in refused for non-admin users, and optionally for admins
-- too except one break-glass admin (who keeps password + MFA).
CREATE TABLE sso_policies (
    district_id          uuid PRIMARY KEY REFERENCES districts (id) ON DELETE CASCADE,
    require_for_users    boolean NOT NULL DEFAULT false,
    require_for_admins   boolean NOT NULL DEFAULT false,
    break_glass_user_id  uuid,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (district_id, break_glass_user_id) REFERENCES users (district_id, id) ON DELETE SET NULL (break_glass_user_id)
);
