//! The Syncs screen (district admins): roster sync connections, their schedule, "Sync now",
//! pause, "Test connection", OneRoster CSV sets, and the history of sync runs. A secret is
//! entered once, stored encrypted, and never shown or logged again.
//! One file per action; what several share (the connection's row, a run's row, the form,
//! loading a connection, its audit entry, the detail page) is here.

use crate::db;
use crate::db::audit::Entry;
use crate::db::syncs::Connection;
use crate::sync::{Enqueued, Kind};
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::session::{DistrictScope, set_flash};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

mod create;
mod delete;
mod form;
mod list;
mod pause;
mod run;
mod show;
mod test_connection;
mod update;
mod upload;

pub use create::create;
pub use delete::delete;
pub use list::list;
pub(crate) use pause::parse_until;
pub use pause::{PauseForm, pause};
pub use run::run_now;
pub use show::show;
pub use test_connection::test;
pub use update::update;
pub use upload::upload;

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
    pub last_badge: Option<crate::web::badge::Badge>,
    pub last_run_id: Option<Uuid>,
    pub duration: String,
    pub last_errors: String,
}

fn when(t: Option<time::OffsetDateTime>) -> String {
    t.map(crate::web::when::minute)
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
        self.last_badge = h.last_status.map(crate::web::badge::Badge::of);
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
    pub badge: crate::web::badge::Badge,
    pub status: &'static str,
    pub when: String,
    pub by: String,
    pub counts: String,
    pub message: String,
    /// Queued or running: the row polls its status and the page reloads when it ends
    /// (`static/app.js`, as on Uploads).
    pub live: bool,
}

impl RunRow {
    fn of(r: &db::runs::Run, names: &std::collections::HashMap<Uuid, String>) -> RunRow {
        let view = crate::web::uploads::RunView { run: r.clone() };
        RunRow {
            id: r.id,
            source: crate::reconcile::report::source_name(&r.source, names),
            badge: crate::web::badge::Badge::of(r.status),
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
            live: view.in_progress(),
        }
    }
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
