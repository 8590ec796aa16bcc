//! The column-header mapper: `GET`/`POST /uploads/{id}/map`.

use super::{RunView, load};
use crate::db;
use crate::db::audit::Entry;
use crate::domain::Field;
use crate::domain::RunStatus;
use crate::feed::headers::{self, SavedMapping};
use crate::intake;
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::page::{Chrome, chrome, render};
use crate::web::session::{DistrictAdmin, DistrictScope, set_flash};
use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use tower_sessions::Session;
use uuid::Uuid;

pub struct MapColumn {
    pub index: usize,
    pub header: String,
    pub selected: String,
    pub samples: Vec<String>,
}

#[derive(Template)]
#[template(path = "mapper.html")]
struct MapperPage {
    chrome: Chrome,
    view: RunView,
    columns: Vec<MapColumn>,
    fields: Vec<&'static str>,
    fixed_role: String,
    fixed_school: String,
    schools: Vec<db::schools::School>,
    error: Option<String>,
}

pub async fn map_form(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let run = load(&state, scope.district_id, id).await?;
    mapper(&state, &session, &scope, run, None, None).await
}

async fn mapper(
    state: &AppState,
    session: &Session,
    scope: &DistrictScope,
    run: db::runs::Run,
    error: Option<String>,
    form: Option<&HashMap<String, String>>,
) -> AppResult<Response> {
    if run.status != RunStatus::NeedsMapping {
        return Ok(Redirect::to(&format!("/uploads/{}", run.id)).into_response());
    }
    let path = run
        .file_path
        .clone()
        .map(std::path::PathBuf::from)
        .ok_or(AppError::NotFound)?;
    let max = state.config.max_upload_bytes();
    let p = path.clone();
    let (headers, samples) = tokio::task::spawn_blocking(move || {
        (
            intake::file_headers(&p, max).unwrap_or_default(),
            intake::sample_rows(&p, max, 3),
        )
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    let saved =
        crate::reconcile::mapping::saved_mapping(&state.pool, scope.district_id, &headers).await?;
    let mut proposed = headers::propose(&headers);
    if let Some(saved) = &saved {
        for (name, field) in &saved.columns {
            if let Some(i) = headers
                .iter()
                .position(|h| headers::fold(h) == headers::fold(name))
            {
                proposed[i] = *field;
            }
        }
    }
    let columns = headers
        .iter()
        .enumerate()
        .map(|(i, h)| MapColumn {
            index: i,
            header: h.clone(),
            selected: form
                .and_then(|f| f.get(&format!("col{i}")).cloned())
                .unwrap_or_else(|| {
                    proposed[i]
                        .map(|f| f.name().to_string())
                        .unwrap_or_else(|| "ignore".into())
                }),
            samples: samples
                .iter()
                .filter_map(|r| r.get(i).cloned())
                .filter(|v| !v.trim().is_empty())
                .collect(),
        })
        .collect();
    let page = MapperPage {
        chrome: chrome(session, Some(&scope.person), "/uploads").await,
        view: RunView { run },
        columns,
        fields: Field::ALL.iter().map(|f| f.name()).collect(),
        fixed_role: form
            .and_then(|f| f.get("fixed_role").cloned())
            .unwrap_or_default(),
        fixed_school: form
            .and_then(|f| f.get("fixed_school").cloned())
            .unwrap_or_default(),
        schools: db::schools::list(&state.pool, scope.district_id, None).await?,
        error,
    };
    Ok(render(&page)?.into_response())
}

pub async fn map_save(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let run = load(&state, scope.district_id, id).await?;
    if run.status != RunStatus::NeedsMapping {
        return Err(AppError::Conflict(
            "this upload does not need a mapping any more".into(),
        ));
    }
    let path = run
        .file_path
        .clone()
        .map(std::path::PathBuf::from)
        .ok_or(AppError::NotFound)?;
    let max = state.config.max_upload_bytes();
    let headers =
        tokio::task::spawn_blocking(move || intake::file_headers(&path, max).unwrap_or_default())
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
    let mut columns = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let choice = form
            .get(&format!("col{i}"))
            .map(String::as_str)
            .unwrap_or("ignore");
        columns.push((h.clone(), Field::from_name(choice)));
    }
    let mut fixed = Vec::new();
    if let Some(role) = form.get("fixed_role").filter(|v| !v.trim().is_empty()) {
        fixed.push((Field::Role, role.trim().to_string()));
    }
    if let Some(school) = form.get("fixed_school").filter(|v| !v.trim().is_empty()) {
        fixed.push((Field::SchoolExternalId, school.trim().to_string()));
    }
    let saved = SavedMapping { columns, fixed };
    // The mapping must cover the required fields before it is saved.
    if let Err(e) = headers::resolve(&headers, Some(&saved), &[], &[]) {
        return mapper(
            &state,
            &session,
            &scope,
            run,
            Some(format!("Not saved: {e}.")),
            Some(&form),
        )
        .await;
    }
    let signature = headers::signature(&headers);
    let value = serde_json::to_value(&saved).map_err(|e| AppError::Internal(e.into()))?;
    let mut tx = state.pool.begin().await?;
    db::runs::save_mapping(
        &mut *tx,
        scope.district_id,
        &signature,
        &value,
        &scope.actor().label,
    )
    .await?;
    db::runs::set_status(
        &mut *tx,
        scope.district_id,
        id,
        RunStatus::NeedsMapping,
        RunStatus::Queued,
    )
    .await?;
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "mapping.save",
            entity_kind: "run",
            entity_id: Some(id),
            run_id: Some(id),
            before: None,
            after: Some(value),
        },
    )
    .await?;
    tx.commit().await?;
    state.queue.notify.notify_waiters();
    set_flash(
        &session,
        "success",
        "Mapping saved for this district; the upload is queued.",
    )
    .await;
    Ok(Redirect::to(&format!("/uploads/{id}")).into_response())
}
