//! Single sign-on's statements (migration 0027): a district's OpenID Connect providers, the
//! identities they vouched for, the district's "Require SSO" policy, and the users a
//! sign-in may be matched to. Every statement is scoped by `district_id`.

use crate::domain::{PortalRole, UserStatus};
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// One provider as stored (the client secret sealed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Provider {
    pub district_id: Uuid,
    pub id: Uuid,
    pub label: String,
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret_sealed: Vec<u8>,
    pub allowed_domains: Vec<String>,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
}

/// A provider's settings as written (the secret already sealed).
pub struct ProviderRow<'a> {
    pub label: &'a str,
    pub issuer_url: &'a str,
    pub client_id: &'a str,
    /// `None` keeps the stored secret (an update with the field left empty).
    pub client_secret_sealed: Option<&'a [u8]>,
    pub allowed_domains: &'a [String],
    pub enabled: bool,
}

const PROVIDER_COLUMNS: &str = "district_id, id, label, issuer_url, client_id, client_secret_sealed, allowed_domains, enabled, created_at";

/// The district's providers, in the order they were added.
pub async fn providers(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<Vec<Provider>> {
    sqlx::query_as(&format!(
        "SELECT {PROVIDER_COLUMNS} FROM sso_providers WHERE district_id = $1 ORDER BY created_at, id"
    ))
    .bind(district_id)
    .fetch_all(db)
    .await
}

pub async fn provider(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Provider>> {
    sqlx::query_as(&format!(
        "SELECT {PROVIDER_COLUMNS} FROM sso_providers WHERE district_id = $1 AND id = $2"
    ))
    .bind(district_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A district by its slug, for the sign-in page of `/login/{slug}`: id and name.
pub async fn district_by_slug(
    db: impl PgExecutor<'_>,
    slug: &str,
) -> sqlx::Result<Option<(Uuid, String)>> {
    sqlx::query_as("SELECT id, name FROM districts WHERE slug = $1")
        .bind(slug)
        .fetch_optional(db)
        .await
}

pub async fn insert_provider(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    row: &ProviderRow<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sso_providers (district_id, id, label, issuer_url, client_id, client_secret_sealed, allowed_domains, enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(district_id)
    .bind(id)
    .bind(row.label)
    .bind(row.issuer_url)
    .bind(row.client_id)
    .bind(row.client_secret_sealed.unwrap_or_default())
    .bind(row.allowed_domains)
    .bind(row.enabled)
    .execute(db)
    .await?;
    Ok(())
}

/// Update a provider; false when it is not the district's.
pub async fn update_provider(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    row: &ProviderRow<'_>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE sso_providers
         SET label = $3, issuer_url = $4, client_id = $5,
             client_secret_sealed = COALESCE($6, client_secret_sealed),
             allowed_domains = $7, enabled = $8, updated_at = now()
         WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(id)
    .bind(row.label)
    .bind(row.issuer_url)
    .bind(row.client_id)
    .bind(row.client_secret_sealed)
    .bind(row.allowed_domains)
    .bind(row.enabled)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Delete a provider (its stored identities go with it); false when it is not the
/// district's.
pub async fn delete_provider(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM sso_providers WHERE district_id = $1 AND id = $2")
        .bind(district_id)
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The district's "Require SSO" choices (all off when never set).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Policy {
    pub require_for_users: bool,
    pub require_for_admins: bool,
    pub break_glass_user_id: Option<Uuid>,
}

pub async fn policy(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<Policy> {
    Ok(sqlx::query_as(
        "SELECT require_for_users, require_for_admins, break_glass_user_id
         FROM sso_policies WHERE district_id = $1",
    )
    .bind(district_id)
    .fetch_optional(db)
    .await?
    .unwrap_or_default())
}

pub async fn save_policy(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    p: &Policy,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sso_policies (district_id, require_for_users, require_for_admins, break_glass_user_id)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (district_id) DO UPDATE
         SET require_for_users = $2, require_for_admins = $3, break_glass_user_id = $4, updated_at = now()",
    )
    .bind(district_id)
    .bind(p.require_for_users)
    .bind(p.require_for_admins)
    .bind(p.break_glass_user_id)
    .execute(db)
    .await?;
    Ok(())
}

/// A user a sign-in may land on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Account {
    pub district_id: Uuid,
    pub id: Uuid,
    pub username: String,
    pub email: Option<String>,
    pub status: UserStatus,
    pub archived_at: Option<OffsetDateTime>,
    pub portal_role: PortalRole,
    pub session_epoch: i64,
}

const ACCOUNT_COLUMNS: &str = "u.district_id, u.id, u.username, u.email, u.status, u.archived_at, u.portal_role, u.session_epoch";

/// The user an identity of this provider was matched to before.
pub async fn account_by_subject(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    provider_id: Uuid,
    subject: &str,
) -> sqlx::Result<Option<Account>> {
    sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM sso_identities i
         JOIN users u ON u.district_id = i.district_id AND u.id = i.user_id
         WHERE i.district_id = $1 AND i.provider_id = $2 AND i.subject = $3"
    ))
    .bind(district_id)
    .bind(provider_id)
    .bind(subject)
    .fetch_optional(db)
    .await
}

/// The district's user with this email (case-insensitive; emails are unique per district).
pub async fn account_by_email(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    email: &str,
) -> sqlx::Result<Option<Account>> {
    sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM users u WHERE u.district_id = $1 AND lower(u.email) = lower($2)"
    ))
    .bind(district_id)
    .bind(email)
    .fetch_optional(db)
    .await
}

/// Remember (or refresh) which user an identity is.
pub async fn link_identity(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    provider_id: Uuid,
    subject: &str,
    user_id: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sso_identities (district_id, provider_id, subject, user_id, created_at, last_used_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (district_id, provider_id, subject) DO UPDATE SET last_used_at = $5",
    )
    .bind(district_id)
    .bind(provider_id)
    .bind(subject)
    .bind(user_id)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// The district's active district admins (the break-glass choice): id and sign-in name.
pub async fn district_admins(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    sqlx::query_as(
        "SELECT id, COALESCE(email, username) FROM users
         WHERE district_id = $1 AND portal_role = 'district_admin' AND status = 'active'
           AND archived_at IS NULL
         ORDER BY lower(COALESCE(email, username))",
    )
    .bind(district_id)
    .fetch_all(db)
    .await
}

/// A district's slug (for the words that send a person to `/login/{slug}`).
pub async fn district_slug(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<String> {
    sqlx::query_scalar("SELECT slug FROM districts WHERE id = $1")
        .bind(district_id)
        .fetch_one(db)
        .await
}
