//! `POST /uploads`: a file sent from the upload form is stored and queued.

use crate::domain::{ActorKind, RunStatus};
use crate::intake::{self, AcceptError, Sender};
use crate::web::AppState;
use crate::web::error::{AppError, AppResult, multipart_error};
use crate::web::intake_form::receive;
use crate::web::session::{DistrictScope, set_flash};
use axum::extract::{Multipart, State};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    mut multipart: Multipart,
) -> AppResult<Response> {
    let inbox = &state.queue.inbox;
    let received = receive(inbox, scope.district_id, &mut multipart, None)
        .await
        .map_err(accept_error)?;
    if let Some(e) = received.bad {
        return Err(AppError::BadRequest(e.to_string()));
    }
    // A school admin imports for one of their schools (issue 16, item 6): the file is that
    // school's (the form's picker; preset when they have one school).
    let mut asked = received.asked.clone();
    if let Some(mine) = &scope.schools {
        if asked.school.is_none() && mine.len() == 1 {
            asked.school = mine.first().copied();
        }
        if !asked.school.is_some_and(|s| mine.contains(&s)) {
            if let Some(stored) = &received.stored {
                let _ = tokio::fs::remove_file(&stored.path).await;
            }
            return Err(AppError::BadRequest(
                "choose which of your schools this file is for".into(),
            ));
        }
    }
    // The form preselects `source`; left as it is, that is the default (so a fixed error
    // file is still a patch), chosen by hand (`scope_touched`), it is asked for.
    let touched = received
        .field("scope_touched")
        .is_some_and(|v| v.trim() == "1");
    let stored = received
        .stored
        .ok_or_else(|| AppError::BadRequest("choose a file to upload".into()))?;
    if !touched && asked.scope == Some(crate::domain::Scope::Source) {
        asked.scope = None;
    }
    let file_name = stored.file_name.clone();
    let label = scope.actor().label;
    let sender = Sender {
        kind: ActorKind::User,
        label: &label,
    };
    let accepted = intake::queue_run(inbox, scope.district_id, stored, &asked, &sender)
        .await
        .map_err(accept_error)?;
    if accepted.status == RunStatus::NeedsMapping {
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

/// How a refused file answers on every way in over HTTP: past the size limit 413, an
/// interrupted body as the multipart layer says, a refused set 409, several files that are
/// not one set 422.
pub fn accept_error(e: AcceptError) -> AppError {
    match e {
        AcceptError::Store(crate::storage::StoreError::TooLarge(mb)) => AppError::TooLarge(mb),
        AcceptError::NoFile => AppError::BadRequest("choose a file to upload".into()),
        AcceptError::Refused(msg) => AppError::Conflict(msg),
        AcceptError::NotASet(msg) => AppError::Unprocessable(msg),
        AcceptError::Store(e) => AppError::Internal(e.into()),
        AcceptError::Body { cause, limit_mb } => {
            match cause.downcast_ref::<axum::extract::multipart::MultipartError>() {
                Some(e) => multipart_error(e, limit_mb),
                None => AppError::BadRequest(format!(
                    "the upload was interrupted ({cause}); nothing was stored — send it again"
                )),
            }
        }
        AcceptError::Other(e) => AppError::Internal(e),
    }
}
