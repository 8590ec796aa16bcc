//! The Uploads screens: upload (with drag and drop), history with live progress, the
//! detail page with its three downloads, the header mapper, the saved column mappings, the
//! template and field reference, and review of mass changes.
//! One file per action; what several share (the run's view, labels, loading a run) is here.

mod create;
mod files;
mod list;
mod mapper;
mod mappings;
mod reference;
mod review;
mod show;

pub use create::{accept_error, create};
pub use files::{file, file_response};
pub use list::{HISTORY_PAGE, HistoryQuery, HistoryRow, list};
pub use mapper::{MapColumn, map_form, map_save};
pub use mappings::{
    delete as mapping_delete, list as mappings, show as mapping, update as mapping_update,
};
pub use reference::{fields, template};
pub use review::{approve, cancel, dismiss};
pub use show::{MovedRow, OutcomeRows, show, status_body, status_json};

use super::error::{AppError, AppResult};
use crate::db;
use crate::domain::{RunKind, RunStatus};
use crate::intake;
use crate::web::AppState;
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
            self.run.status.label()
        }
    }
    /// Taken by a worker but waiting for its district's lock (another run holds it): not
    /// started yet.
    pub fn waiting(&self) -> bool {
        self.run.status == RunStatus::InProgress && self.run.started_at.is_none()
    }
    pub fn in_progress(&self) -> bool {
        matches!(self.run.status, RunStatus::Queued | RunStatus::InProgress)
    }
    /// The bar covers the whole run: reading the file (to 45%), planning (45–50%), and
    /// writing (50–100%, counted in plan rows written; see `run::Progress`).
    pub fn percent(&self) -> i64 {
        let r = &self.run;
        if r.status != RunStatus::InProgress {
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
        if r.status == RunStatus::Queued {
            return "Queued".into();
        }
        if r.status != RunStatus::InProgress {
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
        crate::web::when::second(Some(self.run.received_at))
    }
    pub fn started(&self) -> String {
        crate::web::when::second(self.run.started_at)
    }
    pub fn finished(&self) -> String {
        crate::web::when::second(self.run.finished_at)
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
        (self.run.kind != RunKind::Sync).then(|| self.options().scope.unwrap_or_default())
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
        self.run.file_path.is_some()
            && !self.in_progress()
            && self.run.status != RunStatus::NeedsMapping
    }
}

/// The label of a run in progress that waits for its district's lock.
pub const WAITING: &str = "Waiting for another run of this district";

async fn load(state: &AppState, district_id: Uuid, id: Uuid) -> AppResult<db::runs::Run> {
    db::runs::get(&state.pool, district_id, id)
        .await?
        .ok_or(AppError::NotFound)
}

/// The school a run's file was for (issue 16, item 6), if one.
pub fn run_school(run: &db::runs::Run) -> Option<Uuid> {
    run.options
        .get("school")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// A run this admin may see: any of the district's for a district admin; for a school
/// admin, the runs of files for one of their schools (others answer 404).
async fn load_for(
    state: &AppState,
    scope: &crate::web::session::DistrictScope,
    id: Uuid,
) -> AppResult<db::runs::Run> {
    let run = load(state, scope.district_id, id).await?;
    match &scope.schools {
        None => Ok(run),
        Some(mine) if run_school(&run).is_some_and(|s| mine.contains(&s)) => Ok(run),
        Some(_) => Err(AppError::NotFound),
    }
}
