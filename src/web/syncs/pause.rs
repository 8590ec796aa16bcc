//! `POST /syncs/{id}/pause`: pause (optionally until a date) or resume a connection.

use super::show::detail_page;
use super::{audit, load};
use crate::db;
use crate::sync::Kind;
use crate::web::AppState;
use crate::web::error::AppResult;
use crate::web::session::{DistrictAdmin, set_flash};
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

#[derive(Deserialize)]
pub struct PauseForm {
    paused: String,
    /// "Pause until [date]" (YYYY-MM-DD, UTC); empty: until resumed by hand.
    #[serde(default)]
    until: String,
}

/// A "pause until" date from a form: empty is none; otherwise a date after `today`.
pub(crate) fn parse_until(raw: &str, today: time::Date) -> Result<Option<time::Date>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let date = crate::web::when::parse_day(raw)
        .ok_or_else(|| format!("\"{raw}\" is not a date (YYYY-MM-DD)."))?;
    if date <= today {
        return Err("Pause until: choose a day after today.".into());
    }
    Ok(Some(date))
}

pub async fn pause(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
    Form(form): Form<PauseForm>,
) -> AppResult<Response> {
    let conn = load(&state, &scope, id).await?;
    let paused = form.paused == "true";
    let until = if paused {
        match parse_until(&form.until, state.clock.now().date()) {
            Ok(u) => u,
            Err(e) => return detail_page(&state, &session, &scope, &conn, vec![e]).await,
        }
    } else {
        None
    };
    let mut tx = state.pool.begin().await?;
    db::syncs::set_paused(&mut *tx, scope.district_id, id, paused, until).await?;
    if !paused && conn.paused && conn.kind != Kind::OneRosterCsv.as_str() {
        // Resuming after a long pause syncs soon, not at a time long past.
        let next = conn
            .next_run_at
            .filter(|t| *t > state.clock.now())
            .unwrap_or(state.clock.now());
        db::syncs::schedule(&mut *tx, scope.district_id, id, Some(next)).await?;
    }
    let action = if paused { "sync.pause" } else { "sync.resume" };
    audit(
        &mut tx,
        &scope,
        id,
        action,
        serde_json::json!({ "paused": paused, "paused_until": until.map(|d| d.to_string()) }),
    )
    .await?;
    tx.commit().await?;
    // Paused, the connection's page says so (and until when) in its standing notice: a
    // flash saying it again would show the same news twice (one banner per page).
    if !paused {
        set_flash(&session, "success", "Resumed: syncs run on schedule again.").await;
    }
    Ok(Redirect::to(&format!("/syncs/{id}")).into_response())
}
