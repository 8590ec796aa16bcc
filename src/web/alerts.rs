//! Settings → Alerts (district admins only): rules, recipients, "stale after", the webhook
//! and its secret, test alerts, and the delivery log. Every change is audited.

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{DistrictAdmin, DistrictScope, set_flash};
use crate::alerts::send::{generate_webhook_secret, seal_webhook_secret};
use crate::db;
use crate::db::alert_delivery::LogRow;
use crate::db::audit::Entry;
use crate::domain::alerts::Rules;
use crate::domain::health::EventKind;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

/// Lines of the delivery log shown.
const LOG_LINES: i64 = 50;

pub struct LogLine {
    pub row: LogRow,
    pub event: &'static str,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    district_name: String,
    rules: Rules,
    recipients: Vec<String>,
    stale_after_hours: i32,
    webhook_url: String,
    webhook_enabled: bool,
    has_secret: bool,
    new_secret: Option<String>,
    smtp_configured: bool,
    log: Vec<LogLine>,
}

async fn page(
    state: &AppState,
    session: &Session,
    scope: &DistrictScope,
    new_secret: Option<String>,
) -> AppResult<Response> {
    let d = scope.district_id;
    let settings = db::alert_delivery::settings(&state.pool, d).await?;
    let log = db::alert_delivery::log(&state.pool, d, LOG_LINES)
        .await?
        .into_iter()
        .map(|row| LogLine {
            event: EventKind::parse(&row.kind).map_or("Event", EventKind::title),
            row,
        })
        .collect();
    let page = AlertsPage {
        chrome: chrome(session, Some(&scope.person), "/settings").await,
        district_name: scope.district_name.clone(),
        rules: settings.rules,
        recipients: db::alert_delivery::recipients(&state.pool, d).await?,
        stale_after_hours: db::health::stale_after_hours(&state.pool, d).await?,
        webhook_url: settings.webhook_url.unwrap_or_default(),
        webhook_enabled: settings.webhook_enabled,
        has_secret: settings.webhook_secret_sealed.is_some(),
        new_secret,
        smtp_configured: state
            .config
            .smtp_host
            .as_deref()
            .is_some_and(|h| !h.is_empty()),
        log,
    };
    Ok(render(&page)?.into_response())
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
) -> AppResult<Response> {
    page(&state, &session, &scope, None).await
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

fn rules_json(r: &Rules) -> serde_json::Value {
    json!({
        "run_failed": r.run_failed, "needs_review": r.needs_review, "run_errors": r.run_errors,
        "errors_above": r.errors_above, "sync_failed": r.sync_failed,
        "source_stale": r.source_stale, "sync_resumed": r.sync_resumed,
    })
}

/// The rules form: a checkbox is present when on.
#[derive(Deserialize)]
pub struct RulesForm {
    #[serde(default)]
    run_failed: Option<String>,
    #[serde(default)]
    needs_review: Option<String>,
    #[serde(default)]
    run_errors: Option<String>,
    #[serde(default)]
    errors_above: Option<String>,
    #[serde(default)]
    sync_failed: Option<String>,
    #[serde(default)]
    source_stale: Option<String>,
    #[serde(default)]
    sync_resumed: Option<String>,
    #[serde(default)]
    stale_after_hours: Option<String>,
}

pub async fn save_rules(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<RulesForm>,
) -> AppResult<Response> {
    let d = scope.district_id;
    let errors_above = match form.errors_above.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(n) => n
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=1_000_000_000).contains(n))
            .ok_or_else(|| {
                AppError::Unprocessable(
                    "“More than N error rows” needs a whole number of 0 or more.".into(),
                )
            })?,
    };
    let before_hours = db::health::stale_after_hours(&state.pool, d).await?;
    let hours = match form.stale_after_hours.as_deref().map(str::trim) {
        None | Some("") => before_hours,
        Some(h) => h
            .parse::<i32>()
            .ok()
            .filter(|h| (1..=8760).contains(h))
            .ok_or_else(|| {
                AppError::Unprocessable("“Stale after” is a number of hours from 1 to 8760.".into())
            })?,
    };
    let rules = Rules {
        run_failed: form.run_failed.is_some(),
        needs_review: form.needs_review.is_some(),
        run_errors: form.run_errors.is_some(),
        errors_above,
        sync_failed: form.sync_failed.is_some(),
        source_stale: form.source_stale.is_some(),
        sync_resumed: form.sync_resumed.is_some(),
    };
    let before = db::alert_delivery::settings(&state.pool, d).await?.rules;
    let mut tx = state.pool.begin().await?;
    db::alert_delivery::save_rules(&mut *tx, d, &rules).await?;
    db::health::set_stale_after_hours(&mut *tx, d, hours).await?;
    let mut b = rules_json(&before);
    b["stale_after_hours"] = json!(before_hours);
    let mut a = rules_json(&rules);
    a["stale_after_hours"] = json!(hours);
    audit(&mut tx, &scope, "alerts.rules", Some(b), Some(a)).await?;
    tx.commit().await?;
    set_flash(&session, "success", "Alert rules saved.").await;
    Ok(Redirect::to("/settings/alerts").into_response())
}

#[derive(Deserialize)]
pub struct RecipientForm {
    #[serde(default)]
    email: String,
}

pub async fn add_recipient(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<RecipientForm>,
) -> AppResult<Response> {
    let Some(email) = crate::domain::parse_email(&form.email) else {
        return Err(AppError::Unprocessable(format!(
            "“{}” is not an email address.",
            form.email.trim()
        )));
    };
    if email.parse::<lettre::Address>().is_err() {
        return Err(AppError::Unprocessable(format!(
            "“{email}” is not an email address."
        )));
    }
    let mut tx = state.pool.begin().await?;
    let by = scope.person.display_name();
    if db::alert_delivery::add_recipient(&mut *tx, scope.district_id, &email, &by).await? {
        audit(
            &mut tx,
            &scope,
            "alerts.recipient.add",
            None,
            Some(json!({ "email": email })),
        )
        .await?;
    }
    tx.commit().await?;
    set_flash(&session, "success", format!("{email} will receive alerts.")).await;
    Ok(Redirect::to("/settings/alerts").into_response())
}

pub async fn remove_recipient(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<RecipientForm>,
) -> AppResult<Response> {
    let email = form.email.trim().to_lowercase();
    let mut tx = state.pool.begin().await?;
    if !db::alert_delivery::remove_recipient(&mut *tx, scope.district_id, &email).await? {
        return Err(AppError::NotFound);
    }
    audit(
        &mut tx,
        &scope,
        "alerts.recipient.remove",
        Some(json!({ "email": email })),
        None,
    )
    .await?;
    tx.commit().await?;
    set_flash(
        &session,
        "success",
        format!("{email} no longer receives alerts."),
    )
    .await;
    Ok(Redirect::to("/settings/alerts").into_response())
}

#[derive(Deserialize)]
pub struct WebhookForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    enabled: Option<String>,
}

pub async fn save_webhook(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<WebhookForm>,
) -> AppResult<Response> {
    let d = scope.district_id;
    let url = form.url.trim();
    let enabled = form.enabled.is_some();
    if !url.is_empty() {
        let parsed = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                AppError::Unprocessable("The webhook URL must be an http(s) URL.".into())
            })?;
        crate::sync::policy::check_url(&parsed, state.config.sync_allow_private)
            .map_err(|e| AppError::Unprocessable(format!("The webhook URL is refused: {e}.")))?;
    } else if enabled {
        return Err(AppError::Unprocessable(
            "Give the webhook a URL before turning it on.".into(),
        ));
    }
    let before = db::alert_delivery::settings(&state.pool, d).await?;
    // A webhook turned on without a secret gets one, shown once below.
    let new_secret =
        (enabled && before.webhook_secret_sealed.is_none()).then(generate_webhook_secret);
    let mut tx = state.pool.begin().await?;
    db::alert_delivery::save_webhook(&mut *tx, d, (!url.is_empty()).then_some(url), enabled)
        .await?;
    if let Some(s) = &new_secret {
        let sealed = seal_webhook_secret(&state.config, d, s).map_err(AppError::Internal)?;
        db::alert_delivery::save_webhook_secret(&mut *tx, d, &sealed).await?;
    }
    audit(
        &mut tx,
        &scope,
        "alerts.webhook",
        Some(json!({ "url": before.webhook_url, "enabled": before.webhook_enabled })),
        Some(json!({ "url": url, "enabled": enabled, "new_secret": new_secret.is_some() })),
    )
    .await?;
    tx.commit().await?;
    match new_secret {
        Some(s) => page(&state, &session, &scope, Some(s)).await,
        None => {
            set_flash(&session, "success", "Webhook saved.").await;
            Ok(Redirect::to("/settings/alerts").into_response())
        }
    }
}

pub async fn new_secret(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
) -> AppResult<Response> {
    let secret = generate_webhook_secret();
    let sealed = seal_webhook_secret(&state.config, scope.district_id, &secret)
        .map_err(AppError::Internal)?;
    let mut tx = state.pool.begin().await?;
    db::alert_delivery::save_webhook_secret(&mut *tx, scope.district_id, &sealed).await?;
    audit(&mut tx, &scope, "alerts.webhook_secret", None, None).await?;
    tx.commit().await?;
    page(&state, &session, &scope, Some(secret)).await
}

async fn raise_test(
    state: &AppState,
    session: &Session,
    scope: &DistrictScope,
    channel: &str,
) -> AppResult<Response> {
    let now = state.clock.now();
    let key = format!("test:{channel}:{}", uuid::Uuid::new_v4());
    let by = scope.person.display_name();
    let mut tx = state.pool.begin().await?;
    db::alerts::raise(
        &mut *tx,
        scope.district_id,
        &db::alerts::NewEvent {
            kind: EventKind::Test,
            dedupe_key: &key,
            run_id: None,
            source: None,
            at: now,
            detail: json!({ "channel": channel, "by": by }),
        },
    )
    .await?;
    audit(
        &mut tx,
        scope,
        "alerts.test",
        None,
        Some(json!({ "channel": channel })),
    )
    .await?;
    tx.commit().await?;
    set_flash(
        session,
        "success",
        format!("Test {channel} queued: it is sent within a minute; see the delivery log below."),
    )
    .await;
    Ok(Redirect::to("/settings/alerts").into_response())
}

pub async fn test_email(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
) -> AppResult<Response> {
    if db::alert_delivery::recipients(&state.pool, scope.district_id)
        .await?
        .is_empty()
    {
        return Err(AppError::Unprocessable("Add a recipient first.".into()));
    }
    raise_test(&state, &session, &scope, "email").await
}

pub async fn test_webhook(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
) -> AppResult<Response> {
    let s = db::alert_delivery::settings(&state.pool, scope.district_id).await?;
    if !(s.webhook_enabled && s.webhook_url.is_some() && s.webhook_secret_sealed.is_some()) {
        return Err(AppError::Unprocessable(
            "Turn the webhook on (with a URL) first.".into(),
        ));
    }
    raise_test(&state, &session, &scope, "webhook").await
}
