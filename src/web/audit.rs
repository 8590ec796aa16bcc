//! The district audit log: `GET /audit` (filters, keyset pages of 50) and `GET /audit.csv`
//! (the same filters, streamed). Every admin action, admin sign-in and run of the district,
//! newest first; a school admin sees entries about their schools and the users now in them.

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::DistrictScope;
use crate::db;
use crate::db::audit::{LogEntry, LogFilter, UserMatch};
use crate::domain::audit::{self as words, Cursor};
use crate::reconcile::report::{UTF8_BOM, neutralise, source_name};
use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

pub const PER_PAGE: i64 = 50;
/// Entries read per query while streaming the CSV.
const CSV_CHUNK: i64 = 500;

/// The query string of `/audit` and `/audit.csv`. Empty values mean "not given".
#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    actor: Option<String>,
    kind: Option<String>,
    user: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn day(v: &Option<String>, what: &str) -> AppResult<Option<Date>> {
    given(v)
        .map(|s| {
            super::when::parse_day(s)
                .ok_or_else(|| AppError::BadRequest(format!("{what}: a date like 2026-09-01")))
        })
        .transpose()
}

/// The filters as the database reads them, and as links carry them on.
struct Params {
    filter: LogFilter,
    pairs: Vec<(&'static str, String)>,
    after: Option<Cursor>,
}

impl Params {
    fn parse(q: &LogQuery, scope: &DistrictScope) -> AppResult<Params> {
        let mut pairs = Vec::new();
        let actor = given(&q.actor).map(str::to_string);
        if let Some(a) = &actor {
            pairs.push(("actor", a.clone()));
        }
        let kind = match given(&q.kind) {
            None => None,
            Some(k) => Some(
                words::parse_kind(k)
                    .ok_or_else(|| AppError::BadRequest("unknown kind of entry".into()))?,
            ),
        };
        if let Some(k) = kind {
            pairs.push(("kind", k.to_string()));
        }
        let user = given(&q.user).map(|u| match Uuid::parse_str(u) {
            Ok(id) => UserMatch::Id(id),
            Err(_) => UserMatch::Text(u.to_string()),
        });
        if let Some(u) = given(&q.user) {
            pairs.push(("user", u.to_string()));
        }
        let from = day(&q.from, "from")?;
        let to = day(&q.to, "to")?;
        if let Some(d) = from {
            pairs.push(("from", d.to_string()));
        }
        if let Some(d) = to {
            pairs.push(("to", d.to_string()));
        }
        let after = match given(&q.after) {
            None => None,
            Some(c) => {
                Some(Cursor::parse(c).ok_or_else(|| AppError::BadRequest("bad page link".into()))?)
            }
        };
        Ok(Params {
            filter: LogFilter {
                actor,
                kind,
                user,
                from: from.map(|d| d.midnight().assume_utc()),
                to: to
                    .and_then(|d| d.next_day())
                    .map(|d| d.midnight().assume_utc()),
                schools: scope.schools.clone(),
            },
            pairs,
            after,
        })
    }
}

fn url(path: &str, pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        path.to_string()
    } else {
        format!(
            "{path}?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

/// One entry as the page and the CSV tell it.
pub struct Line {
    pub at: OffsetDateTime,
    pub actor: String,
    pub actor_kind: String,
    pub action: String,
    pub action_words: String,
    pub subject: String,
    pub subject_href: Option<String>,
    pub subject_id: String,
    pub summary: String,
}

impl Line {
    fn of(e: &LogEntry, sync_names: &HashMap<Uuid, String>, may_open_runs: bool) -> Line {
        let id = e.subject_id;
        let subject = match e.entity_kind.as_str() {
            "run" => match (&e.run_file, &e.run_source) {
                (Some(f), _) => f.clone(),
                (None, Some(src)) => source_name(src, sync_names),
                (None, None) => "Deleted run".into(),
            },
            "district" => "District".into(),
            _ => e.subject_name.clone().unwrap_or_else(|| {
                if id.is_some() {
                    "(deleted)".into()
                } else {
                    String::new()
                }
            }),
        };
        let subject_href = id.and_then(|id| match e.entity_kind.as_str() {
            "user" if e.subject_name.is_some() => Some(format!("/users/{id}")), // vocab-literals: an entity kind
            "school" if e.subject_name.is_some() => Some(format!("/schools/{id}")),
            "run" if may_open_runs && e.run_source.is_some() => Some(format!("/uploads/{id}")),
            "sync_connection" if may_open_runs && e.subject_name.is_some() => {
                Some(format!("/syncs/{id}"))
            }
            _ => None,
        });
        Line {
            at: e.at,
            actor: e.actor_label.clone(),
            actor_kind: e.actor_kind.as_str().to_string(),
            action: e.action.clone(),
            action_words: words::action_words(&e.action),
            subject,
            subject_href,
            subject_id: id.map(|i| i.to_string()).unwrap_or_default(),
            summary: words::summary(&e.action, e.before.as_ref(), e.after.as_ref()),
        }
    }

    pub fn when(&self) -> String {
        super::when::second(Some(self.at))
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    lines: Vec<Line>,
    kinds: &'static [(&'static str, &'static str)],
    actor: String,
    kind: String,
    user: String,
    from: String,
    to: String,
    next_href: Option<String>,
    first_href: Option<String>,
    csv_href: String,
    school_admin: bool,
}

pub async fn list(
    State(state): State<AppState>,
    session: tower_sessions::Session,
    scope: DistrictScope,
    Query(query): Query<LogQuery>,
) -> AppResult<Response> {
    let params = Params::parse(&query, &scope)?;
    let mut entries = db::audit::page(
        &state.pool,
        scope.district_id,
        &params.filter,
        params.after,
        PER_PAGE + 1,
    )
    .await?;
    let more = entries.len() as i64 > PER_PAGE;
    entries.truncate(PER_PAGE as usize);
    let next_href = more.then(|| {
        let mut pairs = params.pairs.clone();
        let last = entries.last().expect("a full page").cursor();
        pairs.push(("after", last.encode()));
        url("/audit", &pairs)
    });
    let sync_names = db::syncs::names(&state.pool, scope.district_id).await?;
    let admin = scope.is_district_admin();
    let lines = entries
        .iter()
        .map(|e| Line::of(e, &sync_names, admin))
        .collect();
    let page = AuditPage {
        chrome: chrome(&session, Some(&scope.person), "/audit").await,
        lines,
        kinds: &words::KINDS,
        actor: query.actor.clone().unwrap_or_default(),
        kind: params.filter.kind.unwrap_or_default().to_string(),
        user: query.user.clone().unwrap_or_default(),
        from: query.from.clone().unwrap_or_default(),
        to: query.to.clone().unwrap_or_default(),
        next_href,
        first_href: params.after.is_some().then(|| url("/audit", &params.pairs)),
        csv_href: url("/audit.csv", &params.pairs),
        school_admin: !admin,
    };
    Ok(render(&page)?.into_response())
}

pub const CSV_HEADER: [&str; 8] = [
    "At",
    "Actor",
    "Actor kind",
    "Action",
    "Action code",
    "Subject",
    "Subject ID",
    "Change",
];

/// The CSV's lines; `At` is ISO 8601 with the district zone's offset at that instant.
fn csv_bytes(
    lines: &[Line],
    header: bool,
    zone: &crate::domain::zone::Zone,
) -> Result<Bytes, std::io::Error> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(8192));
    if header {
        w.write_record(CSV_HEADER).map_err(std::io::Error::other)?;
    }
    for l in lines {
        let at = super::when::iso_in(zone, l.at);
        let cells = [
            &at,
            &l.actor,
            &l.actor_kind,
            &l.action_words,
            &l.action,
            &l.subject,
            &l.subject_id,
            &l.summary,
        ];
        w.write_record(cells.iter().map(|c| neutralise(c).into_owned()))
            .map_err(std::io::Error::other)?;
    }
    w.into_inner()
        .map(Bytes::from)
        .map_err(|e| std::io::Error::other(e.into_error()))
}

/// What the CSV producer hands the response body.
enum Chunk {
    Data(Bytes),
    Done,
    Failed,
}

/// `GET /audit.csv`: every entry the filters match, newest first, read in keyset chunks (the
/// whole log is never in memory). A database error mid-way aborts the body, so the client's
/// read fails instead of ending with a file that looks complete.
pub async fn csv(
    State(state): State<AppState>,
    scope: DistrictScope,
    Query(query): Query<LogQuery>,
) -> AppResult<Response> {
    let params = Params::parse(
        &LogQuery {
            after: None,
            ..query
        },
        &scope,
    )?;
    let sync_names = db::syncs::names(&state.pool, scope.district_id).await?;
    let admin = scope.is_district_admin();
    let district = scope.district_id;
    let pool = state.pool.clone();
    let filter = params.filter;
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    // The producer runs outside this request's task: it takes the district's zone along.
    let zone = super::when::zone();
    let file_name = format!(
        "{}-audit-{}.csv",
        scope.district_slug,
        super::when::day_in(&zone, state.clock.now())
    );
    tokio::spawn(async move {
        let mut bom = UTF8_BOM.to_vec();
        match csv_bytes(&[], true, &zone) {
            Ok(b) => bom.extend_from_slice(&b),
            Err(e) => {
                tracing::error!(district = %district, error = %e, "audit CSV stopped");
                let _ = tx.send(Chunk::Failed).await;
                return;
            }
        }
        if tx.send(Chunk::Data(Bytes::from(bom))).await.is_err() {
            return;
        }
        let mut cursor = None;
        loop {
            let chunk = match db::audit::page(&pool, district, &filter, cursor, CSV_CHUNK).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(district = %district, error = %e, "audit CSV stopped");
                    let _ = tx.send(Chunk::Failed).await;
                    return;
                }
            };
            let lines: Vec<Line> = chunk
                .iter()
                .map(|e| Line::of(e, &sync_names, admin))
                .collect();
            let msg = match csv_bytes(&lines, false, &zone) {
                Ok(b) => Chunk::Data(b),
                Err(e) => {
                    tracing::error!(district = %district, error = %e, "audit CSV stopped");
                    Chunk::Failed
                }
            };
            let failed = matches!(msg, Chunk::Failed);
            if tx.send(msg).await.is_err() || failed {
                return; // the client went away, or the file cannot be finished
            }
            match chunk.last() {
                Some(last) if chunk.len() as i64 == CSV_CHUNK => cursor = Some(last.cursor()),
                _ => {
                    let _ = tx.send(Chunk::Done).await;
                    return;
                }
            }
        }
    });
    // The producer ends every complete file with `Done`; a channel that closes without it
    // (the task failed in any way) ends the body with an error, never a short file.
    let body = futures::stream::unfold((rx, false), |(mut rx, done)| async move {
        if done {
            return None;
        }
        match rx.recv().await {
            Some(Chunk::Data(bytes)) => Some((Ok(bytes), (rx, false))),
            Some(Chunk::Failed) | None => {
                Some((Err(std::io::Error::other("audit CSV stopped")), (rx, true)))
            }
            Some(Chunk::Done) => None,
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
