//! Sign-in and sign-out.

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{Person, Who, set_flash, sign_in, sign_out};
use crate::auth;
use crate::db;
use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use time::Duration;
use tower_sessions::Session;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    error: Option<String>,
    login: String,
    district: String,
    ask_district: bool,
}

pub async fn form(session: Session, person: Option<Person>) -> AppResult<Response> {
    if person.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let page = LoginPage {
        chrome: chrome(&session, None, "").await,
        error: None,
        login: String::new(),
        district: String::new(),
        ask_district: false,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    district: String,
}

enum Outcome {
    Operator(uuid::Uuid),
    Member(db::users::LoginCandidate),
    WrongPassword,
    Ambiguous,
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    let login = form.login.trim().to_lowercase();
    let ip = peer.ip().to_string();
    let district = form.district.trim().to_lowercase();
    let now = state.clock.now();
    let again = |status: StatusCode, error: String, ask_district: bool| {
        let session = session.clone();
        let login = form.login.clone();
        let district = district.clone();
        async move {
            let page = LoginPage {
                chrome: chrome(&session, None, "").await,
                error: Some(error),
                login,
                district,
                ask_district,
            };
            Ok::<_, AppError>((status, render(&page)?).into_response())
        }
    };

    if db::throttle::recent_failures(&state.pool, &login, &ip, now).await?
        >= state.config.login_max_failures
    {
        tracing::warn!(ip = %ip, "sign-in throttled");
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            AppError::TooManyRequests.to_string(),
            false,
        )
        .await;
    }

    let outcome = check_credentials(&state, &login, &form.password, &district).await?;
    match outcome {
        Outcome::WrongPassword => {
            db::throttle::record(&state.pool, &login, &ip, false, now).await?;
            again(
                StatusCode::UNAUTHORIZED,
                "The sign-in name or password is wrong.".into(),
                !district.is_empty(),
            )
            .await
        }
        Outcome::Ambiguous => {
            again(
                StatusCode::OK,
                "Enter your district code to sign in.".into(),
                true,
            )
            .await
        }
        Outcome::Operator(id) => {
            db::throttle::record(&state.pool, &login, &ip, true, now).await?;
            sign_in(&session, Who::Operator(id)).await?;
            tracing::info!(operator = %id, "operator signed in");
            Ok(Redirect::to("/").into_response())
        }
        Outcome::Member(c) => {
            if c.archived_at.is_some() {
                return again(
                    StatusCode::FORBIDDEN,
                    "This account is archived and cannot sign in. Ask your district administrator."
                        .into(),
                    false,
                )
                .await;
            }
            if c.status != "active" {
                return again(
                    StatusCode::FORBIDDEN,
                    "This account is inactive and cannot sign in. Ask your district administrator."
                        .into(),
                    false,
                )
                .await;
            }
            if c.password_temporary
                && c.password_set_at
                    .is_none_or(|at| now - at > Duration::days(auth::TEMP_PASSWORD_DAYS))
            {
                return again(
                    StatusCode::FORBIDDEN,
                    format!(
                        "This temporary password has expired (unused for {} days). Ask your administrator to reset it.",
                        auth::TEMP_PASSWORD_DAYS
                    ),
                    false,
                )
                .await;
            }
            db::throttle::record(&state.pool, &login, &ip, true, now).await?;
            sign_in(
                &session,
                Who::Member {
                    district_id: c.district_id,
                    user_id: c.id,
                },
            )
            .await?;
            tracing::info!(district = %c.district_id, user = %c.id, "signed in");
            if c.password_temporary {
                set_flash(
                    &session,
                    "info",
                    "Welcome! Choose your own password to continue.",
                )
                .await;
                return Ok(Redirect::to("/account/password").into_response());
            }
            Ok(Redirect::to("/").into_response())
        }
    }
}

async fn check_credentials(
    state: &AppState,
    login: &str,
    password: &str,
    district: &str,
) -> AppResult<Outcome> {
    if login.is_empty() || password.is_empty() {
        return Ok(Outcome::WrongPassword);
    }
    if district.is_empty()
        && let Some(op) = db::users::operator_by_email(&state.pool, login).await?
    {
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || auth::verify_password(&pw, &op.password_hash))
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        return Ok(if ok {
            Outcome::Operator(op.id)
        } else {
            Outcome::WrongPassword
        });
    }
    let candidates = db::users::login_candidates(
        &state.pool,
        login,
        (!district.is_empty()).then_some(district),
    )
    .await?;
    let pw = password.to_string();
    let matched = tokio::task::spawn_blocking(move || {
        if candidates.is_empty() {
            auth::dummy_verify(&pw);
            return Vec::new();
        }
        candidates
            .into_iter()
            .filter(|c| {
                c.password_hash
                    .as_deref()
                    .is_some_and(|h| auth::verify_password(&pw, h))
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(match matched.len() {
        0 => Outcome::WrongPassword,
        1 => Outcome::Member(matched.into_iter().next().expect("one")),
        _ => Outcome::Ambiguous,
    })
}

pub async fn logout(session: Session) -> Redirect {
    sign_out(&session).await;
    set_flash(&session, "info", "You are signed out.").await;
    Redirect::to("/login")
}
