//! "My sessions": the signed-in person's live sessions (device, address, last seen) and
//! signing out every other one.

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{Person, restamp, set_flash, tracked_id};
use super::when;
use crate::db;
use crate::db::audit::Entry;
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

/// A browser as a person recognises it, from its User-Agent: "Firefox on Windows".
pub fn device_label(user_agent: &str) -> String {
    let ua = user_agent;
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") || ua.contains("Opera") {
        "Opera"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") || ua.contains("CriOS/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        ""
    };
    let system = if ua.contains("iPhone") || ua.contains("iPad") {
        "iOS"
    } else if ua.contains("Android") {
        "Android"
    } else if ua.contains("CrOS") {
        "ChromeOS"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        "macOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        ""
    };
    match (browser, system) {
        ("", "") => {
            let short: String = ua.chars().take(60).collect();
            if short.trim().is_empty() {
                "Unknown device".into()
            } else {
                short
            }
        }
        ("", s) => format!("A browser on {s}"),
        (b, "") => b.to_string(),
        (b, s) => format!("{b} on {s}"),
    }
}

pub struct SessionView {
    pub device: String,
    pub ip: String,
    pub signed_in: String,
    pub last_seen: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    chrome: Chrome,
    sessions: Vec<SessionView>,
}

fn account_of(person: &Person) -> (String, i64) {
    match person {
        Person::Operator { id, .. } => (db::throttle::operator_key(*id), 0),
        Person::Member(m) => (
            db::throttle::user_key(m.district_id, m.id),
            m.session_epoch,
        ),
    }
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    person: Person,
) -> AppResult<Response> {
    let (account, mut epoch) = account_of(&person);
    if let Person::Operator { id, .. } = &person {
        epoch = db::accounts::operator_by_id(&state.pool, *id)
            .await?
            .ok_or(AppError::NotFound)?
            .session_epoch;
    }
    let me = tracked_id(&session).await;
    let sessions = db::account_sessions::live(&state.pool, &account, epoch, state.clock.now())
        .await?
        .into_iter()
        .map(|s| SessionView {
            current: Some(s.id) == me,
            device: s.device,
            ip: s.ip,
            signed_in: when::minute(s.signed_in_at),
            last_seen: when::minute(s.last_seen_at),
        })
        .collect();
    let page = SessionsPage {
        chrome: chrome(&session, Some(&person), "/account").await,
        sessions,
    };
    Ok(render(&page)?.into_response())
}

/// Sign out every other session of the account: its epoch moves on, this session takes
/// the new one.
pub async fn end_others(
    State(state): State<AppState>,
    session: Session,
    person: Person,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let epoch = match &person {
        Person::Operator { id, .. } => {
            db::account_sessions::end_other_operator_sessions(&mut *tx, *id).await?
        }
        Person::Member(m) => {
            let epoch =
                db::account_sessions::end_other_user_sessions(&mut *tx, m.district_id, m.id)
                    .await?;
            db::audit::record(
                &mut *tx,
                m.district_id,
                &person.actor(),
                Entry {
                    action: "user.sessions_ended",
                    entity_kind: "user",
                    entity_id: Some(m.id),
                    run_id: None,
                    before: None,
                    after: None,
                },
            )
            .await?;
            epoch
        }
    }
    .ok_or(AppError::NotFound)?;
    if let Some(id) = tracked_id(&session).await {
        db::account_sessions::restamp(&mut *tx, id, epoch).await?;
    }
    tx.commit().await?;
    restamp(&session, epoch).await?;
    set_flash(&session, "success", "Every other session is signed out.").await;
    Ok(Redirect::to("/account/sessions").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_in_words() {
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(device_label(firefox), "Firefox on Windows");
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
        assert_eq!(device_label(chrome), "Chrome on Linux");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(device_label(safari), "Safari on iOS");
        let edge = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/126.0 Safari/537.36 Edg/126.0";
        assert_eq!(device_label(edge), "Edge on Windows");
        assert_eq!(device_label("curl/8.5.0"), "curl/8.5.0");
        assert_eq!(device_label(""), "Unknown device");
    }
}
