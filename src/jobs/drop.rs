//! Drop folders: `<data>/drop/<district slug>/` (or the district's own folder). An SFTP
//! server writes files there; a file is taken once it has stopped growing (same size and
//! modification time on two scans, and untouched for a few seconds) or was renamed into
//! place. Temporary names (`.part`, `.tmp`, `.filepart`, hidden files) are left alone. A
//! taken file moves to `processed/` (atomically, so it is taken exactly once) and becomes a
//! run; if that run fails, the file moves on to `failed/`.

use super::Queue;
use crate::db;
use crate::domain::{ActorKind, RunKind, RunStatus};
use crate::intake::{self, AcceptError, Asked, Sender};
use crate::storage::{self, StoreError};
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
    for (district_id, slug, custom) in db::districts::drop_folders(&q.pool).await? {
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
            let source =
                crate::domain::Source::File(storage::clean_file_name(&name).into()).to_db();
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
    // Through the intake, as every way in: streamed into the store (hashed, refused past
    // the size limit), its source and scope decided from its header (a drop folder asks
    // for nothing), parked for the mapper when required fields are missing, and queued. A
    // zip is a OneRoster CSV set, queued as a sync of the district's CSV connection.
    let file = tokio::fs::File::open(&processed).await?;
    let body = tokio_util::io::ReaderStream::new(file);
    let sender = Sender {
        kind: ActorKind::Drop,
        label: "drop folder",
    };
    let stored = match intake::store(&q.inbox, district_id, name, body).await {
        Ok(stored) => stored,
        Err(AcceptError::Store(StoreError::TooLarge(_))) => {
            return refuse_too_large(q, district_id, dir, &processed, name).await;
        }
        Err(e) => return Err(anyhow::anyhow!("{e}")),
    };
    let asked = Asked {
        drop_path: Some(processed.clone()),
        ..Asked::default()
    };
    let accepted = intake::queue_run(&q.inbox, district_id, stored, &asked, &sender)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(district = %district_id, run = %accepted.run_id, file = %name, status = accepted.status.as_str(), "drop folder file taken");
    Ok(())
}

/// A file past the size limit: recorded as a failed run (nothing of it is kept), and moved
/// on to `failed/`.
async fn refuse_too_large(
    q: &Queue,
    district_id: uuid::Uuid,
    dir: &Path,
    processed: &Path,
    name: &str,
) -> Result<()> {
    let file_name = storage::clean_file_name(name);
    let run_id = db::runs::insert(
        &q.pool,
        district_id,
        &db::runs::NewRun {
            kind: RunKind::Drop,
            source: &crate::domain::Source::File(file_name.as_str().into()).to_db(),
            file_name: Some(&file_name),
            file_sha256: Some(""),
            file_path: None,
            dry_run: false,
            approved: false,
            options: serde_json::json!({ "drop_path": processed }),
            submitted_kind: ActorKind::Drop,
            submitted_by: "drop folder",
            status: RunStatus::Failed,
        },
    )
    .await?;
    let finish = db::runs::Finish::ended(
        RunStatus::Failed,
        format!(
            "the file is larger than the limit of {} MiB",
            q.config.max_upload_mb
        ),
    );
    db::runs::finish(&q.pool, district_id, run_id, &finish, q.clock.now()).await?;
    let _ = tokio::fs::rename(
        processed,
        dir.join("failed")
            .join(processed.file_name().unwrap_or_default()),
    )
    .await;
    tracing::info!(district = %district_id, run = %run_id, file = %file_name, "drop folder file refused: too large");
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
