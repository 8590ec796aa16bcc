//! The second sign-in step (a TOTP or recovery code after the password), MFA enrolment on
//! one's account page (QR code, recovery codes), and the district's MFA requirement for its
//! admins.

use super::AppState;
use super::client::ClientIp;
use super::error::{AppError, AppResult};
use super::login;
use super::page::{Chrome, chrome, render};
use super::session::{DistrictAdmin, Person, mfa_enrolment_done, set_flash};
use crate::auth::mfa as totp;
use crate::crypto::{SecretKey, expose};
use crate::db;
use crate::db::accounts::AccountId;
use crate::db::audit::Entry;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use tower_sessions::Session;

#[derive(Template)]
#[template(path = "login_code.html")]
struct CodePage {
    chrome: Chrome,
    error: Option<String>,
}

pub async fn code_form(State(state): State<AppState>, session: Session) -> AppResult<Response> {
    if login::pending(&session, state.clock.now()).await.is_none() {
        return Ok(Redirect::to("/login").into_response());
    }
    let page = CodePage {
        chrome: chrome(&session, None, "").await,
        error: None,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// The code step: counted against the account like a password (same throttle), a TOTP
/// code works once, a recovery code too.
pub async fn code_submit(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    session: Session,
    Form(form): Form<CodeForm>,
) -> AppResult<Response> {
    let now = state.clock.now();
    let Some(passed) = login::pending(&session, now).await else {
        set_flash(&session, "info", "Sign in again.").await;
        return Ok(Redirect::to("/login").into_response());
    };
    let again = |status: StatusCode, error: &str| {
        let session = session.clone();
        let error = error.to_string();
        async move {
            let page = CodePage {
                chrome: chrome(&session, None, "").await,
                error: Some(error),
            };
            Ok::<_, AppError>((status, render(&page)?).into_response())
        }
    };
    let account = passed.account();
    let ip = client.to_string();
    let limits = db::throttle::Limits {
        per_account: state.config.login_max_failures,
        per_address: state.config.login_max_failures_per_address,
    };
    let attempt = match db::throttle::begin(
        &state.pool,
        "(mfa code)",
        &[account.throttle_key()],
        &ip,
        limits,
        now,
    )
    .await?
    {
        db::throttle::Attempt::Allowed(id) => id,
        db::throttle::Attempt::Throttled => {
            tracing::warn!(ip = %ip, "sign-in code throttled");
            return again(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "{} If you cannot wait, ask your district administrator to unlock your sign-in.",
                    AppError::TooManyRequests
                ),
            )
            .await;
        }
    };
    let right = check(&state, account, &form.code, now).await?;
    if !right {
        if let Some((district_id, actor)) = passed.admin_actor() {
            login::record_sign_in(&state, district_id, &actor, "signin.mfa_failure", &ip).await?;
        }
        return again(
            StatusCode::UNAUTHORIZED,
            "That code is not right. Try the next one.",
        )
        .await;
    }
    db::throttle::succeeded(&state.pool, attempt).await?;
    login::forget_pending(&session).await;
    login::complete(&state, &session, passed, true).await
}

/// Whether a TOTP code (unused, this step or the next/previous) or a recovery code (then
/// used up) is the account's.
async fn check(
    state: &AppState,
    account: AccountId,
    typed: &str,
    now: OffsetDateTime,
) -> AppResult<bool> {
    let Some(mfa) = db::accounts::mfa(&state.pool, account).await? else {
        return Ok(false);
    };
    if !mfa.enabled() {
        return Ok(false);
    }
    if totp::looks_like_recovery_code(typed) {
        let hash = totp::hash_recovery_code(typed);
        return Ok(db::accounts::mfa_use_recovery(&state.pool, account, &hash).await?);
    }
    let secret = open_secret(
        state,
        account,
        mfa.mfa_secret.as_deref().unwrap_or_default(),
    )?;
    match totp::check_code(&secret, typed, now, mfa.mfa_last_step) {
        Some(step) => Ok(db::accounts::mfa_use_step(&state.pool, account, step).await?),
        None => Ok(false),
    }
}

fn open_secret(state: &AppState, account: AccountId, sealed: &[u8]) -> AppResult<String> {
    let (a, b) = account.seal_ids();
    let secret = SecretKey::from_config(&state.config)?.open(sealed, a, b)?;
    Ok(expose(&secret).to_string())
}

// ---- enrolment on the account page ----

fn account_of(person: &Person) -> AppResult<AccountId> {
    match person {
        Person::Operator { id, .. } => Ok(AccountId::Operator(*id)),
        Person::Member(m) if m.portal_role.is_admin() => Ok(AccountId::User {
            district_id: m.district_id,
            user_id: m.id,
        }),
        Person::Member(_) => Err(AppError::NotFound),
    }
}

/// Whether this person may not turn MFA off (operators; admins of a requiring district).
async fn required(state: &AppState, person: &Person) -> AppResult<bool> {
    Ok(match person {
        Person::Operator { .. } => true,
        Person::Member(m) => {
            m.portal_role.is_admin()
                && db::accounts::admin_requires_mfa(&state.pool, m.district_id, m.id).await?
        }
    })
}

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaPage {
    chrome: Chrome,
    enabled: bool,
    required: bool,
    recovery_left: i32,
    /// Enrolment under way: the secret as text and its QR code (SVG).
    secret: Option<String>,
    qr: Option<String>,
    /// Just made: shown once.
    recovery_codes: Vec<String>,
    error: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    person: Person,
) -> AppResult<Response> {
    let account = account_of(&person)?;
    let mfa = db::accounts::mfa(&state.pool, account)
        .await?
        .unwrap_or_default();
    let mut page = MfaPage {
        chrome: chrome(&session, Some(&person), "/account").await,
        enabled: mfa.enabled(),
        required: required(&state, &person).await?,
        recovery_left: mfa.recovery_left,
        secret: None,
        qr: None,
        recovery_codes: Vec::new(),
        error: None,
    };
    if !page.enabled {
        // A new secret each time the page opens until a code confirms one.
        let secret = totp::generate_secret();
        let (a, b) = account.seal_ids();
        let sealed = SecretKey::from_config(&state.config)?.seal(&secret, a, b);
        db::accounts::mfa_begin(&state.pool, account, &sealed).await?;
        let label = person_label(&person);
        let url = totp::otpauth_url(&secret, &label)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("TOTP secret refused")))?;
        page.qr = totp::qr_svg(&url);
        page.secret = Some(secret);
    }
    Ok(render(&page)?.into_response())
}

fn person_label(person: &Person) -> String {
    match person {
        Person::Operator { email, .. } => email.clone(),
        Person::Member(m) => m.email.clone().unwrap_or_else(|| m.username.clone()),
    }
}

/// Confirm an enrolment with the app's first code: MFA on, ten recovery codes shown once.
pub async fn confirm(
    State(state): State<AppState>,
    session: Session,
    person: Person,
    Form(form): Form<CodeForm>,
) -> AppResult<Response> {
    let account = account_of(&person)?;
    let now = state.clock.now();
    let mfa = db::accounts::mfa(&state.pool, account)
        .await?
        .unwrap_or_default();
    let step = match (&mfa.mfa_secret, mfa.enabled()) {
        (Some(sealed), false) => {
            let secret = open_secret(&state, account, sealed)?;
            totp::check_code(&secret, &form.code, now, None)
        }
        _ => return Ok(Redirect::to("/account/mfa").into_response()),
    };
    let Some(step) = step else {
        // Keep the same secret on the page: the app already holds it.
        let secret = open_secret(
            &state,
            account,
            mfa.mfa_secret.as_deref().unwrap_or_default(),
        )?;
        let url = totp::otpauth_url(&secret, &person_label(&person)).unwrap_or_default();
        let page = MfaPage {
            chrome: chrome(&session, Some(&person), "/account").await,
            enabled: false,
            required: required(&state, &person).await?,
            recovery_left: 0,
            qr: totp::qr_svg(&url),
            secret: Some(secret),
            recovery_codes: Vec::new(),
            error: Some("That code is not right: enter the code your app shows now.".into()),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let codes = totp::generate_recovery_codes();
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| totp::hash_recovery_code(c)).collect();
    if !db::accounts::mfa_enable(&state.pool, account, step, &hashes, now).await? {
        return Ok(Redirect::to("/account/mfa").into_response());
    }
    audit(&state, &person, "user.mfa_enabled").await?;
    mfa_enrolment_done(&session).await;
    let page = MfaPage {
        chrome: chrome(&session, Some(&person), "/account").await,
        enabled: true,
        required: required(&state, &person).await?,
        recovery_left: codes.len() as i32,
        secret: None,
        qr: None,
        recovery_codes: codes,
        error: None,
    };
    Ok(render(&page)?.into_response())
}

/// New recovery codes (the old ones stop working), shown once.
pub async fn new_recovery_codes(
    State(state): State<AppState>,
    session: Session,
    person: Person,
) -> AppResult<Response> {
    let account = account_of(&person)?;
    let codes = totp::generate_recovery_codes();
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| totp::hash_recovery_code(c)).collect();
    if !db::accounts::mfa_replace_recovery(&state.pool, account, &hashes).await? {
        return Ok(Redirect::to("/account/mfa").into_response());
    }
    audit(&state, &person, "user.mfa_recovery_codes").await?;
    let page = MfaPage {
        chrome: chrome(&session, Some(&person), "/account").await,
        enabled: true,
        required: required(&state, &person).await?,
        recovery_left: codes.len() as i32,
        secret: None,
        qr: None,
        recovery_codes: codes,
        error: None,
    };
    Ok(render(&page)?.into_response())
}

/// Turn MFA off (not where it is required).
pub async fn disable(
    State(state): State<AppState>,
    session: Session,
    person: Person,
) -> AppResult<Response> {
    let account = account_of(&person)?;
    if required(&state, &person).await? {
        return Err(AppError::BadRequest(
            "MFA is required for this account and cannot be turned off".into(),
        ));
    }
    db::accounts::mfa_disable(&state.pool, account).await?;
    audit(&state, &person, "user.mfa_disabled").await?;
    set_flash(&session, "success", "Two-step sign-in is off.").await;
    Ok(Redirect::to("/account/mfa").into_response())
}

/// A member's MFA change in their district's audit log (operators: the server log).
async fn audit(state: &AppState, person: &Person, action: &str) -> AppResult<()> {
    match person {
        Person::Member(m) => {
            db::audit::record(
                &state.pool,
                m.district_id,
                &person.actor(),
                Entry {
                    action,
                    entity_kind: "user",
                    entity_id: Some(m.id),
                    run_id: None,
                    before: None,
                    after: None,
                },
            )
            .await?;
        }
        Person::Operator { id, .. } => tracing::info!(operator = %id, action, "operator MFA"),
    }
    Ok(())
}

// ---- the district's requirement ----

#[derive(Template)]
#[template(path = "settings_mfa.html")]
struct SettingsMfaPage {
    chrome: Chrome,
    required: bool,
}

pub async fn settings_show(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
) -> AppResult<Response> {
    let page = SettingsMfaPage {
        chrome: chrome(&session, Some(&scope.person), "/settings").await,
        required: db::accounts::district_requires_mfa(&state.pool, scope.district_id).await?,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
pub struct RequireForm {
    #[serde(default)]
    required: Option<String>,
}

pub async fn settings_save(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<RequireForm>,
) -> AppResult<Response> {
    let required = form.required.is_some();
    let before = db::accounts::district_requires_mfa(&state.pool, scope.district_id).await?;
    let mut tx = state.pool.begin().await?;
    db::accounts::set_district_requires_mfa(&mut *tx, scope.district_id, required).await?;
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "district.mfa_requirement",
            entity_kind: "district",
            entity_id: Some(scope.district_id),
            run_id: None,
            before: Some(serde_json::json!({ "mfa_required_for_admins": before })),
            after: Some(serde_json::json!({ "mfa_required_for_admins": required })),
        },
    )
    .await?;
    tx.commit().await?;
    set_flash(
        &session,
        "success",
        if required {
            "Admins must now use two-step sign-in: each sets it up at their next sign-in."
        } else {
            "Two-step sign-in is now optional for admins."
        },
    )
    .await;
    Ok(Redirect::to("/settings/mfa").into_response())
}
