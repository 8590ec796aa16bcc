//! Single sign-on over HTTP (issue 17, item 1): a district's sign-in page with its
//! providers' buttons (`/login/{slug}`), the start of a sign-in (`POST
//! /login/{slug}/sso/{id}`: state, nonce and PKCE verifier kept in the session), the
//! provider's callback (`/login/sso/callback`: one use per started sign-in), Settings →
//! Single sign-on (providers, "Require SSO"), and the check the password sign-in makes.

use super::AppState;
use super::client::ClientIp;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{
    DistrictAdmin, DistrictScope, Person, Who, mark_single_sign_on, set_flash, sign_in,
};
use crate::crypto::SecretKey;
use crate::db;
use crate::db::audit::{Actor, Entry};
use crate::domain::{ActorKind, PortalRole};
use crate::sso::{self, Candidate, Matched, Requirement, client};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use uuid::Uuid;

/// The session key of a started sign-in.
const PENDING: &str = "sso_pending";
/// A started sign-in must come back within this many seconds.
const PENDING_SECS: i64 = 600;
/// The callback path registered at every provider.
pub const CALLBACK_PATH: &str = "/login/sso/callback";

/// A started sign-in, kept in the (not yet signed-in) session until its callback.
#[derive(Serialize, Deserialize)]
struct Pending {
    district_id: Uuid,
    provider_id: Uuid,
    slug: String,
    state: String,
    nonce: String,
    pkce_verifier: String,
    redirect_url: String,
    started_at: i64,
}

/// A provider's button on the sign-in page.
pub struct Button {
    pub id: Uuid,
    pub label: String,
}

#[derive(Template)]
#[template(path = "login_district.html")]
struct DistrictLoginPage {
    chrome: Chrome,
    error: Option<String>,
    login: String,
    district: String,
    ask_district: bool,
    district_name: String,
    buttons: Vec<Button>,
}

async fn district_login(
    state: &AppState,
    session: &Session,
    slug: &str,
    status: StatusCode,
    error: Option<String>,
) -> AppResult<Response> {
    let Some((district_id, name)) = db::sso::district_by_slug(&state.pool, slug).await? else {
        return Err(AppError::NotFound);
    };
    let buttons = db::sso::providers(&state.pool, district_id)
        .await?
        .into_iter()
        .filter(|p| p.enabled)
        .map(|p| Button {
            id: p.id,
            label: p.label,
        })
        .collect();
    let page = DistrictLoginPage {
        chrome: chrome(session, None, "").await,
        error,
        login: String::new(),
        district: slug.to_string(),
        ask_district: false,
        district_name: name,
        buttons,
    };
    Ok((status, render(&page)?).into_response())
}

/// `GET /login/{slug}`: the district's sign-in page: its providers' buttons, and the
/// password form for that district.
pub async fn login_page(
    State(state): State<AppState>,
    session: Session,
    person: Option<Person>,
    Path(slug): Path<String>,
) -> AppResult<Response> {
    if person.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    district_login(&state, &session, &slug.to_lowercase(), StatusCode::OK, None).await
}

/// This portal's callback URL: `ROLLCALL_PUBLIC_URL`, else the address the browser used
/// (plain http: the server itself speaks no TLS).
fn callback_url(state: &AppState, headers: &HeaderMap) -> String {
    match state.config.public_url.as_deref() {
        Some(u) if !u.is_empty() => format!("{}{CALLBACK_PATH}", u.trim_end_matches('/')),
        _ => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}{CALLBACK_PATH}")
        }
    }
}

fn http(state: &AppState) -> reqwest::Client {
    crate::sync::http::client(state.config.sync_allow_private)
}

/// `POST /login/{slug}/sso/{id}`: start a sign-in with one of the district's providers.
pub async fn begin(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path((slug, id)): Path<(String, Uuid)>,
) -> AppResult<Response> {
    let slug = slug.to_lowercase();
    let Some((district_id, _)) = db::sso::district_by_slug(&state.pool, &slug).await? else {
        return Err(AppError::NotFound);
    };
    let provider = match db::sso::provider(&state.pool, district_id, id).await? {
        Some(p) if p.enabled => p,
        _ => return Err(AppError::NotFound),
    };
    let secret = SecretKey::from_config(&state.config)?.open(
        &provider.client_secret_sealed,
        district_id,
        provider.id,
    )?;
    let redirect_url = callback_url(&state, &headers);
    let started = match client::start(
        &http(&state),
        &client::Provider {
            issuer_url: &provider.issuer_url,
            client_id: &provider.client_id,
            client_secret: crate::crypto::expose(&secret),
            redirect_url: &redirect_url,
        },
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(district = %district_id, provider = %provider.id, error = %e, "single sign-on could not start");
            return district_login(
                &state,
                &session,
                &slug,
                StatusCode::BAD_GATEWAY,
                Some(e.words().to_string()),
            )
            .await;
        }
    };
    session
        .insert(
            PENDING,
            Pending {
                district_id,
                provider_id: provider.id,
                slug,
                state: started.state,
                nonce: started.nonce,
                pkce_verifier: started.pkce_verifier,
                redirect_url,
                started_at: state.clock.now().unix_timestamp(),
            },
        )
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))?;
    Ok(Redirect::to(&started.authorize_url).into_response())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// A refused single sign-on in the district's audit log: who it claimed to be (when the
/// provider said), which provider, why.
async fn record_refusal(
    state: &AppState,
    pending: &Pending,
    who: Option<(&str, Option<Uuid>)>,
    reason: &str,
    ip: &str,
) -> AppResult<()> {
    let (label, id) = who.unwrap_or(("unknown identity", None));
    db::audit::record(
        &state.pool,
        pending.district_id,
        &Actor {
            kind: ActorKind::User,
            id,
            label: label.to_string(),
        },
        Entry {
            action: "signin.sso_refused",
            entity_kind: "user",
            entity_id: None,
            run_id: None,
            before: None,
            after: Some(json!({ "provider": pending.provider_id, "reason": reason, "ip": ip })),
        },
    )
    .await?;
    Ok(())
}

/// `GET /login/sso/callback`: the provider sends the browser back here. The started
/// sign-in is taken from the session (so a `state` works once), checked, and the identity
/// matched to an existing active user of the district.
pub async fn callback(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    session: Session,
    Query(q): Query<CallbackQuery>,
) -> AppResult<Response> {
    let ip = client_ip.to_string();
    let pending: Option<Pending> = session.remove(PENDING).await.ok().flatten();
    let Some(pending) = pending else {
        tracing::warn!(ip = %ip, "single sign-on callback without a started sign-in (replayed or expired)");
        return expired_page(&state, &session, None).await;
    };
    let refuse = |status: StatusCode, words: String| {
        let slug = pending.slug.clone();
        let state = state.clone();
        let session = session.clone();
        async move { district_login(&state, &session, &slug, status, Some(words)).await }
    };
    let state_ok = q
        .state
        .as_deref()
        .is_some_and(|s| bool::from(s.as_bytes().ct_eq(pending.state.as_bytes())));
    if !state_ok {
        record_refusal(&state, &pending, None, "state_mismatch", &ip).await?;
        return expired_page(&state, &session, Some(&pending.slug)).await;
    }
    if state.clock.now().unix_timestamp() - pending.started_at > PENDING_SECS {
        record_refusal(&state, &pending, None, "too_slow", &ip).await?;
        return expired_page(&state, &session, Some(&pending.slug)).await;
    }
    if let Some(error) = q.error.as_deref() {
        record_refusal(&state, &pending, None, "provider_error", &ip).await?;
        tracing::info!(district = %pending.district_id, error = %error, "identity provider returned an error");
        return refuse(
            StatusCode::FORBIDDEN,
            "The identity provider did not sign you in. Try again.".into(),
        )
        .await;
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(AppError::BadRequest("the callback has no code".into()));
    };
    let provider =
        match db::sso::provider(&state.pool, pending.district_id, pending.provider_id).await? {
            Some(p) if p.enabled => p,
            _ => {
                return refuse(
                StatusCode::FORBIDDEN,
                "This sign-in provider is no longer available. Ask your district administrator."
                    .into(),
            )
            .await;
            }
        };
    let secret = SecretKey::from_config(&state.config)?.open(
        &provider.client_secret_sealed,
        provider.district_id,
        provider.id,
    )?;
    let identity = match client::finish(
        &http(&state),
        &client::Provider {
            issuer_url: &provider.issuer_url,
            client_id: &provider.client_id,
            client_secret: crate::crypto::expose(&secret),
            redirect_url: &pending.redirect_url,
        },
        code,
        &pending.pkce_verifier,
        &pending.nonce,
        state.clock.now(),
    )
    .await
    {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(district = %pending.district_id, provider = %provider.id, error = %e, "single sign-on refused");
            record_refusal(&state, &pending, None, e.code, &ip).await?;
            return refuse(StatusCode::FORBIDDEN, e.words().to_string()).await;
        }
    };
    let d = pending.district_id;
    let by_subject =
        db::sso::account_by_subject(&state.pool, d, provider.id, &identity.subject).await?;
    let by_email = match (&by_subject, identity.email.as_deref()) {
        (None, Some(email)) => db::sso::account_by_email(&state.pool, d, email).await?,
        _ => None,
    };
    let candidate = |a: &db::sso::Account| Candidate {
        id: a.id,
        status: a.status,
        archived: a.archived_at.is_some(),
    };
    let decided = sso::decide(
        &identity,
        &provider.allowed_domains,
        by_subject.as_ref().map(candidate).as_ref(),
        by_email.as_ref().map(candidate).as_ref(),
    );
    let label = identity
        .email
        .clone()
        .unwrap_or_else(|| format!("subject {}", identity.subject));
    let (user_id, matched) = match decided {
        Ok(found) => found,
        Err(why) => {
            let known = by_subject.as_ref().or(by_email.as_ref()).map(|a| a.id);
            record_refusal(&state, &pending, Some((&label, known)), why.code(), &ip).await?;
            return refuse(StatusCode::FORBIDDEN, why.words().to_string()).await;
        }
    };
    let account = by_subject
        .or(by_email)
        .filter(|a| a.id == user_id)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("matched account vanished")))?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    db::sso::link_identity(&mut *tx, d, provider.id, &identity.subject, user_id, now).await?;
    db::audit::record(
        &mut *tx,
        d,
        &Actor {
            kind: ActorKind::User,
            id: Some(user_id),
            label: account
                .email
                .clone()
                .unwrap_or_else(|| account.username.clone()),
        },
        Entry {
            action: "signin.sso",
            entity_kind: "user",
            entity_id: None,
            run_id: None,
            before: None,
            after: Some(json!({
                "provider": provider.label,
                "matched_by": match matched { Matched::Subject => "subject", Matched::Email => "email" },
                "ip": ip,
            })),
        },
    )
    .await?;
    tx.commit().await?;
    sign_in(
        &session,
        Who::Member {
            district_id: d,
            user_id,
        },
        account.session_epoch,
    )
    .await?;
    mark_single_sign_on(&session).await?;
    tracing::info!(district = %d, user = %user_id, provider = %provider.id, "signed in with single sign-on");
    Ok(Redirect::to("/").into_response())
}

/// A callback with no matching started sign-in: replayed, from another browser, or too old.
async fn expired_page(
    state: &AppState,
    session: &Session,
    slug: Option<&str>,
) -> AppResult<Response> {
    let words = "This sign-in link has expired or was already used. Start again.".to_string();
    match slug {
        Some(slug) => {
            district_login(state, session, slug, StatusCode::FORBIDDEN, Some(words)).await
        }
        None => {
            set_flash(session, "error", words).await;
            Ok(Redirect::to("/login").into_response())
        }
    }
}

/// The check the password sign-in makes (`web::login`) once a district member's password
/// is right: `Some(words)` when the district requires single sign-on of this account (the
/// refusal is audited). Hook for MFA: the break-glass admin signs in here with a password,
/// so the MFA step of the password path must apply to them.
pub async fn password_refusal(
    state: &AppState,
    district_id: Uuid,
    user_id: Uuid,
    role: PortalRole,
    label: &str,
) -> AppResult<Option<String>> {
    let p = db::sso::policy(&state.pool, district_id).await?;
    let req = Requirement {
        for_users: p.require_for_users,
        for_admins: p.require_for_admins,
        break_glass: p.break_glass_user_id,
    };
    if sso::password_allowed(&req, user_id, role) {
        return Ok(None);
    }
    db::audit::record(
        &state.pool,
        district_id,
        &Actor {
            kind: ActorKind::User,
            id: Some(user_id),
            label: label.to_string(),
        },
        Entry {
            action: "signin.sso_required",
            entity_kind: "user",
            entity_id: None,
            run_id: None,
            before: None,
            after: None,
        },
    )
    .await?;
    let slug = db::sso::district_slug(&state.pool, district_id).await?;
    Ok(Some(format!(
        "Your district signs in with single sign-on: use your district account's button at /login/{slug}."
    )))
}

// ---------------------------------------------------------------- Settings → Single sign-on

pub struct ProviderLine {
    pub id: Uuid,
    pub label: String,
    pub issuer_url: String,
    pub client_id: String,
    pub domains: String,
    pub enabled: bool,
}

pub struct AdminChoice {
    pub id: Uuid,
    pub name: String,
    pub chosen: bool,
}

#[derive(Template)]
#[template(path = "sso_settings.html")]
struct SettingsPage {
    chrome: Chrome,
    district_name: String,
    district_slug: String,
    callback_url: String,
    providers: Vec<ProviderLine>,
    require_for_users: bool,
    require_for_admins: bool,
    admins: Vec<AdminChoice>,
    error: Option<String>,
    form: ProviderForm,
}

#[derive(Template)]
#[template(path = "sso_provider.html")]
struct ProviderPage {
    chrome: Chrome,
    district_name: String,
    callback_url: String,
    id: Uuid,
    error: Option<String>,
    form: ProviderForm,
}

/// The provider form (add and edit). A checkbox is present when on.
#[derive(Deserialize, Default, Clone)]
pub struct ProviderForm {
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub issuer_url: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    #[serde(default)]
    pub domains: String,
    #[serde(default)]
    pub enabled: Option<String>,
}

fn line(p: &db::sso::Provider) -> ProviderLine {
    ProviderLine {
        id: p.id,
        label: p.label.clone(),
        issuer_url: p.issuer_url.clone(),
        client_id: p.client_id.clone(),
        domains: p.allowed_domains.join(", "),
        enabled: p.enabled,
    }
}

async fn settings_page(
    state: &AppState,
    session: &Session,
    scope: &DistrictScope,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<String>,
    form: ProviderForm,
) -> AppResult<Response> {
    let d = scope.district_id;
    let policy = db::sso::policy(&state.pool, d).await?;
    let admins = db::sso::district_admins(&state.pool, d)
        .await?
        .into_iter()
        .map(|(id, name)| AdminChoice {
            id,
            name,
            chosen: policy.break_glass_user_id == Some(id),
        })
        .collect();
    let page = SettingsPage {
        chrome: chrome(session, Some(&scope.person), "/settings").await,
        district_name: scope.district_name.clone(),
        district_slug: scope.district_slug.clone(),
        callback_url: callback_url(state, headers),
        providers: db::sso::providers(&state.pool, d)
            .await?
            .iter()
            .map(line)
            .collect(),
        require_for_users: policy.require_for_users,
        require_for_admins: policy.require_for_admins,
        admins,
        error,
        form,
    };
    Ok((status, render(&page)?).into_response())
}

/// `GET /settings/sso`.
pub async fn settings(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    DistrictAdmin(scope): DistrictAdmin,
) -> AppResult<Response> {
    let form = ProviderForm {
        enabled: Some("on".into()),
        ..ProviderForm::default()
    };
    settings_page(
        &state,
        &session,
        &scope,
        &headers,
        StatusCode::OK,
        None,
        form,
    )
    .await
}

/// The form checked, and the issuer's discovery document read when the issuer is new or
/// changed (so a typo shows now, not at the first sign-in). `stored_issuer`: an update's.
async fn checked(
    state: &AppState,
    form: &ProviderForm,
    stored_issuer: Option<&str>,
) -> Result<sso::Settings, String> {
    let new = stored_issuer.is_none();
    let settings = sso::check_settings(
        &sso::Typed {
            label: &form.label,
            issuer_url: &form.issuer_url,
            client_id: &form.client_id,
            client_secret: &form.client_secret,
            domains: &form.domains,
            enabled: form.enabled.is_some(),
        },
        new,
        state.config.sync_allow_private,
    )?;
    if stored_issuer == Some(settings.issuer_url.as_str()) {
        return Ok(settings);
    }
    if let Err(e) = client::discover(&http(state), &settings.issuer_url).await {
        tracing::info!(error = %e, "an SSO provider's discovery failed");
        return Err(format!(
            "The provider's discovery document could not be read from {}/.well-known/openid-configuration ({}).",
            settings.issuer_url, e.detail
        ));
    }
    Ok(settings)
}

fn provider_json(s: &sso::Settings) -> serde_json::Value {
    json!({
        "label": s.label, "issuer_url": s.issuer_url, "client_id": s.client_id,
        "allowed_domains": s.allowed_domains.join(", "), "enabled": s.enabled,
    })
}

fn stored_json(p: &db::sso::Provider) -> serde_json::Value {
    json!({
        "label": p.label, "issuer_url": p.issuer_url, "client_id": p.client_id,
        "allowed_domains": p.allowed_domains.join(", "), "enabled": p.enabled,
    })
}

async fn audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    scope: &DistrictScope,
    action: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> AppResult<()> {
    db::audit::record(
        &mut **tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action,
            entity_kind: "district",
            entity_id: Some(scope.district_id),
            run_id: None,
            before,
            after,
        },
    )
    .await?;
    Ok(())
}

/// `POST /settings/sso`: add a provider.
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<ProviderForm>,
) -> AppResult<Response> {
    let s = match checked(&state, &form, None).await {
        Ok(s) => s,
        Err(e) => {
            let mut kept = form.clone();
            kept.client_secret.clear();
            return settings_page(
                &state,
                &session,
                &scope,
                &headers,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(e),
                kept,
            )
            .await;
        }
    };
    let id = Uuid::now_v7();
    let sealed =
        SecretKey::from_config(&state.config)?.seal(&s.client_secret, scope.district_id, id);
    let mut tx = state.pool.begin().await?;
    db::sso::insert_provider(
        &mut *tx,
        scope.district_id,
        id,
        &db::sso::ProviderRow {
            label: &s.label,
            issuer_url: &s.issuer_url,
            client_id: &s.client_id,
            client_secret_sealed: Some(&sealed),
            allowed_domains: &s.allowed_domains,
            enabled: s.enabled,
        },
    )
    .await?;
    let mut after = provider_json(&s);
    after["id"] = json!(id);
    audit(&mut tx, &scope, "district.sso_add", None, Some(after)).await?;
    tx.commit().await?;
    set_flash(&session, "success", format!("Added “{}”.", s.label)).await;
    Ok(Redirect::to("/settings/sso").into_response())
}

async fn load(state: &AppState, scope: &DistrictScope, id: Uuid) -> AppResult<db::sso::Provider> {
    db::sso::provider(&state.pool, scope.district_id, id)
        .await?
        .ok_or(AppError::NotFound)
}

fn form_of(p: &db::sso::Provider) -> ProviderForm {
    ProviderForm {
        label: p.label.clone(),
        issuer_url: p.issuer_url.clone(),
        client_id: p.client_id.clone(),
        client_secret: String::new(),
        domains: p.allowed_domains.join(", "),
        enabled: p.enabled.then(|| "on".to_string()),
    }
}

async fn provider_page(
    state: &AppState,
    session: &Session,
    scope: &DistrictScope,
    headers: &HeaderMap,
    id: Uuid,
    error: Option<String>,
    form: ProviderForm,
) -> AppResult<Response> {
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = ProviderPage {
        chrome: chrome(session, Some(&scope.person), "/settings").await,
        district_name: scope.district_name.clone(),
        callback_url: callback_url(state, headers),
        id,
        error,
        form,
    };
    Ok((status, render(&page)?).into_response())
}

/// `GET /settings/sso/{id}`: edit a provider.
pub async fn edit(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let p = load(&state, &scope, id).await?;
    provider_page(&state, &session, &scope, &headers, id, None, form_of(&p)).await
}

/// `POST /settings/sso/{id}`: save a provider (an empty secret keeps the stored one).
pub async fn update(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
    Form(form): Form<ProviderForm>,
) -> AppResult<Response> {
    let before = load(&state, &scope, id).await?;
    let s = match checked(&state, &form, Some(&before.issuer_url)).await {
        Ok(s) => s,
        Err(e) => {
            let mut kept = form.clone();
            kept.client_secret.clear();
            return provider_page(&state, &session, &scope, &headers, id, Some(e), kept).await;
        }
    };
    let sealed = (!s.client_secret.is_empty()).then(|| {
        SecretKey::from_config(&state.config)
            .map(|k| k.seal(&s.client_secret, scope.district_id, id))
    });
    let sealed = sealed.transpose()?;
    let mut tx = state.pool.begin().await?;
    db::sso::update_provider(
        &mut *tx,
        scope.district_id,
        id,
        &db::sso::ProviderRow {
            label: &s.label,
            issuer_url: &s.issuer_url,
            client_id: &s.client_id,
            client_secret_sealed: sealed.as_deref(),
            allowed_domains: &s.allowed_domains,
            enabled: s.enabled,
        },
    )
    .await?;
    let mut after = provider_json(&s);
    if sealed.is_some() {
        after["client_secret"] = json!("replaced");
    }
    audit(
        &mut tx,
        &scope,
        "district.sso_update",
        Some(stored_json(&before)),
        Some(after),
    )
    .await?;
    tx.commit().await?;
    set_flash(&session, "success", format!("Saved “{}”.", s.label)).await;
    Ok(Redirect::to("/settings/sso").into_response())
}

/// `POST /settings/sso/{id}/delete`: remove a provider (not the last enabled one while the
/// district requires single sign-on).
pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let before = load(&state, &scope, id).await?;
    let policy = db::sso::policy(&state.pool, scope.district_id).await?;
    let others_enabled = db::sso::providers(&state.pool, scope.district_id)
        .await?
        .iter()
        .filter(|p| p.enabled && p.id != id)
        .count();
    if (policy.require_for_users || policy.require_for_admins) && others_enabled == 0 {
        return settings_page(
            &state,
            &session,
            &scope,
            &headers,
            StatusCode::CONFLICT,
            Some("This is the district's last sign-in provider while single sign-on is required: turn “Require single sign-on” off first.".into()),
            ProviderForm::default(),
        )
        .await;
    }
    let mut tx = state.pool.begin().await?;
    db::sso::delete_provider(&mut *tx, scope.district_id, id).await?;
    audit(
        &mut tx,
        &scope,
        "district.sso_delete",
        Some(stored_json(&before)),
        None,
    )
    .await?;
    tx.commit().await?;
    set_flash(&session, "success", format!("Removed “{}”.", before.label)).await;
    Ok(Redirect::to("/settings/sso").into_response())
}

#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    require_for_users: Option<String>,
    #[serde(default)]
    require_for_admins: Option<String>,
    #[serde(default)]
    break_glass: String,
}

/// `POST /settings/sso/policy`: "Require single sign-on" for users, and for admins but the
/// break-glass admin.
pub async fn save_policy(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<PolicyForm>,
) -> AppResult<Response> {
    let d = scope.district_id;
    let req = Requirement {
        for_users: form.require_for_users.is_some(),
        for_admins: form.require_for_admins.is_some(),
        break_glass: form.break_glass.trim().parse().ok(),
    };
    let admins: Vec<Uuid> = db::sso::district_admins(&state.pool, d)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let enabled = db::sso::providers(&state.pool, d)
        .await?
        .iter()
        .filter(|p| p.enabled)
        .count();
    if let Err(e) = sso::check_requirement(&req, &admins, enabled) {
        return settings_page(
            &state,
            &session,
            &scope,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(e),
            ProviderForm::default(),
        )
        .await;
    }
    let before = db::sso::policy(&state.pool, d).await?;
    let after = db::sso::Policy {
        require_for_users: req.for_users,
        require_for_admins: req.for_admins,
        // The break-glass admin matters only while admins must use single sign-on.
        break_glass_user_id: req.break_glass.filter(|_| req.for_admins),
    };
    let as_json = |p: &db::sso::Policy| {
        json!({
            "require_for_users": p.require_for_users,
            "require_for_admins": p.require_for_admins,
            "break_glass_user": p.break_glass_user_id,
        })
    };
    let mut tx = state.pool.begin().await?;
    db::sso::save_policy(&mut *tx, d, &after).await?;
    audit(
        &mut tx,
        &scope,
        "district.sso_policy",
        Some(as_json(&before)),
        Some(as_json(&after)),
    )
    .await?;
    tx.commit().await?;
    set_flash(&session, "success", "Single sign-on requirement saved.").await;
    Ok(Redirect::to("/settings/sso").into_response())
}
