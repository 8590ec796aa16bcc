//! Who owns a user (SPEC §4): shown on the user page, and handed by a district admin to
//! manual or to one of the district's file sources. Audited.

use super::{Opt, display_name, load};
use crate::db;
use crate::db::audit::Entry;
use crate::db::user_edit::UserRecord;
use crate::domain::Source;
use crate::reconcile::report::owner_label;
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::session::{DistrictScope, set_flash};
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

/// The owner block of the user page.
pub struct OwnerView {
    /// As an admin reads it: `manual`, `students.csv`, `roster sync Clever`.
    pub label: String,
    /// The owners this admin may hand the user to (the current one selected).
    pub choices: Vec<Opt>,
    /// Why the user cannot be handed away (a live sync owns them), if so.
    pub locked: Option<String>,
    /// The admin may hand the user to another owner (a district admin, the user live).
    pub can_hand: bool,
}

/// The owner block for `user`.
pub(super) async fn view(
    state: &AppState,
    scope: &DistrictScope,
    user: &UserRecord,
) -> AppResult<OwnerView> {
    let source = Source::from_db(&user.source);
    let syncs = db::syncs::names(&state.pool, scope.district_id).await?;
    let label = owner_label(&source, &syncs);
    let locked = match &source {
        Source::Sync(id) if syncs.contains_key(id) => Some(format!(
            "Provisioned by {label}: change them in the sync. They can be handed to another owner once the sync connection is removed."
        )),
        _ => None,
    };
    let current = user.source.as_str();
    let mut choices = vec![Opt::new("manual", "Manual (added in the portal)", current)];
    for file in db::runs::file_sources(&state.pool, scope.district_id).await? {
        let name = match Source::from_db(&file) {
            Source::File(name) => name,
            _ => continue,
        };
        choices.push(Opt::new(file, format!("File {name}"), current));
    }
    Ok(OwnerView {
        label,
        can_hand: scope.is_district_admin() && user.archived_at.is_none() && locked.is_none(),
        choices,
        locked,
    })
}

#[derive(Deserialize)]
pub struct OwnerForm {
    /// `manual` or `file:<name>` (as `users.source` stores it).
    owner: String,
}

/// Hand a user to manual (which protects them from archiving) or to a file source.
pub async fn hand(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Path(guid): Path<String>,
    Form(form): Form<OwnerForm>,
) -> AppResult<Response> {
    if !scope.is_district_admin() {
        return Err(AppError::Forbidden);
    }
    let user = load(&state, &scope, &guid).await?;
    let owner = view(&state, &scope, &user).await?;
    if let Some(why) = owner.locked {
        return Err(AppError::Conflict(why));
    }
    if user.archived_at.is_some() {
        return Err(AppError::Conflict(
            "This user is archived. Restore them first.".into(),
        ));
    }
    let to = form.owner.trim();
    if !owner.choices.iter().any(|o| o.value == to) {
        return Err(AppError::BadRequest(
            "choose manual or one of the district's files".into(),
        ));
    }
    let name = display_name(&user.first_name, &user.last_name, &user.username);
    if to == user.source {
        set_flash(
            &session,
            "info",
            format!("{name} already belongs to {}.", owner.label),
        )
        .await;
        return Ok(Redirect::to(&format!("/users/{}", user.id)).into_response());
    }
    // Manual users are protected: no feed archives them until an admin unchecks the flag.
    let prevent = matches!(Source::from_db(to), Source::Manual) || user.prevent_archiving;
    let mut tx = state.pool.begin().await?;
    if db::user_edit::set_owner(
        &mut *tx,
        scope.district_id,
        user.id,
        &user.source,
        to,
        prevent,
    )
    .await?
    {
        db::audit::record(
            &mut *tx,
            scope.district_id,
            &scope.actor(),
            Entry {
                action: "user.owner",
                entity_kind: "user",
                entity_id: Some(user.id),
                run_id: None,
                before: Some(
                    json!({ "source": user.source, "prevent_archiving": user.prevent_archiving }),
                ),
                after: Some(json!({ "source": to, "prevent_archiving": prevent })),
            },
        )
        .await?;
        tx.commit().await?;
        super::cache::forget(scope.district_id);
        tracing::info!(district = %scope.district_id, user = %user.id, from = %user.source, to, "user handed to another owner");
    }
    let syncs = db::syncs::names(&state.pool, scope.district_id).await?;
    let new_label = owner_label(&Source::from_db(to), &syncs);
    set_flash(
        &session,
        "success",
        format!("{name} now belongs to {new_label}."),
    )
    .await;
    Ok(Redirect::to(&format!("/users/{}", user.id)).into_response())
}
