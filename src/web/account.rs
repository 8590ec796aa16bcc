//! A person's own account page and password change (forced after a temporary password).

use super::AppState;
use super::client::ClientIp;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{Person, Reject, restamp, set_flash};
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

/// One's own password change. The current password is always asked for — the temporary
/// one during a forced change, so a session that outlived a reset cannot choose it — and
/// its guesses are counted like sign-ins (same account counter, same address). The new
/// password must differ from it. The account's other sessions end; this one stays.
pub async fn password_submit(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    session: Session,
    PasswordChanger(m): PasswordChanger,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    let forced = m.password_temporary;
    let now = state.clock.now();
    let slot = state.passwords.enter().await?;
    let limits = db::throttle::Limits {
        per_account: state.config.login_max_failures,
        per_address: state.config.login_max_failures_per_address,
    };
    let key = db::throttle::user_key(m.district_id, m.id);
    let attempt = match db::throttle::begin(
        &state.pool,
        &m.username,
        &[key],
        &client.to_string(),
        limits,
        now,
    )
    .await?
    {
        db::throttle::Attempt::Allowed(id) => id,
        db::throttle::Attempt::Throttled => {
            tracing::warn!(district = %m.district_id, user = %m.id, "password change throttled");
            return Err(AppError::TooManyRequests);
        }
    };
    let stored = db::users::password_hash(&state.pool, m.district_id, m.id).await?;
    let cur = form.current.clone();
    let current_ok = slot
        .run(move || auth::verify_candidates(&cur, &[stored.as_deref()]) == [true])
        .await?;
    if current_ok {
        db::throttle::succeeded(&state.pool, attempt).await?;
    }
    let which = if forced { "temporary" } else { "current" };
    let check = if !current_ok {
        Err(format!("the {which} password is wrong"))
    } else if form.password == form.current {
        Err(format!("the new password must differ from the {which} one"))
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
    let hash = slot.run(move || auth::hash_password(&pw)).await?;
    drop(slot);
    let mut tx = state.pool.begin().await?;
    let epoch = db::users::set_password(&mut *tx, m.district_id, m.id, &hash, false, now)
        .await?
        .ok_or(AppError::NotFound)?;
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
    // The change ended every session of the account (its epoch moved on) but this one.
    restamp(&session, epoch).await?;
    set_flash(&session, "success", "Your password has been changed.").await;
    Ok(Redirect::to("/").into_response())
}
