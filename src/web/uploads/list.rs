//! `GET /uploads`: the upload form and the history of runs, filtered and paged.

use super::RunView;
use crate::db;
use crate::domain::RunStatus;
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::page::{Chrome, chrome, render};
use crate::web::session::DistrictScope;
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

#[derive(Template)]
#[template(path = "uploads.html")]
struct UploadsPage {
    chrome: Chrome,
    runs: Vec<HistoryRow>,
    scopes: [crate::domain::Scope; 3],
    statuses: &'static [(&'static str, &'static str)],
    kinds: &'static [(&'static str, &'static str)],
    sources: Vec<(String, String)>,
    status: String,
    kind: String,
    source: String,
    from: String,
    to: String,
    next_href: Option<String>,
    first_href: Option<String>,
    filtered: bool,
    /// The upload form's school picker (issue 16, item 6): a district admin may pick one
    /// (a fixed school for the file); a school admin picks one of theirs.
    school_opts: Vec<crate::web::users::Opt>,
    school_required: bool,
    /// Whether to link the saved column mappings (district admins').
    district_admin: bool,
}

/// A run in the history: its view and its source named for people.
pub struct HistoryRow {
    pub v: RunView,
    pub source_name: String,
}

impl HistoryRow {
    /// The file name, or the kind of run when it has none.
    pub fn label(&self) -> &str {
        self.v
            .run
            .file_name
            .as_deref()
            .unwrap_or(self.v.run.kind.as_str())
    }
}

/// The query string of `/uploads`. Empty values mean "not given".
#[derive(Debug, Default, serde::Deserialize)]
pub struct HistoryQuery {
    status: Option<String>,
    kind: Option<String>,
    source: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
}

pub const HISTORY_PAGE: i64 = 50;

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn history_day(v: &Option<String>, what: &str) -> AppResult<Option<time::Date>> {
    given(v)
        .map(|s| {
            crate::web::when::parse_day(s)
                .ok_or_else(|| AppError::BadRequest(format!("{what}: a date like 2026-09-01")))
        })
        .transpose()
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    axum::extract::Query(q): axum::extract::Query<HistoryQuery>,
) -> AppResult<Response> {
    use crate::domain::history::{self, Cursor};
    let bad = |what: &str| AppError::BadRequest(format!("unknown {what}"));
    let status = given(&q.status)
        .map(|s| history::known(&history::STATUSES, s).ok_or_else(|| bad("status")))
        .transpose()?;
    let kind = given(&q.kind)
        .map(|s| history::known(&history::KINDS, s).ok_or_else(|| bad("kind")))
        .transpose()?;
    let source = given(&q.source).map(str::to_string);
    let from = history_day(&q.from, "from")?;
    let to = history_day(&q.to, "to")?;
    let after = given(&q.after)
        .map(|c| Cursor::parse(c).ok_or_else(|| AppError::BadRequest("bad page link".into())))
        .transpose()?;
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (key, value) in [
        ("status", status.map(str::to_string)),
        ("kind", kind.map(str::to_string)),
        ("source", source.clone()),
        ("from", from.map(|d| d.to_string())),
        ("to", to.map(|d| d.to_string())),
    ] {
        if let Some(v) = value {
            pairs.push((key, v));
        }
    }
    let filter = db::runs::HistoryFilter {
        status: status.map(str::to_string),
        kind: kind.map(str::to_string),
        source: source.clone(),
        from: from.map(|d| d.midnight().assume_utc()),
        to: to
            .and_then(|d| d.next_day())
            .map(|d| d.midnight().assume_utc()),
        schools: scope.schools.clone(),
    };
    let after = after.and_then(|c| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(c.at_micros) * 1000)
            .ok()
            .map(|at| (at, c.id))
    });
    let mut runs = db::runs::history(
        &state.pool,
        scope.district_id,
        &filter,
        after,
        HISTORY_PAGE + 1,
    )
    .await?;
    let more = runs.len() as i64 > HISTORY_PAGE;
    runs.truncate(HISTORY_PAGE as usize);
    let url = |pairs: &[(&str, String)]| {
        if pairs.is_empty() {
            "/uploads".to_string()
        } else {
            format!(
                "/uploads?{}",
                serde_urlencoded::to_string(pairs).unwrap_or_default()
            )
        }
    };
    let next_href = more.then(|| {
        let last = runs.last().expect("a full page");
        let c = Cursor {
            at_micros: (last.received_at.unix_timestamp_nanos() / 1000) as i64,
            id: last.id,
        };
        let mut p = pairs.clone();
        p.push(("after", c.encode()));
        url(&p)
    });
    let names = db::syncs::names(&state.pool, scope.district_id).await?;
    let school_opts =
        db::schools::options(&state.pool, scope.district_id, scope.schools.as_deref())
            .await?
            .into_iter()
            .map(|s| crate::web::users::Opt::new(s.id.to_string(), s.name, ""))
            .collect();
    let mut sources: Vec<(String, String)> = db::runs::sources(&state.pool, scope.district_id)
        .await?
        .into_iter()
        .map(|key| {
            let name = crate::reconcile::report::source_name(&key, &names);
            (key, name)
        })
        .collect();
    sources.sort_by(|a, b| {
        a.1.to_lowercase()
            .cmp(&b.1.to_lowercase())
            .then(a.0.cmp(&b.0))
    });
    let runs = runs
        .into_iter()
        .map(|run| HistoryRow {
            source_name: crate::reconcile::report::source_name(&run.source, &names),
            v: RunView { run },
        })
        .collect();
    let page = UploadsPage {
        chrome: chrome(&session, Some(&scope.person), "/uploads").await,
        runs,
        scopes: crate::domain::Scope::ALL,
        statuses: &crate::domain::history::STATUSES,
        kinds: &crate::domain::history::KINDS,
        sources,
        status: status.unwrap_or_default().to_string(),
        kind: kind.unwrap_or_default().to_string(),
        source: source.unwrap_or_default(),
        from: from.map(|d| d.to_string()).unwrap_or_default(),
        to: to.map(|d| d.to_string()).unwrap_or_default(),
        next_href,
        first_href: q.after.is_some().then(|| url(&pairs)),
        filtered: !pairs.is_empty(),
        school_opts,
        school_required: !scope.is_district_admin(),
        district_admin: scope.is_district_admin(),
    };
    Ok(render(&page)?.into_response())
}
