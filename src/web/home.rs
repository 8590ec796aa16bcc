//! The home page `/` (SPEC §5, "the district's health"): a district admin's landing page
//! with the runs that need attention, a card per connection and file source, and users per
//! school and role; a school admin sees their schools' counts. File sources are paused and
//! resumed from their cards (`POST /sources/pause`, `POST /sources/resume`).

use super::AppState;
use super::badge::Badge;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{DistrictAdmin, Person, set_flash};
use super::when;
use crate::db;
use crate::db::audit::Entry;
use crate::domain::home::{self as compose, CardKind, Facts};
use crate::domain::{PortalRole, Role, Source};
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::collections::HashMap;
use tower_sessions::Session;
use uuid::Uuid;

pub struct CardView {
    pub name: String,
    pub kind_label: String,
    pub source: String,
    pub is_file: bool,
    pub connection_id: Option<Uuid>,
    pub last_run_id: Option<Uuid>,
    pub badge: Option<Badge>,
    pub when: String,
    pub counts: String,
    pub next_sync: String,
    pub pause_text: Option<String>,
    pub stale_text: Option<String>,
    pub paused: bool,
}

pub struct AttentionView {
    pub id: Uuid,
    pub badge: Badge,
    pub source: String,
    pub file_name: String,
    pub when: String,
    pub message: String,
}

pub struct CountRow {
    pub school: String,
    pub counts: Vec<i64>,
    pub total: i64,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    district_admin: bool,
    attention: Vec<AttentionView>,
    cards: Vec<CardView>,
    roles: Vec<&'static str>,
    counts: Vec<CountRow>,
    stale_after_hours: i32,
    today: String,
}

/// `/`: operators go to their districts, plain users to their account; admins get the page.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    person: Person,
) -> AppResult<Response> {
    let Person::Member(m) = &person else {
        return Ok(Redirect::to("/districts").into_response());
    };
    let schools = match m.portal_role {
        PortalRole::DistrictAdmin => None,
        PortalRole::SchoolAdmin => Some(m.school_ids.clone()),
        PortalRole::User => return Ok(Redirect::to("/account").into_response()),
    };
    let district_id = m.district_id;
    let district_admin = schools.is_none();
    let now = state.clock.now();
    let roles: Vec<&'static str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let rows =
        db::home::users_per_school_and_role(&state.pool, district_id, schools.as_deref()).await?;
    let counts = compose::pivot(&rows, &roles)
        .into_iter()
        .map(|c| CountRow {
            school: c.school.unwrap_or_else(|| "No school".into()),
            counts: c.counts,
            total: c.total,
        })
        .collect();
    let (mut attention, mut cards, mut stale_after_hours) = (Vec::new(), Vec::new(), 0);
    if district_admin {
        let names = db::syncs::names(&state.pool, district_id).await?;
        let held =
            db::home::attention(&state.pool, district_id, now - compose::FAILED_WITHIN).await?;
        attention = compose::order_attention(held)
            .into_iter()
            .map(|a| AttentionView {
                id: a.id,
                badge: Badge::of(a.status),
                source: crate::reconcile::report::source_name(&a.source, &names),
                file_name: a.file_name.unwrap_or_default(),
                when: when::second(Some(a.received_at)),
                message: a.message.unwrap_or_default(),
            })
            .collect();
        let connections: Vec<compose::ConnectionFacts> = db::syncs::list(&state.pool, district_id)
            .await?
            .into_iter()
            .map(|c| {
                let kind = crate::sync::Kind::parse(&c.kind);
                compose::ConnectionFacts {
                    id: c.id,
                    name: c.name,
                    kind_label: kind.map_or("Sync", |k| k.label()).to_string(),
                    scheduled: kind.is_some_and(|k| k.is_scheduled()),
                    paused: c.paused,
                    paused_until: c.paused_until,
                    next_run_at: c.next_run_at,
                }
            })
            .collect();
        let last_runs = db::home::last_runs(&state.pool, district_id).await?;
        let recent: HashMap<String, Vec<time::OffsetDateTime>> =
            db::health::source_runs(&state.pool, district_id)
                .await?
                .into_iter()
                .map(|s| (s.source, s.received))
                .collect();
        let file_pauses: HashMap<String, Option<time::Date>> =
            db::health::paused_sources(&state.pool, district_id)
                .await?
                .into_iter()
                .filter(|p| !p.source.starts_with("sync:"))
                .map(|p| (p.source, p.until))
                .collect();
        stale_after_hours = db::health::stale_after_hours(&state.pool, district_id).await?;
        cards = compose::cards(&Facts {
            connections: &connections,
            last_runs: &last_runs,
            recent: &recent,
            file_pauses: &file_pauses,
            stale_after: time::Duration::hours(i64::from(stale_after_hours)),
            now,
        })
        .into_iter()
        .map(|c| CardView {
            stale_text: c.stale_text(),
            pause_text: c.pause_text(),
            paused: c.paused.is_some(),
            is_file: c.kind == CardKind::File,
            name: c.name,
            kind_label: c.kind_label,
            source: c.source,
            connection_id: c.connection_id,
            last_run_id: c.last.as_ref().map(|r| r.id),
            badge: c.last.as_ref().map(|r| Badge::of(r.status)),
            when: c
                .last
                .as_ref()
                .map(|r| when::second(Some(r.finished_at.unwrap_or(r.received_at))))
                .unwrap_or_else(|| "No runs yet".into()),
            counts: c
                .last
                .as_ref()
                .map(|r| {
                    format!(
                        "{} created, {} updated, {} archived, {} errors",
                        r.created, r.updated, r.archived, r.errors
                    )
                })
                .unwrap_or_default(),
            next_sync: c
                .next_sync
                .map(|t| when::second(Some(t)))
                .unwrap_or_default(),
        })
        .collect();
    }
    let page = HomePage {
        chrome: chrome(&session, Some(&person), "/").await,
        district_admin,
        attention,
        cards,
        roles,
        counts,
        stale_after_hours,
        today: now.date().to_string(),
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
pub struct SourceForm {
    #[serde(default)]
    source: String,
    /// "Pause until [date]"; empty: until resumed by hand.
    #[serde(default)]
    until: String,
}

/// The file source a form names, if it is one of this district's (else 404).
async fn file_source(state: &AppState, district_id: Uuid, raw: &str) -> AppResult<String> {
    let source = match Source::from_db(raw.trim()) {
        Source::File(name) => Source::File(name).to_db(),
        _ => return Err(AppError::NotFound),
    };
    if !db::home::file_source_exists(&state.pool, district_id, &source).await? {
        return Err(AppError::NotFound);
    }
    Ok(source)
}

/// `POST /sources/pause`: pause a file source (its drop-folder files wait) until a date or
/// until resumed.
pub async fn pause(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<SourceForm>,
) -> AppResult<Response> {
    let source = file_source(&state, scope.district_id, &form.source).await?;
    let now = state.clock.now();
    let until = match super::syncs::parse_until(&form.until, now.date()) {
        Ok(u) => u,
        Err(e) => {
            set_flash(&session, "error", e).await;
            return Ok(Redirect::to("/").into_response());
        }
    };
    let actor = scope.actor();
    let mut tx = state.pool.begin().await?;
    db::home::pause_source(
        &mut *tx,
        scope.district_id,
        &source,
        until,
        &actor.label,
        now,
    )
    .await?;
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &actor,
        Entry {
            action: "source.pause",
            entity_kind: "source",
            entity_id: None,
            run_id: None,
            before: None,
            after: Some(serde_json::json!({
                "source": source,
                "paused_until": until.map(|d| d.to_string()),
            })),
        },
    )
    .await?;
    tx.commit().await?;
    let name = crate::reconcile::report::source_name(&source, &HashMap::new());
    let text = match until {
        Some(d) => format!(
            "{name} is paused until {d}: its drop-folder files wait in the folder until then (it resumes on its own that day, UTC)."
        ),
        None => format!(
            "{name} is paused: its drop-folder files wait in the folder until it is resumed."
        ),
    };
    set_flash(&session, "success", text).await;
    Ok(Redirect::to("/").into_response())
}

/// `POST /sources/resume`: end a file source's pause now.
pub async fn resume(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Form(form): Form<SourceForm>,
) -> AppResult<Response> {
    let source = file_source(&state, scope.district_id, &form.source).await?;
    let mut tx = state.pool.begin().await?;
    if db::home::resume_source(&mut *tx, scope.district_id, &source).await? {
        db::audit::record(
            &mut *tx,
            scope.district_id,
            &scope.actor(),
            Entry {
                action: "source.resume",
                entity_kind: "source",
                entity_id: None,
                run_id: None,
                before: None,
                after: Some(serde_json::json!({ "source": source, "paused": false })),
            },
        )
        .await?;
    }
    tx.commit().await?;
    let name = crate::reconcile::report::source_name(&source, &HashMap::new());
    set_flash(
        &session,
        "success",
        format!("{name} is resumed: its drop-folder files are taken again."),
    )
    .await;
    Ok(Redirect::to("/").into_response())
}
