//! Retention: uploaded files (and with them the completed and error files) are kept for a
//! configured time, temporary passwords in completed files for 30 days; the history row
//! and its counts stay. The search index's change notes and sign-in attempts are kept a day.

use crate::config::Config;
use crate::db;
use anyhow::Result;
use sqlx::PgPool;
use std::path::Path;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub files: u64,
    pub passwords: u64,
}

pub async fn purge(pool: &PgPool, config: &Config, now: OffsetDateTime) -> Result<Purged> {
    let file_cutoff = now - Duration::days(config.retention_days as i64);
    let old = db::retention::runs_with_files_before(pool, file_cutoff).await?;
    let mut purged = Purged::default();
    for (district_id, id, path) in old {
        if let Some(path) = path {
            let _ = tokio::fs::remove_file(&path).await;
            // A set's zip as sent, beside its users snapshot.
            let _ = tokio::fs::remove_file(crate::storage::set_path(Path::new(&path))).await;
        }
        db::retention::purge_files(pool, district_id, id, now).await?;
        purged.files += 1;
    }
    let pw_cutoff = now - Duration::days(config.temp_password_retention_days as i64);
    for (district_id, id) in db::retention::runs_with_passwords_before(pool, pw_cutoff).await? {
        db::retention::purge_passwords(pool, district_id, id, now).await?;
        purged.passwords += 1;
    }
    // The search index's change notes (a day old: no index still needs them). Real time, as
    // the notes are stamped by the database.
    db::search_index::purge_changes(pool).await?;
    // Sign-in attempts older than a day (the throttle looks back 15 minutes).
    db::throttle::prune(pool, now).await?;
    db::password_resets::prune(pool, now).await?;
    db::account_sessions::prune(pool, now).await?;
    if purged != Purged::default() {
        tracing::info!(
            files = purged.files,
            passwords = purged.passwords,
            "retention purge"
        );
    }
    Ok(purged)
}
