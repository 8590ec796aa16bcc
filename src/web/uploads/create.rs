//! `POST /uploads`: a file sent from the upload form is stored and queued.

use crate::domain::{ActorKind, RunStatus};
use crate::intake;
use crate::uploads::{self, Sender};
use crate::web::AppState;
use crate::web::error::{AppError, AppResult, multipart_error};
use crate::web::session::{DistrictAdmin, set_flash};
use axum::extract::{Multipart, State};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

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
        kind: ActorKind::User,
        label: &label,
    };
    let accepted = uploads::queue_run(&state.queue, scope.district_id, stored, &asked, &sender)
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
