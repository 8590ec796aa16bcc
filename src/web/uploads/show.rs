//! `GET /uploads/{id}`: a run's detail page, and its live status as JSON.

use super::RunView;
use crate::db;
use crate::domain::{RunKind, RunStatus};
use crate::web::AppState;
use crate::web::error::AppResult;
use crate::web::page::{Chrome, chrome, render};
use crate::web::session::DistrictScope;
use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;
use uuid::Uuid;

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
    undo: crate::web::undo::RunUndo,
    changes: crate::web::undo::RowChanges,
    /// The run's source as people name it ("students.csv", the connection's name).
    source_name: String,
    /// Classes and enrollments (SPEC §6a): counts, and the first roster errors.
    rosters: crate::domain::roster::RosterCounts,
    roster_errors: Vec<db::rosters::RosterRow>,
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let run = super::load_for(&state, &scope, id).await?;
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
        if matches!(outcome, "archived" | "skipped") && run.kind == RunKind::Undo {
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
    let changes = crate::web::undo::RowChanges::of(&state, &run, applied, &changed).await?;
    let undo = crate::web::undo::RunUndo::of(&state, &run).await?;
    let rosters = db::rosters::counts(&state.pool, scope.district_id, id).await?;
    // The first hundred only (a sync of 3,000,000 enrollments may fail every one).
    let roster_errors = if rosters.roster_errors > 0 {
        use futures::TryStreamExt;
        db::rosters::error_rows(&state.pool, scope.district_id, id, Some(100))
            .try_collect()
            .await?
    } else {
        Vec::new()
    };
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
        rosters,
        roster_errors,
    };
    Ok(render(&page)?.into_response())
}

pub async fn status_json(
    State(state): State<AppState>,
    scope: DistrictScope,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let run = super::load_for(&state, &scope, id).await?;
    Ok(Json(status_body(&run)).into_response())
}

pub fn status_body(run: &db::runs::Run) -> serde_json::Value {
    let view = RunView { run: run.clone() };
    let r = &run.rosters;
    serde_json::json!({
        "id": run.id,
        "status": run.status,
        "status_label": view.status_label(),
        "waiting": view.waiting(),
        "finished": !view.in_progress() && run.status != RunStatus::NeedsMapping,
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
            // Errors in classes and enrollments (not counted in `errors`, the users').
            "roster_errors": r.roster_errors,
        },
        // Classes and enrollments (SPEC §6a): all zero for a run without rosters.
        "rosters": {
            "classes": {
                "created": r.classes_created, "updated": r.classes_updated,
                "unchanged": r.classes_unchanged, "restored": r.classes_restored,
                "archived": r.classes_archived,
            },
            "enrollments": {
                "added": r.enrollments_added, "changed": r.enrollments_changed,
                "unchanged": r.enrollments_unchanged, "ended": r.enrollments_ended,
            },
            "errors": r.roster_errors,
        },
        "message": run.message,
        "attempts": run.attempts,
        "received_at": run.received_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "started_at": run.started_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
        "finished_at": run.finished_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
    })
}
