//! District settings (district admins only): the district's external ID and time zone, the
//! mass-change guard and API tokens.

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{DistrictAdmin, set_flash};
use crate::crypto::{SecretKey, expose};
use crate::db;
use crate::db::audit::Entry;
use crate::domain::zone::Zone;
use crate::ops;
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    district: db::districts::District,
    tokens: Vec<db::tokens::TokenRow>,
    new_token: Option<String>,
    /// Every time zone the district may choose, its own first selected.
    zones: Vec<String>,
}

async fn page(
    state: &AppState,
    session: &Session,
    scope: &super::session::DistrictScope,
    new_token: Option<String>,
) -> AppResult<Response> {
    let district = db::districts::by_id(&state.pool, scope.district_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let page = SettingsPage {
        chrome: chrome(session, Some(&scope.person), "/settings").await,
        district,
        tokens: db::tokens::list(&state.pool, scope.district_id).await?,
        new_token,
        zones: Zone::names(),
    };
    Ok(render(&page)?.into_response())
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
) -> AppResult<Response> {
    let waiting: Option<(Uuid, Vec<u8>)> = session.remove(NEW_TOKEN).await.ok().flatten();
    let new_token = match waiting {
        Some((tag, sealed)) => Some(
            SecretKey::from_config(&state.config)?
                .open(&sealed, scope.district_id, tag)
                .map(|t| expose(&t).to_string())?,
        ),
        None => None,
    };
    page(&state, &session, &scope, new_token).await
}

#[derive(Deserialize)]
pub struct GuardForm {
    archive_pct: f64,
    archive_min: i32,
    update_pct: f64,
    /// Per-school guard; absent keeps the current value.
    #[serde(default)]
    school_pct: Option<f64>,
    #[serde(default)]
    school_min: Option<i32>,
}

pub async fn guard(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<GuardForm>,
) -> AppResult<Response> {
    let before = db::districts::by_id(&state.pool, scope.district_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let guard = db::districts::Guard {
        archive_pct: form.archive_pct,
        archive_min: form.archive_min,
        update_pct: form.update_pct,
        school_pct: form.school_pct.unwrap_or(before.guard_school_pct),
        school_min: form.school_min.unwrap_or(before.guard_school_min),
    };
    let ok = [guard.archive_pct, guard.update_pct, guard.school_pct]
        .iter()
        .all(|p| (0.0..=100.0).contains(p))
        && guard.archive_min >= 0
        && guard.school_min >= 0;
    if !ok {
        return Err(AppError::Unprocessable(
            "percentages must be between 0 and 100 and the minimums at least 0".into(),
        ));
    }
    let mut tx = state.pool.begin().await?;
    db::districts::update_guard(&mut *tx, scope.district_id, &guard).await?;
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "district.guard",
            entity_kind: "district",
            entity_id: Some(scope.district_id),
            run_id: None,
            before: Some(serde_json::json!({
                "archive_pct": before.guard_archive_pct, "archive_min": before.guard_archive_min,
                "update_pct": before.guard_update_pct, "school_pct": before.guard_school_pct,
                "school_min": before.guard_school_min,
            })),
            after: Some(serde_json::json!({
                "archive_pct": guard.archive_pct, "archive_min": guard.archive_min,
                "update_pct": guard.update_pct, "school_pct": guard.school_pct,
                "school_min": guard.school_min,
            })),
        },
    )
    .await?;
    tx.commit().await?;
    set_flash(&session, "success", "Mass-change guard saved.").await;
    Ok(Redirect::to("/settings").into_response())
}

#[derive(Deserialize)]
pub struct IdentityForm {
    #[serde(default)]
    external_id: String,
    #[serde(default)]
    time_zone: String,
}

/// `POST /settings/district`: the district's own external ID (issue 16, item 7: a file row
/// whose school column holds it is a district-level user) and its time zone (item 10).
pub async fn identity(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<IdentityForm>,
) -> AppResult<Response> {
    let before = db::districts::by_id(&state.pool, scope.district_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let schools: Vec<String> = db::schools::external_ids(&state.pool, scope.district_id)
        .await?
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    let external_id = crate::domain::district::check_external_id(&form.external_id, &schools)
        .map_err(AppError::Unprocessable)?;
    let zone = Zone::parse(&form.time_zone).ok_or_else(|| {
        AppError::Unprocessable(format!(
            "\"{}\" is not a time zone name (choose one such as America/Chicago)",
            form.time_zone.trim()
        ))
    })?;
    if before.external_id == external_id && before.time_zone == zone.name() {
        set_flash(&session, "info", "Nothing changed.").await;
        return Ok(Redirect::to("/settings").into_response());
    }
    let mut tx = state.pool.begin().await?;
    db::districts::update_identity(
        &mut *tx,
        scope.district_id,
        external_id.as_deref(),
        zone.name(),
    )
    .await?;
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "district.identity",
            entity_kind: "district",
            entity_id: Some(scope.district_id),
            run_id: None,
            before: Some(serde_json::json!({
                "external_id": before.external_id, "time_zone": before.time_zone,
            })),
            after: Some(serde_json::json!({
                "external_id": external_id, "time_zone": zone.name(),
            })),
        },
    )
    .await?;
    tx.commit().await?;
    set_flash(&session, "success", "District settings saved.").await;
    Ok(Redirect::to("/settings").into_response())
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
}

pub async fn create_token(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<TokenForm>,
) -> AppResult<Response> {
    if form.name.trim().is_empty() {
        set_flash(
            &session,
            "error",
            "Name the token after the script that uses it (e.g. nightly SIS export).",
        )
        .await;
        return Ok(Redirect::to("/settings").into_response());
    }
    let secret =
        ops::create_token(&state.pool, scope.district_id, &form.name, &scope.actor()).await?;
    // Post/redirect/get: the secret waits in the session for the one page view that shows
    // it, so refreshing the page neither mints a second token nor shows this one again. It
    // waits sealed with the installation's key: the sessions table never holds a token.
    let tag = Uuid::new_v4();
    let sealed = SecretKey::from_config(&state.config)?.seal(&secret, scope.district_id, tag);
    let _ = session.insert(NEW_TOKEN, (tag, sealed)).await;
    Ok(Redirect::to("/settings").into_response())
}

/// Session key of a token just created, shown once by the next settings page.
const NEW_TOKEN: &str = "new_api_token";

pub async fn revoke_token(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    if !db::tokens::revoke(&mut *tx, scope.district_id, id).await? {
        return Err(AppError::NotFound);
    }
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "token.revoke",
            entity_kind: "token",
            entity_id: Some(id),
            run_id: None,
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    set_flash(&session, "success", "Token revoked.").await;
    Ok(Redirect::to("/settings").into_response())
}
