//! `POST /syncs/{id}`: save a connection's settings (and a replaced secret).

use super::form::{check, name_taken, refused_destinations};
use super::show::detail_page;
use super::{NewForm, audit, load};
use crate::crypto::SecretKey;
use crate::db;
use crate::sync::{self, Kind};
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::session::{DistrictAdmin, set_flash};
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;
use uuid::Uuid;

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
    Form(form): Form<NewForm>,
) -> AppResult<Response> {
    let conn = load(&state, &scope, id).await?;
    let kind = Kind::parse(&conn.kind).ok_or(AppError::NotFound)?;
    let checked = match check(kind, &form, false) {
        Ok(c) => c,
        Err(errors) => return detail_page(&state, &session, &scope, &conn, errors).await,
    };
    let errors = refused_destinations(&state, &checked).await;
    if !errors.is_empty() {
        return detail_page(&state, &session, &scope, &conn, errors).await;
    }
    // A new interval counts from now; a paused or unscheduled connection keeps its time.
    let next = if kind.is_scheduled() && checked.interval_minutes != conn.interval_minutes {
        Some(sync::schedule::next_after(
            state.clock.now(),
            checked.interval_minutes,
        ))
    } else {
        conn.next_run_at
    };
    let settings = db::syncs::Settings {
        name: &checked.name,
        base_url: checked.base_url.as_deref(),
        token_url: checked.token_url.as_deref(),
        client_id: checked.client_id.as_deref(),
        interval_minutes: checked.interval_minutes,
        next_run_at: next,
    };
    let mut tx = state.pool.begin().await?;
    if let Err(e) = db::syncs::update_settings(&mut *tx, scope.district_id, id, &settings).await {
        if name_taken(&e) {
            let msg = format!("A connection named \"{}\" already exists.", checked.name);
            return detail_page(&state, &session, &scope, &conn, vec![msg]).await;
        }
        return Err(e.into());
    }
    let replaced = !form.secret.trim().is_empty() && kind != Kind::OneRosterCsv;
    if replaced {
        let sealed =
            SecretKey::from_config(&state.config)?.seal(form.secret.trim(), scope.district_id, id);
        db::syncs::set_secret(&mut *tx, scope.district_id, id, &sealed).await?;
    }
    audit(
        &mut tx,
        &scope,
        id,
        "sync.update",
        serde_json::json!({
            "name": checked.name, "base_url": checked.base_url, "token_url": checked.token_url,
            "client_id": checked.client_id, "interval_minutes": checked.interval_minutes,
            "secret": if replaced { "replaced" } else { "kept" }
        }),
    )
    .await?;
    tx.commit().await?;
    set_flash(&session, "success", "Connection saved.").await;
    Ok(Redirect::to(&format!("/syncs/{id}")).into_response())
}
