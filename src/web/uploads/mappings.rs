//! The district's saved column mappings: `GET /uploads/mappings` (list), `GET
//! /uploads/mappings/{id}` (view and edit), `POST /uploads/mappings/{id}` (save an edit),
//! `POST /uploads/mappings/{id}/delete`. District admins only; every change is audited.

use super::mapper::{FieldOpt, field_options, saved_from_form};
use crate::db;
use crate::db::audit::Entry;
use crate::domain::Field;
use crate::feed::headers::{self, SavedMapping};
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

/// A saved mapping as the pages show it.
pub struct MappingView {
    pub id: Uuid,
    pub saved: SavedMapping,
    pub updated_by: String,
    pub updated_at: String,
}

impl MappingView {
    fn of(row: db::mappings::MappingRow) -> MappingView {
        MappingView {
            id: row.id,
            saved: serde_json::from_value(row.mapping).unwrap_or_default(),
            updated_by: row.updated_by,
            updated_at: crate::web::when::second(Some(row.updated_at)),
        }
    }

    /// The file's columns, as first sent.
    pub fn columns(&self) -> String {
        self.saved
            .columns
            .iter()
            .map(|(h, _)| h.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `Column → Field` pairs in words (ignored columns left out).
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .saved
            .columns
            .iter()
            .filter_map(|(h, f)| f.map(|f| format!("{h} → {}", f.label())))
            .collect();
        parts.extend(
            self.saved
                .fixed
                .iter()
                .map(|(f, v)| format!("{} = {v} for every row", f.label())),
        );
        parts.join("; ")
    }

    /// The field chosen for column `i`, as the select's value.
    pub fn selected(&self, i: &usize) -> &'static str {
        self.saved
            .columns
            .get(*i)
            .and_then(|(_, f)| *f)
            .map_or("ignore", Field::name)
    }

    pub fn fixed(&self, field: Field) -> &str {
        self.saved
            .fixed
            .iter()
            .find(|(f, _)| *f == field)
            .map_or("", |(_, v)| v.as_str())
    }
    pub fn fixed_role(&self) -> &str {
        self.fixed(Field::Role)
    }
    pub fn fixed_school(&self) -> &str {
        self.fixed(Field::SchoolExternalId)
    }
}

#[derive(Template)]
#[template(path = "uploads/mappings.html")]
struct ListPage {
    chrome: Chrome,
    mappings: Vec<MappingView>,
}

#[derive(Template)]
#[template(path = "uploads/mapping.html")]
struct ShowPage {
    chrome: Chrome,
    m: MappingView,
    fields: Vec<FieldOpt>,
    roles: Vec<&'static str>,
    schools: Vec<db::schools::School>,
    /// A fixed school the district does not have (kept as it is unless changed).
    unknown_school: Option<String>,
    error: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
) -> AppResult<Response> {
    let mappings = db::mappings::list(&state.pool, scope.district_id)
        .await?
        .into_iter()
        .map(MappingView::of)
        .collect();
    let page = ListPage {
        chrome: chrome(&session, Some(&scope.person), "/uploads").await,
        mappings,
    };
    Ok(render(&page)?.into_response())
}

async fn load(state: &AppState, scope: &DistrictScope, id: Uuid) -> AppResult<MappingView> {
    db::mappings::get(&state.pool, scope.district_id, id)
        .await?
        .map(MappingView::of)
        .ok_or(AppError::NotFound)
}

async fn show_page(
    state: &AppState,
    session: &Session,
    scope: &DistrictScope,
    m: MappingView,
    error: Option<String>,
) -> AppResult<Response> {
    let schools = db::schools::list(&state.pool, scope.district_id, None).await?;
    let fixed = m.fixed_school();
    let unknown_school = (!fixed.is_empty() && !schools.iter().any(|s| s.external_id == fixed))
        .then(|| fixed.to_string());
    let page = ShowPage {
        chrome: chrome(session, Some(&scope.person), "/uploads").await,
        m,
        fields: field_options(),
        roles: crate::domain::Role::ALL.map(|r| r.as_str()).to_vec(),
        schools,
        unknown_school,
        error,
    };
    Ok(render(&page)?.into_response())
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let m = load(&state, &scope, id).await?;
    show_page(&state, &session, &scope, m, None).await
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let mut m = load(&state, &scope, id).await?;
    let headers: Vec<String> = m.saved.columns.iter().map(|(h, _)| h.clone()).collect();
    let edited = saved_from_form(&headers, &form);
    // The edit must still cover the required fields (as the mapper checks).
    if let Err(e) = headers::resolve(&headers, Some(&edited), &[], &[]) {
        m.saved = edited;
        return show_page(
            &state,
            &session,
            &scope,
            m,
            Some(format!("Not saved: {e}.")),
        )
        .await;
    }
    let before = serde_json::to_value(&m.saved).map_err(|e| AppError::Internal(e.into()))?;
    let after = serde_json::to_value(&edited).map_err(|e| AppError::Internal(e.into()))?;
    let mut tx = state.pool.begin().await?;
    if !db::mappings::update(
        &mut *tx,
        scope.district_id,
        id,
        &after,
        &scope.actor().label,
    )
    .await?
    {
        return Err(AppError::NotFound);
    }
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "mapping.update",
            entity_kind: "mapping",
            entity_id: Some(id),
            run_id: None,
            before: Some(before),
            after: Some(after),
        },
    )
    .await?;
    tx.commit().await?;
    set_flash(&session, "success", "Column mapping saved.").await;
    Ok(Redirect::to(&format!("/uploads/mappings/{id}")).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let m = load(&state, &scope, id).await?;
    let before = serde_json::to_value(&m.saved).map_err(|e| AppError::Internal(e.into()))?;
    let mut tx = state.pool.begin().await?;
    if !db::mappings::delete(&mut *tx, scope.district_id, id).await? {
        return Err(AppError::NotFound);
    }
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "mapping.delete",
            entity_kind: "mapping",
            entity_id: Some(id),
            run_id: None,
            before: Some(before),
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    set_flash(
        &session,
        "success",
        "Column mapping deleted: the next file with these columns goes to the mapper again.",
    )
    .await;
    Ok(Redirect::to("/uploads/mappings").into_response())
}
