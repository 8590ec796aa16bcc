//! `POST /syncs/{id}/delete`: delete a connection; its users are kept and released.

use super::{audit, load};
use crate::db;
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::session::{DistrictAdmin, set_flash};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;
use uuid::Uuid;

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let conn = load(&state, &scope, id).await?;
    let mut tx = state.pool.begin().await?;
    db::reconcile::lock_district(&mut tx, scope.district_id).await?;
    let Some(released) = db::syncs::delete(&mut tx, scope.district_id, id, &scope.actor()).await?
    else {
        return Err(AppError::NotFound);
    };
    audit(
        &mut tx,
        &scope,
        id,
        "sync.delete",
        serde_json::json!({ "name": conn.name, "users_released": released }),
    )
    .await?;
    tx.commit().await?;
    set_flash(
        &session,
        "success",
        format!(
            "Connection \"{}\" deleted. Its {released} users were kept and are now managed by hand (a file or another sync may take them over).",
            conn.name
        ),
    )
    .await;
    Ok(Redirect::to("/syncs").into_response())
}
