//! The Syncs screen (district admins): roster sync connections, their schedule, "Sync now",
//! pause, "Test connection", OneRoster CSV sets, and the history of sync runs. A secret is
//! entered once, stored encrypted, and never shown or logged again.

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{DistrictAdmin, DistrictScope, set_flash};
use crate::db;
use crate::db::audit::Entry;
use crate::db::syncs::Connection;
use crate::sync::{self, Enqueued, Kind, Probe, crypto::SecretKey};
use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

/// A connection as the page shows it (no secret, ever).
pub struct Row {
    pub id: Uuid,
    pub name: String,
    pub kind: &'static str,
    pub scheduled: bool,
    pub is_csv: bool,
    pub is_oneroster: bool,
    pub base_url: String,
    pub token_url: String,
    pub client_id: String,
    pub has_secret: bool,
    pub paused: bool,
    /// "until 2026-09-01" for a pause by date; empty otherwise.
    pub paused_until: String,
    pub interval_hours: String,
    pub next_run: String,
    /// Health (the connections list): last success, last result, its duration, error rows.
    pub last_success: String,
    pub last_badge: Option<super::badge::Badge>,
    pub last_run_id: Option<Uuid>,
    pub duration: String,
    pub last_errors: String,
}

fn when(t: Option<time::OffsetDateTime>) -> String {
    t.map(|t| format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute()))
        .unwrap_or_else(|| "—".into())
}

impl From<&Connection> for Row {
    fn from(c: &Connection) -> Row {
        let kind = Kind::parse(&c.kind).unwrap_or(Kind::OneRosterCsv);
        Row {
            id: c.id,
            name: c.name.clone(),
            kind: kind.label(),
            scheduled: kind.is_scheduled(),
            is_csv: kind == Kind::OneRosterCsv,
            is_oneroster: kind == Kind::OneRosterRest,
            base_url: c.base_url.clone().unwrap_or_default(),
            token_url: c.token_url.clone().unwrap_or_default(),
            client_id: c.client_id.clone().unwrap_or_default(),
            has_secret: c.secret_sealed.is_some(),
            paused: c.paused,
            paused_until: c
                .paused_until
                .map(|d| format!("until {d}"))
                .unwrap_or_default(),
            interval_hours: hours(c.interval_minutes),
            next_run: if c.paused {
                "paused".into()
            } else if kind.is_scheduled() {
                when(c.next_run_at)
            } else {
                "when a set arrives".into()
            },
            last_success: "—".into(),
            last_badge: None,
            last_run_id: None,
            duration: "—".into(),
            last_errors: "—".into(),
        }
    }
}

impl Row {
    /// The row with its health (`db::home::connection_health`).
    fn with_health(mut self, h: Option<&db::home::ConnectionHealth>) -> Row {
        let Some(h) = h else { return self };
        self.last_success = h
            .last_success
            .map(|t| when(Some(t)))
            .unwrap_or_else(|| "never".into());
        self.last_badge = h.last_status.as_deref().map(super::badge::Badge::of);
        self.last_run_id = h.last_run_id;
        self.duration = match (h.last_started, h.last_finished) {
            (Some(a), Some(b)) if b >= a => duration_words(b - a),
            _ => "—".into(),
        };
        self.last_errors = h
            .last_errors
            .filter(|_| h.last_status.is_some())
            .map(|n| n.to_string())
            .unwrap_or_else(|| "—".into());
        self
    }
}

/// A run's duration: "45 s", "3 min 20 s", "1 h 05 min".
fn duration_words(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}

fn hours(minutes: i32) -> String {
    let h = f64::from(minutes) / 60.0;
    if h.fract() == 0.0 {
        format!("{h:.0}")
    } else {
        format!("{h:.2}")
    }
}

pub struct RunRow {
    pub id: Uuid,
    /// The connection's name (`reconcile::report::source_name`).
    pub source: String,
    pub badge: super::badge::Badge,
    pub status: &'static str,
    pub when: String,
    pub by: String,
    pub counts: String,
    pub message: String,
}

impl RunRow {
    fn of(r: &db::runs::Run, names: &std::collections::HashMap<Uuid, String>) -> RunRow {
        let view = super::uploads::RunView { run: r.clone() };
        RunRow {
            id: r.id,
            source: crate::reconcile::report::source_name(&r.source, names),
            badge: super::badge::Badge::of(&r.status),
            status: view.status_label(),
            when: when(Some(r.received_at)),
            by: r.submitted_by.clone(),
            counts: if view.in_progress() {
                "—".to_string()
            } else if view.applied() {
                format!(
                    "{} created, {} updated, {} unchanged, {} restored, {} archived, {} errors",
                    r.created, r.updated, r.unchanged, r.restored, r.archived, r.errors
                )
            } else {
                format!(
                    "not applied: would create {}, update {}, restore {}, archive {}; {} unchanged, {} errors",
                    r.created, r.updated, r.restored, r.archived, r.unchanged, r.errors
                )
            },
            message: r.message.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "syncs.html")]
struct ListPage {
    chrome: Chrome,
    connections: Vec<Row>,
    runs: Vec<RunRow>,
    errors: Vec<String>,
    form: NewForm,
    kinds: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "sync.html")]
struct DetailPage {
    chrome: Chrome,
    c: Row,
    runs: Vec<RunRow>,
    errors: Vec<String>,
    /// The clock's date (UTC), the "Pause until" field's lower bound.
    today: String,
}

#[derive(Deserialize, Default, Clone)]
pub struct NewForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    token_url: String,
    #[serde(default)]
    client_id: String,
    /// Never echoed back into a page.
    #[serde(default)]
    secret: String,
    #[serde(default)]
    interval_hours: String,
}

async fn list_page(
    state: &AppState,
    session: &Session,
    scope: &DistrictScope,
    form: NewForm,
    errors: Vec<String>,
) -> AppResult<Response> {
    let connections = db::syncs::list(&state.pool, scope.district_id).await?;
    let health = db::home::connection_health(&state.pool, scope.district_id).await?;
    let runs = db::syncs::recent_runs(&state.pool, scope.district_id, None, 20).await?;
    let names = db::syncs::names(&state.pool, scope.district_id).await?;
    let status = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = ListPage {
        chrome: chrome(session, Some(&scope.person), "/syncs").await,
        connections: connections
            .iter()
            .map(|c| Row::from(c).with_health(health.iter().find(|h| h.id == c.id)))
            .collect(),
        runs: runs.iter().map(|r| RunRow::of(r, &names)).collect(),
        errors,
        form: NewForm {
            secret: String::new(),
            ..form
        },
        kinds: Kind::ALL.iter().map(|k| (k.as_str(), k.label())).collect(),
    };
    Ok((status, render(&page)?).into_response())
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
) -> AppResult<Response> {
    let form = NewForm {
        kind: Kind::OneRosterRest.as_str().into(),
        interval_hours: "6".into(),
        ..Default::default()
    };
    list_page(&state, &session, &scope, form, Vec::new()).await
}

/// Checked settings of a connection form.
struct Checked {
    name: String,
    base_url: Option<String>,
    token_url: Option<String>,
    client_id: Option<String>,
    interval_minutes: i32,
}

fn check(kind: Kind, f: &NewForm, secret_required: bool) -> Result<Checked, Vec<String>> {
    let mut errors = Vec::new();
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push("Name is required (at most 200 characters).".to_string());
    }
    let interval_minutes = match f.interval_hours.trim() {
        "" => 360,
        h => match h.parse::<f64>() {
            Ok(h) if (0.25..=168.0).contains(&h) => (h * 60.0).round() as i32,
            _ => {
                errors.push("Sync every: a number of hours from 0.25 to 168.".to_string());
                360
            }
        },
    };
    let mut base_url = None;
    let mut token_url = None;
    let mut client_id = None;
    if kind != Kind::OneRosterCsv {
        let raw = match f.base_url.trim() {
            "" if kind == Kind::Clever => sync::DEFAULT_CLEVER_URL,
            b => b,
        };
        match sync::client::parse_base(raw) {
            Ok(u) => base_url = Some(u.as_str().trim_end_matches('/').to_string()),
            Err(e) => errors.push(format!("Base URL: {e}.")),
        }
        if secret_required && f.secret.trim().is_empty() {
            errors.push(match kind {
                Kind::Clever => "The district token is required.".to_string(),
                _ => "The client secret is required.".to_string(),
            });
        }
    }
    if kind == Kind::OneRosterRest {
        if f.client_id.trim().is_empty() {
            errors.push("The client id is required.".to_string());
        }
        client_id = Some(f.client_id.trim().to_string());
        if !f.token_url.trim().is_empty() {
            match sync::client::parse_base(&f.token_url) {
                Ok(u) => token_url = Some(u.to_string()),
                Err(e) => errors.push(format!("Token URL: {e}.")),
            }
        }
    }
    if errors.is_empty() {
        Ok(Checked {
            name: name.to_string(),
            base_url,
            token_url,
            client_id,
            interval_minutes,
        })
    } else {
        Err(errors)
    }
}

/// The form's URLs whose destination syncs may not reach (issue 20: public addresses only,
/// unless `ROLLCALL_SYNC_ALLOW_PRIVATE`), as form errors.
async fn refused_destinations(state: &AppState, c: &Checked) -> Vec<String> {
    let mut errors = Vec::new();
    for (label, url) in [("Base URL", &c.base_url), ("Token URL", &c.token_url)] {
        if let Some(url) = url
            && let Err(e) = sync::check_destination(&state.config, url).await
        {
            errors.push(format!("{label}: {e}."));
        }
    }
    errors
}

fn name_taken(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.constraint())
        .is_some_and(|c| c == "sync_connections_district_name_key")
}

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

async fn audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    scope: &DistrictScope,
    id: Uuid,
    action: &str,
    after: serde_json::Value,
) -> sqlx::Result<()> {
    db::audit::record(
        &mut **tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action,
            entity_kind: "sync_connection",
            entity_id: Some(id),
            run_id: None,
            before: None,
            after: Some(after),
        },
    )
    .await
}

async fn load(state: &AppState, scope: &DistrictScope, id: Uuid) -> AppResult<Connection> {
    db::syncs::get(&state.pool, scope.district_id, id)
        .await?
        .ok_or(AppError::NotFound)
}

async fn detail_page(
    state: &AppState,
    session: &Session,
    scope: &DistrictScope,
    conn: &Connection,
    errors: Vec<String>,
) -> AppResult<Response> {
    let source = crate::domain::Source::Sync(conn.id).to_db();
    let runs = db::syncs::recent_runs(&state.pool, scope.district_id, Some(&source), 20).await?;
    let names = db::syncs::names(&state.pool, scope.district_id).await?;
    let status = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = DetailPage {
        chrome: chrome(session, Some(&scope.person), "/syncs").await,
        c: Row::from(conn),
        runs: runs.iter().map(|r| RunRow::of(r, &names)).collect(),
        errors,
        today: state.clock.now().date().to_string(),
    };
    Ok((status, render(&page)?).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let conn = load(&state, &scope, id).await?;
    detail_page(&state, &session, &scope, &conn, Vec::new()).await
}

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

pub async fn test(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let conn = load(&state, &scope, id).await?;
    let (kind, text) = match sync::test_connection(&state.config, &conn).await {
        Ok(Probe::Complete {
            schools,
            users,
            skipped,
        }) => (
            "success",
            format!(
                "Connection works: {schools} schools and {users} users{}.",
                if skipped > 0 {
                    format!(" ({skipped} guardians, parents or relatives would be skipped)")
                } else {
                    String::new()
                }
            ),
        ),
        Ok(Probe::Unfinished {
            pages,
            records,
            secs,
        }) => (
            "success",
            format!(
                "Connection works: the provider accepted the credentials and sent {records} \
                 records in {pages} pages, but listing everything takes longer than {}; a \
                 sync counts them all.",
                sync::span(secs)
            ),
        ),
        Err(e) => ("error", format!("Connection test failed: {e}")),
    };
    set_flash(&session, kind, text).await;
    Ok(Redirect::to(&format!("/syncs/{id}")).into_response())
}

async fn enqueued_flash(session: &Session, outcome: &Enqueued) {
    let (kind, text) = match outcome {
        Enqueued::Run(_) => ("success", "Sync queued; it shows below as it runs."),
        Enqueued::Paused => ("error", "This connection is paused; resume it to sync."),
        Enqueued::Busy(_) => (
            "error",
            "A sync of this connection is already queued or running.",
        ),
    };
    set_flash(session, kind, text).await;
}

pub async fn run_now(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let conn = load(&state, &scope, id).await?;
    if conn.kind == Kind::OneRosterCsv.as_str() {
        return Err(AppError::BadRequest(
            "a OneRoster CSV connection syncs when a set is uploaded".into(),
        ));
    }
    let outcome = sync::enqueue(&state.pool, &conn, "user", &scope.actor().label, None).await?;
    if let Enqueued::Run(run) = outcome {
        let mut tx = state.pool.begin().await?;
        audit(
            &mut tx,
            &scope,
            id,
            "sync.run",
            serde_json::json!({ "run": run }),
        )
        .await?;
        tx.commit().await?;
        state.queue.notify.notify_waiters();
    }
    enqueued_flash(&session, &outcome).await;
    Ok(Redirect::to(&format!("/syncs/{id}")).into_response())
}

#[derive(Deserialize)]
pub struct PauseForm {
    paused: String,
    /// "Pause until [date]" (YYYY-MM-DD, UTC); empty: until resumed by hand.
    #[serde(default)]
    until: String,
}

/// A "pause until" date from a form: empty is none; otherwise a date after `today`.
pub(crate) fn parse_until(raw: &str, today: time::Date) -> Result<Option<time::Date>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(raw, &fmt)
        .map_err(|_| format!("\"{raw}\" is not a date (YYYY-MM-DD)."))?;
    if date <= today {
        return Err("Pause until: choose a day after today.".into());
    }
    Ok(Some(date))
}

pub async fn pause(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
    Form(form): Form<PauseForm>,
) -> AppResult<Response> {
    let conn = load(&state, &scope, id).await?;
    let paused = form.paused == "true";
    let until = if paused {
        match parse_until(&form.until, state.clock.now().date()) {
            Ok(u) => u,
            Err(e) => return detail_page(&state, &session, &scope, &conn, vec![e]).await,
        }
    } else {
        None
    };
    let mut tx = state.pool.begin().await?;
    db::syncs::set_paused(&mut *tx, scope.district_id, id, paused, until).await?;
    if !paused && conn.paused && conn.kind != Kind::OneRosterCsv.as_str() {
        // Resuming after a long pause syncs soon, not at a time long past.
        let next = conn
            .next_run_at
            .filter(|t| *t > state.clock.now())
            .unwrap_or(state.clock.now());
        db::syncs::schedule(&mut *tx, scope.district_id, id, Some(next)).await?;
    }
    let action = if paused { "sync.pause" } else { "sync.resume" };
    audit(
        &mut tx,
        &scope,
        id,
        action,
        serde_json::json!({ "paused": paused, "paused_until": until.map(|d| d.to_string()) }),
    )
    .await?;
    tx.commit().await?;
    let text = match (paused, until) {
        (true, Some(d)) => format!(
            "Paused until {d}: this connection does not sync until then (it resumes on its own that day, UTC). Its users stay as they are."
        ),
        (true, None) => {
            "Paused: this connection does not sync until it is resumed. Its users stay as they are."
                .to_string()
        }
        (false, _) => "Resumed: syncs run on schedule again.".to_string(),
    };
    set_flash(&session, "success", text).await;
    Ok(Redirect::to(&format!("/syncs/{id}")).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let conn = load(&state, &scope, id).await?;
    let mut tx = state.pool.begin().await?;
    db::reconcile::lock_district(&mut tx, scope.district_id).await?;
    let Some(released) = db::syncs::delete(&mut tx, scope.district_id, id, &scope.actor()).await?
    else {
        return Err(AppError::NotFound);
    };
    audit(
        &mut tx,
        &scope,
        id,
        "sync.delete",
        serde_json::json!({ "name": conn.name, "users_released": released }),
    )
    .await?;
    tx.commit().await?;
    set_flash(
        &session,
        "success",
        format!(
            "Connection \"{}\" deleted. Its {released} users were kept and are now managed by hand (a file or another sync may take them over).",
            conn.name
        ),
    )
    .await;
    Ok(Redirect::to("/syncs").into_response())
}

/// A OneRoster CSV set (zip) for a CSV connection: stored, then queued as a sync run.
pub async fn upload(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
    mut multipart: Multipart,
) -> AppResult<Response> {
    let conn = load(&state, &scope, id).await?;
    if conn.kind != Kind::OneRosterCsv.as_str() {
        return Err(AppError::BadRequest(
            "only a OneRoster CSV connection takes a zip".into(),
        ));
    }
    if conn.paused {
        let outcome = Enqueued::Paused;
        enqueued_flash(&session, &outcome).await;
        return Ok(Redirect::to(&format!("/syncs/{id}")).into_response());
    }
    let limit = state.config.max_upload_bytes();
    let path =
        crate::storage::upload_path(&state.config.data_dir, scope.district_id, Uuid::new_v4())
            .with_extension("zip");
    let mut name = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| super::error::multipart_error(&e, state.config.max_upload_mb))?
    {
        if field.name() != Some("file") {
            continue;
        }
        name = Some(crate::storage::clean_file_name(
            field.file_name().unwrap_or("oneroster.zip"),
        ));
        let mut writer = crate::storage::Writer::create(path.clone(), limit)
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if let Err(e) = writer.write(&chunk).await {
                        writer.abandon().await;
                        return Err(AppError::Unprocessable(e.to_string()));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    writer.abandon().await;
                    return Err(super::error::multipart_error(
                        &e,
                        state.config.max_upload_mb,
                    ));
                }
            }
        }
        writer
            .finish()
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    }
    let Some(name) = name else {
        return Err(AppError::BadRequest("choose a zip file".into()));
    };
    let outcome = sync::enqueue(
        &state.pool,
        &conn,
        "user",
        &scope.actor().label,
        Some((&name, &path)),
    )
    .await?;
    if let Enqueued::Run(run) = outcome {
        let mut tx = state.pool.begin().await?;
        audit(
            &mut tx,
            &scope,
            id,
            "sync.upload",
            serde_json::json!({ "run": run, "file_name": name }),
        )
        .await?;
        tx.commit().await?;
        state.queue.notify.notify_waiters();
    } else {
        let _ = tokio::fs::remove_file(&path).await;
    }
    enqueued_flash(&session, &outcome).await;
    Ok(Redirect::to(&format!("/syncs/{id}")).into_response())
}
