//! `POST /syncs/{id}/upload`: a OneRoster CSV set (zip) for a CSV connection.

use super::{audit, enqueued_flash, load};
use crate::domain::ActorKind;
use crate::sync::{self, Enqueued, Kind};
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::session::DistrictAdmin;
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
    let limit = state.config.max_upload_bytes();
    let path =
        crate::storage::upload_path(&state.config.data_dir, scope.district_id, Uuid::new_v4())
            .with_extension("zip");
    let mut name = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| crate::web::error::multipart_error(&e, state.config.max_upload_mb))?
    {
        if field.name() != Some("file") {
            continue;
        }
        name = Some(crate::storage::clean_file_name(
            field.file_name().unwrap_or("oneroster.zip"),
        ));
        let mut writer = crate::storage::Writer::create(path.clone(), limit)
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if let Err(e) = writer.write(&chunk).await {
                        writer.abandon().await;
                        return Err(AppError::Unprocessable(e.to_string()));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    writer.abandon().await;
                    return Err(crate::web::error::multipart_error(
                        &e,
                        state.config.max_upload_mb,
                    ));
                }
            }
        }
        writer
            .finish()
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    }
    let Some(name) = name else {
        return Err(AppError::BadRequest("choose a zip file".into()));
    };
    let outcome = sync::enqueue(
        &state.pool,
        &conn,
        ActorKind::User,
        &scope.actor().label,
        Some((&name, &path)),
    )
    .await?;
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
        state.queue.notify.notify_waiters();
    } else {
        let _ = tokio::fs::remove_file(&path).await;
    }
    enqueued_flash(&session, &outcome).await;
    Ok(Redirect::to(&format!("/syncs/{id}")).into_response())
}
