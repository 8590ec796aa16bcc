//! Password reset tokens (forgot password by email): stored as SHA-256 hashes, single use,
//! with an expiry.

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// Who may be sent a reset link for a sign-in name: active, not archived, with an email.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    pub district_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub username: String,
    pub district_name: String,
}

/// Active accounts whose email or username is `login` (case-insensitive) and that have an
/// email (across districts: a reset mail goes to each).
pub async fn recipients(db: impl PgExecutor<'_>, login: &str) -> sqlx::Result<Vec<Recipient>> {
    sqlx::query_as(
        "SELECT u.district_id, u.id AS user_id, u.email, u.username, d.name AS district_name
         FROM users u JOIN districts d ON d.id = u.district_id
         WHERE (lower(u.email) = lower($1) OR lower(u.username) = lower($1))
           AND u.email IS NOT NULL AND u.status = 'active' AND u.archived_at IS NULL
         LIMIT 20",
    )
    .bind(login)
    .fetch_all(db)
    .await
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    user_id: Uuid,
    token_hash: &[u8],
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO password_resets (district_id, token_hash, user_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(district_id)
    .bind(token_hash)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// The account a token resets, while it is unused and unexpired (the token is the only
/// proof there is, so this lookup is by its hash across districts).
pub async fn valid(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
    now: OffsetDateTime,
) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    sqlx::query_as(
        "SELECT r.district_id, r.user_id FROM password_resets r
         JOIN users u ON u.district_id = r.district_id AND u.id = r.user_id
         WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > $2
           AND u.status = 'active' AND u.archived_at IS NULL",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Use a token up: the account it resets, once. Every other token of that account goes too.
pub async fn use_token(
    db: &mut sqlx::PgConnection,
    token_hash: &[u8],
    now: OffsetDateTime,
) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    let found: Option<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE password_resets SET used_at = $2
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
         RETURNING district_id, user_id",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(&mut *db)
    .await?;
    if let Some((district_id, user_id)) = found {
        sqlx::query(
            "UPDATE password_resets SET used_at = $3
             WHERE district_id = $1 AND user_id = $2 AND used_at IS NULL",
        )
        .bind(district_id)
        .bind(user_id)
        .bind(now)
        .execute(&mut *db)
        .await?;
    }
    Ok(found)
}

/// Forget tokens a day past their expiry.
pub async fn prune(db: impl PgExecutor<'_>, now: OffsetDateTime) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM password_resets WHERE expires_at < $1")
            .bind(now - time::Duration::days(1))
            .execute(db)
            .await?
            .rows_affected(),
    )
}
