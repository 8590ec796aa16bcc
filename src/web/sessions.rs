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
        Person::Member(m) => (db::throttle::user_key(m.district_id, m.id), m.session_epoch),
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
