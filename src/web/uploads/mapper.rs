//! The column-header mapper: `GET`/`POST /uploads/{id}/map`.

use super::{RunView, load};
use crate::db;
use crate::db::audit::Entry;
use crate::domain::Field;
use crate::domain::RunStatus;
use crate::feed::headers::{self, SavedMapping};
use crate::feed::preview::{self, Preview};
use crate::intake;
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::page::{Chrome, chrome, render};
use crate::web::session::{DistrictAdmin, DistrictScope, set_flash};
use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::{HashMap, HashSet};
use tower_sessions::Session;
use uuid::Uuid;

pub struct MapColumn {
    pub index: usize,
    pub header: String,
    pub selected: String,
    pub samples: Vec<String>,
}

/// A field as the selects offer it: its name (the value sent) and its label in words.
pub struct FieldOpt {
    pub value: &'static str,
    pub label: &'static str,
}

/// Every field, for a column's select.
pub fn field_options() -> Vec<FieldOpt> {
    Field::ALL
        .iter()
        .map(|f| FieldOpt {
            value: f.name(),
            label: f.label(),
        })
        .collect()
}

/// The mapping a mapper form describes for `headers`: `col{i}` per column (a field name or
/// `ignore`), and the fixed role and school.
pub fn saved_from_form(headers: &[String], form: &HashMap<String, String>) -> SavedMapping {
    let columns = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let choice = form
                .get(&format!("col{i}"))
                .map(String::as_str)
                .unwrap_or("ignore");
            (h.clone(), Field::from_name(choice))
        })
        .collect();
    let mut fixed = Vec::new();
    if let Some(role) = form.get("fixed_role").filter(|v| !v.trim().is_empty()) {
        fixed.push((Field::Role, role.trim().to_string()));
    }
    if let Some(school) = form.get("fixed_school").filter(|v| !v.trim().is_empty()) {
        fixed.push((Field::SchoolExternalId, school.trim().to_string()));
    }
    SavedMapping { columns, fixed }
}

#[derive(Template)]
#[template(path = "mapper.html")]
struct MapperPage {
    chrome: Chrome,
    view: RunView,
    columns: Vec<MapColumn>,
    fields: Vec<FieldOpt>,
    required: String,
    fixed_role: String,
    fixed_school: String,
    schools: Vec<db::schools::School>,
    error: Option<String>,
    /// The first rows as the mapping shown reads them; `Err` says why there is none.
    preview: Result<Preview, String>,
    preview_rows: usize,
}

/// The required fields in words, from the importer's own list.
fn required_words() -> String {
    let all: Vec<&str> = headers::REQUIRED.iter().map(|f| f.label()).collect();
    let either: Vec<&str> = headers::ONE_OF_REQUIRED.iter().map(|f| f.label()).collect();
    format!("{}, and {}", all.join(", "), either.join(" or "))
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
    let (headers, records) = tokio::task::spawn_blocking(move || {
        (
            intake::file_headers(&p, max).unwrap_or_default(),
            intake::sample_records(&p, max, preview::ROWS),
        )
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    let samples: Vec<&Vec<String>> = records.iter().take(3).map(|r| &r.fields).collect();
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
        .collect::<Vec<MapColumn>>();
    let fixed_role = form
        .and_then(|f| f.get("fixed_role").cloned())
        .unwrap_or_default();
    let fixed_school = form
        .and_then(|f| f.get("fixed_school").cloned())
        .unwrap_or_default();
    let schools = db::schools::list(&state.pool, scope.district_id, None).await?;
    // The preview reads the first rows through the mapping as shown (the choices on the
    // page), with the importer's own checks.
    let mut shown: HashMap<String, String> = columns
        .iter()
        .map(|c| (format!("col{}", c.index), c.selected.clone()))
        .collect();
    shown.insert("fixed_role".into(), fixed_role.clone());
    shown.insert("fixed_school".into(), fixed_school.clone());
    let known: HashSet<String> = schools.iter().map(|s| s.external_id.clone()).collect();
    let preview = headers::resolve(&headers, Some(&saved_from_form(&headers, &shown)), &[], &[])
        .map(|mapping| preview::preview(&headers, &mapping, &known, &records))
        .map_err(|e| e.to_string());
    let page = MapperPage {
        chrome: chrome(session, Some(&scope.person), "/uploads").await,
        view: RunView { run },
        columns,
        fields: field_options(),
        required: required_words(),
        fixed_role,
        fixed_school,
        schools,
        error,
        preview,
        preview_rows: preview::ROWS,
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
    // "Preview": the same page with the first rows read through the choices; nothing saved.
    if form.get("action").map(String::as_str) == Some("preview") {
        return mapper(&state, &session, &scope, run, None, Some(&form)).await;
    }
    let saved = saved_from_form(&headers, &form);
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
