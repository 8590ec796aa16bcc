//! What the home page and the staleness check read about a district's sources: their
//! recent runs, their pauses, the district's "stale after".

use sqlx::PgExecutor;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// A source's recent runs (not dry runs, not undo runs), newest first, at most
/// `domain::health::RECENT_RUNS`.
#[derive(Debug, Clone)]
pub struct SourceRuns {
    pub source: String,
    pub received: Vec<OffsetDateTime>,
}

/// Every source of the district that has runs, with its recent run times.
pub async fn source_runs(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
) -> sqlx::Result<Vec<SourceRuns>> {
    let rows: Vec<(String, Vec<OffsetDateTime>)> = sqlx::query_as(
        "SELECT s.source, r.received
         FROM (SELECT DISTINCT source FROM runs WHERE district_id = $1 AND kind <> 'undo' AND NOT dry_run) s
         CROSS JOIN LATERAL (
             SELECT array_agg(received_at ORDER BY received_at DESC) AS received
             FROM (SELECT received_at FROM runs
                   WHERE district_id = $1 AND source = s.source AND kind <> 'undo' AND NOT dry_run
                   ORDER BY received_at DESC LIMIT $2) t
         ) r
         ORDER BY s.source",
    )
    .bind(district_id)
    .bind(crate::domain::health::RECENT_RUNS as i64)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(source, received)| SourceRuns { source, received })
        .collect())
}

/// A paused source: a file source (`source_pauses`) or a sync connection (`sync:<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub source: String,
    /// None: paused until resumed by hand.
    pub until: Option<Date>,
}

/// Every paused source of the district, file sources and connections alike.
pub async fn paused_sources(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
) -> sqlx::Result<Vec<Pause>> {
    let rows: Vec<(String, Option<Date>)> = sqlx::query_as(
        "SELECT source, paused_until FROM source_pauses WHERE district_id = $1
         UNION ALL
         SELECT 'sync:' || id::text, paused_until FROM sync_connections WHERE district_id = $1 AND paused
         ORDER BY 1",
    )
    .bind(district_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(source, until)| Pause { source, until })
        .collect())
}

/// The district's "stale after", in hours.
pub async fn stale_after_hours(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<i32> {
    sqlx::query_scalar("SELECT stale_after_hours FROM districts WHERE id = $1")
        .bind(district_id)
        .fetch_one(db)
        .await
}

pub async fn set_stale_after_hours(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    hours: i32,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE districts SET stale_after_hours = $2 WHERE id = $1")
        .bind(district_id)
        .bind(hours)
        .execute(db)
        .await?;
    Ok(())
}

/// Does the database answer (`SELECT 1`)?
pub async fn ping(db: impl sqlx::PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(db)
        .await?;
    Ok(())
}
