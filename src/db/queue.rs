//! The job queue's statements: which run a worker takes next, orphaned runs, progress.

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

/// The oldest queued run of a district with nothing in progress, skipping runs waiting for
/// their next attempt (`not_before` still ahead of `now`), locked `FOR UPDATE SKIP LOCKED`
/// (run it in the transaction that marks the run started).
pub async fn pick_next(
    conn: &mut PgConnection,
    now: OffsetDateTime,
) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    sqlx::query_as(
        "SELECT r.district_id, r.id FROM runs r
         WHERE r.status = 'queued'
           AND (r.not_before IS NULL OR r.not_before <= $1)
           AND NOT EXISTS (SELECT 1 FROM runs b WHERE b.district_id = r.district_id AND b.status = 'in_progress')
         ORDER BY r.received_at
         FOR UPDATE SKIP LOCKED LIMIT 1",
    )
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// Every run in progress (district, id), in every district: the candidates for orphans.
pub async fn in_progress(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    sqlx::query_as("SELECT district_id, id FROM runs WHERE status = 'in_progress'")
        .fetch_all(db)
        .await
}

/// Put a run whose worker is gone back in the queue. Returns whether it was still in
/// progress.
pub async fn requeue_orphan(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE runs SET status = 'queued', phase = NULL, done_rows = 0,
                message = 'picked up again after the server stopped during attempt ' || attempts
         WHERE district_id = $1 AND id = $2 AND status = 'in_progress'",
    )
    .bind(district_id)
    .bind(id)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// A running run's progress, for its page.
pub async fn report_progress(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    done: i32,
    total: i32,
    phase: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE runs SET done_rows = $3, total_rows = $4, phase = $5
         WHERE district_id = $1 AND id = $2 AND status = 'in_progress'",
    )
    .bind(district_id)
    .bind(id)
    .bind(done)
    .bind(total)
    .bind(phase)
    .execute(db)
    .await?;
    Ok(())
}
