//! `GET /syncs`: the connections with their health, recent sync runs, and the new-connection form.

use super::{NewForm, Row, RunRow};
use crate::db;
use crate::sync::Kind;
use crate::web::AppState;
use crate::web::error::AppResult;
use crate::web::page::{Chrome, chrome, render};
use crate::web::session::{DistrictAdmin, DistrictScope};
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

#[derive(Template)]
#[template(path = "syncs.html")]
struct ListPage {
    chrome: Chrome,
    connections: Vec<Row>,
    runs: Vec<RunRow>,
    errors: Vec<String>,
    form: NewForm,
    kinds: Vec<(&'static str, &'static str)>,
}

pub(super) async fn list_page(
    state: &AppState,
    session: &Session,
    scope: &DistrictScope,
    form: NewForm,
    errors: Vec<String>,
) -> AppResult<Response> {
    let connections = db::syncs::list(&state.pool, scope.district_id).await?;
    let health = db::home::connection_health(&state.pool, scope.district_id).await?;
    let runs = db::syncs::recent_runs(&state.pool, scope.district_id, None, 20).await?;
    let names = db::syncs::names(&state.pool, scope.district_id).await?;
    let status = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = ListPage {
        chrome: chrome(session, Some(&scope.person), "/syncs").await,
        connections: connections
            .iter()
            .map(|c| Row::from(c).with_health(health.iter().find(|h| h.id == c.id)))
            .collect(),
        runs: runs.iter().map(|r| RunRow::of(r, &names)).collect(),
        errors,
        form: NewForm {
            secret: String::new(),
            ..form
        },
        kinds: Kind::ALL.iter().map(|k| (k.as_str(), k.label())).collect(),
    };
    Ok((status, render(&page)?).into_response())
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
) -> AppResult<Response> {
    let form = NewForm {
        kind: Kind::OneRosterRest.as_str().into(),
        interval_hours: "6".into(),
        ..Default::default()
    };
    list_page(&state, &session, &scope, form, Vec::new()).await
}
