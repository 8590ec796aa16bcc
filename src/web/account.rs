//! A person's own account page and password change (forced after a temporary password).

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{Person, Reject, set_flash};
use crate::auth;
use crate::db;
use crate::db::audit::Entry;
use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    person: Person,
    schools: Vec<String>,
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    person: Person,
) -> AppResult<Response> {
    if matches!(person, Person::Operator { .. }) {
        return Ok(Redirect::to("/districts").into_response());
    }
    let schools = match &person {
        Person::Member(m) => db::schools::list(&state.pool, m.district_id, Some(&m.school_ids))
            .await?
            .into_iter()
            .map(|s| format!("{} ({})", s.name, s.external_id))
            .collect(),
        _ => Vec::new(),
    };
    let page = AccountPage {
        chrome: chrome(&session, Some(&person), "/account").await,
        person,
        schools,
    };
    Ok(render(&page)?.into_response())
}

/// A member who may be in the middle of a forced password change.
pub struct PasswordChanger(db::users::Member);

impl FromRequestParts<AppState> for PasswordChanger {
    type Rejection = Reject;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Person::from_request_parts(parts, state).await? {
            Person::Member(m) => Ok(PasswordChanger(m)),
            Person::Operator { .. } => Err(Reject::Error(AppError::NotFound)),
        }
    }
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    chrome: Chrome,
    forced: bool,
    error: Option<String>,
}

pub async fn password_form(
    session: Session,
    PasswordChanger(m): PasswordChanger,
) -> AppResult<Response> {
    let forced = m.password_temporary;
    let page = PasswordPage {
        chrome: chrome(&session, Some(&Person::Member(m)), "/account").await,
        forced,
        error: None,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn password_submit(
    State(state): State<AppState>,
    session: Session,
    PasswordChanger(m): PasswordChanger,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    let forced = m.password_temporary;
    // The current password is asked for unless the person just signed in with a temporary one.
    let current_ok = if forced {
        true
    } else {
        let stored: Option<String> =
            db::users::login_candidates(&state.pool, &m.username, Some(&m.district_slug))
                .await?
                .into_iter()
                .find(|c| c.id == m.id)
                .and_then(|c| c.password_hash);
        let cur = form.current.clone();
        tokio::task::spawn_blocking(move || stored.is_some_and(|h| auth::verify_password(&cur, &h)))
            .await
            .map_err(|e| AppError::Internal(e.into()))?
    };
    let check = if !current_ok {
        Err("the current password is wrong".to_string())
    } else {
        auth::check_new_password(
            &form.password,
            &form.confirm,
            &m.username,
            m.email.as_deref(),
        )
        .map_err(|e| e.to_string())
    };
    if let Err(error) = check {
        let page = PasswordPage {
            chrome: chrome(&session, Some(&Person::Member(m)), "/account").await,
            forced,
            error: Some(format!("Not changed: {error}.")),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    let pw = form.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&pw))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let mut tx = state.pool.begin().await?;
    db::users::set_password(
        &mut *tx,
        m.district_id,
        m.id,
        &hash,
        false,
        state.clock.now(),
    )
    .await?;
    let actor = Person::Member(m.clone()).actor();
    db::audit::record(
        &mut *tx,
        m.district_id,
        &actor,
        Entry {
            action: "user.password_change",
            entity_kind: "user",
            entity_id: Some(m.id),
            run_id: None,
            before: None,
            after: Some(serde_json::json!({ "password": "changed" })),
        },
    )
    .await?;
    tx.commit().await?;
    set_flash(&session, "success", "Your password has been changed.").await;
    Ok(Redirect::to("/").into_response())
}
