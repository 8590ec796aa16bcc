//! Review of mass changes and setting runs aside: approve, cancel, dismiss.

use super::load;
use crate::db;
use crate::db::audit::Entry;
use crate::domain::RunStatus;
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::session::{DistrictAdmin, DistrictScope, set_flash};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;
use uuid::Uuid;

pub async fn approve(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let run = load(&state, scope.district_id, id).await?;
    if run.status != RunStatus::NeedsReview {
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
            before: Some(
                serde_json::json!({ "status": RunStatus::NeedsReview, "reason": run.message }),
            ),
            after: Some(serde_json::json!({ "status": RunStatus::Queued, "approved": true })),
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
        run.status,
        RunStatus::NeedsReview | RunStatus::NeedsMapping | RunStatus::Queued
    ) {
        return Err(AppError::Conflict(
            "this run can no longer be cancelled".into(),
        ));
    }
    set_aside(&state, &scope, id, run.status, "run.cancel").await?;
    set_flash(&session, "success", "Cancelled: nothing was applied.").await;
    Ok(Redirect::to(&format!("/uploads/{id}")).into_response())
}

/// Cancel a run that is still in `from` (cancel, dismiss): status, who and when, and the
/// audit entry in one transaction; 409 when the run moved on meanwhile.
async fn set_aside(
    state: &AppState,
    scope: &DistrictScope,
    id: Uuid,
    from: RunStatus,
    action: &str,
) -> AppResult<()> {
    let mut tx = state.pool.begin().await?;
    if !db::runs::set_status(&mut *tx, scope.district_id, id, from, RunStatus::Cancelled).await? {
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
            after: Some(serde_json::json!({ "status": RunStatus::Cancelled })),
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
    if run.status != RunStatus::NeedsMapping {
        return Err(AppError::Conflict(
            "only a run waiting for its columns to be mapped can be dismissed".into(),
        ));
    }
    set_aside(&state, &scope, id, RunStatus::NeedsMapping, "run.dismiss").await?;
    set_flash(
        &session,
        "success",
        "Dismissed: the file was set aside and nothing was applied.",
    )
    .await;
    Ok(Redirect::to("/uploads").into_response())
}
