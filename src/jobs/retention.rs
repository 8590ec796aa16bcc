//! Retention: uploaded files (and with them the completed and error files) are kept for a
//! configured time, temporary passwords in completed files for 30 days; the history row
//! and its counts stay. The search index's change notes and sign-in attempts are kept a day.

use crate::config::Config;
use anyhow::Result;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub files: u64,
    pub passwords: u64,
}

pub async fn purge(pool: &PgPool, config: &Config, now: OffsetDateTime) -> Result<Purged> {
    let file_cutoff = now - Duration::days(config.retention_days as i64);
    let old: Vec<(Uuid, Uuid, Option<String>)> = sqlx::query_as(
        "SELECT district_id, id, file_path FROM runs
         WHERE received_at < $1 AND files_purged_at IS NULL AND status NOT IN ('queued', 'in_progress')",
    )
    .bind(file_cutoff)
    .fetch_all(pool)
    .await?;
    let mut purged = Purged::default();
    for (district_id, id, path) in old {
        if let Some(path) = path {
            let _ = tokio::fs::remove_file(&path).await;
        }
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM run_rows WHERE district_id = $1 AND run_id = $2")
            .bind(district_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE runs SET file_path = NULL, files_purged_at = $3 WHERE district_id = $1 AND id = $2")
            .bind(district_id)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        purged.files += 1;
    }
    let pw_cutoff = now - Duration::days(config.temp_password_retention_days as i64);
    let runs: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT district_id, id FROM runs WHERE received_at < $1 AND passwords_purged_at IS NULL
           AND status NOT IN ('queued', 'in_progress')",
    )
    .bind(pw_cutoff)
    .fetch_all(pool)
    .await?;
    for (district_id, id) in runs {
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE run_rows SET temp_password = NULL WHERE district_id = $1 AND run_id = $2 AND temp_password IS NOT NULL")
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
        tx.commit().await?;
        purged.passwords += 1;
    }
    // The search index's change notes (a day old: no index still needs them). Real time, as
    // the notes are stamped by the database.
    crate::db::search_index::purge_changes(pool).await?;
    // Sign-in attempts older than a day (the throttle looks back 15 minutes).
    crate::db::throttle::prune(pool, now).await?;
    if purged != Purged::default() {
        tracing::info!(
            files = purged.files,
            passwords = purged.passwords,
            "retention purge"
        );
    }
    Ok(purged)
}
