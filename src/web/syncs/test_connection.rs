//! `POST /syncs/{id}/test`: "Test connection".

use super::load;
use crate::sync::{self, Probe};
use crate::web::AppState;
use crate::web::error::AppResult;
use crate::web::session::{DistrictAdmin, set_flash};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;
use uuid::Uuid;

pub async fn test(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let conn = load(&state, &scope, id).await?;
    let (kind, text) = match sync::test_connection(&state.config, &conn).await {
        Ok(Probe::Complete {
            schools,
            users,
            skipped,
        }) => (
            "success",
            format!(
                "Connection works: {schools} schools and {users} users{}.",
                if skipped > 0 {
                    format!(" ({skipped} guardians, parents or relatives would be skipped)")
                } else {
                    String::new()
                }
            ),
        ),
        Ok(Probe::Unfinished {
            pages,
            records,
            secs,
        }) => (
            "success",
            format!(
                "Connection works: the provider accepted the credentials and sent {records} \
                 records in {pages} pages, but listing everything takes longer than {}; a \
                 sync counts them all.",
                sync::span(secs)
            ),
        ),
        Err(e) => ("error", format!("Connection test failed: {e}")),
    };
    set_flash(&session, kind, text).await;
    Ok(Redirect::to(&format!("/syncs/{id}")).into_response())
}
