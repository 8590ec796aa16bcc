//! `POST /syncs/{id}/run`: "Sync now".

use super::{audit, enqueued_flash, load};
use crate::domain::ActorKind;
use crate::sync::{self, Enqueued, Kind};
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::session::DistrictAdmin;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;
use uuid::Uuid;

pub async fn run_now(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let conn = load(&state, &scope, id).await?;
    if conn.kind == Kind::OneRosterCsv.as_str() {
        return Err(AppError::BadRequest(
            "a OneRoster CSV connection syncs when a set is uploaded".into(),
        ));
    }
    let outcome = sync::enqueue(
        &state.pool,
        &conn,
        ActorKind::User,
        &scope.actor().label,
        None,
    )
    .await?;
    if let Enqueued::Run(run) = outcome {
        let mut tx = state.pool.begin().await?;
        audit(
            &mut tx,
            &scope,
            id,
            "sync.run",
            serde_json::json!({ "run": run }),
        )
        .await?;
        tx.commit().await?;
        state.queue.notify.notify_waiters();
    }
    enqueued_flash(&session, &outcome).await;
    Ok(Redirect::to(&format!("/syncs/{id}")).into_response())
}
