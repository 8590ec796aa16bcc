//! `GET /syncs/{id}`: a connection's page with its recent runs.

use super::{Row, RunRow, load};
use crate::db;
use crate::db::syncs::Connection;
use crate::web::AppState;
use crate::web::error::AppResult;
use crate::web::page::{Chrome, chrome, render};
use crate::web::session::{DistrictAdmin, DistrictScope};
use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;
use uuid::Uuid;

#[derive(Template)]
#[template(path = "sync.html")]
struct DetailPage {
    chrome: Chrome,
    c: Row,
    runs: Vec<RunRow>,
    errors: Vec<String>,
    /// The clock's date (UTC), the "Pause until" field's lower bound.
    today: String,
}

pub(super) async fn detail_page(
    state: &AppState,
    session: &Session,
    scope: &DistrictScope,
    conn: &Connection,
    errors: Vec<String>,
) -> AppResult<Response> {
    let source = crate::domain::Source::Sync(conn.id).to_db();
    let runs = db::syncs::recent_runs(&state.pool, scope.district_id, Some(&source), 20).await?;
    let names = db::syncs::names(&state.pool, scope.district_id).await?;
    let status = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = DetailPage {
        chrome: chrome(session, Some(&scope.person), "/syncs").await,
        c: Row::from(conn),
        runs: runs.iter().map(|r| RunRow::of(r, &names)).collect(),
        errors,
        today: state.clock.now().date().to_string(),
    };
    Ok((status, render(&page)?).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let conn = load(&state, &scope, id).await?;
    detail_page(&state, &session, &scope, &conn, Vec::new()).await
}
