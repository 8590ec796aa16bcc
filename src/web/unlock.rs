//! A district admin's help for a user who cannot sign in: clear the sign-in throttle (too
//! many wrong passwords or codes) and turn off a lost second factor. Both audited.

use super::AppState;
use super::error::{AppError, AppResult};
use super::session::{DistrictAdmin, Person, set_flash};
use crate::db;
use crate::db::accounts::AccountId;
use crate::db::audit::Entry;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;
use uuid::Uuid;

/// The user (any in the district, not oneself, not archived).
async fn target(state: &AppState, admin: &DistrictAdmin, guid: &str) -> AppResult<Uuid> {
    let id = Uuid::parse_str(guid).map_err(|_| AppError::NotFound)?;
    let user = db::user_edit::get(&state.pool, admin.0.district_id, id, None)
        .await?
        .ok_or(AppError::NotFound)?;
    if matches!(&admin.0.person, Person::Member(m) if m.id == user.id) {
        return Err(AppError::Conflict(
            "You cannot unlock your own account.".into(),
        ));
    }
    Ok(user.id)
}

/// Forget the user's failed sign-ins (from every address), so they may try again now.
pub async fn unlock(
    State(state): State<AppState>,
    session: Session,
    admin: DistrictAdmin,
    Path(guid): Path<String>,
) -> AppResult<Response> {
    let id = target(&state, &admin, &guid).await?;
    let district_id = admin.0.district_id;
    let key = AccountId::User {
        district_id,
        user_id: id,
    }
    .throttle_key();
    let mut tx = state.pool.begin().await?;
    let forgotten = db::throttle::clear_account(&mut *tx, &key).await?;
    db::audit::record(
        &mut *tx,
        district_id,
        &admin.0.actor(),
        Entry {
            action: "user.sign_in_unlocked",
            entity_kind: "user",
            entity_id: Some(id),
            run_id: None,
            before: None,
            after: Some(serde_json::json!({ "failed_sign_ins_cleared": forgotten })),
        },
    )
    .await?;
    tx.commit().await?;
    set_flash(
        &session,
        "success",
        if forgotten == 0 {
            "Sign-in unlocked (there were no failed sign-ins to clear).".to_string()
        } else {
            format!("Sign-in unlocked: {forgotten} failed sign-ins cleared. They can sign in now.")
        },
    )
    .await;
    Ok(Redirect::to(&format!("/users/{id}")).into_response())
}

/// Turn off the user's two-step sign-in (a lost phone); where the district requires it,
/// they set it up again at their next sign-in.
pub async fn reset_mfa(
    State(state): State<AppState>,
    session: Session,
    admin: DistrictAdmin,
    Path(guid): Path<String>,
) -> AppResult<Response> {
    let id = target(&state, &admin, &guid).await?;
    let district_id = admin.0.district_id;
    let mut tx = state.pool.begin().await?;
    let account = AccountId::User {
        district_id,
        user_id: id,
    };
    db::accounts::mfa_disable(&mut *tx, account).await?;
    db::audit::record(
        &mut *tx,
        district_id,
        &admin.0.actor(),
        Entry {
            action: "user.mfa_reset",
            entity_kind: "user",
            entity_id: Some(id),
            run_id: None,
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    set_flash(
        &session,
        "success",
        "Two-step sign-in turned off for this user.",
    )
    .await;
    Ok(Redirect::to(&format!("/users/{id}")).into_response())
}
