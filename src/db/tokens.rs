//! API tokens as stored (hash and prefix only), their use and revocation.

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub struct TokenRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    name: &str,
    hash: &[u8],
    prefix: &str,
    created_by: &str,
) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO api_tokens (district_id, id, name, token_hash, prefix, created_by) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(district_id)
    .bind(id)
    .bind(name)
    .bind(hash)
    .bind(prefix)
    .bind(created_by)
    .execute(db)
    .await?;
    Ok(id)
}

/// The district and token id of a live (not revoked) token, by its hash.
pub async fn authenticate(
    db: impl PgExecutor<'_>,
    hash: &[u8],
) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    sqlx::query_as(
        "UPDATE api_tokens SET last_used_at = now() WHERE token_hash = $1 AND revoked_at IS NULL
         RETURNING district_id, id",
    )
    .bind(hash)
    .fetch_optional(db)
    .await
}

pub async fn list(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<Vec<TokenRow>> {
    sqlx::query_as(
        "SELECT id, name, prefix, created_by, created_at, last_used_at, revoked_at FROM api_tokens
         WHERE district_id = $1 ORDER BY created_at DESC",
    )
    .bind(district_id)
    .fetch_all(db)
    .await
}

pub async fn revoke(db: impl PgExecutor<'_>, district_id: Uuid, id: Uuid) -> sqlx::Result<bool> {
    Ok(sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE district_id = $1 AND id = $2 AND revoked_at IS NULL")
        .bind(district_id)
        .bind(id)
        .execute(db)
        .await?
        .rows_affected()
        == 1)
}
