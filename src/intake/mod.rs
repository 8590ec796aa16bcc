//! The intake: how a file comes in, the same for every way in (upload form, API, a sync's
//! CSV set upload, drop folder, command line). The file is stored as it streams in (hashed,
//! refused past the size limit: [`files`]); its options are parsed from text once
//! ([`Asked::set`]: `scope`, `dry_run`, `source`); its header decides its source and scope —
//! a fixed error file (it carries the `Error` column) is a patch by default and files the
//! users it creates under the source of the run whose error file it is (SPEC §4); a header
//! missing required fields parks the run for the mapper; and the run is queued, waking the
//! workers ([`queue_run`]). A zip is a OneRoster CSV set, queued as a sync.

use crate::db;
pub use crate::domain::ErrorFileOf;
use crate::domain::{ActorKind, RunKind, RunStatus, Scope, Source};
pub use crate::feed::headers::has_error_column;
use crate::feed::{self, headers::MappingError};
use crate::reconcile::mapping;
use crate::reconcile::run::RunOptions;
use crate::storage;
use crate::sync::Enqueued;
use anyhow::Context;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

pub mod files;

pub use files::{
    Stored, combine, download, file_headers, sample_records, sample_rows, store, store_within,
};

/// What the intake needs from the server to take a file in: the database, where files are
/// kept and how large they may be, and a wake-up for the job queue's workers (not the
/// queue itself: the intake sits below it).
#[derive(Clone)]
pub struct Inbox {
    pub pool: PgPool,
    pub data_dir: PathBuf,
    pub max_upload_mb: u64,
    /// Wakes the workers when a run is queued.
    pub wake: Arc<Notify>,
}

impl Inbox {
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_mb * 1024 * 1024
    }

    /// Wake the workers: a run was queued.
    pub fn wake_workers(&self) {
        self.wake.notify_waiters();
    }
}

impl AsRef<Inbox> for Inbox {
    fn as_ref(&self) -> &Inbox {
        self
    }
}

/// Who sent an upload.
pub struct Sender<'a> {
    /// `User` (a page), `Token` (the API), `Drop` (the drop folder).
    pub kind: ActorKind,
    pub label: &'a str,
}

impl Sender<'_> {
    /// The kind of run a file from this sender makes.
    pub fn run_kind(&self) -> RunKind {
        match self.kind {
            ActorKind::Token => RunKind::Api,
            ActorKind::Drop => RunKind::Drop,
            ActorKind::Cli => RunKind::Cli,
            ActorKind::Sync => RunKind::Sync,
            ActorKind::User | ActorKind::Operator | ActorKind::System => RunKind::Upload,
        }
    }
}

pub struct Accepted {
    pub run_id: Uuid,
    /// `Queued`, or `NeedsMapping` (parked for the mapper).
    pub status: RunStatus,
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// Writing the file failed; `StoreError::TooLarge` is the size limit (413 on every way in).
    #[error("{0}")]
    Store(#[from] storage::StoreError),
    #[error("choose a file to upload")]
    NoFile,
    #[error("{0}")]
    Refused(String),
    /// Several files in one upload that are not the files of one set (422 on every way in).
    #[error("{0}")]
    NotASet(String),
    /// The request carrying the file failed before its end (cut short, malformed, stalled).
    #[error("the upload was interrupted: {cause}")]
    Body {
        cause: Box<dyn std::error::Error + Send + Sync>,
        limit_mb: u64,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What the sender asked for with a file (each `None` when not given).
#[derive(Debug, Clone, Default)]
pub struct Asked {
    pub source: Option<String>,
    pub scope: Option<Scope>,
    pub dry_run: bool,
    /// The drop folder's copy of the file (`processed/…`): a failed run moves it to `failed/`.
    pub drop_path: Option<PathBuf>,
    /// The one school the file is for (issue 16, item 6): its rows must be that school's and
    /// it archives only that school's users. A school admin's upload always names one.
    pub school: Option<Uuid>,
}

impl Asked {
    /// Read one text option of a form, API request or command line by its name (`dry_run`,
    /// `scope`, `source`); other names are not options and are left alone (`Ok(false)`).
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, BadOption> {
        match name {
            "dry_run" => self.dry_run = parse_dry_run(value)?,
            "scope" => self.scope = parse_scope(value)?,
            "source" => {
                self.source = Some(value.to_string()).filter(|s| !s.trim().is_empty());
            }
            "school" => self.school = parse_school(value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The `school` option: a school's id, or blank for none.
pub fn parse_school(value: &str) -> Result<Option<Uuid>, BadOption> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(value).map(Some).map_err(|_| {
        BadOption(format!(
            "school: {value:?} is not one of the district's schools"
        ))
    })
}

/// Queue the run of a stored file, whichever way it came in (or park it for the header
/// mapper when required fields are not in its columns). A zip is a OneRoster CSV set: it
/// runs as a sync of the district's OneRoster CSV connection.
pub async fn queue_run(
    inbox: &impl AsRef<Inbox>,
    district_id: Uuid,
    stored: Stored,
    asked: &Asked,
    sender: &Sender<'_>,
) -> Result<Accepted, AcceptError> {
    let inbox = inbox.as_ref();
    // A file for one school names that school's users only (issue 16, item 6).
    let school = match asked.school {
        Some(id) => match db::schools::get(&inbox.pool, district_id, id)
            .await
            .context("reading the school")?
        {
            Some(s) => Some(s),
            None => {
                let _ = tokio::fs::remove_file(&stored.path).await;
                return Err(AcceptError::Refused(
                    "the school chosen for this file is not one of the district's schools".into(),
                ));
            }
        },
        None => None,
    };
    if is_zip(&stored.path).await {
        if school.is_some() {
            let _ = tokio::fs::remove_file(&stored.path).await;
            return Err(AcceptError::Refused(
                "a file for one school is a user CSV; a OneRoster or SDS set goes in for the whole district".into(),
            ));
        }
        return queue_oneroster_set(inbox, district_id, stored, sender).await;
    }
    let Stored {
        run_id,
        path,
        sha256,
        size,
        file_name,
    } = stored;
    let max = inbox.max_upload_bytes();
    let p = path.clone();
    let headers = tokio::task::spawn_blocking(move || file_headers(&p, max))
        .await
        .context("reading the header")?
        .ok();
    let decided = decide(
        &inbox.pool,
        district_id,
        &file_name,
        headers.as_deref(),
        asked.source.as_deref(),
        asked.scope,
    )
    .await
    .context("deciding the run's source")?;
    let source_key = decided.source_key;
    let mut options = RunOptions {
        scope: Some(decided.scope),
        error_file_of: decided.error_file_of,
        intake_note: decided.note,
        ..RunOptions::default()
    };
    if let Some(s) = &school {
        // Rows without a school column are that school's (a fixed value only fills a field
        // no column provides).
        options.school = Some(s.id);
        options.fixed.push((
            crate::domain::Field::SchoolExternalId,
            s.external_id.clone(),
        ));
    }
    let needs_mapping = match &headers {
        Some(h) => needs_mapping(&inbox.pool, district_id, h, &options).await?,
        None => false,
    };
    let status = if needs_mapping {
        RunStatus::NeedsMapping
    } else {
        RunStatus::Queued
    };
    let mut stored_options = serde_json::to_value(&options).context("options")?;
    if let Some(drop_path) = &asked.drop_path {
        stored_options["drop_path"] = serde_json::json!(drop_path);
    }
    db::runs::insert_with_id(
        &inbox.pool,
        district_id,
        run_id,
        &db::runs::NewRun {
            kind: sender.run_kind(),
            source: &Source::File(source_key.into()).to_db(),
            file_name: Some(&file_name),
            file_sha256: Some(&sha256),
            file_path: path.to_str(),
            dry_run: asked.dry_run,
            approved: false,
            options: stored_options,
            submitted_kind: sender.kind,
            submitted_by: sender.label,
            status,
        },
    )
    .await
    .context("recording the upload")?;
    if !needs_mapping {
        inbox.wake_workers();
    }
    tracing::info!(district = %district_id, run = %run_id, file = %file_name, size, status = status.as_str(), "upload received");
    Ok(Accepted { run_id, status })
}

/// Are required fields missing from this header, even with the district's saved mapping
/// and the run's own overrides (so the run waits for the mapper)?
pub async fn needs_mapping(
    pool: &PgPool,
    district_id: Uuid,
    headers: &[String],
    options: &RunOptions,
) -> anyhow::Result<bool> {
    // A roster CSV (SPEC §6a) goes to the roster engine, never to the users' column mapper.
    if feed::roster_csv::is_roster_header(headers) {
        return Ok(false);
    }
    let saved = mapping::saved_mapping(pool, district_id, headers).await?;
    Ok(matches!(
        feed::headers::resolve(headers, saved.as_ref(), &options.overrides, &options.fixed),
        Err(MappingError::MissingRequired { .. })
    ))
}

/// Does the stored file start like a zip?
pub async fn is_zip(path: &Path) -> bool {
    use tokio::io::AsyncReadExt;
    let mut magic = [0u8; 4];
    match tokio::fs::File::open(path).await {
        Ok(mut f) => f.read_exact(&mut magic).await.is_ok() && magic == *b"PK\x03\x04",
        Err(_) => false,
    }
}

/// A zip is a OneRoster CSV set: it runs as a sync of the district's OneRoster CSV
/// connection (one is added when there is none).
async fn queue_oneroster_set(
    inbox: &Inbox,
    district_id: Uuid,
    stored: Stored,
    sender: &Sender<'_>,
) -> Result<Accepted, AcceptError> {
    let conn = crate::sync::csv_connection(&inbox.pool, district_id, sender.label).await?;
    match queue_set(inbox, &conn, stored, sender).await? {
        Enqueued::Run(run_id) => Ok(Accepted {
            run_id,
            status: RunStatus::Queued,
        }),
        Enqueued::Paused => Err(AcceptError::Refused(format!(
            "the connection \"{}\" is paused; resume it on the Syncs page first",
            conn.name
        ))),
        Enqueued::Busy(run) => Err(AcceptError::Refused(format!(
            "a sync of \"{}\" is already queued or running (run {run})",
            conn.name
        ))),
    }
}

/// Queue a stored OneRoster CSV set as a sync of `conn` (a OneRoster CSV connection),
/// waking the workers. A paused connection, or one with a sync already on its way, does
/// not take it: the stored file is removed and the answer says why.
pub async fn queue_set(
    inbox: &impl AsRef<Inbox>,
    conn: &crate::db::syncs::Connection,
    stored: Stored,
    sender: &Sender<'_>,
) -> anyhow::Result<Enqueued> {
    let inbox = inbox.as_ref();
    let file = (stored.file_name.as_str(), stored.path.as_path());
    let outcome =
        crate::sync::enqueue(&inbox.pool, conn, sender.kind, sender.label, Some(file)).await?;
    match &outcome {
        Enqueued::Run(run_id) => {
            inbox.wake_workers();
            tracing::info!(district = %conn.district_id, run = %run_id, file = %stored.file_name, "OneRoster set received");
        }
        Enqueued::Paused | Enqueued::Busy(_) => {
            let _ = tokio::fs::remove_file(&stored.path).await;
        }
    }
    Ok(outcome)
}

/// A value of an option that is none of the allowed ones (the message names them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadOption(pub String);

/// `scope`: `source`, `district` or `patch` (case and blanks ignored); blank = not given.
pub fn parse_scope(value: &str) -> Result<Option<Scope>, BadOption> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    Scope::parse(value).map(Some).ok_or_else(|| {
        BadOption(format!(
            "scope \"{}\" is not one of: {}",
            value.trim(),
            allowed_scopes()
        ))
    })
}

/// `source, district, patch`.
pub fn allowed_scopes() -> String {
    Scope::ALL.map(Scope::as_str).join(", ")
}

/// The command line's `--scope` (clap value parser).
pub fn scope_arg(value: &str) -> Result<Scope, String> {
    match parse_scope(value) {
        Ok(Some(scope)) => Ok(scope),
        Ok(None) => Err(format!("give one of: {}", allowed_scopes())),
        Err(e) => Err(e.to_string()),
    }
}

/// `dry_run`: `true`/`1`/`on`/`yes` or `false`/`0`/`off`/`no`/blank (case ignored), the same
/// on every way in (the form's checkbox sends `on`).
pub fn parse_dry_run(value: &str) -> Result<bool, BadOption> {
    let v = value.trim().to_ascii_lowercase();
    match v.as_str() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" | "" => Ok(false),
        _ => Err(BadOption(format!(
            "dry_run \"{}\" is not one of: true, false (or 1, 0, on, off, yes, no)",
            value.trim()
        ))),
    }
}

/// What a file's run will be: its source, scope, and where a fixed error file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub source_key: String,
    pub scope: Scope,
    pub error_file_of: Option<ErrorFileOf>,
    /// Said on the run page (e.g. why a fixed error file stayed under its own name).
    pub note: Option<String>,
}

/// The part of a run's file name its downloads are named after: `students.csv` →
/// `students` (our error file is `<stem>-errors.csv`). Characters a file name may not safely
/// carry become `_`.
pub fn download_stem(file_name: &str) -> String {
    let base = strip_extension(file_name);
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn strip_extension(name: &str) -> &str {
    let lower = name.to_ascii_lowercase();
    for ext in [".csv", ".txt", ".tsv"] {
        if lower.ends_with(ext) {
            return &name[..name.len() - ext.len()];
        }
    }
    name
}

/// The stem of the run an error file came from, read from the error file's name: the
/// extension, a browser's copy suffix (` (1)`, ` - Copy`) and our `-errors` dropped.
pub fn parent_stem(file_name: &str) -> String {
    let mut s = strip_extension(file_name.trim()).trim().to_string();
    loop {
        let before = s.clone();
        // ` (1)`, `(12)`
        if s.ends_with(')')
            && let Some(open) = s.rfind('(')
            && s[open + 1..s.len() - 1].chars().all(|c| c.is_ascii_digit())
            && open + 2 < s.len()
        {
            s.truncate(open);
        }
        for copy in [" - copy", " copy", "-copy", "_copy"] {
            if s.to_ascii_lowercase().ends_with(copy) {
                s.truncate(s.len() - copy.len());
            }
        }
        s = s.trim_end().to_string();
        if s == before {
            break;
        }
    }
    for suffix in ["-errors", "_errors", " errors", "-error", "_error"] {
        if s.to_ascii_lowercase().ends_with(suffix) {
            s.truncate(s.len() - suffix.len());
            break;
        }
    }
    download_stem(&s)
}

/// Decide a file's source and scope. `explicit_*` are what the sender gave (the form, API
/// field, CLI flag); `headers` the file's header when it could be read.
///
/// A file with the `Error` column and no explicit scope is a patch; with no explicit source
/// it belongs to the source of the district's latest run whose error file its name names
/// (`students-errors (1).csv` → the latest run of a file whose downloads are `students-…`,
/// preferring one that had errors). Without such a run it keeps its own name, and says so.
pub async fn decide(
    pool: &PgPool,
    district_id: Uuid,
    file_name: &str,
    headers: Option<&[String]>,
    explicit_source: Option<&str>,
    explicit_scope: Option<Scope>,
) -> sqlx::Result<Decided> {
    let given_source = explicit_source
        .filter(|s| !s.trim().is_empty())
        .map(crate::storage::clean_file_name);
    let error_file = headers.is_some_and(has_error_column);
    let scope = explicit_scope.unwrap_or(if error_file {
        Scope::Patch
    } else {
        Scope::Source
    });
    if !error_file || given_source.is_some() {
        return Ok(Decided {
            source_key: given_source.unwrap_or_else(|| file_name.to_string()),
            scope,
            error_file_of: None,
            note: None,
        });
    }
    let stem = parent_stem(file_name);
    let candidates = db::runs::recent_file_runs(pool, district_id, 500).await?;
    let matching: Vec<&db::runs::FileRun> = candidates
        .iter()
        .filter(|r| download_stem(&r.file_name) == stem)
        .collect();
    let parent = matching
        .iter()
        .find(|r| r.errors > 0)
        .or_else(|| matching.first())
        .copied();
    Ok(match parent {
        Some(p) => Decided {
            source_key: match Source::from_db(&p.source) {
                Source::File(key) => key.into(),
                _ => file_name.to_string(),
            },
            scope,
            error_file_of: Some(ErrorFileOf {
                run_id: p.id,
                file_name: p.file_name.clone(),
            }),
            note: None,
        },
        None => Decided {
            source_key: file_name.to_string(),
            scope,
            error_file_of: None,
            note: Some(format!(
                "This file has an Error column, but no earlier upload of this district matches its name (looked for a file named {stem}.csv), so the users it creates belong to {file_name}. Give the original file's source key with the upload to file them there."
            )),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_parsed_once_with_a_clear_error() {
        assert_eq!(parse_scope(""), Ok(None));
        assert_eq!(parse_scope(" District "), Ok(Some(Scope::District)));
        assert_eq!(parse_scope("patch"), Ok(Some(Scope::Patch)));
        let e = parse_scope("everything").unwrap_err().to_string();
        assert!(
            e.contains("everything") && e.contains("source, district, patch"),
            "{e}"
        );
        assert_eq!(scope_arg("source"), Ok(Scope::Source));
        assert!(
            scope_arg("x")
                .unwrap_err()
                .contains("source, district, patch")
        );
    }

    #[test]
    fn dry_run_accepts_the_same_words_everywhere() {
        for v in ["true", "1", "on", "YES", " True "] {
            assert_eq!(parse_dry_run(v), Ok(true), "{v}");
        }
        for v in ["false", "0", "off", "no", ""] {
            assert_eq!(parse_dry_run(v), Ok(false), "{v}");
        }
        assert!(
            parse_dry_run("maybe")
                .unwrap_err()
                .to_string()
                .contains("true, false")
        );
    }

    #[test]
    fn an_error_files_name_leads_back_to_its_run() {
        assert_eq!(download_stem("students.csv"), "students");
        assert_eq!(download_stem("my students.CSV"), "my_students");
        assert_eq!(parent_stem("students-errors.csv"), "students");
        assert_eq!(parent_stem("students-errors (1).csv"), "students");
        assert_eq!(parent_stem("students-errors(2).csv"), "students");
        assert_eq!(parent_stem("students-errors - Copy.csv"), "students");
        assert_eq!(parent_stem("my_students-errors.csv"), "my_students");
        assert_eq!(parent_stem("students.csv"), "students");
        assert_eq!(
            parent_stem("students-errors-errors.csv"),
            "students-errors",
            "an error file of a fixed error file leads to that run"
        );
    }

    #[test]
    fn the_error_column_is_found_however_it_is_spelled() {
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(has_error_column(&h(&["email", "Error"])));
        assert!(has_error_column(&h(&["email", " ERROR "])));
        assert!(!has_error_column(&h(&["email", "errors_seen"])));
    }
}
