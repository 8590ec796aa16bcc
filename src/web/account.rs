//! A person's own account page (members and the operator) and password change (forced
//! after a temporary or one-time password).

use super::AppState;
use super::client::ClientIp;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{Person, Reject, restamp, set_flash, tracked_id};
use crate::auth;
use crate::db;
use crate::db::accounts::AccountId;
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
    /// An admin or the operator: two-step sign-in can be set up.
    mfa_offered: bool,
    mfa_enabled: bool,
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    person: Person,
) -> AppResult<Response> {
    let schools = match &person {
        Person::Member(m) => db::schools::list(&state.pool, m.district_id, Some(&m.school_ids))
            .await?
            .into_iter()
            .map(|s| format!("{} ({})", s.name, s.external_id))
            .collect(),
        _ => Vec::new(),
    };
    let account = match &person {
        Person::Operator { id, .. } => Some(AccountId::Operator(*id)),
        Person::Member(m) if m.portal_role.is_admin() => Some(AccountId::User {
            district_id: m.district_id,
            user_id: m.id,
        }),
        Person::Member(_) => None,
    };
    let mfa_enabled = match account {
        Some(a) => db::accounts::mfa(&state.pool, a)
            .await?
            .is_some_and(|m| m.enabled()),
        None => false,
    };
    let page = AccountPage {
        chrome: chrome(&session, Some(&person), "/account").await,
        person,
        schools,
        mfa_offered: account.is_some(),
        mfa_enabled,
    };
    Ok(render(&page)?.into_response())
}

/// A signed-in person who may be in the middle of a forced password change (a member's
/// temporary password, the operator's one-time password).
pub struct PasswordChanger {
    person: Person,
    account: AccountId,
    forced: bool,
    username: String,
    email: Option<String>,
}

impl FromRequestParts<AppState> for PasswordChanger {
    type Rejection = Reject;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let person = Person::from_request_parts(parts, state).await?;
        Ok(match &person {
            Person::Member(m) => PasswordChanger {
                account: AccountId::User {
                    district_id: m.district_id,
                    user_id: m.id,
                },
                forced: m.password_temporary,
                username: m.username.clone(),
                email: m.email.clone(),
                person: person.clone(),
            },
            Person::Operator { id, email } => {
                let op = db::accounts::operator_by_id(&state.pool, *id)
                    .await
                    .map_err(AppError::from)?
                    .ok_or(Reject::SignIn)?;
                PasswordChanger {
                    account: AccountId::Operator(*id),
                    forced: op.password_temporary,
                    username: email.clone(),
                    email: Some(email.clone()),
                    person: person.clone(),
                }
            }
        })
    }
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    chrome: Chrome,
    forced: bool,
    error: Option<String>,
}

pub async fn password_form(session: Session, changer: PasswordChanger) -> AppResult<Response> {
    let page = PasswordPage {
        chrome: chrome(&session, Some(&changer.person), "/account").await,
        forced: changer.forced,
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
    changer: PasswordChanger,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    let forced = changer.forced;
    let account = changer.account;
    let now = state.clock.now();
    let slot = state.passwords.enter().await?;
    let limits = db::throttle::Limits {
        per_account: state.config.login_max_failures,
        per_address: state.config.login_max_failures_per_address,
    };
    let attempt = match db::throttle::begin(
        &state.pool,
        &changer.username,
        &[account.throttle_key()],
        &client.to_string(),
        limits,
        now,
    )
    .await?
    {
        db::throttle::Attempt::Allowed(id) => id,
        db::throttle::Attempt::Throttled => {
            tracing::warn!(account = ?account, "password change throttled");
            return Err(AppError::TooManyRequests);
        }
    };
    let stored = match account {
        AccountId::User {
            district_id,
            user_id,
        } => db::users::password_hash(&state.pool, district_id, user_id).await?,
        AccountId::Operator(id) => db::accounts::operator_by_id(&state.pool, id)
            .await?
            .map(|op| op.password_hash),
    };
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
            &changer.username,
            changer.email.as_deref(),
        )
        .map_err(|e| e.to_string())
    };
    if let Err(error) = check {
        let page = PasswordPage {
            chrome: chrome(&session, Some(&changer.person), "/account").await,
            forced,
            error: Some(format!("Not changed: {error}.")),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    let pw = form.password;
    let hash = slot.run(move || auth::hash_password(&pw)).await?;
    drop(slot);
    let mut tx = state.pool.begin().await?;
    let epoch = match account {
        AccountId::User {
            district_id,
            user_id,
        } => {
            let epoch = db::users::set_password(&mut *tx, district_id, user_id, &hash, false, now)
                .await?
                .ok_or(AppError::NotFound)?;
            db::audit::record(
                &mut *tx,
                district_id,
                &changer.person.actor(),
                Entry {
                    action: "user.password_change",
                    entity_kind: "user",
                    entity_id: Some(user_id),
                    run_id: None,
                    before: None,
                    after: Some(serde_json::json!({ "password": "changed" })),
                },
            )
            .await?;
            epoch
        }
        AccountId::Operator(id) => {
            let epoch = db::accounts::set_operator_password(&mut *tx, id, &hash, false)
                .await?
                .ok_or(AppError::NotFound)?;
            tracing::info!(operator = %id, "operator changed their password");
            epoch
        }
    };
    if let Some(id) = tracked_id(&session).await {
        db::account_sessions::restamp(&mut *tx, id, epoch).await?;
    }
    tx.commit().await?;
    // The change ended every session of the account (its epoch moved on) but this one.
    restamp(&session, epoch).await?;
    set_flash(&session, "success", "Your password has been changed.").await;
    Ok(Redirect::to("/").into_response())
}
