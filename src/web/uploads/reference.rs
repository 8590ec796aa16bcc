//! `GET /uploads/template.csv` (the user CSV's template) and `GET /uploads/fields` (the
//! field reference), both built by `feed::reference` from the importer's own tables.

use crate::db;
use crate::feed::reference::{self, FieldDoc};
use crate::web::AppState;
use crate::web::error::AppResult;
use crate::web::page::{Chrome, chrome, render};
use crate::web::session::DistrictScope;
use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

/// The school the template's example rows name when the admin has none yet.
const PLACEHOLDER_SCHOOL: &str = "SCHOOL-1";

#[derive(Template)]
#[template(path = "uploads/fields.html")]
struct FieldsPage {
    chrome: Chrome,
    fields: Vec<FieldDoc>,
    schools: Vec<db::schools::School>,
    district_admin: bool,
}

/// The field reference: every column, required or not, synonyms, accepted values, and the
/// admin's schools (the values of `school_external_id`).
pub async fn fields(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
) -> AppResult<Response> {
    let schools =
        db::schools::list(&state.pool, scope.district_id, scope.schools.as_deref()).await?;
    let page = FieldsPage {
        chrome: chrome(&session, Some(&scope.person), "/uploads").await,
        fields: reference::fields(),
        schools,
        district_admin: scope.is_district_admin(),
    };
    Ok(render(&page)?.into_response())
}

/// The template: the canonical header and two example rows at the admin's first school, so
/// it imports as it is.
pub async fn template(State(state): State<AppState>, scope: DistrictScope) -> AppResult<Response> {
    let schools =
        db::schools::list(&state.pool, scope.district_id, scope.schools.as_deref()).await?;
    let school = schools
        .first()
        .map_or(PLACEHOLDER_SCHOOL, |s| s.external_id.as_str());
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", reference::TEMPLATE_NAME),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        reference::template_csv(school),
    )
        .into_response())
}
