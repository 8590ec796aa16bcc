//! The add-user and edit-user forms (`/users/new`, `/users/{guid}`): show, create, update
//! (with optimistic concurrency on the user's `version`).

use super::snapshot::{record_fields, snapshot};
use super::validate::{FieldErrors, FormValues, constraint_field, validate};
use super::view::{PasswordShown, form_page};
use super::{cache, can_manage, display_name, feed_owned, history, keepable, load, source_label};
use crate::auth;
use crate::db;
use crate::db::audit::Entry;
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::page::{chrome, render};
use crate::web::session::{DistrictScope, set_flash};
use axum::extract::{Path, RawForm, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value};
use tower_sessions::Session;
use uuid::Uuid;

pub async fn new_form(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
) -> AppResult<Response> {
    let schools =
        db::schools::options(&state.pool, scope.district_id, scope.schools.as_deref()).await?;
    let mut v = FormValues::blank();
    if schools.len() == 1 {
        v.schools = vec![schools[0].id.to_string()];
    }
    let page = form_page(
        &session,
        &scope,
        &schools,
        v,
        FieldErrors::default(),
        None,
        None,
    )
    .await;
    Ok(render(&page)?.into_response())
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Path(guid): Path<String>,
) -> AppResult<Response> {
    let user = load(&state, &scope, &guid).await?;
    let schools =
        db::schools::options(&state.pool, scope.district_id, scope.schools.as_deref()).await?;
    let sync_names = db::syncs::names(&state.pool, scope.district_id).await?;
    let items = history::items(
        db::audit::for_entity(&state.pool, scope.district_id, user.id).await?,
        &sync_names,
    );
    let notice = user.archived_at.is_some().then(|| {
        "This user is archived: off the lists, search and master CSV, and unable to sign in. Restore them to make changes."
            .to_string()
    });
    let owner = super::owner::view(&state, &scope, &user).await?;
    let mut page = form_page(
        &session,
        &scope,
        &schools,
        FormValues::from_record(&user),
        FieldErrors::default(),
        notice,
        Some((&user, items, &sync_names)),
    )
    .await;
    page.owner = Some(owner);
    let classes = db::classes::of_user(
        &state.pool,
        scope.district_id,
        user.id,
        scope.schools.as_deref(),
    )
    .await?;
    page.classes = Some(
        classes
            .into_iter()
            .map(super::view::UserClass::from_row)
            .collect(),
    );
    Ok(render(&page)?.into_response())
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    RawForm(body): RawForm,
) -> AppResult<Response> {
    let (v, password) = FormValues::parse(&body);
    let all_schools = db::schools::options(&state.pool, scope.district_id, None).await?;
    let mine =
        db::schools::options(&state.pool, scope.district_id, scope.schools.as_deref()).await?;
    let valid = match validate(&state, &scope, &v, &password, None, &all_schools).await? {
        Ok(valid) => valid,
        Err(errors) => {
            let page = form_page(&session, &scope, &mine, v, errors, None, None).await;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
        }
    };
    let (secret, temporary) = match valid.password.clone() {
        Some(pw) => (pw, false),
        None => (auth::generate_temporary(), true),
    };
    let to_hash = secret.clone();
    let hash = if temporary {
        auth::hash_temporary(&to_hash)
    } else {
        // argon2 takes a password slot, like sign-ins (503 when they are all taken).
        let slot = state.passwords.enter().await?;
        slot.run(move || auth::hash_password(&to_hash)).await?
    };

    let id = Uuid::new_v4();
    let mut tx = state.pool.begin().await?;
    let now = state.clock.now();
    if let Err(e) = db::user_edit::insert(
        &mut *tx,
        scope.district_id,
        id,
        &valid.fields,
        &hash,
        temporary,
        now,
    )
    .await
    {
        return match constraint_field(&e) {
            Some((field, msg)) => {
                let mut errors = FieldErrors::default();
                errors.add(field, format!("{}{}.", msg[..1].to_uppercase(), &msg[1..]));
                let page = form_page(&session, &scope, &mine, v, errors, None, None).await;
                Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
            }
            None => Err(e.into()),
        };
    }
    db::user_edit::set_schools(&mut tx, scope.district_id, id, &valid.schools).await?;
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "user.create",
            entity_kind: "user",
            entity_id: Some(id),
            run_id: None,
            before: None,
            after: Some(Value::Object(snapshot(
                &valid.fields,
                &valid.schools,
                &all_schools,
            ))),
        },
    )
    .await?;
    tx.commit().await?;
    cache::forget(scope.district_id);
    tracing::info!(district = %scope.district_id, user = %id, "user added");

    let name = display_name(
        &valid.fields.first_name,
        &valid.fields.last_name,
        &valid.fields.username,
    );
    if !temporary {
        set_flash(&session, "success", format!("{name} added.")).await;
        return Ok(Redirect::to(&format!("/users/{id}")).into_response());
    }
    let page = PasswordShown {
        chrome: chrome(&session, Some(&scope.person), "/users").await,
        id,
        name,
        login: valid
            .fields
            .email
            .clone()
            .unwrap_or(valid.fields.username.clone()),
        password: secret,
        created: true,
    };
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        render(&page)?,
    )
        .into_response())
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Path(guid): Path<String>,
    RawForm(body): RawForm,
) -> AppResult<Response> {
    let existing = load(&state, &scope, &guid).await?;
    if !can_manage(&scope, &existing) {
        return Err(AppError::Forbidden);
    }
    if existing.archived_at.is_some() {
        return Err(AppError::Conflict(
            "This user is archived. Restore them before making changes.".into(),
        ));
    }
    let (v, _) = FormValues::parse(&body);
    let all_schools = db::schools::options(&state.pool, scope.district_id, None).await?;
    let mine =
        db::schools::options(&state.pool, scope.district_id, scope.schools.as_deref()).await?;
    let sync_names = db::syncs::names(&state.pool, scope.district_id).await?;
    let again = |v: FormValues, errors: FieldErrors, notice: Option<String>, status: StatusCode| {
        let (state, session, scope, mine, existing) = (&state, &session, &scope, &mine, &existing);
        let sync_names = &sync_names;
        async move {
            let items = history::items(
                db::audit::for_entity(&state.pool, scope.district_id, existing.id).await?,
                sync_names,
            );
            let page = form_page(
                session,
                scope,
                mine,
                v,
                errors,
                notice,
                Some((existing, items, sync_names)),
            )
            .await;
            Ok::<_, AppError>((status, render(&page)?).into_response())
        }
    };
    let valid = match validate(&state, &scope, &v, "", Some(&existing), &all_schools).await? {
        Ok(valid) => valid,
        Err(errors) => return again(v, errors, None, StatusCode::UNPROCESSABLE_ENTITY).await,
    };

    let before = snapshot(
        &record_fields(&existing),
        &existing.school_ids,
        &all_schools,
    );
    let after = snapshot(&valid.fields, &valid.schools, &all_schools);
    let changed: Vec<&String> = after
        .iter()
        .filter(|(k, val)| before.get(*k) != Some(val))
        .map(|(k, _)| k)
        .collect();
    if changed.is_empty() {
        set_flash(&session, "info", "Nothing to save: no field was changed.").await;
        return Ok(Redirect::to(&format!("/users/{}", existing.id)).into_response());
    }

    let mut tx = state.pool.begin().await?;
    let written = match db::user_edit::update(
        &mut *tx,
        scope.district_id,
        existing.id,
        v.version,
        &valid.fields,
    )
    .await
    {
        Ok(w) => w,
        Err(e) => {
            drop(tx);
            return match constraint_field(&e) {
                Some((field, msg)) => {
                    let mut errors = FieldErrors::default();
                    errors.add(field, format!("{}{}.", msg[..1].to_uppercase(), &msg[1..]));
                    again(v, errors, None, StatusCode::UNPROCESSABLE_ENTITY).await
                }
                None => Err(e.into()),
            };
        }
    };
    if written.is_none() {
        drop(tx);
        // Someone else saved in between: keep this admin's values, carry the current
        // version so that saving again (after a look) is a deliberate choice.
        let current = load(&state, &scope, &guid).await?;
        let mut v = v;
        v.version = current.version;
        let notice = "This user was changed by someone else since you opened the page, so your changes were not saved. \
                      Open the user again in another tab to see their changes; saving this form again will replace them."
            .to_string();
        return again(
            v,
            FieldErrors::default(),
            Some(notice),
            StatusCode::CONFLICT,
        )
        .await;
    }
    if before.get("school_external_id") != after.get("school_external_id") {
        db::user_edit::set_schools(&mut tx, scope.district_id, existing.id, &valid.schools).await?;
    }
    let pick = |m: &Map<String, Value>| -> Value {
        Value::Object(
            changed
                .iter()
                .map(|k| ((*k).clone(), m.get(*k).cloned().unwrap_or(Value::Null)))
                .collect(),
        )
    };
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "user.update",
            entity_kind: "user",
            entity_id: Some(existing.id),
            run_id: None,
            before: Some(pick(&before)),
            after: Some(pick(&after)),
        },
    )
    .await?;
    // SPEC §4, "Fields an admin edited": on a user a file or a sync provides, every feed field
    // this admin changed is kept against the feeds until released on this page.
    let keep: Vec<&str> = changed
        .iter()
        .map(|k| k.as_str())
        .filter(|k| keepable(k))
        .collect();
    let mut kept_now = Vec::new();
    if feed_owned(&existing.source) && !keep.is_empty() {
        let (old, new) =
            db::user_edit::keep_fields(&mut *tx, scope.district_id, existing.id, &keep).await?;
        if old != new {
            db::audit::record(
                &mut *tx,
                scope.district_id,
                &scope.actor(),
                Entry {
                    action: "user.keep_fields",
                    entity_kind: "user",
                    entity_id: Some(existing.id),
                    run_id: None,
                    before: Some(serde_json::json!({ "kept": old })),
                    after: Some(serde_json::json!({ "kept": new })),
                },
            )
            .await?;
        }
        kept_now = keep;
    }
    tx.commit().await?;
    cache::forget(scope.district_id);
    let name = display_name(
        &valid.fields.first_name,
        &valid.fields.last_name,
        &valid.fields.username,
    );
    if !kept_now.is_empty() {
        let owner = source_label(&existing.source, &sync_names);
        let fields: Vec<String> = kept_now.iter().map(|f| history::field_label(f)).collect();
        set_flash(
            &session,
            "success",
            format!(
                "{name} saved. Kept against {owner}: {} (release on this page to let {owner} update them again).",
                fields.join(", ")
            ),
        )
        .await;
        return Ok(Redirect::to(&format!("/users/{}", existing.id)).into_response());
    }
    set_flash(&session, "success", format!("{name} saved.")).await;
    Ok(Redirect::to(&format!("/users/{}", existing.id)).into_response())
}
