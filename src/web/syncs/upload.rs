//! `POST /syncs/{id}/upload`: a OneRoster CSV set (zip) for a CSV connection.

use super::{audit, enqueued_flash, load};
use crate::domain::ActorKind;
use crate::intake::{self, Sender};
use crate::sync::{Enqueued, Kind};
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::intake_form::receive;
use crate::web::session::DistrictAdmin;
use crate::web::uploads::accept_error;
use axum::extract::{Multipart, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;
use uuid::Uuid;

/// A OneRoster CSV set (zip) for a CSV connection: stored, then queued as a sync run.
pub async fn upload(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
    mut multipart: Multipart,
) -> AppResult<Response> {
    let conn = load(&state, &scope, id).await?;
    if conn.kind != Kind::OneRosterCsv.as_str() {
        return Err(AppError::BadRequest(
            "only a OneRoster CSV connection takes a zip".into(),
        ));
    }
    if conn.paused {
        let outcome = Enqueued::Paused;
        enqueued_flash(&session, &outcome).await;
        return Ok(Redirect::to(&format!("/syncs/{id}")).into_response());
    }
    // Through the intake, as every way in: streamed, hashed, 413 past the size limit.
    let inbox = &state.queue.inbox;
    let received = receive(
        inbox,
        scope.district_id,
        &mut multipart,
        Some("oneroster.zip"),
    )
    .await
    .map_err(accept_error)?;
    let Some(stored) = received.stored else {
        return Err(AppError::BadRequest("choose a zip file".into()));
    };
    let name = stored.file_name.clone();
    let label = scope.actor().label;
    let sender = Sender {
        kind: ActorKind::User,
        label: &label,
    };
    let outcome = intake::queue_set(inbox, &conn, stored, &sender).await?;
    if let Enqueued::Run(run) = outcome {
        let mut tx = state.pool.begin().await?;
        audit(
            &mut tx,
            &scope,
            id,
            "sync.upload",
            serde_json::json!({ "run": run, "file_name": name }),
        )
        .await?;
        tx.commit().await?;
    }
    enqueued_flash(&session, &outcome).await;
    Ok(Redirect::to(&format!("/syncs/{id}")).into_response())
}
