//! Forgot password: a link by email (the alerts' SMTP sender), a single-use token valid for
//! 30 minutes and stored as its SHA-256, the same answer whether the account exists or
//! not; using it sets the new password and ends every session of the account.

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{Person, set_flash};
use crate::auth;
use crate::db;
use crate::db::audit::{Actor, Entry};
use crate::domain::ActorKind;
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use time::Duration;
use tokio::task::JoinHandle;
use tower_sessions::Session;

/// How long a reset link works.
pub const TOKEN_VALID: Duration = Duration::minutes(30);

/// Mail being sent after the answer went out (so the answer takes as long whether the
/// account exists or not); `settle` waits for all of it (tests, shutdown).
#[derive(Clone, Default)]
pub struct Outbox {
    sending: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Outbox {
    fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut sending = self.sending.lock().expect("outbox lock");
        sending.retain(|h| !h.is_finished());
        sending.push(tokio::spawn(work));
    }

    /// Wait until every message handed over so far is sent (or failed).
    pub async fn settle(&self) {
        let handles: Vec<_> = std::mem::take(&mut *self.sending.lock().expect("outbox lock"));
        for h in handles {
            let _ = h.await;
        }
    }
}

#[derive(Template)]
#[template(path = "password_forgot.html")]
struct ForgotPage {
    chrome: Chrome,
    sent: bool,
}

pub async fn forgot_form(session: Session, person: Option<Person>) -> AppResult<Response> {
    if person.is_some() {
        return Ok(Redirect::to("/account/password").into_response());
    }
    let page = ForgotPage {
        chrome: chrome(&session, None, "").await,
        sent: false,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    login: String,
}

/// Make a token for each account the name means and mail it, after answering: the page
/// says the same whether there was one or not.
pub async fn forgot_submit(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<ForgotForm>,
) -> AppResult<Response> {
    let login = form.login.trim().to_lowercase();
    let page = ForgotPage {
        chrome: chrome(&session, None, "").await,
        sent: true,
    };
    if !login.is_empty() {
        let state2 = state.clone();
        state.outbox.spawn(async move {
            if let Err(e) = send_links(&state2, &login).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "a password reset mail was not sent"
                );
            }
        });
    }
    Ok(render(&page)?.into_response())
}

async fn send_links(state: &AppState, login: &str) -> anyhow::Result<()> {
    let recipients = db::password_resets::recipients(&state.pool, login).await?;
    if recipients.is_empty() {
        return Ok(());
    }
    let Some(mailer) = crate::alerts::send::Mailer::from_config(&state.config)? else {
        anyhow::bail!("no SMTP server is configured (ROLLCALL_SMTP_HOST)");
    };
    let now = state.clock.now();
    let base = crate::alerts::send::public_base(&state.config);
    for r in recipients {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        db::password_resets::insert(
            &state.pool,
            r.district_id,
            r.user_id,
            &auth::hash_token(&token),
            now,
            now + TOKEN_VALID,
        )
        .await?;
        let body = format!(
            "Someone (we hope you) asked to reset the password of your Rollcall account \"{}\" ({}).\n\n\
             Choose a new password here within 30 minutes:\n{base}/password/reset?token={token}\n\n\
             The link works once. If you did not ask, ignore this message: your password stays as it is.\n",
            r.username, r.district_name
        );
        mailer
            .send_now(&r.email, "Reset your Rollcall password", &body)
            .await?;
        tracing::info!(district = %r.district_id, user = %r.user_id, "password reset link sent");
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetPage {
    chrome: Chrome,
    /// None: the link is not (or no longer) valid.
    token: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

pub async fn reset_form(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<TokenQuery>,
) -> AppResult<Response> {
    let valid =
        db::password_resets::valid(&state.pool, &auth::hash_token(&q.token), state.clock.now())
            .await?
            .is_some();
    let page = ResetPage {
        chrome: chrome(&session, None, "").await,
        token: valid.then_some(q.token),
        error: None,
    };
    let status = if valid {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    Ok((status, render(&page)?).into_response())
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// Set the new password: the token is used up (with every other of the account), the
/// account's sessions all end, its sign-in throttle is cleared; audited.
pub async fn reset_submit(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<ResetForm>,
) -> AppResult<Response> {
    let now = state.clock.now();
    let hash = auth::hash_token(&form.token);
    let again = |token: Option<String>, error: Option<String>, status: StatusCode| {
        let session = session.clone();
        async move {
            let page = ResetPage {
                chrome: chrome(&session, None, "").await,
                token,
                error,
            };
            Ok::<_, AppError>((status, render(&page)?).into_response())
        }
    };
    let Some((district_id, user_id)) = db::password_resets::valid(&state.pool, &hash, now).await?
    else {
        return again(None, None, StatusCode::NOT_FOUND).await;
    };
    let Some(user) = db::users::member(&state.pool, district_id, user_id).await? else {
        return again(None, None, StatusCode::NOT_FOUND).await;
    };
    if let Err(e) = auth::check_new_password(
        &form.password,
        &form.confirm,
        &user.username,
        user.email.as_deref(),
    ) {
        return again(
            Some(form.token),
            Some(format!("Not changed: {e}.")),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let slot = state.passwords.enter().await?;
    let pw = form.password;
    let new_hash = slot.run(move || auth::hash_password(&pw)).await?;
    drop(slot);
    let mut tx = state.pool.begin().await?;
    if db::password_resets::use_token(&mut tx, &hash, now)
        .await?
        .is_none()
    {
        return again(None, None, StatusCode::NOT_FOUND).await;
    }
    db::users::set_password(&mut *tx, district_id, user_id, &new_hash, false, now).await?;
    db::throttle::clear_account(&mut *tx, &db::throttle::user_key(district_id, user_id)).await?;
    let actor = Actor {
        kind: ActorKind::User,
        id: Some(user_id),
        label: user.email.clone().unwrap_or_else(|| user.username.clone()),
    };
    db::audit::record(
        &mut *tx,
        district_id,
        &actor,
        Entry {
            action: "user.password_reset_by_email",
            entity_kind: "user",
            entity_id: Some(user_id),
            run_id: None,
            before: None,
            after: Some(serde_json::json!({ "password": "changed" })),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(district = %district_id, user = %user_id, "password reset by email");
    set_flash(
        &session,
        "success",
        "Your password has been changed, and every session of your account was signed out. Sign in with the new password.",
    )
    .await;
    Ok(Redirect::to("/login").into_response())
}
