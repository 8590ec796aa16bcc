//! Bulk actions on the Users list (issue 16, item 5): `POST /users/bulk` is the one confirm
//! step (it names the count and writes nothing), `POST /users/bulk/apply` carries the action
//! out in one transaction — set-based SQL (`db::bulk`), an audit entry per changed user and
//! one for the whole job. A password reset answers with printable login cards, shown once.

use super::bulk_bar::owners;
use super::{cache, display_name, safe_back};
use crate::auth;
use crate::db;
use crate::db::audit::Entry;
use crate::db::bulk::Target;
use crate::db::user_filter::UserFilter;
use crate::domain::Source;
use crate::domain::bulk::{self, BulkAction, Selection, Split};
use crate::reconcile::report::owner_label;
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::page::{Chrome, chrome, render};
use crate::web::session::{DistrictScope, Person, set_flash};
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use tower_sessions::Session;
use uuid::Uuid;

/// The filter fields a bulk form carries for "all matching" (the list's own query names).
const FILTER_KEYS: [&str; 6] = ["q", "status", "role", "school", "grade", "source"];

/// A bulk form, read from its fields (`id` repeats).
struct Asked {
    action: BulkAction,
    selection: Selection,
    filter: UserFilter,
    owner: Option<String>,
    back: String,
    /// The fields to carry to the next step, as sent (but the CSRF token).
    carry: Vec<(String, String)>,
}

fn read(fields: Vec<(String, String)>) -> AppResult<Asked> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let action = get("action")
        .and_then(BulkAction::parse)
        .ok_or_else(|| AppError::BadRequest("choose an action for the selected users".into()))?;
    let all = get("all").is_some_and(|v| v == "1");
    let ids: Vec<String> = fields
        .iter()
        .filter(|(n, _)| n == "id")
        .map(|(_, v)| v.clone())
        .collect();
    let selection = bulk::selection(all, &ids).map_err(AppError::BadRequest)?;
    let filter_pairs: Vec<(String, String)> = fields
        .iter()
        .filter(|(n, _)| FILTER_KEYS.contains(&n.as_str()))
        .cloned()
        .collect();
    let filter = super::list::filter_of(&filter_pairs)?;
    let owner = get("owner")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if action == BulkAction::HandTo && owner.is_none() {
        return Err(AppError::BadRequest(
            "choose the owner to hand the users to".into(),
        ));
    }
    let back = safe_back(get("back"), "/users".into());
    let carry = fields
        .into_iter()
        .filter(|(n, _)| n != "_csrf" && n != "expected")
        .collect();
    Ok(Asked {
        action,
        selection,
        filter,
        owner: if action == BulkAction::HandTo {
            owner
        } else {
            None
        },
        back,
        carry,
    })
}

fn me(scope: &DistrictScope) -> Option<Uuid> {
    match &scope.person {
        Person::Member(m) => Some(m.id),
        _ => None,
    }
}

/// The new owner in words, checked against the owners a district admin may choose.
async fn owner_words(
    state: &AppState,
    scope: &DistrictScope,
    asked: &Asked,
) -> AppResult<Option<String>> {
    if asked.action.district_admins_only() && !scope.is_district_admin() {
        return Err(AppError::Forbidden);
    }
    let Some(to) = &asked.owner else {
        return Ok(None);
    };
    if !owners(state, scope).await?.iter().any(|o| &o.value == to) {
        return Err(AppError::BadRequest(
            "choose manual or one of the district's files".into(),
        ));
    }
    let syncs = db::syncs::names(&state.pool, scope.district_id).await?;
    Ok(Some(owner_label(&Source::from_db(to), &syncs)))
}

fn target<'a>(scope: &'a DistrictScope, asked: &'a Asked) -> Target<'a> {
    Target {
        district_id: scope.district_id,
        selection: &asked.selection,
        filter: &asked.filter,
        schools: scope.schools.as_deref(),
        me: me(scope),
        action: asked.action,
        owner: asked.owner.as_deref(),
    }
}

#[derive(Template)]
#[template(path = "users/bulk_confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    question: String,
    left: Option<String>,
    carry: Vec<(String, String)>,
    expected: i64,
    nothing: bool,
    back: String,
    button: &'static str,
}

/// `POST /users/bulk`: the confirm step. Names the count; writes nothing.
pub async fn confirm(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let asked = read(fields)?;
    let owner = owner_words(&state, &scope, &asked).await?;
    let split: Split = db::bulk::count(&state.pool, &target(&scope, &asked)).await?;
    if asked.action == BulkAction::ResetPasswords && split.eligible > bulk::MAX_PASSWORD_RESETS {
        return Err(AppError::BadRequest(format!(
            "at most {} temporary passwords at once; narrow the selection (by school or grade)",
            bulk::MAX_PASSWORD_RESETS
        )));
    }
    let page = ConfirmPage {
        chrome: chrome(&session, Some(&scope.person), "/users").await,
        question: asked.action.question(split.eligible, owner.as_deref()),
        left: split.left_note(),
        carry: asked.carry.clone(),
        expected: split.eligible,
        nothing: split.eligible == 0,
        back: asked.back.clone(),
        button: asked.action.label(),
    };
    Ok(render(&page)?.into_response())
}

/// One printed login card.
pub struct Card {
    pub name: String,
    pub username: String,
    pub login: String,
    pub password: String,
}

#[derive(Template)]
#[template(path = "users/bulk_cards.html")]
struct CardsPage {
    chrome: Chrome,
    district: String,
    cards: Vec<Card>,
    back: String,
}

/// `POST /users/bulk/apply`: the action, on the users the selection holds now.
pub async fn apply(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let asked = read(fields)?;
    let owner = owner_words(&state, &scope, &asked).await?;
    let t = target(&scope, &asked);
    let actor = scope.actor();
    let now = state.clock.now();
    let job = Uuid::now_v7();
    let mut tx = state.pool.begin().await?;
    let mut cards = Vec::new();
    let changed = if asked.action == BulkAction::ResetPasswords {
        let users = db::bulk::card_users(&mut tx, &t, bulk::MAX_PASSWORD_RESETS + 1).await?;
        if users.len() as i64 > bulk::MAX_PASSWORD_RESETS {
            return Err(AppError::BadRequest(format!(
                "at most {} temporary passwords at once; narrow the selection",
                bulk::MAX_PASSWORD_RESETS
            )));
        }
        let secrets: Vec<String> = users.iter().map(|_| auth::generate_temporary()).collect();
        let to_hash = secrets.clone();
        let hashes = tokio::task::spawn_blocking(move || {
            to_hash
                .iter()
                .map(|s| auth::hash_temporary(s))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
        let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
        let changed = db::bulk::set_temporary_passwords(
            &mut tx,
            scope.district_id,
            &ids,
            &hashes,
            &actor,
            now,
        )
        .await?;
        for (u, secret) in users.into_iter().zip(secrets) {
            cards.push(Card {
                name: display_name(&u.first_name, &u.last_name, &u.username),
                login: u.email.clone().unwrap_or_else(|| u.username.clone()),
                username: u.username,
                password: secret,
            });
        }
        changed
    } else {
        db::bulk::apply(&mut tx, &t, &actor, now).await?
    };
    let n = changed.len() as i64;
    if n > 0 {
        db::audit::record(
            &mut *tx,
            scope.district_id,
            &actor,
            Entry {
                action: "user.bulk",
                entity_kind: "bulk",
                entity_id: Some(job),
                run_id: None,
                before: None,
                after: Some(json!({
                    "action": asked.action.label(),
                    "users": n,
                    "owner": owner,
                })),
            },
        )
        .await?;
    }
    tx.commit().await?;
    cache::forget(scope.district_id);
    tracing::info!(district = %scope.district_id, job = %job, action = asked.action.as_str(), users = n, "bulk action");
    if asked.action == BulkAction::ResetPasswords {
        let page = CardsPage {
            chrome: chrome(&session, Some(&scope.person), "/users").await,
            district: scope.district_name.clone(),
            cards,
            back: asked.back,
        };
        return Ok((
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            render(&page)?,
        )
            .into_response());
    }
    set_flash(&session, "success", asked.action.done(n, owner.as_deref())).await;
    Ok(Redirect::to(&asked.back).into_response())
}
