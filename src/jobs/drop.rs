//! Drop folders: `<data>/drop/<district slug>/` (or the district's own folder). An SFTP
//! server writes files there; a file is taken once it has stopped growing (same size and
//! modification time on two scans, and untouched for a few seconds) or was renamed into
//! place. Temporary names (`.part`, `.tmp`, `.filepart`, hidden files) are left alone. A
//! taken file moves to `processed/` (atomically, so it is taken exactly once) and becomes a
//! run; if that run fails, the file moves on to `failed/`.

use super::Queue;
use crate::db;
use crate::domain::{ActorKind, RunKind, RunStatus};
use crate::storage;
use anyhow::Result;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

type Seen = HashMap<PathBuf, (u64, SystemTime)>;

fn seen() -> &'static Mutex<Seen> {
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    SEEN.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The drop folder of a district.
pub fn folder(data_dir: &Path, slug: &str, custom: Option<&str>) -> PathBuf {
    match custom {
        Some(dir) if !dir.trim().is_empty() => PathBuf::from(dir),
        _ => data_dir.join("drop").join(slug),
    }
}

fn ignorable(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || lower.ends_with(".part")
        || lower.ends_with(".tmp")
        || lower.ends_with(".filepart")
        || lower.ends_with(".partial")
        || lower.ends_with('~')
}

/// One pass over every district's drop folder.
pub async fn scan(q: &Queue) -> Result<()> {
    let districts: Vec<(uuid::Uuid, String, Option<String>)> =
        sqlx::query_as("SELECT id, slug, drop_dir FROM districts")
            .fetch_all(&q.pool)
            .await?;
    for (district_id, slug, custom) in districts {
        let dir = folder(&q.config.data_dir, &slug, custom.as_deref());
        for sub in ["", "processed", "failed"] {
            tokio::fs::create_dir_all(dir.join(sub)).await?;
        }
        // A paused file source's files wait in the folder, untouched, until the pause ends.
        let paused: std::collections::HashSet<String> =
            db::home::paused_file_sources(&q.pool, district_id, q.clock.now().date())
                .await?
                .into_iter()
                .collect();
        let mut entries = tokio::fs::read_dir(&dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let meta = match entry.metadata().await {
                Ok(m) if m.is_file() => m,
                _ => continue,
            };
            let name = entry.file_name().to_string_lossy().to_string();
            if ignorable(&name) {
                continue;
            }
            let source = crate::domain::Source::File(storage::clean_file_name(&name)).to_db();
            if paused.contains(&source) {
                continue;
            }
            let path = entry.path();
            let stamp = (
                meta.len(),
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            );
            let stable = {
                let mut seen = seen().lock().unwrap_or_else(|e| e.into_inner());
                let previous = seen.insert(path.clone(), stamp);
                previous == Some(stamp)
            };
            let quiet = stamp.1.elapsed().unwrap_or_default()
                >= Duration::from_secs(q.config.drop_settle_secs);
            if stable && quiet && meta.len() > 0 {
                seen()
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&path);
                if let Err(e) = take(q, district_id, &dir, &path, &name).await {
                    tracing::error!(district = %district_id, file = %name, error = format!("{e:#}"), "drop folder file not taken");
                }
            }
        }
    }
    Ok(())
}

async fn take(
    q: &Queue,
    district_id: uuid::Uuid,
    dir: &Path,
    path: &Path,
    name: &str,
) -> Result<()> {
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let processed = dir.join("processed").join(format!("{stamp}-{name}"));
    // The rename is the moment of taking: whoever renames first owns the file.
    if tokio::fs::rename(path, &processed).await.is_err() {
        return Ok(());
    }
    let file_name = storage::clean_file_name(name);
    let run_id = uuid::Uuid::new_v4();
    let stored = storage::upload_path(&q.config.data_dir, district_id, run_id);
    let bytes = tokio::fs::read(&processed).await?;
    let mut w = storage::Writer::create(stored.clone(), q.config.max_upload_bytes()).await?;
    let too_large = w.write(&bytes).await.is_err();
    let (sha, _) = if too_large {
        (String::new(), 0)
    } else {
        w.finish().await?
    };
    if !too_large && crate::uploads::is_zip(&stored).await {
        // A OneRoster CSV set: a sync of the district's OneRoster CSV connection.
        let stored_file = crate::uploads::Stored {
            run_id,
            path: stored,
            sha256: sha,
            size: bytes.len() as u64,
            file_name,
        };
        let sender = crate::uploads::Sender {
            kind: ActorKind::Drop,
            label: "drop folder",
        };
        crate::uploads::queue_oneroster_set(q, district_id, stored_file, &sender)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(());
    }
    // A drop folder asks for nothing: its file covers its source, or is a patch when it is a
    // fixed error file (the intake decides, as for every way in).
    let headers = if too_large {
        None
    } else {
        let (p, max) = (stored.clone(), q.config.max_upload_bytes());
        tokio::task::spawn_blocking(move || crate::uploads::file_headers(&p, max))
            .await?
            .ok()
    };
    let decided = crate::intake::decide(
        &q.pool,
        district_id,
        &file_name,
        headers.as_deref(),
        None,
        None,
    )
    .await?;
    let mut options = serde_json::to_value(crate::reconcile::run::RunOptions {
        scope: Some(decided.scope),
        error_file_of: decided.error_file_of,
        intake_note: decided.note,
        ..Default::default()
    })?;
    options["drop_path"] = serde_json::json!(processed);
    let source = crate::domain::Source::File(decided.source_key);
    db::runs::insert_with_id(
        &q.pool,
        district_id,
        run_id,
        &db::runs::NewRun {
            kind: RunKind::Drop,
            source: &source.to_db(),
            file_name: Some(&file_name),
            file_sha256: Some(&sha),
            file_path: (!too_large).then_some(stored.to_str().unwrap_or_default()),
            dry_run: false,
            approved: false,
            options,
            submitted_kind: ActorKind::Drop,
            submitted_by: "drop folder",
            status: if too_large {
                RunStatus::Failed
            } else {
                RunStatus::Queued
            },
        },
    )
    .await?;
    if too_large {
        let finish = db::runs::Finish::ended(
            RunStatus::Failed,
            format!(
                "the file is larger than the limit of {} MiB",
                q.config.max_upload_mb
            ),
        );
        db::runs::finish(&q.pool, district_id, run_id, &finish, q.clock.now()).await?;
        let _ = tokio::fs::rename(
            &processed,
            dir.join("failed")
                .join(processed.file_name().unwrap_or_default()),
        )
        .await;
    }
    tracing::info!(district = %district_id, run = %run_id, file = %file_name, "drop folder file taken");
    q.notify.notify_waiters();
    Ok(())
}

/// After a drop run: a failed file moves from `processed/` to `failed/`.
pub async fn settle(run: &db::runs::Run, status: RunStatus) {
    if status != RunStatus::Failed {
        return;
    }
    let Some(path) = run
        .options
        .get("drop_path")
        .and_then(|p| p.as_str())
        .map(PathBuf::from)
    else {
        return;
    };
    let (Some(processed), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    if let Some(dir) = processed.parent() {
        let _ = tokio::fs::rename(&path, dir.join("failed").join(name)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_left_alone() {
        for n in [
            ".students.csv",
            "students.csv.part",
            "x.TMP",
            "a.filepart",
            "b.csv~",
        ] {
            assert!(ignorable(n), "{n}");
        }
        assert!(!ignorable("students.csv"));
    }
}
