//! Alert settings, recipients and deliveries (migration 0014): every statement the alerts
//! need besides raising events (`db::alerts`).

use crate::domain::alerts::Rules;
use sqlx::{PgExecutor, Postgres, Transaction};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// A district's alert settings; the defaults when it has no row.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub rules: Rules,
    pub webhook_url: Option<String>,
    pub webhook_enabled: bool,
    pub webhook_secret_sealed: Option<Vec<u8>>,
}

type SettingsRow = (
    bool,
    bool,
    bool,
    i32,
    bool,
    bool,
    bool,
    Option<String>,
    bool,
    Option<Vec<u8>>,
);

pub async fn settings(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<Settings> {
    let row: Option<SettingsRow> = sqlx::query_as(
        "SELECT run_failed, needs_review, run_errors, errors_above, sync_failed, source_stale,
                sync_resumed, webhook_url, webhook_enabled, webhook_secret_sealed
         FROM alert_settings WHERE district_id = $1",
    )
    .bind(district_id)
    .fetch_optional(db)
    .await?;
    Ok(match row {
        None => Settings::default(),
        Some((rf, nr, re, n, sf, ss, sr, url, on, secret)) => Settings {
            rules: Rules {
                run_failed: rf,
                needs_review: nr,
                run_errors: re,
                errors_above: n as i64,
                sync_failed: sf,
                source_stale: ss,
                sync_resumed: sr,
            },
            webhook_url: url,
            webhook_enabled: on,
            webhook_secret_sealed: secret,
        },
    })
}

pub async fn save_rules(db: impl PgExecutor<'_>, district_id: Uuid, r: &Rules) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO alert_settings (district_id, run_failed, needs_review, run_errors, errors_above,
                                     sync_failed, source_stale, sync_resumed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (district_id) DO UPDATE SET run_failed = $2, needs_review = $3, run_errors = $4,
             errors_above = $5, sync_failed = $6, source_stale = $7, sync_resumed = $8, updated_at = now()",
    )
    .bind(district_id)
    .bind(r.run_failed)
    .bind(r.needs_review)
    .bind(r.run_errors)
    .bind(r.errors_above.clamp(0, i32::MAX as i64) as i32)
    .bind(r.sync_failed)
    .bind(r.source_stale)
    .bind(r.sync_resumed)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn save_webhook(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    url: Option<&str>,
    enabled: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO alert_settings (district_id, webhook_url, webhook_enabled) VALUES ($1, $2, $3)
         ON CONFLICT (district_id) DO UPDATE SET webhook_url = $2, webhook_enabled = $3, updated_at = now()",
    )
    .bind(district_id)
    .bind(url)
    .bind(enabled)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn save_webhook_secret(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    sealed: &[u8],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO alert_settings (district_id, webhook_secret_sealed) VALUES ($1, $2)
         ON CONFLICT (district_id) DO UPDATE SET webhook_secret_sealed = $2, updated_at = now()",
    )
    .bind(district_id)
    .bind(sealed)
    .execute(db)
    .await?;
    Ok(())
}

/// The district's email recipients, by address.
pub async fn recipients(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT email FROM alert_recipients WHERE district_id = $1 ORDER BY email")
        .bind(district_id)
        .fetch_all(db)
        .await
}

/// Add a recipient; false when already there.
pub async fn add_recipient(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    email: &str,
    added_by: &str,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO alert_recipients (district_id, email, added_by) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(district_id)
    .bind(email)
    .bind(added_by)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Remove a recipient; false when the district has no such recipient.
pub async fn remove_recipient(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    email: &str,
) -> sqlx::Result<bool> {
    Ok(
        sqlx::query("DELETE FROM alert_recipients WHERE district_id = $1 AND email = $2")
            .bind(district_id)
            .bind(email)
            .execute(db)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Events not yet fanned out (any district), oldest first, locked for this transaction so
/// two passes never take the same one.
pub async fn lock_unfanned(
    tx: &mut Transaction<'_, Postgres>,
    limit: i64,
) -> sqlx::Result<Vec<crate::db::alerts::Event>> {
    sqlx::query_as(
        "SELECT district_id, id, kind, dedupe_key, run_id, source, at, detail, fanned_out_at
         FROM alert_events WHERE fanned_out_at IS NULL ORDER BY id LIMIT $1
         FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// One delivery to make, due at `at`; nothing when this event already has it.
pub async fn insert_delivery(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    event_id: i64,
    channel: &str,
    target: &str,
    at: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO alert_deliveries (district_id, event_id, channel, target, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT ON CONSTRAINT alert_deliveries_once DO NOTHING",
    )
    .bind(district_id)
    .bind(event_id)
    .bind(channel)
    .bind(target)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn mark_fanned_out(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    event_id: i64,
    at: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE alert_events SET fanned_out_at = $3 WHERE district_id = $1 AND id = $2")
        .bind(district_id)
        .bind(event_id)
        .bind(at)
        .execute(db)
        .await?;
    Ok(())
}

/// How long a claimed delivery is held by its sender before another may take it.
pub const LEASE: Duration = Duration::minutes(5);

/// A claimed delivery, with its event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub district_id: Uuid,
    pub id: i64,
    pub channel: String,
    pub target: String,
    pub attempts: i32,
    pub event_id: i64,
    pub kind: String,
    pub run_id: Option<Uuid>,
    pub source: Option<String>,
    pub at: OffsetDateTime,
    pub detail: serde_json::Value,
}

/// Claim up to `limit` due pending deliveries (leased until `now + LEASE`), of the given
/// channels only.
pub async fn claim_due(
    db: impl PgExecutor<'_>,
    now: OffsetDateTime,
    channels: &[&str],
    limit: i64,
) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        "WITH due AS (
             SELECT district_id, id FROM alert_deliveries
             WHERE status = 'pending' AND next_attempt_at <= $1
               AND (lease_until IS NULL OR lease_until <= $1) AND channel = ANY($3)
             ORDER BY next_attempt_at, id LIMIT $4
             FOR UPDATE SKIP LOCKED),
         claimed AS (
             UPDATE alert_deliveries d SET lease_until = $2
             FROM due WHERE d.district_id = due.district_id AND d.id = due.id
             RETURNING d.district_id, d.id, d.channel, d.target, d.attempts, d.event_id)
         SELECT c.district_id, c.id, c.channel, c.target, c.attempts, c.event_id,
                e.kind, e.run_id, e.source, e.at, e.detail
         FROM claimed c JOIN alert_events e ON e.district_id = c.district_id AND e.id = c.event_id
         ORDER BY c.id",
    )
    .bind(now)
    .bind(now + LEASE)
    .bind(channels)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The outcome of one attempt.
pub enum Outcome<'a> {
    Delivered {
        code: Option<i32>,
    },
    Retry {
        code: Option<i32>,
        error: &'a str,
        at: OffsetDateTime,
    },
    Failed {
        code: Option<i32>,
        error: &'a str,
    },
}

pub async fn record_attempt(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: i64,
    now: OffsetDateTime,
    outcome: Outcome<'_>,
) -> sqlx::Result<()> {
    let (status, code, error, next) = match outcome {
        Outcome::Delivered { code } => ("delivered", code, None, now),
        Outcome::Retry { code, error, at } => ("pending", code, Some(error), at),
        Outcome::Failed { code, error } => ("failed", code, Some(error), now),
    };
    sqlx::query(
        "UPDATE alert_deliveries SET status = $3, attempts = attempts + 1, last_code = $4,
             last_error = $5, next_attempt_at = $6, lease_until = NULL,
             delivered_at = CASE WHEN $3 = 'delivered' THEN $7 ELSE delivered_at END
         WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(id)
    .bind(status)
    .bind(code)
    .bind(error)
    .bind(next)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// A line of the delivery log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LogRow {
    pub created_at: OffsetDateTime,
    pub kind: String,
    pub channel: String,
    pub target: String,
    pub status: String,
    pub attempts: i32,
    pub last_code: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<OffsetDateTime>,
    pub next_attempt_at: OffsetDateTime,
}

/// The district's latest deliveries, newest first.
pub async fn log(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<LogRow>> {
    sqlx::query_as(
        "SELECT d.created_at, e.kind, d.channel, d.target, d.status, d.attempts, d.last_code,
                d.last_error, d.delivered_at, d.next_attempt_at
         FROM alert_deliveries d
         JOIN alert_events e ON e.district_id = d.district_id AND e.id = d.event_id
         WHERE d.district_id = $1 ORDER BY d.id DESC LIMIT $2",
    )
    .bind(district_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Every district with its "stale after", for the staleness check.
pub async fn districts_for_stale_check(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(Uuid, i32)>> {
    sqlx::query_as("SELECT id, stale_after_hours FROM districts ORDER BY id")
        .fetch_all(db)
        .await
}
