//! A person's signed-in sessions as "My sessions" lists them (device, address, last seen):
//! one row per signed-in browser session, tied to the account's session epoch.

use sqlx::PgExecutor;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// A session unseen this long has expired (the session layer's inactivity expiry).
pub const IDLE: Duration = Duration::hours(8);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: Uuid,
    pub device: String,
    pub ip: String,
    pub signed_in_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
}

pub struct NewSession<'a> {
    pub id: Uuid,
    pub district_id: Option<Uuid>,
    pub account: &'a str,
    pub epoch: i64,
    pub device: &'a str,
    pub ip: &'a str,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    s: &NewSession<'_>,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO account_sessions (id, district_id, account, epoch, device, ip, signed_in_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(s.id)
    .bind(s.district_id)
    .bind(s.account)
    .bind(s.epoch)
    .bind(s.device)
    .bind(s.ip)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// The session was used now (from this address).
pub async fn seen(
    db: impl PgExecutor<'_>,
    id: Uuid,
    ip: &str,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE account_sessions SET last_seen_at = $2, ip = $3 WHERE id = $1")
        .bind(id)
        .bind(now)
        .bind(ip)
        .execute(db)
        .await?;
    Ok(())
}

/// The session carries on under the account's new epoch (its own password change).
pub async fn restamp(db: impl PgExecutor<'_>, id: Uuid, epoch: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE account_sessions SET epoch = $2 WHERE id = $1")
        .bind(id)
        .bind(epoch)
        .execute(db)
        .await?;
    Ok(())
}

/// The session signed out.
pub async fn end(db: impl PgExecutor<'_>, id: Uuid, now: OffsetDateTime) -> sqlx::Result<()> {
    sqlx::query("UPDATE account_sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// The account's live sessions: of its current epoch, not signed out, seen within `IDLE`;
/// the latest seen first.
pub async fn live(
    db: impl PgExecutor<'_>,
    account: &str,
    epoch: i64,
    now: OffsetDateTime,
) -> sqlx::Result<Vec<SessionRow>> {
    sqlx::query_as(
        "SELECT id, device, ip, signed_in_at, last_seen_at FROM account_sessions
         WHERE account = $1 AND epoch = $2 AND ended_at IS NULL AND last_seen_at > $3
         ORDER BY last_seen_at DESC, signed_in_at DESC",
    )
    .bind(account)
    .bind(epoch)
    .bind(now - IDLE)
    .fetch_all(db)
    .await
}

/// End every other session of a member: their epoch moves on (every session holding the
/// old one is signed out at its next request). Returns the new epoch.
pub async fn end_other_user_sessions(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "UPDATE users SET session_epoch = session_epoch + 1
         WHERE district_id = $1 AND id = $2 RETURNING session_epoch",
    )
    .bind(district_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// The same for the operator.
pub async fn end_other_operator_sessions(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "UPDATE operators SET session_epoch = session_epoch + 1 WHERE id = $1 RETURNING session_epoch",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Forget sessions that ended or expired a day ago.
pub async fn prune(db: impl PgExecutor<'_>, now: OffsetDateTime) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM account_sessions WHERE coalesce(ended_at, last_seen_at + interval '8 hours') < $1",
    )
    .bind(now - Duration::days(1))
    .execute(db)
    .await?
    .rows_affected())
}
