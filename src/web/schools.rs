//! The Schools screen: list, add, edit, and the schools CSV upload.

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{DistrictAdmin, DistrictScope, set_flash};
use crate::db;
use crate::db::audit::Entry;
use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

#[derive(Template)]
#[template(path = "schools.html")]
struct SchoolsPage {
    chrome: Chrome,
    schools: Vec<db::schools::School>,
    can_edit: bool,
    errors: Vec<String>,
    external_id: String,
    name: String,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
) -> AppResult<Response> {
    let schools =
        db::schools::list(&state.pool, scope.district_id, scope.schools.as_deref()).await?;
    let page = SchoolsPage {
        chrome: chrome(&session, Some(&scope.person), "/schools").await,
        schools,
        can_edit: scope.is_district_admin(),
        errors: Vec::new(),
        external_id: String::new(),
        name: String::new(),
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
pub struct SchoolForm {
    #[serde(default)]
    external_id: String,
    #[serde(default)]
    name: String,
}

fn check(form: &SchoolForm) -> Vec<String> {
    let mut errors = Vec::new();
    if form.external_id.trim().is_empty() {
        errors.push("External ID is required.".to_string());
    } else if form.external_id.trim().chars().count() > 100 {
        errors.push("External ID must be at most 100 characters.".to_string());
    }
    if form.name.trim().is_empty() {
        errors.push("Name is required.".to_string());
    } else if form.name.trim().chars().count() > 200 {
        errors.push("Name must be at most 200 characters.".to_string());
    }
    errors
}

async fn list_with_errors(
    state: &AppState,
    session: &Session,
    scope: &DistrictScope,
    form: &SchoolForm,
    errors: Vec<String>,
) -> AppResult<Response> {
    let schools =
        db::schools::list(&state.pool, scope.district_id, scope.schools.as_deref()).await?;
    let page = SchoolsPage {
        chrome: chrome(session, Some(&scope.person), "/schools").await,
        schools,
        can_edit: true,
        errors,
        external_id: form.external_id.clone(),
        name: form.name.clone(),
    };
    Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<SchoolForm>,
) -> AppResult<Response> {
    let errors = check(&form);
    if !errors.is_empty() {
        return list_with_errors(&state, &session, &scope, &form, errors).await;
    }
    let (ext, name) = (form.external_id.trim(), form.name.trim());
    let mut tx = state.pool.begin().await?;
    let id = match db::schools::insert(&mut *tx, scope.district_id, ext, name).await {
        Ok(id) => id,
        Err(e) => {
            return match db::constraint_message(&e) {
                Some(_) => {
                    let msg = format!(
                        "A school with external ID \"{ext}\" already exists in this district."
                    );
                    list_with_errors(&state, &session, &scope, &form, vec![msg]).await
                }
                None => Err(e.into()),
            };
        }
    };
    let after = serde_json::json!({ "external_id": ext, "name": name });
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "school.create",
            entity_kind: "school",
            entity_id: Some(id),
            run_id: None,
            before: None,
            after: Some(after),
        },
    )
    .await?;
    tx.commit().await?;
    set_flash(&session, "success", format!("School \"{name}\" added.")).await;
    Ok(Redirect::to("/schools").into_response())
}

#[derive(Template)]
#[template(path = "school_edit.html")]
struct EditPage {
    chrome: Chrome,
    id: Uuid,
    external_id: String,
    name: String,
    errors: Vec<String>,
}

pub async fn edit(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let school = db::schools::get(&state.pool, scope.district_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let page = EditPage {
        chrome: chrome(&session, Some(&scope.person), "/schools").await,
        id,
        external_id: school.external_id,
        name: school.name,
        errors: Vec::new(),
    };
    Ok(render(&page)?.into_response())
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
    Form(form): Form<SchoolForm>,
) -> AppResult<Response> {
    let before = db::schools::get(&state.pool, scope.district_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut errors = check(&form);
    let (ext, name) = (form.external_id.trim(), form.name.trim());
    if errors.is_empty() {
        let mut tx = state.pool.begin().await?;
        match db::schools::update(&mut *tx, scope.district_id, id, ext, name).await {
            Ok(_) => {
                db::audit::record(&mut *tx, scope.district_id, &scope.actor(), Entry {
                    action: "school.update",
                    entity_kind: "school",
                    entity_id: Some(id),
                    run_id: None,
                    before: Some(serde_json::json!({ "external_id": before.external_id, "name": before.name })),
                    after: Some(serde_json::json!({ "external_id": ext, "name": name })),
                })
                .await?;
                tx.commit().await?;
                set_flash(&session, "success", format!("School \"{name}\" saved.")).await;
                return Ok(Redirect::to("/schools").into_response());
            }
            Err(e) if db::constraint_message(&e).is_some() => {
                errors.push(format!(
                    "A school with external ID \"{ext}\" already exists in this district."
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let page = EditPage {
        chrome: chrome(&session, Some(&scope.person), "/schools").await,
        id,
        external_id: form.external_id.clone(),
        name: form.name.clone(),
        errors,
    };
    Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
}

/// Read the `file` field of a multipart form, up to `limit` bytes.
pub async fn read_file_field(mut multipart: Multipart, limit: u64) -> AppResult<(String, Vec<u8>)> {
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| super::error::multipart_error(&e, limit / (1024 * 1024)))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("upload.csv").to_string();
        let mut bytes = Vec::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| super::error::multipart_error(&e, limit / (1024 * 1024)))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > limit {
                return Err(AppError::TooLarge(limit / (1024 * 1024)));
            }
        }
        return Ok((name, bytes));
    }
    Err(AppError::BadRequest("choose a file to upload".into()))
}

pub async fn import(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    multipart: Multipart,
) -> AppResult<Response> {
    let (file_name, bytes) = read_file_field(multipart, state.config.max_upload_bytes()).await?;
    match crate::ops::import_schools(&state.pool, scope.district_id, &scope.actor(), &bytes).await?
    {
        Ok(counts) => {
            set_flash(
                &session,
                "success",
                format!(
                    "{file_name}: {} schools added, {} renamed, {} unchanged.",
                    counts.created, counts.updated, counts.unchanged
                ),
            )
            .await;
            Ok(Redirect::to("/schools").into_response())
        }
        Err(errors) => {
            let form = SchoolForm {
                external_id: String::new(),
                name: String::new(),
            };
            let mut all = vec![format!("{file_name} was not imported; nothing changed:")];
            all.extend(errors.into_iter().take(100));
            list_with_errors(&state, &session, &scope, &form, all).await
        }
    }
}
