//! Counting password guesses. An attempt is counted BEFORE the password is checked: in one
//! transaction holding the address's advisory lock, the recent failures are counted and,
//! below the limits, the attempt is recorded as a failure; only then is the password hashed,
//! and a right one turns that record into a success. Parallel guesses therefore cannot all
//! read "below the limit" before any of them is written.
//!
//! Two limits, both within `WINDOW`: failures per account from one address (an account is
//! one counter whatever name was typed — email or username; an unknown name counts as
//! itself; a success from that address starts it again), and failures from one address
//! across all accounts (a success does not reset that one).

use sqlx::{PgExecutor, PgPool};
use time::{Duration, OffsetDateTime};

/// The throttling window for failed sign-ins.
pub const WINDOW: Duration = Duration::minutes(15);

/// The advisory-lock class of sign-in counters (the two-key lock space, apart from the
/// one-key locks runs and syncs take).
const LOCK_CLASS: i32 = 0x5e55;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_account: i64,
    pub per_address: i64,
}

/// The outcome of asking to try a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Counted as a failure until `succeeded` says otherwise.
    Allowed(i64),
    /// At a limit: the password must not be checked.
    Throttled,
}

/// The counter key of an account, or of a name no account has.
pub fn user_key(district_id: uuid::Uuid, id: uuid::Uuid) -> String {
    format!("user:{district_id}:{id}")
}
pub fn operator_key(id: uuid::Uuid) -> String {
    format!("operator:{id}")
}
pub fn name_key(login: &str) -> String {
    format!("name:{login}")
}

/// Count, decide and record one attempt of `accounts` from `ip` (see the module comment).
/// `login` is the name as typed, kept for the record.
pub async fn begin(
    pool: &PgPool,
    login: &str,
    accounts: &[String],
    ip: &str,
    limits: Limits,
    now: OffsetDateTime,
) -> sqlx::Result<Attempt> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(LOCK_CLASS)
        .bind(ip)
        .execute(&mut *tx)
        .await?;
    let (address, account): (i64, i64) = sqlx::query_as(
        "SELECT
           (SELECT count(*) FROM login_attempts
             WHERE ip = $1 AND NOT success AND at > $3),
           coalesce((SELECT max(n) FROM (
             SELECT (SELECT count(*) FROM login_attempts a
                      WHERE a.ip = $1 AND k = ANY(a.accounts) AND NOT a.success AND a.at > $3
                        AND a.at > coalesce((SELECT max(s.at) FROM login_attempts s
                                              WHERE s.ip = $1 AND k = ANY(s.accounts) AND s.success
                                                AND s.at > $3),
                                            '-infinity')) AS n
             FROM unnest($2::text[]) AS k) per_account), 0)",
    )
    .bind(ip)
    .bind(accounts)
    .bind(now - WINDOW)
    .fetch_one(&mut *tx)
    .await?;
    if address >= limits.per_address || account >= limits.per_account {
        tx.rollback().await?;
        return Ok(Attempt::Throttled);
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO login_attempts (login, accounts, ip, success, at)
         VALUES ($1, $2, $3, false, $4) RETURNING id",
    )
    .bind(login)
    .bind(accounts)
    .bind(ip)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Attempt::Allowed(id))
}

/// The password was right: the attempt `begin` recorded becomes a success.
pub async fn succeeded(db: impl PgExecutor<'_>, attempt: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE login_attempts SET success = true WHERE id = $1")
        .bind(attempt)
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

/// An unlock: the account's failed attempts (from any address) no longer count. Returns how
/// many were forgotten.
pub async fn clear_account(db: impl PgExecutor<'_>, account: &str) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM login_attempts WHERE $1 = ANY(accounts) AND NOT success")
            .bind(account)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// Whether the account is locked out now from some address (its failures there since its
/// last success there reached the limit within the window).
pub async fn account_locked(
    db: impl PgExecutor<'_>,
    account: &str,
    per_account: i64,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT coalesce(max(n), 0) >= $3 FROM (
           SELECT count(*) AS n FROM login_attempts a
            WHERE $1 = ANY(a.accounts) AND NOT a.success AND a.at > $2
              AND a.at > coalesce((SELECT max(s.at) FROM login_attempts s
                                    WHERE s.ip = a.ip AND $1 = ANY(s.accounts) AND s.success
                                      AND s.at > $2), '-infinity')
            GROUP BY a.ip) per_address",
    )
    .bind(account)
    .bind(now - WINDOW)
    .bind(per_account)
    .fetch_one(db)
    .await
}
