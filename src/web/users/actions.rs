//! The account lifecycle's buttons: Active ⇄ Inactive, archive, restore, password reset.
//! Each asks for confirmation in the browser (`data-confirm`), checks the admin's rights,
//! and writes an audit entry with the changed fields only.

use super::view::PasswordShown;
use super::{cache, can_manage, display_name, is_self, load, safe_back};
use crate::auth;
use crate::db;
use crate::db::audit::Entry;
use crate::db::user_edit::UserRecord;
use crate::domain::UserStatus;
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::page::{chrome, render};
use crate::web::session::{DistrictScope, set_flash};
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

/// The user, if this admin may change them.
async fn manageable(state: &AppState, scope: &DistrictScope, guid: &str) -> AppResult<UserRecord> {
    let user = load(state, scope, guid).await?;
    if !can_manage(scope, &user) {
        return Err(AppError::Forbidden);
    }
    Ok(user)
}

fn name_of(u: &UserRecord) -> String {
    display_name(&u.first_name, &u.last_name, &u.username)
}

#[derive(Deserialize)]
pub struct StatusForm {
    /// The status to set (`active` or `inactive`): repeating a click changes nothing.
    status: String,
    back: Option<String>,
}

pub async fn status(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Path(guid): Path<String>,
    Form(form): Form<StatusForm>,
) -> AppResult<Response> {
    let user = manageable(&state, &scope, &guid).await?;
    let Some(to) = UserStatus::from_text(&form.status) else {
        return Err(AppError::BadRequest(
            "status must be active or inactive".into(),
        ));
    };
    if user.archived_at.is_some() {
        return Err(AppError::Conflict(
            "This user is archived. Restore them first.".into(),
        ));
    }
    if to == UserStatus::Inactive && is_self(&scope, &user) {
        return Err(AppError::Conflict(
            "You cannot make your own account inactive.".into(),
        ));
    }
    let name = name_of(&user);
    let mut tx = state.pool.begin().await?;
    if db::user_edit::set_status(&mut *tx, scope.district_id, user.id, to).await? {
        let old = match to {
            UserStatus::Active => UserStatus::Inactive,
            UserStatus::Inactive => UserStatus::Active,
        };
        db::audit::record(
            &mut *tx,
            scope.district_id,
            &scope.actor(),
            Entry {
                action: if to == UserStatus::Active {
                    "user.activate"
                } else {
                    "user.deactivate"
                },
                entity_kind: "user",
                entity_id: Some(user.id),
                run_id: None,
                before: Some(json!({ "status": old.label() })),
                after: Some(json!({ "status": to.label() })),
            },
        )
        .await?;
        tx.commit().await?;
        cache::forget(scope.district_id);
        tracing::info!(district = %scope.district_id, user = %user.id, status = to.as_str(), "user status changed");
    }
    let msg = if to == UserStatus::Active {
        format!("{name} is active and can sign in.")
    } else {
        format!("{name} is inactive: signed out and unable to sign in.")
    };
    set_flash(&session, "success", msg).await;
    let back = safe_back(form.back.as_deref(), format!("/users/{}", user.id));
    Ok(Redirect::to(&back).into_response())
}

pub async fn archive(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Path(guid): Path<String>,
) -> AppResult<Response> {
    set_archived(state, session, scope, guid, true).await
}

pub async fn restore(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Path(guid): Path<String>,
) -> AppResult<Response> {
    set_archived(state, session, scope, guid, false).await
}

async fn set_archived(
    state: AppState,
    session: Session,
    scope: DistrictScope,
    guid: String,
    archive: bool,
) -> AppResult<Response> {
    let user = manageable(&state, &scope, &guid).await?;
    if archive && is_self(&scope, &user) {
        return Err(AppError::Conflict(
            "You cannot archive your own account.".into(),
        ));
    }
    let mut tx = state.pool.begin().await?;
    let at = archive.then(|| state.clock.now());
    if db::user_edit::set_archived(&mut *tx, scope.district_id, user.id, at).await? {
        db::audit::record(
            &mut *tx,
            scope.district_id,
            &scope.actor(),
            Entry {
                action: if archive {
                    "user.archive"
                } else {
                    "user.restore"
                },
                entity_kind: "user",
                entity_id: Some(user.id),
                run_id: None,
                before: Some(json!({ "archived": !archive })),
                after: Some(json!({ "archived": archive })),
            },
        )
        .await?;
        tx.commit().await?;
        cache::forget(scope.district_id);
        tracing::info!(district = %scope.district_id, user = %user.id, archive, "user archive state changed");
    }
    // Archived, the user's page says so in its standing notice: a flash saying it again
    // would show the same news twice (one banner per page).
    if !archive {
        set_flash(
            &session,
            "success",
            format!("{} is restored.", name_of(&user)),
        )
        .await;
    }
    Ok(Redirect::to(&format!("/users/{}", user.id)).into_response())
}

/// Issue a user a new temporary password inside `tx` and return it (for the caller to show
/// once): stored hashed as temporary — it works once, must be changed at that sign-in, and
/// expires unused after `TEMP_PASSWORD_DAYS` — which ends the account's sessions; audited as
/// `user.password_reset` by `actor` with `after`. The admin's reset and a teacher's
/// (`web::teaching`) both come here.
pub(crate) async fn issue_temporary_password(
    tx: &mut sqlx::PgConnection,
    state: &AppState,
    district_id: uuid::Uuid,
    user_id: uuid::Uuid,
    actor: &db::audit::Actor,
    after: serde_json::Value,
) -> AppResult<String> {
    let secret = auth::generate_temporary();
    let to_hash = secret.clone();
    let hash = tokio::task::spawn_blocking(move || auth::hash_temporary(&to_hash))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    db::users::set_password(
        &mut *tx,
        district_id,
        user_id,
        &hash,
        true,
        state.clock.now(),
    )
    .await?
    .ok_or(AppError::NotFound)?;
    db::audit::record(
        &mut *tx,
        district_id,
        actor,
        Entry {
            action: "user.password_reset",
            entity_kind: "user",
            entity_id: Some(user_id),
            run_id: None,
            before: None,
            after: Some(after),
        },
    )
    .await?;
    Ok(secret)
}

/// A new temporary password, shown once: it works once, must be changed at first sign-in,
/// and expires unused after `TEMP_PASSWORD_DAYS`.
pub async fn reset_password(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Path(guid): Path<String>,
) -> AppResult<Response> {
    let user = manageable(&state, &scope, &guid).await?;
    if user.archived_at.is_some() {
        return Err(AppError::Conflict(
            "This user is archived. Restore them first.".into(),
        ));
    }
    if is_self(&scope, &user) {
        return Err(AppError::Conflict(
            "Change your own password on your account page.".into(),
        ));
    }
    let mut tx = state.pool.begin().await?;
    let secret = issue_temporary_password(
        &mut tx,
        &state,
        scope.district_id,
        user.id,
        &scope.actor(),
        json!({ "password": "temporary password issued" }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(district = %scope.district_id, user = %user.id, "password reset");
    let page = PasswordShown {
        chrome: chrome(&session, Some(&scope.person), "/users").await,
        id: user.id,
        name: name_of(&user),
        login: user.email.clone().unwrap_or(user.username.clone()),
        password: secret,
        created: false,
    };
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        render(&page)?,
    )
        .into_response())
}
