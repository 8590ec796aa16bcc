//! The operator's pages: list and create districts.

use super::AppState;
use super::error::AppResult;
use super::page::{Chrome, chrome, render};
use super::session::OperatorUser;
use crate::db;
use crate::ops;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

#[derive(Template)]
#[template(path = "districts.html")]
struct DistrictsPage {
    chrome: Chrome,
    districts: Vec<db::districts::DistrictSummary>,
    error: Option<String>,
    created: Option<(String, String, String)>,
    form: DistrictForm,
}

#[derive(Deserialize, Default, Clone)]
pub struct DistrictForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    admin_email: String,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    op: OperatorUser,
) -> AppResult<Response> {
    let page = DistrictsPage {
        chrome: chrome(&session, Some(&op.person), "/districts").await,
        districts: db::districts::list(&state.pool).await?,
        error: None,
        created: None,
        form: DistrictForm::default(),
    };
    Ok(render(&page)?.into_response())
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    op: OperatorUser,
    Form(form): Form<DistrictForm>,
) -> AppResult<Response> {
    let result = ops::create_district(
        &state.pool,
        &state.clock,
        &op.person.actor(),
        &form.name,
        &form.slug,
        &form.admin_email,
        None,
    )
    .await;
    let (status, error, created, form) = match result {
        Ok(c) => (
            StatusCode::OK,
            None,
            Some((
                c.district.name,
                form.admin_email.trim().to_lowercase(),
                c.temporary_password.unwrap_or_default(),
            )),
            DistrictForm::default(),
        ),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(format!("Not created: {e}.")),
            None,
            form,
        ),
    };
    let page = DistrictsPage {
        chrome: chrome(&session, Some(&op.person), "/districts").await,
        districts: db::districts::list(&state.pool).await?,
        error,
        created,
        form,
    };
    Ok((status, render(&page)?).into_response())
}
