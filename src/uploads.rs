//! Uploads, whatever way they come in (browser, API, drop folder): store the file, decide
//! whether its headers need mapping, queue its run; and build a run's three downloads.

use crate::db;
use crate::domain::Source;
use crate::feed::headers::{self, Mapping, MappingError, SavedMapping};
use crate::feed::read::{self, ReadOptions};
use crate::jobs::Queue;
use crate::reconcile::report::{FileKind, Layout, RowResult, owner_label};
use crate::reconcile::run::RunOptions;
use crate::storage;
use anyhow::{Context, Result};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Who sent an upload.
pub struct Sender<'a> {
    /// `user`, `token` or `drop`.
    pub kind: &'a str,
    pub label: &'a str,
}

pub struct Accepted {
    pub run_id: Uuid,
    pub status: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("{0}")]
    Store(#[from] storage::StoreError),
    #[error("choose a file to upload")]
    NoFile,
    #[error("{0}")]
    Refused(String),
    /// The request carrying the file failed before its end (cut short, malformed, stalled).
    #[error("the upload was interrupted: {cause}")]
    Body {
        cause: Box<dyn std::error::Error + Send + Sync>,
        limit_mb: u64,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// An uploaded file, stored, not yet a run.
pub struct Stored {
    pub run_id: Uuid,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub file_name: String,
}

/// Store an upload as it streams in (hashing it, refusing it past the size limit).
pub async fn store<S, E>(
    queue: &Queue,
    district_id: Uuid,
    file_name: &str,
    mut body: S,
) -> Result<Stored, AcceptError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let run_id = Uuid::new_v4();
    let path = storage::upload_path(&queue.config.data_dir, district_id, run_id);
    let mut w = storage::Writer::create(path.clone(), queue.config.max_upload_bytes()).await?;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                w.abandon().await;
                return Err(AcceptError::Body {
                    cause: e.into(),
                    limit_mb: queue.config.max_upload_mb,
                });
            }
        };
        w.write(&chunk).await?;
    }
    let (sha256, size) = w.finish().await?;
    Ok(Stored {
        run_id,
        path,
        sha256,
        size,
        file_name: storage::clean_file_name(file_name),
    })
}

/// What the sender asked for with a file (each `None` when not given).
#[derive(Debug, Clone, Default)]
pub struct Asked {
    pub source: Option<String>,
    pub scope: Option<crate::domain::Scope>,
    pub dry_run: bool,
}

/// Queue the run of a stored upload (or park it for the header mapper).
pub async fn queue_run(
    queue: &Queue,
    district_id: Uuid,
    stored: Stored,
    asked: &Asked,
    sender: &Sender<'_>,
) -> Result<Accepted, AcceptError> {
    if is_zip(&stored.path).await {
        return queue_oneroster_set(queue, district_id, stored, sender).await;
    }
    let Stored {
        run_id,
        path,
        sha256,
        size,
        file_name,
    } = stored;
    let max = queue.config.max_upload_bytes();
    let p = path.clone();
    let headers = tokio::task::spawn_blocking(move || file_headers(&p, max))
        .await
        .context("reading the header")?
        .ok();
    let decided = crate::intake::decide(
        &queue.pool,
        district_id,
        &file_name,
        headers.as_deref(),
        asked.source.as_deref(),
        asked.scope,
    )
    .await
    .context("deciding the run's source")?;
    let source_key = decided.source_key;
    let options = RunOptions {
        scope: Some(decided.scope),
        error_file_of: decided.error_file_of,
        intake_note: decided.note,
        ..RunOptions::default()
    };
    let dry_run = asked.dry_run;
    let needs_mapping = match &headers {
        Some(h) => {
            let saved = saved_mapping(&queue.pool, district_id, h).await?;
            matches!(
                headers::resolve(h, saved.as_ref(), &options.overrides, &options.fixed),
                Err(MappingError::MissingRequired { .. })
            )
        }
        None => false,
    };
    let status = if needs_mapping {
        "needs_mapping"
    } else {
        "queued"
    };
    db::runs::insert_with_id(
        &queue.pool,
        district_id,
        run_id,
        &db::runs::NewRun {
            kind: match sender.kind {
                "token" => "api",
                "drop" => "drop",
                _ => "upload",
            },
            source: &Source::File(source_key).to_db(),
            file_name: Some(&file_name),
            file_sha256: Some(&sha256),
            file_path: path.to_str(),
            dry_run,
            approved: false,
            options: serde_json::to_value(&options).context("options")?,
            submitted_kind: sender.kind,
            submitted_by: sender.label,
            status,
        },
    )
    .await
    .context("recording the upload")?;
    if !needs_mapping {
        queue.notify.notify_waiters();
    }
    tracing::info!(district = %district_id, run = %run_id, file = %file_name, size, status, "upload received");
    Ok(Accepted {
        run_id,
        status: status.into(),
    })
}

pub(crate) async fn is_zip(path: &Path) -> bool {
    use tokio::io::AsyncReadExt;
    let mut magic = [0u8; 4];
    match tokio::fs::File::open(path).await {
        Ok(mut f) => f.read_exact(&mut magic).await.is_ok() && magic == *b"PK\x03\x04",
        Err(_) => false,
    }
}

/// A zip is a OneRoster CSV set: it runs as a sync of the district's OneRoster CSV
/// connection (one is added when there is none).
pub(crate) async fn queue_oneroster_set(
    queue: &Queue,
    district_id: Uuid,
    stored: Stored,
    sender: &Sender<'_>,
) -> Result<Accepted, AcceptError> {
    let conn = crate::sync::csv_connection(&queue.pool, district_id, sender.label).await?;
    let file = (stored.file_name.as_str(), stored.path.as_path());
    match crate::sync::enqueue(&queue.pool, &conn, sender.kind, sender.label, Some(file)).await? {
        crate::sync::Enqueued::Run(run_id) => {
            queue.notify.notify_waiters();
            tracing::info!(district = %district_id, run = %run_id, file = %stored.file_name, "OneRoster set received");
            Ok(Accepted {
                run_id,
                status: "queued".into(),
            })
        }
        crate::sync::Enqueued::Paused => {
            let _ = tokio::fs::remove_file(&stored.path).await;
            Err(AcceptError::Refused(format!(
                "the connection \"{}\" is paused; resume it on the Syncs page first",
                conn.name
            )))
        }
        crate::sync::Enqueued::Busy(run) => {
            let _ = tokio::fs::remove_file(&stored.path).await;
            Err(AcceptError::Refused(format!(
                "a sync of \"{}\" is already queued or running (run {run})",
                conn.name
            )))
        }
    }
}

/// The headers of a stored file (`Err` for a file that cannot be read at all).
pub fn file_headers(path: &Path, max_bytes: u64) -> Result<Vec<String>, read::FileError> {
    let file = std::fs::File::open(path).map_err(read::FileError::from)?;
    read::open(file, &ReadOptions::with_max_bytes(max_bytes)).map(|r| r.headers().to_vec())
}

/// The first records of a stored file (for the mapper's sample values).
pub fn sample_rows(path: &Path, max_bytes: u64, n: usize) -> Vec<Vec<String>> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(reader) = read::open(file, &ReadOptions::with_max_bytes(max_bytes)) else {
        return Vec::new();
    };
    reader
        .filter_map(|r| r.ok().and_then(|r| r.ok()))
        .take(n)
        .map(|r| r.fields)
        .collect()
}

/// The district's saved mapping for these headers. A fixed error file may carry a
/// `user_guid` column its original did not (added for the rows that matched a user): it
/// finds its original's mapping too.
pub async fn saved_mapping(
    pool: &sqlx::PgPool,
    district_id: Uuid,
    headers: &[String],
) -> Result<Option<SavedMapping>> {
    let mut signatures = vec![headers::signature(headers)];
    if crate::intake::has_error_column(headers) {
        let without: Vec<String> = headers
            .iter()
            .filter(|h| headers::fold(h) != "userguid")
            .cloned()
            .collect();
        if without.len() < headers.len() {
            signatures.push(headers::signature(&without));
        }
    }
    for signature in signatures {
        if let Some(saved) = db::runs::saved_mapping(pool, district_id, &signature)
            .await?
            .and_then(|v| serde_json::from_value(v).ok())
        {
            return Ok(Some(saved));
        }
    }
    Ok(None)
}

/// One of a run's downloads, streamed: the stored file is read again and merged, line by
/// line, with the run's stored row results.
pub async fn download(
    pool: sqlx::PgPool,
    run: &db::runs::Run,
    kind: FileKind,
    max_bytes: u64,
) -> Result<Option<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static>> {
    let Some(path) = run.file_path.clone().map(PathBuf::from) else {
        return Ok(None);
    };
    if !path.exists() {
        return Ok(None);
    }
    let options: RunOptions = serde_json::from_value(run.options.clone()).unwrap_or_default();
    let p = path.clone();
    let headers = tokio::task::spawn_blocking(move || file_headers(&p, max_bytes))
        .await?
        .ok();
    let mapping = match &headers {
        Some(h) => {
            let saved = saved_mapping(&pool, run.district_id, h).await?;
            headers::resolve(h, saved.as_ref(), &options.overrides, &options.fixed).unwrap_or_else(
                |_| Mapping {
                    columns: headers::propose(h),
                    fixed: Vec::new(),
                },
            )
        }
        None => Mapping {
            columns: Vec::new(),
            fixed: Vec::new(),
        },
    };

    let (results_tx, mut results_rx) = tokio::sync::mpsc::channel::<RowResult>(4096);
    let (bytes_tx, bytes_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    if kind != FileKind::Uploaded {
        let failed = bytes_tx.clone();
        let (district_id, run_id) = (run.district_id, run.id);
        let pool = pool.clone();
        let sync_names = db::syncs::names(&pool, district_id).await?;
        tokio::spawn(async move {
            // A database error ends the download with an error, not a short file.
            let rows = crate::download::until_error(
                db::runs::rows_stream(&pool, district_id, run_id),
                failed,
            );
            let mut rows = std::pin::pin!(rows);
            while let Some(r) = rows.next().await {
                let result = RowResult {
                    line: r.line as u64,
                    outcome: r.outcome,
                    user_guid: r.user_id.map(|g| g.to_string()),
                    username: r.username,
                    temp_password: r.temp_password,
                    error: r.error,
                    matched_by: r.matched_by,
                    previous_source: r
                        .previous_source
                        .map(|s| owner_label(&crate::domain::Source::from_db(&s), &sync_names)),
                    kept: r.kept,
                };
                if results_tx.send(result).await.is_err() {
                    break;
                }
            }
        });
    } else {
        drop(results_tx);
    }

    let error_guids = kind == FileKind::Errors
        && db::runs::errors_name_users(&pool, run.district_id, run.id).await?;
    tokio::task::spawn_blocking(move || {
        let headers = headers.unwrap_or_default();
        let column = |f| mapping.column_of(f);
        use crate::domain::Field;
        let layout = if error_guids {
            Layout::errors_with_guids(&headers, column(Field::Password), column(Field::UserGuid))
        } else {
            Layout::new(
                kind,
                &headers,
                column(Field::Password),
                column(Field::UserGuid),
                column(Field::Username),
            )
        };
        let mut out = csv::Writer::from_writer(ChannelWriter {
            buf: Vec::with_capacity(1 << 16),
            tx: bytes_tx,
        });
        if out.write_record(&layout.header).is_err() {
            return;
        }
        let reader = std::fs::File::open(&path)
            .ok()
            .and_then(|f| read::open(f, &ReadOptions::with_max_bytes(max_bytes)).ok());
        let mut pending: Option<RowResult> = None;
        let mut next_result = |line: u64, pending: &mut Option<RowResult>| -> Option<RowResult> {
            loop {
                if pending.is_none() {
                    *pending = results_rx.blocking_recv();
                }
                match pending {
                    Some(r) if r.line < line => *pending = None,
                    Some(r) if r.line == line => return pending.take(),
                    _ => return None,
                }
            }
        };
        for item in reader.into_iter().flatten() {
            let (line, fields) = match item {
                Ok(Ok(rec)) => (rec.line, rec.fields),
                Ok(Err(issue)) => (issue.line, Vec::new()),
                Err(_) => break,
            };
            let result = if kind == FileKind::Uploaded {
                None
            } else {
                next_result(line, &mut pending)
            };
            if let Some(record) = layout.record(kind, &fields, result.as_ref())
                && out.write_record(&record).is_err()
            {
                return; // the client went away
            }
        }
        let _ = out.flush();
    });
    Ok(Some(tokio_stream(bytes_rx)))
}

fn tokio_stream<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Bytes written here go out to the HTTP body in 64 KiB chunks.
struct ChannelWriter {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(1 << 16),
        ));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 16 {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
