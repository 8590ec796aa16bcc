//! `POST /syncs`: add a connection.

use super::form::{check, name_taken, refused_destinations};
use super::list::list_page;
use super::{NewForm, audit};
use crate::crypto::SecretKey;
use crate::db;
use crate::sync::Kind;
use crate::web::AppState;
use crate::web::error::AppResult;
use crate::web::session::{DistrictAdmin, set_flash};
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;
use uuid::Uuid;

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<NewForm>,
) -> AppResult<Response> {
    let Some(kind) = Kind::parse(&form.kind) else {
        return list_page(
            &state,
            &session,
            &scope,
            form,
            vec!["Choose a kind of connection.".into()],
        )
        .await;
    };
    let checked = match check(kind, &form, true) {
        Ok(c) => c,
        Err(errors) => return list_page(&state, &session, &scope, form, errors).await,
    };
    let errors = refused_destinations(&state, &checked).await;
    if !errors.is_empty() {
        return list_page(&state, &session, &scope, form, errors).await;
    }
    let id = Uuid::new_v4();
    let sealed = if kind == Kind::OneRosterCsv {
        None
    } else {
        let key = SecretKey::from_config(&state.config)?;
        Some(key.seal(form.secret.trim(), scope.district_id, id))
    };
    let next = kind.is_scheduled().then(|| state.clock.now());
    let mut tx = state.pool.begin().await?;
    let new = db::syncs::NewConnection {
        id,
        kind: kind.as_str(),
        name: &checked.name,
        base_url: checked.base_url.as_deref(),
        token_url: checked.token_url.as_deref(),
        client_id: checked.client_id.as_deref(),
        secret_sealed: sealed.as_deref(),
        interval_minutes: checked.interval_minutes,
        next_run_at: next,
        created_by: &scope.actor().label,
    };
    if let Err(e) = db::syncs::insert(&mut *tx, scope.district_id, &new).await {
        if name_taken(&e) {
            let msg = format!("A connection named \"{}\" already exists.", checked.name);
            return list_page(&state, &session, &scope, form, vec![msg]).await;
        }
        return Err(e.into());
    }
    audit(&mut tx, &scope, id, "sync.create", serde_json::json!({
        "kind": kind.as_str(), "name": checked.name, "base_url": checked.base_url,
        "client_id": checked.client_id, "interval_minutes": checked.interval_minutes, "secret": "stored encrypted"
    }))
    .await?;
    tx.commit().await?;
    let text = if kind.is_scheduled() {
        format!(
            "Connection \"{}\" added; its first sync runs within a minute.",
            checked.name
        )
    } else {
        format!(
            "Connection \"{}\" added; upload a OneRoster zip on its page.",
            checked.name
        )
    };
    set_flash(&session, "success", text).await;
    Ok(Redirect::to(&format!("/syncs/{id}")).into_response())
}
