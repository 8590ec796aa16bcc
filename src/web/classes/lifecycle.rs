//! `POST /classes/{id}/state`: archive a class, or restore a wrongly archived one in one
//! action — with its archived students too when asked (issue 16, "Done when"). Audited; a
//! school admin, for the classes of their schools only.

use crate::db;
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::session::{DistrictScope, set_flash};
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

#[derive(Deserialize)]
pub struct StateForm {
    /// `yes` to archive, `no` to restore: repeating a click changes nothing.
    archived: String,
    /// `1`: restoring, also restore the class's archived students.
    students: Option<String>,
}

pub async fn set_state(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Path(id): Path<String>,
    Form(form): Form<StateForm>,
) -> AppResult<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| AppError::NotFound)?;
    let schools = scope.schools.as_deref();
    let class = db::classes::get(&state.pool, scope.district_id, id, schools)
        .await?
        .ok_or(AppError::NotFound)?;
    let archive = match form.archived.trim() {
        "yes" => true,
        "no" => false,
        _ => return Err(AppError::BadRequest("archived must be yes or no".into())),
    };
    let with_students = !archive && form.students.as_deref().map(str::trim) == Some("1");
    let actor = scope.actor();
    let at = archive.then(|| state.clock.now());
    let mut tx = state.pool.begin().await?;
    let changed =
        db::bulk::set_class_archived(&mut tx, scope.district_id, class.id, schools, at, &actor)
            .await?;
    let students = if with_students {
        db::bulk::restore_class_students(&mut tx, scope.district_id, class.id, schools, &actor)
            .await?
    } else {
        0
    };
    tx.commit().await?;
    if students > 0 {
        crate::web::users::list_changed(scope.district_id);
    }
    tracing::info!(district = %scope.district_id, class = %class.id, archive, changed, students, "class archive state");
    let msg = match (archive, changed) {
        (true, true) => format!("{} is archived.", class.title),
        (true, false) => format!("{} was already archived.", class.title),
        (false, _) => {
            let mut m = if changed {
                format!("{} is restored.", class.title)
            } else {
                format!("{} is not archived.", class.title)
            };
            if with_students {
                m.push_str(&format!(
                    " Students restored with it: {}.",
                    crate::domain::bulk::users(students)
                ));
            }
            m
        }
    };
    set_flash(&session, "success", msg).await;
    Ok(Redirect::to(&format!("/classes/{}", class.id)).into_response())
}
