//! Retention's statements: runs past their keeping time, and forgetting their rows,
//! files and temporary passwords.

use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// A finished run received before `cutoff` whose files are still kept: (district, id, file).
pub async fn runs_with_files_before(
    db: impl PgExecutor<'_>,
    cutoff: OffsetDateTime,
) -> sqlx::Result<Vec<(Uuid, Uuid, Option<String>)>> {
    sqlx::query_as(
        "SELECT district_id, id, file_path FROM runs
         WHERE received_at < $1 AND files_purged_at IS NULL AND status NOT IN ('queued', 'in_progress')",
    )
    .bind(cutoff)
    .fetch_all(db)
    .await
}

/// Forget a run's row results, its recorded roster changes and its file (one transaction).
pub async fn purge_files(
    pool: &PgPool,
    district_id: Uuid,
    id: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM run_rows WHERE district_id = $1 AND run_id = $2")
        .bind(district_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM run_unchanged WHERE district_id = $1 AND run_id = $2")
        .bind(district_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM run_roster_rows WHERE district_id = $1 AND run_id = $2")
        .bind(district_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    // What its undo would have put back: with its files gone it can no longer be undone.
    sqlx::query("DELETE FROM run_roster_changes WHERE district_id = $1 AND run_id = $2")
        .bind(district_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE runs SET file_path = NULL, files_purged_at = $3 WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// A finished run received before `cutoff` whose temporary passwords are still kept.
pub async fn runs_with_passwords_before(
    db: impl PgExecutor<'_>,
    cutoff: OffsetDateTime,
) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    sqlx::query_as(
        "SELECT district_id, id FROM runs WHERE received_at < $1 AND passwords_purged_at IS NULL
           AND status NOT IN ('queued', 'in_progress')",
    )
    .bind(cutoff)
    .fetch_all(db)
    .await
}

/// Forget a run's temporary passwords (one transaction).
pub async fn purge_passwords(
    pool: &PgPool,
    district_id: Uuid,
    id: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE run_rows SET temp_password = NULL
         WHERE district_id = $1 AND run_id = $2 AND temp_password IS NOT NULL",
    )
    .bind(district_id)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE runs SET passwords_purged_at = $3 WHERE district_id = $1 AND id = $2")
        .bind(district_id)
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
