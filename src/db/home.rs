//! What the home page, the connections list and the pauses read and write: every source's
//! latest real run, the runs that need attention, users per school and role, each
//! connection's health, and file-source pauses.

use crate::domain::RunStatus;
use crate::domain::home::{Attention, LastRun};
use sqlx::PgExecutor;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct LastRunRow {
    id: Uuid,
    source: String,
    status: RunStatus,
    received_at: OffsetDateTime,
    finished_at: Option<OffsetDateTime>,
    created: i32,
    updated: i32,
    archived: i32,
    errors: i32,
}

/// Every source's latest real run (no dry runs, no undo runs).
pub async fn last_runs(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<Vec<LastRun>> {
    let rows: Vec<LastRunRow> = sqlx::query_as(
        "SELECT DISTINCT ON (source) id, source, status, received_at, finished_at,
                created, updated, archived, errors
         FROM runs WHERE district_id = $1 AND NOT dry_run AND kind <> 'undo'
         ORDER BY source, received_at DESC",
    )
    .bind(district_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LastRun {
            id: r.id,
            source: r.source,
            status: r.status,
            received_at: r.received_at,
            finished_at: r.finished_at,
            created: r.created,
            updated: r.updated,
            archived: r.archived,
            errors: r.errors,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct AttentionRow {
    id: Uuid,
    source: String,
    status: RunStatus,
    file_name: Option<String>,
    received_at: OffsetDateTime,
    message: Option<String>,
}

/// Runs that need the admin: every real run held in Needs Review, and runs failed since
/// `failed_since` with no later successful run of the same source.
pub async fn attention(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    failed_since: OffsetDateTime,
) -> sqlx::Result<Vec<Attention>> {
    let rows: Vec<AttentionRow> = sqlx::query_as(
        "SELECT r.id, r.source, r.status, r.file_name, r.received_at, r.message
         FROM runs r
         WHERE r.district_id = $1 AND NOT r.dry_run
           AND (r.status = 'needs_review'
                OR (r.status = 'failed' AND r.finished_at >= $2
                    AND NOT EXISTS (
                        SELECT 1 FROM runs s
                        WHERE s.district_id = r.district_id AND s.source = r.source AND NOT s.dry_run
                          AND s.status IN ('completed', 'completed_with_errors')
                          AND s.received_at > r.received_at)))
         ORDER BY r.finished_at DESC NULLS FIRST
         LIMIT 100",
    )
    .bind(district_id)
    .bind(failed_since)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Attention {
            id: r.id,
            source: r.source,
            status: r.status,
            file_name: r.file_name,
            received_at: r.received_at,
            message: r.message,
        })
        .collect())
}

/// Users (not archived) per school and role, in one query: `(school name, role, count)`;
/// a user in two schools counts in both, a user in none under `None`. `schools`: a school
/// admin's schools (`None`: the whole district).
pub async fn users_per_school_and_role(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    schools: Option<&[Uuid]>,
) -> sqlx::Result<Vec<(Option<String>, String, i64)>> {
    sqlx::query_as(
        "SELECT s.name, u.role, count(*)
         FROM users u
         LEFT JOIN user_schools us ON us.district_id = u.district_id AND us.user_id = u.id
         LEFT JOIN schools s ON s.district_id = us.district_id AND s.id = us.school_id
         WHERE u.district_id = $1 AND u.archived_at IS NULL
           AND ($2::uuid[] IS NULL OR s.id = ANY($2))
         GROUP BY s.id, s.name, u.role
         ORDER BY s.name NULLS LAST, u.role",
    )
    .bind(district_id)
    .bind(schools)
    .fetch_all(db)
    .await
}

/// A connection's health for the connections list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionHealth {
    pub id: Uuid,
    pub last_success: Option<OffsetDateTime>,
    pub last_run_id: Option<Uuid>,
    pub last_status: Option<RunStatus>,
    pub last_started: Option<OffsetDateTime>,
    pub last_finished: Option<OffsetDateTime>,
    pub last_errors: Option<i32>,
}

/// Every connection's last success, last result, its duration and error rows, in one query.
pub async fn connection_health(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
) -> sqlx::Result<Vec<ConnectionHealth>> {
    sqlx::query_as(
        "SELECT c.id, ok.finished_at AS last_success, l.id AS last_run_id, l.status AS last_status,
                l.started_at AS last_started, l.finished_at AS last_finished, l.errors AS last_errors
         FROM sync_connections c
         LEFT JOIN LATERAL (
             SELECT id, status, started_at, finished_at, errors FROM runs
             WHERE district_id = c.district_id AND source = 'sync:' || c.id::text AND NOT dry_run
               AND status NOT IN ('queued', 'in_progress')
             ORDER BY received_at DESC LIMIT 1) l ON true
         LEFT JOIN LATERAL (
             SELECT finished_at FROM runs
             WHERE district_id = c.district_id AND source = 'sync:' || c.id::text AND NOT dry_run
               AND status IN ('completed', 'completed_with_errors')
             ORDER BY received_at DESC LIMIT 1) ok ON true
         WHERE c.district_id = $1",
    )
    .bind(district_id)
    .fetch_all(db)
    .await
}

/// Whether a file source (`file:<name>`) belongs to the district: it has runs there, or a
/// pause.
pub async fn file_source_exists(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    source: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE district_id = $1 AND source = $2)
             OR EXISTS (SELECT 1 FROM source_pauses WHERE district_id = $1 AND source = $2)",
    )
    .bind(district_id)
    .bind(source)
    .fetch_one(db)
    .await
}

/// Pause a file source (until a date, or until resumed by hand).
pub async fn pause_source(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    source: &str,
    until: Option<Date>,
    by: &str,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO source_pauses (district_id, source, paused_until, paused_by, paused_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (district_id, source)
         DO UPDATE SET paused_until = EXCLUDED.paused_until, paused_by = EXCLUDED.paused_by,
                       paused_at = EXCLUDED.paused_at",
    )
    .bind(district_id)
    .bind(source)
    .bind(until)
    .bind(by)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// End a file source's pause; whether it was paused.
pub async fn resume_source(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    source: &str,
) -> sqlx::Result<bool> {
    Ok(
        sqlx::query("DELETE FROM source_pauses WHERE district_id = $1 AND source = $2")
            .bind(district_id)
            .bind(source)
            .execute(db)
            .await?
            .rows_affected()
            == 1,
    )
}

/// File sources of a district paused at `today` (a pause whose date has come no longer
/// holds, even before `resume_due` has ended it).
pub async fn paused_file_sources(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    today: Date,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT source FROM source_pauses
         WHERE district_id = $1 AND (paused_until IS NULL OR paused_until > $2)",
    )
    .bind(district_id)
    .bind(today)
    .fetch_all(db)
    .await
}

/// A pause whose date has come: a connection (`sync:<id>`) or a file source.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DuePause {
    pub district_id: Uuid,
    pub source: String,
    pub until: Date,
}

/// Pauses due to end at `today` (their date is today or past), every district; locked so
/// two passes do not end the same pause. Call inside a transaction.
pub async fn due_pauses(db: impl PgExecutor<'_>, today: Date) -> sqlx::Result<Vec<DuePause>> {
    sqlx::query_as(
        "SELECT district_id, source, paused_until AS until FROM source_pauses
         WHERE paused_until IS NOT NULL AND paused_until <= $1
         UNION ALL
         SELECT district_id, 'sync:' || id::text, paused_until FROM sync_connections
         WHERE paused AND paused_until IS NOT NULL AND paused_until <= $1
         ORDER BY 1, 2
         LIMIT 500",
    )
    .bind(today)
    .fetch_all(db)
    .await
}

/// End a connection's pause that was due (`paused_until` = `until`); whether it ended it.
/// Its next sync is now (a long-paused connection syncs soon, not at a time long past).
pub async fn end_connection_pause(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    until: Date,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE sync_connections
         SET paused = false, paused_until = NULL,
             next_run_at = CASE WHEN kind = 'oneroster_csv' THEN next_run_at
                                ELSE GREATEST(coalesce(next_run_at, $4), $4) END
         WHERE district_id = $1 AND id = $2 AND paused AND paused_until = $3",
    )
    .bind(district_id)
    .bind(id)
    .bind(until)
    .bind(now)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// End a file source's pause that was due; whether it ended it.
pub async fn end_source_pause(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    source: &str,
    until: Date,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "DELETE FROM source_pauses WHERE district_id = $1 AND source = $2 AND paused_until = $3",
    )
    .bind(district_id)
    .bind(source)
    .bind(until)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}
