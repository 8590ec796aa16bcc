use sqlx::PgExecutor;
use time::{Duration, OffsetDateTime};

/// The throttling window for failed sign-ins.
pub const WINDOW: Duration = Duration::minutes(15);

/// Failed sign-ins for this login from this address within the window.
pub async fn recent_failures(
    db: impl PgExecutor<'_>,
    login: &str,
    ip: &str,
    now: OffsetDateTime,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM login_attempts
         WHERE login = $1 AND ip = $2 AND NOT success AND at > $3
           AND at > coalesce((SELECT max(at) FROM login_attempts WHERE login = $1 AND ip = $2 AND success), '-infinity')",
    )
    .bind(login)
    .bind(ip)
    .bind(now - WINDOW)
    .fetch_one(db)
    .await
}

pub async fn record(
    db: impl PgExecutor<'_>,
    login: &str,
    ip: &str,
    success: bool,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO login_attempts (login, ip, success, at) VALUES ($1, $2, $3, $4)")
        .bind(login)
        .bind(ip)
        .bind(success)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// Forget attempts older than a day.
pub async fn prune(db: impl PgExecutor<'_>, now: OffsetDateTime) -> sqlx::Result<u64> {
    Ok(sqlx::query("DELETE FROM login_attempts WHERE at < $1")
        .bind(now - Duration::days(1))
        .execute(db)
        .await?
        .rows_affected())
}
