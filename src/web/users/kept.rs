//! Releasing kept fields (SPEC §4, "Fields an admin edited"): the user page lists the fields an
//! admin changed by hand on a feed-owned user, each with a Release button (and one for all);
//! released, the next run of the owning feed writes them again. Audited.

use super::{cache, can_manage, display_name, history, load, source_label};
use crate::db;
use crate::db::audit::Entry;
use crate::domain::Field;
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::session::{DistrictScope, set_flash};
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

#[derive(Deserialize)]
pub struct ReleaseForm {
    /// A canonical field name, or `all`.
    field: String,
}

pub async fn release(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Path(guid): Path<String>,
    Form(form): Form<ReleaseForm>,
) -> AppResult<Response> {
    let user = load(&state, &scope, &guid).await?;
    if !can_manage(&scope, &user) {
        return Err(AppError::Forbidden);
    }
    let fields = match form.field.as_str() {
        "all" => None,
        name => match Field::from_name(name) {
            Some(f) => Some(vec![f.name().to_string()]),
            None => return Err(AppError::BadRequest(format!("unknown field {name:?}"))),
        },
    };
    let mut tx = state.pool.begin().await?;
    let released =
        db::user_edit::release_fields(&mut *tx, scope.district_id, user.id, fields.as_deref())
            .await?;
    let name = display_name(&user.first_name, &user.last_name, &user.username);
    let sync_names = db::syncs::names(&state.pool, scope.district_id).await?;
    let owner = source_label(&user.source, &sync_names);
    let Some((old, new)) = released else {
        drop(tx);
        set_flash(
            &session,
            "info",
            "Nothing to release: that field is not kept.",
        )
        .await;
        return Ok(Redirect::to(&format!("/users/{}", user.id)).into_response());
    };
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "user.release_fields",
            entity_kind: "user",
            entity_id: Some(user.id),
            run_id: None,
            before: Some(json!({ "kept": old })),
            after: Some(json!({ "kept": new })),
        },
    )
    .await?;
    tx.commit().await?;
    cache::forget(scope.district_id);
    tracing::info!(district = %scope.district_id, user = %user.id, field = %form.field, "kept fields released");
    let what: Vec<String> = old
        .iter()
        .filter(|f| !new.contains(f))
        .map(|f| history::field_label(f))
        .collect();
    set_flash(
        &session,
        "success",
        format!(
            "Released for {name}: {}. The next run of {owner} updates {} again.",
            what.join(", "),
            if what.len() == 1 { "it" } else { "them" }
        ),
    )
    .await;
    Ok(Redirect::to(&format!("/users/{}", user.id)).into_response())
}
