//! The intake's files: a file stored as it streams in (hashed, refused past the size
//! limit), its header and first rows read back, and a run's three downloads built from it.

use super::{AcceptError, Inbox};
use crate::db;
use crate::feed::bundle;
use crate::feed::headers::{self, Mapping};
use crate::feed::read::{self, ReadOptions};
use crate::reconcile::mapping;
use crate::reconcile::report::{FileKind, Layout, RowResult, owner_label};
use crate::reconcile::run::RunOptions;
use crate::storage;
use anyhow::Result;
use bytes::Bytes;
use futures::future::Either;
use futures::{Stream, StreamExt};
use std::path::{Path, PathBuf};
use uuid::Uuid;

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
    inbox: &impl AsRef<Inbox>,
    district_id: Uuid,
    file_name: &str,
    body: S,
) -> Result<Stored, AcceptError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let inbox = inbox.as_ref();
    store_within(
        inbox,
        district_id,
        file_name,
        body,
        inbox.max_upload_bytes(),
    )
    .await
}

/// Store one file of an upload of several, within what is left of the upload's size limit
/// (`budget` bytes): past it, the upload is too large (413, naming the whole limit).
pub async fn store_within<S, E>(
    inbox: &Inbox,
    district_id: Uuid,
    file_name: &str,
    mut body: S,
    budget: u64,
) -> Result<Stored, AcceptError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let run_id = Uuid::new_v4();
    let path = storage::upload_path(&inbox.data_dir, district_id, run_id);
    let mut w = storage::Writer::create(path.clone(), budget).await?;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                w.abandon().await;
                return Err(AcceptError::Body {
                    cause: e.into(),
                    limit_mb: inbox.max_upload_mb,
                });
            }
        };
        w.write(&chunk).await.map_err(|e| match e {
            storage::StoreError::TooLarge(_) => {
                AcceptError::Store(storage::StoreError::TooLarge(inbox.max_upload_mb))
            }
            e => AcceptError::Store(e),
        })?;
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

/// Several files of one upload that make one set (SDS v1 or OneRoster CSV, by their names:
/// [`bundle::set_of_files`]), put into one zip in storage (stored, not compressed: the
/// files are within the upload limit already): from then on the upload is one file — its
/// run, its "Uploaded file" download — read like a zip of the set. The parts are removed
/// whatever happens. Files that are not one set: [`AcceptError::NotASet`] naming them.
pub async fn combine(
    inbox: &Inbox,
    district_id: Uuid,
    parts: Vec<Stored>,
) -> Result<Stored, AcceptError> {
    let names: Vec<String> = parts.iter().map(|p| p.file_name.clone()).collect();
    let kind = bundle::set_of_files(&names);
    let run_id = Uuid::new_v4();
    let path = storage::upload_path(&inbox.data_dir, district_id, run_id);
    let written = match kind {
        Ok(_) => {
            let files: Vec<(String, PathBuf)> = parts
                .iter()
                .map(|p| (p.file_name.clone(), p.path.clone()))
                .collect();
            let out = path.clone();
            Some(tokio::task::spawn_blocking(move || write_zip(&out, &files)).await)
        }
        Err(_) => None,
    };
    for part in &parts {
        let _ = tokio::fs::remove_file(&part.path).await;
    }
    let kind = kind.map_err(AcceptError::NotASet)?;
    let (sha256, size) = match written {
        Some(Ok(Ok(done))) => done,
        Some(Ok(Err(e))) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(AcceptError::Store(storage::StoreError::Io(e)));
        }
        Some(Err(e)) => return Err(AcceptError::Other(e.into())),
        None => unreachable!("a set is written"),
    };
    tracing::info!(district = %district_id, files = parts.len(), kind = ?kind, "several files received as one set");
    Ok(Stored {
        run_id,
        path,
        sha256,
        size,
        file_name: kind.zip_name().to_string(),
    })
}

/// Write `files` (name, stored part) into a zip at `path`; its SHA-256 (hex) and size.
fn write_zip(path: &Path, files: &[(String, PathBuf)]) -> std::io::Result<(String, u64)> {
    use sha2::Digest;
    let io = |e: zip::result::ZipError| std::io::Error::other(e.to_string());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path)?);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    for (name, part) in files {
        zip.start_file(name.as_str(), options).map_err(io)?;
        std::io::copy(&mut std::fs::File::open(part)?, &mut zip)?;
    }
    zip.finish().map_err(io)?.sync_all()?;
    let mut hasher = sha2::Sha256::new();
    let size = std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok((hex::encode(hasher.finalize()), size))
}

/// The headers of a stored file (`Err` for a file that cannot be read at all).
pub fn file_headers(path: &Path, max_bytes: u64) -> Result<Vec<String>, read::FileError> {
    let file = std::fs::File::open(path).map_err(read::FileError::from)?;
    read::open(file, &ReadOptions::with_max_bytes(max_bytes)).map(|r| r.headers().to_vec())
}

/// The first records of a stored file (for the mapper's sample values).
pub fn sample_rows(path: &Path, max_bytes: u64, n: usize) -> Vec<Vec<String>> {
    sample_records(path, max_bytes, n)
        .into_iter()
        .map(|r| r.fields)
        .collect()
}

/// The first `n` readable data records of a stored file, with their lines (the mapper's
/// preview).
pub fn sample_records(path: &Path, max_bytes: u64, n: usize) -> Vec<read::RawRecord> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(reader) = read::open(file, &ReadOptions::with_max_bytes(max_bytes)) else {
        return Vec::new();
    };
    reader
        .filter_map(|r| r.ok().and_then(|r| r.ok()))
        .take(n)
        .collect()
}

/// One of a run's downloads, streamed: the stored file is read again and merged, line by
/// line, with the run's stored row results.
pub async fn download(
    pool: sqlx::PgPool,
    run: &db::runs::Run,
    kind: FileKind,
    max_bytes: u64,
) -> Result<Option<Download<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static>>> {
    let Some(path) = run.file_path.clone().map(PathBuf::from) else {
        return Ok(None);
    };
    if !path.exists() {
        return Ok(None);
    }
    // A set's uploaded file is the zip as it was sent, passwords emptied.
    let set = storage::set_path(&path);
    if kind == FileKind::Uploaded && set.exists() {
        let (bytes_tx, bytes_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
        tokio::task::spawn_blocking(move || send_set(&set, bytes_tx));
        return Ok(Some(Download {
            zip: true,
            body: Either::Right(tokio_stream(bytes_rx)),
        }));
    }
    let options = RunOptions::from_stored(&run.options)?;
    let p = path.clone();
    let headers = tokio::task::spawn_blocking(move || file_headers(&p, max_bytes))
        .await?
        .ok();
    if kind != FileKind::Uploaded
        && headers
            .as_deref()
            .is_some_and(crate::feed::roster_csv::is_roster_header)
    {
        return Ok(Some(Download::csv(Either::Left(
            roster_download(
                pool,
                run,
                kind,
                max_bytes,
                path,
                headers.unwrap_or_default(),
            )
            .await?,
        ))));
    }
    let mapping = match &headers {
        Some(h) => {
            let saved = mapping::saved_mapping(&pool, run.district_id, h).await?;
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

    let (results_tx, results_rx) = tokio::sync::mpsc::channel::<RowResult>(4096);
    let (bytes_tx, bytes_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    // The uploaded file goes back byte for byte (its line ends, quoting and BOM as sent)
    // when nothing in it has to change: no password to empty, no formula to neutralise.
    let crlf = if kind == FileKind::Uploaded {
        let (p, password) = (
            path.clone(),
            mapping.column_of(crate::domain::Field::Password),
        );
        let (as_sent, crlf) =
            tokio::task::spawn_blocking(move || sendable_as_sent(&p, password, max_bytes)).await?;
        if as_sent {
            let p = path.clone();
            tokio::task::spawn_blocking(move || send_as_sent(&p, bytes_tx));
            return Ok(Some(Download::csv(Either::Right(tokio_stream(bytes_rx)))));
        }
        crlf
    } else {
        false
    };
    if kind != FileKind::Uploaded {
        let failed = bytes_tx.clone();
        let (district_id, run_id) = (run.district_id, run.id);
        let pool = pool.clone();
        let sync_names = db::syncs::names(&pool, district_id).await?;
        tokio::spawn(async move {
            // A database error ends the download with an error, not a short file.
            // The error file needs the failed rows only: not the run's unchanged rows (a
            // million at a time), each joined to its user.
            let rows = if kind == FileKind::Errors {
                db::runs::error_rows_stream(&pool, district_id, run_id)
            } else {
                db::runs::rows_stream(&pool, district_id, run_id)
            };
            let rows = crate::download::until_error(rows, failed);
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
    let users = UsersFile {
        kind,
        // An error file of a run without errors is its header: no need to read the file.
        header_only: kind == FileKind::Errors && run.errors == 0,
        headers: headers.unwrap_or_default(),
        mapping,
        error_guids,
        crlf,
        path,
        max_bytes,
        results: results_rx,
    };
    // A set that carried classes and enrollments (OneRoster, Clever, SDS): its completed and
    // error files include them (SPEC §6a), beside the users' file in one zip.
    let set_files = match crate::reconcile::report::roster_set_files(kind) {
        Some(files)
            if !db::rosters::counts(&pool, run.district_id, run.id)
                .await?
                .is_empty() =>
        {
            files
        }
        _ => {
            tokio::task::spawn_blocking(move || {
                let _ = users.write(ChannelWriter {
                    buf: Vec::with_capacity(1 << 16),
                    tx: bytes_tx,
                });
            });
            return Ok(Some(Download::csv(Either::Right(tokio_stream(bytes_rx)))));
        }
    };
    // The set's records, each tagged with the file it goes in (its place after the users').
    let (records_tx, mut records_rx) = tokio::sync::mpsc::channel::<(usize, Vec<String>)>(1024);
    let (district_id, run_id, failed) = (run.district_id, run.id, bytes_tx.clone());
    tokio::spawn(async move {
        use crate::reconcile::report::{
            class_result_record, enrollment_result_record, roster_error_record,
        };
        let records = if kind == FileKind::Completed {
            let classes = crate::download::until_error(
                db::rosters::class_results(&pool, district_id, run_id),
                failed.clone(),
            )
            .map(|c| {
                (
                    0,
                    class_result_record(
                        &c.external_id,
                        c.class_id,
                        &c.title,
                        &c.school_external_id,
                        &c.term,
                        &c.outcome,
                        &c.changed,
                    ),
                )
            });
            let enrollments = crate::download::until_error(
                db::rosters::enrollment_changes(&pool, district_id, run_id),
                failed,
            )
            .map(|e| {
                (
                    1,
                    enrollment_result_record(
                        &e.class_external_id,
                        e.class_id,
                        e.user_id,
                        &e.custom_id,
                        &e.kind,
                    ),
                )
            });
            classes.chain(enrollments).boxed()
        } else {
            crate::download::until_error(
                db::rosters::error_rows(&pool, district_id, run_id, None),
                failed,
            )
            .map(|r| {
                (
                    0,
                    roster_error_record(
                        &r.kind,
                        &r.file,
                        u64::try_from(r.line).unwrap_or(0),
                        &r.key,
                        r.class_id,
                        r.user_id,
                        r.error.as_deref().unwrap_or(""),
                    ),
                )
            })
            .boxed()
        };
        let mut records = std::pin::pin!(records);
        while let Some(record) = records.next().await {
            if records_tx.send(record).await.is_err() {
                break;
            }
        }
    });
    tokio::task::spawn_blocking(move || {
        let (users_name, files) = set_files;
        let write = || -> std::io::Result<()> {
            let mut zip = zip::ZipWriter::new_stream(ChannelWriter {
                buf: Vec::with_capacity(1 << 16),
                tx: bytes_tx,
            });
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(true);
            zip.start_file(users_name, options)?;
            users.write(&mut zip)?;
            // Each file in turn, its header first (a file with no records is its header).
            let mut pending = records_rx.blocking_recv();
            for (i, (name, header)) in files.iter().enumerate() {
                zip.start_file(*name, options)?;
                let mut out = csv::Writer::from_writer(&mut zip);
                out.write_record(*header)?;
                while let Some((file, record)) = pending.take_if(|(file, _)| *file == i) {
                    debug_assert_eq!(file, i);
                    out.write_record(&record)?;
                    pending = records_rx.blocking_recv();
                }
                out.flush()?;
            }
            std::io::Write::flush(&mut zip.finish()?.into_inner())
        };
        let _ = write(); // an error here is the client gone, or already in the body
    });
    Ok(Some(Download {
        zip: true,
        body: Either::Right(tokio_stream(bytes_rx)),
    }))
}

/// One of a run's downloads: a CSV, or a zip of CSVs (a set that carried rosters).
pub struct Download<S> {
    pub zip: bool,
    pub body: S,
}

impl<S> Download<S> {
    fn csv(body: S) -> Download<S> {
        Download { zip: false, body }
    }
}

/// The users' completed, error or uploaded file of a run: the stored file read again, each
/// row merged with its stored result (`results`, in line order).
struct UsersFile {
    kind: FileKind,
    header_only: bool,
    headers: Vec<String>,
    mapping: Mapping,
    error_guids: bool,
    /// The stored file's lines end in CRLF: so do the rewritten file's.
    crlf: bool,
    path: PathBuf,
    max_bytes: u64,
    results: tokio::sync::mpsc::Receiver<RowResult>,
}

impl UsersFile {
    fn write(self, w: impl std::io::Write) -> std::io::Result<()> {
        let UsersFile {
            kind,
            header_only,
            headers,
            mapping,
            error_guids,
            crlf,
            path,
            max_bytes,
            mut results,
        } = self;
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
        // Rewritten, the file keeps its own line ends (CRLF as sent stays CRLF).
        let mut out = csv::WriterBuilder::new()
            .terminator(if crlf {
                csv::Terminator::CRLF
            } else {
                csv::Terminator::Any(b'\n')
            })
            .from_writer(w);
        out.write_record(&layout.header)?;
        let reader = std::fs::File::open(&path)
            .ok()
            .filter(|_| !header_only)
            .and_then(|f| read::open(f, &ReadOptions::with_max_bytes(max_bytes)).ok());
        let mut pending: Option<RowResult> = None;
        // Every result has been received (the error file ends with its last failed line).
        let mut no_more = false;
        let mut next_result =
            |line: u64, pending: &mut Option<RowResult>, no_more: &mut bool| -> Option<RowResult> {
                loop {
                    if pending.is_none() && !*no_more {
                        *pending = results.blocking_recv();
                        *no_more = pending.is_none();
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
                next_result(line, &mut pending, &mut no_more)
            };
            // Past the last failed line, the error file has nothing more to take from the
            // file (a few errors near the top of a million rows: read no further).
            if kind == FileKind::Errors && result.is_none() && pending.is_none() && no_more {
                break;
            }
            if let Some(record) = layout.record(kind, &fields, result.as_ref()) {
                out.write_record(&record)?; // an error: the client went away
            }
        }
        out.flush()
    }
}

/// Whether a stored upload can go back exactly as it came (a single file, not a zip of a
/// set; every row read cleanly; no password given; no cell a spreadsheet would run as a
/// formula), and whether its lines end in CRLF.
fn sendable_as_sent(path: &Path, password: Option<usize>, max_bytes: u64) -> (bool, bool) {
    use std::io::Read;
    let mut head = [0u8; 64 * 1024];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    let crlf = head
        .iter()
        .position(|&b| b == b'\n')
        .is_some_and(|i| i > 0 && head[i - 1] == b'\r');
    if head.starts_with(b"PK\x03\x04") {
        return (false, crlf);
    }
    let Ok(reader) = std::fs::File::open(path)
        .map_err(read::FileError::from)
        .and_then(|f| read::open(f, &ReadOptions::with_max_bytes(max_bytes)))
    else {
        return (false, crlf);
    };
    let formula = |cells: &[String]| {
        cells.iter().any(|c| {
            matches!(
                crate::reconcile::report::neutralise(c),
                std::borrow::Cow::Owned(_)
            )
        })
    };
    if formula(reader.headers()) {
        return (false, crlf);
    }
    for item in reader {
        match item {
            Ok(Ok(rec)) => {
                let pw = password
                    .and_then(|i| rec.fields.get(i))
                    .is_some_and(|v| !v.is_empty());
                if pw || formula(&rec.fields) {
                    return (false, crlf);
                }
            }
            _ => return (false, crlf),
        }
    }
    (true, crlf)
}

/// Streams a stored set (a zip of CSV files) back as it was sent: each file whose cells
/// need nothing is copied as it is (still compressed); a file with a password given, or a
/// cell a spreadsheet would run as a formula, is rewritten with its `password` column
/// emptied and formulas neutralised.
fn send_set(set: &Path, tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) {
    let failed = tx.clone();
    let result = (|| -> std::io::Result<()> {
        let mut archive = zip::ZipArchive::new(std::fs::File::open(set)?)?;
        let mut out = zip::ZipWriter::new_stream(ChannelWriter {
            buf: Vec::with_capacity(1 << 16),
            tx,
        });
        for i in 0..archive.len() {
            let rewrite = {
                let entry = archive.by_index(i)?;
                let csv = entry.is_file() && entry.name()?.to_ascii_lowercase().ends_with(".csv");
                csv && set_entry_needs_rewrite(entry)
            };
            if rewrite {
                let entry = archive.by_index(i)?;
                let name = entry.name()?.to_string();
                let options = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .large_file(true);
                out.start_file(name, options)?;
                rewrite_set_entry(entry, &mut out)?;
            } else {
                out.raw_copy_file(archive.by_index_raw(i)?)?;
            }
        }
        std::io::Write::flush(&mut out.finish()?.into_inner())
    })();
    if let Err(e) = result {
        let _ = failed.blocking_send(Err(e)); // or the client went away
    }
}

/// The `password` column of a set's CSV file, if it has one.
fn password_column(headers: &csv::ByteRecord) -> Option<usize> {
    headers
        .iter()
        .position(|h| headers::fold(&String::from_utf8_lossy(h)) == headers::fold("password"))
}

/// Whether a set's CSV file gives a password or has a cell a spreadsheet would run as a
/// formula (a file that cannot be read as CSV goes back as it is).
fn set_entry_needs_rewrite(entry: impl std::io::Read) -> bool {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(entry);
    let formula = |r: &csv::ByteRecord| {
        r.iter()
            .any(|c| read::formula_like(&String::from_utf8_lossy(c)))
    };
    let Ok(headers) = reader.byte_headers().cloned() else {
        return false;
    };
    if formula(&headers) {
        return true;
    }
    let password = password_column(&headers);
    let mut record = csv::ByteRecord::new();
    while let Ok(true) = reader.read_byte_record(&mut record) {
        let given = password
            .and_then(|i| record.get(i))
            .is_some_and(|v| !v.is_empty());
        if given || formula(&record) {
            return true;
        }
    }
    false
}

/// A set's CSV file rewritten: its `password` column emptied, formulas neutralised.
fn rewrite_set_entry(entry: impl std::io::Read, out: impl std::io::Write) -> std::io::Result<()> {
    use crate::reconcile::report::neutralise;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(entry);
    let mut writer = csv::Writer::from_writer(out);
    let headers = reader.byte_headers()?.clone();
    let password = password_column(&headers);
    let cells = |r: &csv::ByteRecord, password: Option<usize>| -> Vec<String> {
        r.iter()
            .enumerate()
            .map(|(i, c)| {
                if Some(i) == password {
                    String::new()
                } else {
                    neutralise(&String::from_utf8_lossy(c)).into_owned()
                }
            })
            .collect()
    };
    writer.write_record(cells(&headers, None))?;
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record)? {
        writer.write_record(cells(&record, password))?;
    }
    writer.flush()
}

/// Streams a stored file's bytes, unchanged, into `tx`.
fn send_as_sent(path: &Path, tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if tx
                    .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                    .is_err()
                {
                    return; // the client went away
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
}

/// The completed or error file of a roster CSV run (SPEC §6a): the stored file read again,
/// each row with its class's and user's GUIDs and outcome (completed), or the failed rows
/// as sent with an `Error` column (errors).
async fn roster_download(
    pool: sqlx::PgPool,
    run: &db::runs::Run,
    kind: FileKind,
    max_bytes: u64,
    path: PathBuf,
    headers: Vec<String>,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static> {
    use crate::reconcile::report::{LineFold, RosterLine};
    // The run's records stream in line order, a line's records folded into one result as
    // they come: the file is merged with them line by line, whatever its size.
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::channel::<RosterLine>(4096);
    let (bytes_tx, bytes_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let (district_id, run_id, failed) = (run.district_id, run.id, bytes_tx.clone());
    tokio::spawn(async move {
        let records = crate::download::until_error(
            db::rosters::rows_by_line(&pool, district_id, run_id, kind == FileKind::Errors),
            failed,
        );
        let mut records = std::pin::pin!(records);
        let mut fold: Option<LineFold> = None;
        while let Some(r) = records.next().await {
            let record = (
                r.kind,
                u64::try_from(r.line).unwrap_or(0),
                r.outcome,
                r.class_id,
                r.user_id,
                r.error,
            );
            match fold.as_mut() {
                Some(f) if f.line() == record.1 => f.add(record),
                _ => {
                    if let Some(done) = fold.replace(LineFold::new(record))
                        && lines_tx.send(done.finish()).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
        if let Some(done) = fold {
            let _ = lines_tx.send(done.finish()).await;
        }
    });
    tokio::task::spawn_blocking(move || {
        let (header, cols) = crate::reconcile::report::roster_header(kind, &headers);
        let mut out = csv::Writer::from_writer(ChannelWriter {
            buf: Vec::with_capacity(1 << 16),
            tx: bytes_tx,
        });
        if out.write_record(&header).is_err() {
            return;
        }
        let reader = std::fs::File::open(&path)
            .ok()
            .and_then(|f| read::open(f, &ReadOptions::with_max_bytes(max_bytes)).ok());
        let mut pending: Option<RosterLine> = None;
        for item in reader.into_iter().flatten() {
            let (line, fields) = match item {
                Ok(Ok(rec)) => (rec.line, rec.fields),
                Ok(Err(issue)) => (issue.line, Vec::new()),
                Err(_) => break,
            };
            // The result of this line, if any (results of lines the reader does not yield
            // are passed over).
            let result = loop {
                if pending.is_none() {
                    pending = lines_rx.blocking_recv();
                }
                match &pending {
                    Some(r) if r.line < line => pending = None,
                    Some(r) if r.line == line => break pending.take(),
                    _ => break None,
                }
            };
            if let Some(record) = crate::reconcile::report::roster_record(
                kind,
                header.len(),
                cols,
                &fields,
                result.as_ref(),
            ) && out.write_record(&record).is_err()
            {
                return;
            }
        }
        let _ = out.flush();
    });
    Ok(tokio_stream(bytes_rx))
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
