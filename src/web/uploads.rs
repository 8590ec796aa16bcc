//! The Uploads screens: upload (with drag and drop), history with live progress, the
//! detail page with its three downloads, the header mapper, and review of mass changes.

use super::AppState;
use super::error::{AppError, AppResult, multipart_error};
use super::page::{Chrome, chrome, render};
use super::session::{DistrictAdmin, set_flash};
use crate::db;
use crate::db::audit::Entry;
use crate::domain::Field;
use crate::feed::headers::{self, SavedMapping};
use crate::intake;
use crate::reconcile::report::FileKind;
use crate::uploads::{self, Sender};
use askama::Template;
use axum::Json;
use axum::body::Body;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use tower_sessions::Session;
use uuid::Uuid;

/// How a run looks in lists and pages.
pub struct RunView {
    pub run: db::runs::Run,
}

impl RunView {
    pub fn status_label(&self) -> &'static str {
        if self.waiting() {
            WAITING
        } else {
            status_label(&self.run.status)
        }
    }
    /// Taken by a worker but waiting for its district's lock (another run holds it): not
    /// started yet.
    pub fn waiting(&self) -> bool {
        self.run.status == "in_progress" && self.run.started_at.is_none()
    }
    pub fn in_progress(&self) -> bool {
        matches!(self.run.status.as_str(), "queued" | "in_progress")
    }
    /// The bar covers the whole run: reading the file (to 45%), planning (45–50%), and
    /// writing (50–100%, counted in plan rows written; see `run::Progress`).
    pub fn percent(&self) -> i64 {
        let r = &self.run;
        if r.status != "in_progress" {
            return if self.in_progress() { 0 } else { 100 };
        }
        let share = |of: i64| {
            if r.total_rows <= 0 {
                0
            } else {
                (r.done_rows as i64 * of / r.total_rows as i64).clamp(0, of)
            }
        };
        match r.phase.as_deref() {
            Some("applying") => 50 + share(50),
            Some("planning") => 45,
            Some("waiting") | None => 0,
            _ => share(45),
        }
    }
    /// What the run is doing, for the progress line: the phase and its count.
    pub fn progress_text(&self) -> String {
        let r = &self.run;
        if r.status == "queued" {
            return "Queued".into();
        }
        if r.status != "in_progress" {
            return format!("{} rows", r.total_rows);
        }
        match r.phase.as_deref() {
            Some("waiting") => "Waiting for another run of this district".into(),
            Some("planning") => format!("Planning {} rows", r.total_rows),
            Some("applying") => format!("Applying: {}% written", (self.percent() - 50) * 2),
            Some(_) => format!("Reading: {} of about {} rows", r.done_rows, r.total_rows),
            None => "Starting".into(),
        }
    }
    pub fn source_key(&self) -> String {
        crate::domain::Source::from_db(&self.run.source).to_string()
    }
    pub fn received(&self) -> String {
        fmt_time(Some(self.run.received_at))
    }
    pub fn started(&self) -> String {
        fmt_time(self.run.started_at)
    }
    pub fn finished(&self) -> String {
        fmt_time(self.run.finished_at)
    }
    /// Whether this run's counts and outcomes were written (`db::runs::Run::applied`).
    pub fn applied(&self) -> bool {
        self.run.applied()
    }
    /// The label of an outcome's count: "Created" when applied, "Would create" when not.
    pub fn count_label(&self, outcome: &str) -> &'static str {
        let (done, would) = match outcome {
            "created" => ("Created", "Would create"),
            "updated" => ("Updated", "Would update"),
            "restored" => ("Restored", "Would restore"),
            "archived" => ("Archived", "Would archive"),
            "unchanged" => ("Unchanged", "Unchanged"),
            "moved" => ("Moved", "Would move"),
            "skipped" => ("Skipped", "Would skip"),
            "error" | "errors" => ("Errors", "Errors"),
            _ => ("", ""),
        };
        if self.applied() { done } else { would }
    }
    /// The class of a count cell in lists: muted when the run was not applied.
    pub fn count_class(&self) -> &'static str {
        if self.applied() { "num" } else { "num would" }
    }
    fn options(&self) -> crate::reconcile::run::RunOptions {
        serde_json::from_value(self.run.options.clone()).unwrap_or_default()
    }
    /// The scope a run of a user file covers (`None` for a sync); runs from before scopes
    /// were stored covered their source.
    pub fn scope(&self) -> Option<crate::domain::Scope> {
        (self.run.kind != "sync").then(|| self.options().scope.unwrap_or_default())
    }
    /// `scope: district` for lists; empty for a sync.
    pub fn scope_tag(&self) -> String {
        self.scope()
            .map(|s| format!("scope: {s}"))
            .unwrap_or_default()
    }
    /// The run a fixed error file came from.
    pub fn error_file_of(&self) -> Option<intake::ErrorFileOf> {
        self.options().error_file_of
    }
    pub fn intake_note(&self) -> Option<String> {
        self.options().intake_note
    }
    pub fn has_files(&self) -> bool {
        self.run.file_path.is_some() && !self.in_progress() && self.run.status != "needs_mapping"
    }
}

/// The label of a run in progress that waits for its district's lock.
pub const WAITING: &str = "Waiting for another run of this district";

pub fn status_label(status: &str) -> &'static str {
    match status {
        "needs_mapping" => "Needs mapping",
        "queued" => "Queued",
        "in_progress" => "In Progress",
        "completed" => "Completed",
        "completed_with_errors" => "Completed with Errors",
        "needs_review" => "Needs Review",
        "failed" => "Failed",
        "cancelled" => "Cancelled",
        _ => "Unknown",
    }
}

pub fn fmt_time(t: Option<time::OffsetDateTime>) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "—".into())
}

#[derive(Template)]
#[template(path = "uploads.html")]
struct UploadsPage {
    chrome: Chrome,
    runs: Vec<HistoryRow>,
    scopes: [crate::domain::Scope; 3],
    statuses: &'static [(&'static str, &'static str)],
    kinds: &'static [(&'static str, &'static str)],
    sources: Vec<(String, String)>,
    status: String,
    kind: String,
    source: String,
    from: String,
    to: String,
    next_href: Option<String>,
    first_href: Option<String>,
    filtered: bool,
}

/// A run in the history: its view and its source named for people.
pub struct HistoryRow {
    pub v: RunView,
    pub source_name: String,
}

impl HistoryRow {
    /// The file name, or the kind of run when it has none.
    pub fn label(&self) -> &str {
        self.v.run.file_name.as_deref().unwrap_or(&self.v.run.kind)
    }
}

/// The query string of `/uploads`. Empty values mean "not given".
#[derive(Debug, Default, serde::Deserialize)]
pub struct HistoryQuery {
    status: Option<String>,
    kind: Option<String>,
    source: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
}

pub const HISTORY_PAGE: i64 = 50;

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn history_day(v: &Option<String>, what: &str) -> AppResult<Option<time::Date>> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    given(v)
        .map(|s| {
            time::Date::parse(s, &fmt)
                .map_err(|_| AppError::BadRequest(format!("{what}: a date like 2026-09-01")))
        })
        .transpose()
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    axum::extract::Query(q): axum::extract::Query<HistoryQuery>,
) -> AppResult<Response> {
    use crate::domain::history::{self, Cursor};
    let bad = |what: &str| AppError::BadRequest(format!("unknown {what}"));
    let status = given(&q.status)
        .map(|s| history::known(&history::STATUSES, s).ok_or_else(|| bad("status")))
        .transpose()?;
    let kind = given(&q.kind)
        .map(|s| history::known(&history::KINDS, s).ok_or_else(|| bad("kind")))
        .transpose()?;
    let source = given(&q.source).map(str::to_string);
    let from = history_day(&q.from, "from")?;
    let to = history_day(&q.to, "to")?;
    let after = given(&q.after)
        .map(|c| Cursor::parse(c).ok_or_else(|| AppError::BadRequest("bad page link".into())))
        .transpose()?;
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (key, value) in [
        ("status", status.map(str::to_string)),
        ("kind", kind.map(str::to_string)),
        ("source", source.clone()),
        ("from", from.map(|d| d.to_string())),
        ("to", to.map(|d| d.to_string())),
    ] {
        if let Some(v) = value {
            pairs.push((key, v));
        }
    }
    let filter = db::runs::HistoryFilter {
        status: status.map(str::to_string),
        kind: kind.map(str::to_string),
        source: source.clone(),
        from: from.map(|d| d.midnight().assume_utc()),
        to: to
            .and_then(|d| d.next_day())
            .map(|d| d.midnight().assume_utc()),
    };
    let after = after.and_then(|c| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(c.at_micros) * 1000)
            .ok()
            .map(|at| (at, c.id))
    });
    let mut runs = db::runs::history(
        &state.pool,
        scope.district_id,
        &filter,
        after,
        HISTORY_PAGE + 1,
    )
    .await?;
    let more = runs.len() as i64 > HISTORY_PAGE;
    runs.truncate(HISTORY_PAGE as usize);
    let url = |pairs: &[(&str, String)]| {
        if pairs.is_empty() {
            "/uploads".to_string()
        } else {
            format!(
                "/uploads?{}",
                serde_urlencoded::to_string(pairs).unwrap_or_default()
            )
        }
    };
    let next_href = more.then(|| {
        let last = runs.last().expect("a full page");
        let c = Cursor {
            at_micros: (last.received_at.unix_timestamp_nanos() / 1000) as i64,
            id: last.id,
        };
        let mut p = pairs.clone();
        p.push(("after", c.encode()));
        url(&p)
    });
    let names = db::syncs::names(&state.pool, scope.district_id).await?;
    let mut sources: Vec<(String, String)> = db::runs::sources(&state.pool, scope.district_id)
        .await?
        .into_iter()
        .map(|key| {
            let name = crate::reconcile::report::source_name(&key, &names);
            (key, name)
        })
        .collect();
    sources.sort_by(|a, b| {
        a.1.to_lowercase()
            .cmp(&b.1.to_lowercase())
            .then(a.0.cmp(&b.0))
    });
    let runs = runs
        .into_iter()
        .map(|run| HistoryRow {
            source_name: crate::reconcile::report::source_name(&run.source, &names),
            v: RunView { run },
        })
        .collect();
    let page = UploadsPage {
        chrome: chrome(&session, Some(&scope.person), "/uploads").await,
        runs,
        scopes: crate::domain::Scope::ALL,
        statuses: &crate::domain::history::STATUSES,
        kinds: &crate::domain::history::KINDS,
        sources,
        status: status.unwrap_or_default().to_string(),
        kind: kind.unwrap_or_default().to_string(),
        source: source.unwrap_or_default(),
        from: from.map(|d| d.to_string()).unwrap_or_default(),
        to: to.map(|d| d.to_string()).unwrap_or_default(),
        next_href,
        first_href: q.after.is_some().then(|| url(&pairs)),
        filtered: !pairs.is_empty(),
    };
    Ok(render(&page)?.into_response())
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    mut multipart: Multipart,
) -> AppResult<Response> {
    let mut asked = uploads::Asked::default();
    // The form preselects `source`; left as it is, that is the default (so a fixed error
    // file is still a patch), chosen by hand (`scope_touched`), it is asked for.
    let mut touched = false;
    let mut bad: Option<intake::BadOption> = None;
    let mut stored = None;
    let label = scope.actor().label;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e, state.config.max_upload_mb))?
    {
        match field.name() {
            Some("dry_run") => {
                let v = field.text().await.unwrap_or_default();
                match intake::parse_dry_run(&v) {
                    Ok(d) => asked.dry_run = d,
                    Err(e) => bad = Some(e),
                }
            }
            Some("scope") => {
                let v = field.text().await.unwrap_or_default();
                match intake::parse_scope(&v) {
                    Ok(scope) => asked.scope = scope,
                    Err(e) => bad = Some(e),
                }
            }
            Some("scope_touched") => {
                touched = field.text().await.is_ok_and(|v| v.trim() == "1");
            }
            Some("source") => {
                asked.source = field.text().await.ok().filter(|s| !s.trim().is_empty())
            }
            Some("file") if stored.is_none() => {
                let file_name = field.file_name().unwrap_or("").to_string();
                if file_name.is_empty() {
                    return Err(AppError::BadRequest("choose a file to upload".into()));
                }
                stored = Some(
                    uploads::store(&state.queue, scope.district_id, &file_name, Box::pin(field))
                        .await
                        .map_err(accept_error)?,
                );
            }
            _ => {}
        }
    }
    if let Some(e) = bad {
        if let Some(stored) = stored {
            let _ = tokio::fs::remove_file(&stored.path).await;
        }
        return Err(AppError::BadRequest(e.to_string()));
    }
    let stored = stored.ok_or_else(|| AppError::BadRequest("choose a file to upload".into()))?;
    if !touched && asked.scope == Some(crate::domain::Scope::Source) {
        asked.scope = None;
    }
    let file_name = stored.file_name.clone();
    let sender = Sender {
        kind: "user",
        label: &label,
    };
    let accepted = uploads::queue_run(&state.queue, scope.district_id, stored, &asked, &sender)
        .await
        .map_err(accept_error)?;
    if accepted.status == "needs_mapping" {
        set_flash(&session, "info", "Some required fields are not in this file's columns. Map them once; the mapping is saved for next time.").await;
        return Ok(Redirect::to(&format!("/uploads/{}/map", accepted.run_id)).into_response());
    }
    set_flash(
        &session,
        "success",
        format!("{file_name} received and queued."),
    )
    .await;
    Ok(Redirect::to(&format!("/uploads/{}", accepted.run_id)).into_response())
}

pub fn accept_error(e: uploads::AcceptError) -> AppError {
    match e {
        uploads::AcceptError::Store(crate::storage::StoreError::TooLarge(mb)) => {
            AppError::TooLarge(mb)
        }
        uploads::AcceptError::NoFile => AppError::BadRequest("choose a file to upload".into()),
        uploads::AcceptError::Refused(msg) => AppError::Conflict(msg),
        uploads::AcceptError::Store(e) => AppError::Internal(e.into()),
        uploads::AcceptError::Body { cause, limit_mb } => {
            match cause.downcast_ref::<axum::extract::multipart::MultipartError>() {
                Some(e) => multipart_error(e, limit_mb),
                None => AppError::BadRequest(format!(
                    "the upload was interrupted ({cause}); nothing was stored — send it again"
                )),
            }
        }
        uploads::AcceptError::Other(e) => AppError::Internal(e),
    }
}

async fn load(state: &AppState, district_id: Uuid, id: Uuid) -> AppResult<db::runs::Run> {
    db::runs::get(&state.pool, district_id, id)
        .await?
        .ok_or(AppError::NotFound)
}

/// A row whose user the run moved (or would move) from another owner.
pub struct MovedRow {
    pub line: i64,
    pub user_id: Option<Uuid>,
    pub username: String,
    /// The former owner, as an admin reads it.
    pub from: String,
}

pub struct OutcomeRows {
    pub outcome: &'static str,
    pub label: &'static str,
    pub rows: Vec<db::runs::RunRow>,
}

#[derive(Template)]
#[template(path = "upload.html")]
struct UploadPage {
    chrome: Chrome,
    view: RunView,
    samples: Vec<OutcomeRows>,
    archive: Vec<db::runs::ArchivePreview>,
    archive_total: i64,
    moved: Vec<MovedRow>,
    undo: super::undo::RunUndo,
    changes: super::undo::RowChanges,
    /// The run's source as people name it ("students.csv", the connection's name).
    source_name: String,
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let run = load(&state, scope.district_id, id).await?;
    let mut samples = Vec::new();
    let applied = RunView { run: run.clone() }.applied();
    for (outcome, done, would) in [
        ("created", "Created", "Would create"),
        ("updated", "Updated", "Would update"),
        ("restored", "Restored", "Would restore"),
        (
            "archived",
            "Archived by the provider",
            "Would archive (archived by the provider)",
        ),
        ("error", "Errors", "Errors"),
        (
            "skipped",
            "Skipped (provisioned by a roster sync, unchanged)",
            "Would skip (provisioned by a roster sync, unchanged)",
        ),
        ("unchanged", "Unchanged", "Unchanged"),
    ] {
        if matches!(outcome, "archived" | "skipped") && run.kind == "undo" {
            // An undo's archives are the users listed below, not a provider's, and its
            // skipped rows are the users it left, listed with who changed them.
            continue;
        }
        let label = if applied { done } else { would };
        let rows =
            db::runs::rows_by_outcome(&state.pool, scope.district_id, id, outcome, 10).await?;
        if !rows.is_empty() {
            samples.push(OutcomeRows {
                outcome,
                label,
                rows,
            });
        }
    }
    let (archive, archive_total) =
        db::runs::archive_preview(&state.pool, scope.district_id, id, 100).await?;
    let names = db::syncs::names(&state.pool, scope.district_id).await?;
    let source_name = crate::reconcile::report::source_name(&run.source, &names);
    let moved = if run.moved > 0 {
        db::runs::moved_rows(&state.pool, scope.district_id, id, 100)
            .await?
            .into_iter()
            .map(|r| MovedRow {
                line: r.line,
                user_id: r.user_id,
                username: r.username.unwrap_or_default(),
                from: crate::reconcile::report::owner_label(
                    &crate::domain::Source::from_db(r.previous_source.as_deref().unwrap_or("")),
                    &names,
                ),
            })
            .collect()
    } else {
        Vec::new()
    };
    let changed: Vec<&db::runs::RunRow> = samples
        .iter()
        .filter(|g| matches!(g.outcome, "updated" | "restored"))
        .flat_map(|g| &g.rows)
        .collect();
    let changes = super::undo::RowChanges::of(&state, &run, applied, &changed).await?;
    let undo = super::undo::RunUndo::of(&state, &run).await?;
    let page = UploadPage {
        chrome: chrome(&session, Some(&scope.person), "/uploads").await,
        view: RunView { run },
        samples,
        archive,
        archive_total,
        moved,
        undo,
        changes,
        source_name,
    };
    Ok(render(&page)?.into_response())
}

pub async fn status_json(
    State(state): State<AppState>,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let run = load(&state, scope.district_id, id).await?;
    Ok(Json(status_body(&run)).into_response())
}

pub fn status_body(run: &db::runs::Run) -> serde_json::Value {
    let view = RunView { run: run.clone() };
    serde_json::json!({
        "id": run.id,
        "status": run.status,
        "status_label": view.status_label(),
        "waiting": view.waiting(),
        "finished": !view.in_progress() && run.status != "needs_mapping",
        "file_name": run.file_name,
        "source": view.source_key(),
        "scope": view.scope().map(|s| s.as_str()),
        "dry_run": run.dry_run,
        "applied": view.applied(),
        "progress": {
            "done": run.done_rows, "total": run.total_rows, "percent": view.percent(),
            "phase": run.phase, "text": view.progress_text(),
        },
        "counts": {
            "created": run.created, "updated": run.updated, "unchanged": run.unchanged,
            "restored": run.restored, "archived": run.archived, "errors": run.errors,
            "moved": run.moved, "skipped": run.skipped,
        },
        "message": run.message,
        "attempts": run.attempts,
        "received_at": run.received_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "started_at": run.started_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
        "finished_at": run.finished_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
    })
}

pub async fn file(
    State(state): State<AppState>,
    DistrictAdmin(scope): DistrictAdmin,
    Path((id, kind)): Path<(Uuid, String)>,
) -> AppResult<Response> {
    let run = load(&state, scope.district_id, id).await?;
    file_response(&state, &run, &kind).await
}

/// A run's download as an attachment (shared with the API).
pub async fn file_response(
    state: &AppState,
    run: &db::runs::Run,
    kind: &str,
) -> AppResult<Response> {
    let kind = FileKind::parse(kind).ok_or(AppError::NotFound)?;
    if matches!(
        run.status.as_str(),
        "queued" | "in_progress" | "needs_mapping"
    ) && kind != FileKind::Uploaded
    {
        return Err(AppError::Conflict("the run has not finished yet".into()));
    }
    let stream = uploads::download(
        state.pool.clone(),
        run,
        kind,
        state.config.max_upload_bytes(),
    )
    .await?
    .ok_or_else(|| {
        AppError::Conflict("this run's files were removed after the retention period".into())
    })?;
    let base = run
        .file_name
        .as_deref()
        .unwrap_or("upload.csv")
        .trim_end_matches(".csv")
        .trim_end_matches(".CSV");
    let safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{safe}-{}.csv\"", kind.as_str());
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

// ---- the column-header mapper ----

pub struct MapColumn {
    pub index: usize,
    pub header: String,
    pub selected: String,
    pub samples: Vec<String>,
}

#[derive(Template)]
#[template(path = "mapper.html")]
struct MapperPage {
    chrome: Chrome,
    view: RunView,
    columns: Vec<MapColumn>,
    fields: Vec<&'static str>,
    fixed_role: String,
    fixed_school: String,
    schools: Vec<db::schools::School>,
    error: Option<String>,
}

pub async fn map_form(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let run = load(&state, scope.district_id, id).await?;
    mapper(&state, &session, &scope, run, None, None).await
}

async fn mapper(
    state: &AppState,
    session: &Session,
    scope: &super::session::DistrictScope,
    run: db::runs::Run,
    error: Option<String>,
    form: Option<&HashMap<String, String>>,
) -> AppResult<Response> {
    if run.status != "needs_mapping" {
        return Ok(Redirect::to(&format!("/uploads/{}", run.id)).into_response());
    }
    let path = run
        .file_path
        .clone()
        .map(std::path::PathBuf::from)
        .ok_or(AppError::NotFound)?;
    let max = state.config.max_upload_bytes();
    let p = path.clone();
    let (headers, samples) = tokio::task::spawn_blocking(move || {
        (
            uploads::file_headers(&p, max).unwrap_or_default(),
            uploads::sample_rows(&p, max, 3),
        )
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    let saved = uploads::saved_mapping(&state.pool, scope.district_id, &headers).await?;
    let mut proposed = headers::propose(&headers);
    if let Some(saved) = &saved {
        for (name, field) in &saved.columns {
            if let Some(i) = headers
                .iter()
                .position(|h| headers::fold(h) == headers::fold(name))
            {
                proposed[i] = *field;
            }
        }
    }
    let columns = headers
        .iter()
        .enumerate()
        .map(|(i, h)| MapColumn {
            index: i,
            header: h.clone(),
            selected: form
                .and_then(|f| f.get(&format!("col{i}")).cloned())
                .unwrap_or_else(|| {
                    proposed[i]
                        .map(|f| f.name().to_string())
                        .unwrap_or_else(|| "ignore".into())
                }),
            samples: samples
                .iter()
                .filter_map(|r| r.get(i).cloned())
                .filter(|v| !v.trim().is_empty())
                .collect(),
        })
        .collect();
    let page = MapperPage {
        chrome: chrome(session, Some(&scope.person), "/uploads").await,
        view: RunView { run },
        columns,
        fields: Field::ALL.iter().map(|f| f.name()).collect(),
        fixed_role: form
            .and_then(|f| f.get("fixed_role").cloned())
            .unwrap_or_default(),
        fixed_school: form
            .and_then(|f| f.get("fixed_school").cloned())
            .unwrap_or_default(),
        schools: db::schools::list(&state.pool, scope.district_id, None).await?,
        error,
    };
    Ok(render(&page)?.into_response())
}

pub async fn map_save(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let run = load(&state, scope.district_id, id).await?;
    if run.status != "needs_mapping" {
        return Err(AppError::Conflict(
            "this upload does not need a mapping any more".into(),
        ));
    }
    let path = run
        .file_path
        .clone()
        .map(std::path::PathBuf::from)
        .ok_or(AppError::NotFound)?;
    let max = state.config.max_upload_bytes();
    let headers =
        tokio::task::spawn_blocking(move || uploads::file_headers(&path, max).unwrap_or_default())
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
    let mut columns = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let choice = form
            .get(&format!("col{i}"))
            .map(String::as_str)
            .unwrap_or("ignore");
        columns.push((h.clone(), Field::from_name(choice)));
    }
    let mut fixed = Vec::new();
    if let Some(role) = form.get("fixed_role").filter(|v| !v.trim().is_empty()) {
        fixed.push((Field::Role, role.trim().to_string()));
    }
    if let Some(school) = form.get("fixed_school").filter(|v| !v.trim().is_empty()) {
        fixed.push((Field::SchoolExternalId, school.trim().to_string()));
    }
    let saved = SavedMapping { columns, fixed };
    // The mapping must cover the required fields before it is saved.
    if let Err(e) = headers::resolve(&headers, Some(&saved), &[], &[]) {
        return mapper(
            &state,
            &session,
            &scope,
            run,
            Some(format!("Not saved: {e}.")),
            Some(&form),
        )
        .await;
    }
    let signature = headers::signature(&headers);
    let value = serde_json::to_value(&saved).map_err(|e| AppError::Internal(e.into()))?;
    let mut tx = state.pool.begin().await?;
    db::runs::save_mapping(
        &mut *tx,
        scope.district_id,
        &signature,
        &value,
        &scope.actor().label,
    )
    .await?;
    db::runs::set_status(&mut *tx, scope.district_id, id, "needs_mapping", "queued").await?;
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "mapping.save",
            entity_kind: "run",
            entity_id: Some(id),
            run_id: Some(id),
            before: None,
            after: Some(value),
        },
    )
    .await?;
    tx.commit().await?;
    state.queue.notify.notify_waiters();
    set_flash(
        &session,
        "success",
        "Mapping saved for this district; the upload is queued.",
    )
    .await;
    Ok(Redirect::to(&format!("/uploads/{id}")).into_response())
}

// ---- review of mass changes ----

pub async fn approve(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let run = load(&state, scope.district_id, id).await?;
    if run.status != "needs_review" {
        return Err(AppError::Conflict(
            "only a run that needs review can be approved".into(),
        ));
    }
    let mut tx = state.pool.begin().await?;
    // Approved runs are planned again against the current state when they run.
    db::runs::approve(
        &mut *tx,
        scope.district_id,
        id,
        &scope.actor().label,
        state.clock.now(),
    )
    .await?;
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "run.approve",
            entity_kind: "run",
            entity_id: Some(id),
            run_id: Some(id),
            before: Some(serde_json::json!({ "status": "needs_review", "reason": run.message })),
            after: Some(serde_json::json!({ "status": "queued", "approved": true })),
        },
    )
    .await?;
    tx.commit().await?;
    state.queue.notify.notify_waiters();
    set_flash(
        &session,
        "success",
        "Approved: the run is queued and applies against the current state.",
    )
    .await;
    Ok(Redirect::to(&format!("/uploads/{id}")).into_response())
}

pub async fn cancel(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let run = load(&state, scope.district_id, id).await?;
    if !matches!(
        run.status.as_str(),
        "needs_review" | "needs_mapping" | "queued"
    ) {
        return Err(AppError::Conflict(
            "this run can no longer be cancelled".into(),
        ));
    }
    set_aside(&state, &scope, id, &run.status, "run.cancel").await?;
    set_flash(&session, "success", "Cancelled: nothing was applied.").await;
    Ok(Redirect::to(&format!("/uploads/{id}")).into_response())
}

/// Cancel a run that is still in `from` (cancel, dismiss): status, who and when, and the
/// audit entry in one transaction; 409 when the run moved on meanwhile.
async fn set_aside(
    state: &AppState,
    scope: &crate::web::session::DistrictScope,
    id: Uuid,
    from: &str,
    action: &str,
) -> AppResult<()> {
    let mut tx = state.pool.begin().await?;
    if !db::runs::set_status(&mut *tx, scope.district_id, id, from, "cancelled").await? {
        return Err(AppError::Conflict(
            "the run moved on meanwhile; reload the page".into(),
        ));
    }
    db::runs::mark_reviewed(
        &mut *tx,
        scope.district_id,
        id,
        &scope.actor().label,
        state.clock.now(),
    )
    .await?;
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action,
            entity_kind: "run",
            entity_id: Some(id),
            run_id: Some(id),
            before: Some(serde_json::json!({ "status": from })),
            after: Some(serde_json::json!({ "status": "cancelled" })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /uploads/{id}/dismiss`: a run waiting for its columns to be mapped is set aside
/// (cancelled, nothing applied); any other state is a conflict.
pub async fn dismiss(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let run = load(&state, scope.district_id, id).await?;
    if run.status != "needs_mapping" {
        return Err(AppError::Conflict(
            "only a run waiting for its columns to be mapped can be dismissed".into(),
        ));
    }
    set_aside(&state, &scope, id, "needs_mapping", "run.dismiss").await?;
    set_flash(
        &session,
        "success",
        "Dismissed: the file was set aside and nothing was applied.",
    )
    .await;
    Ok(Redirect::to("/uploads").into_response())
}
