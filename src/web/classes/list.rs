//! `GET /classes`: search (title, external ID, teacher), filters (school, term, status) and
//! keyset pages in title order.

use super::{ListQuery, Params, encode_cursor, person_name};
use crate::db;
use crate::db::classes::{ClassStatus, Position};
use crate::web::AppState;
use crate::web::error::AppResult;
use crate::web::keyset::{self, url};
use crate::web::page::{Chrome, chrome, render};
use crate::web::session::DistrictScope;
use crate::web::users::{Opt, thousands};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use tower_sessions::Session;
use uuid::Uuid;

/// Counts stop here ("10,000+ classes").
const COUNT_CAP: i64 = 10_000;

pub struct Teacher {
    pub id: Uuid,
    pub name: String,
    pub primary: bool,
}

pub struct Row {
    pub id: Uuid,
    pub title: String,
    pub external_id: String,
    pub school: String,
    pub term: String,
    pub teachers: Vec<Teacher>,
    pub students: i64,
    pub archived: bool,
}

#[derive(Template)]
#[template(path = "classes.html")]
struct ClassesPage {
    chrome: Chrome,
    q: String,
    status_opts: Vec<Opt>,
    school_opts: Vec<Opt>,
    term_opts: Vec<Opt>,
    rows: Vec<Row>,
    count_label: String,
    filtered: bool,
    classes_csv_href: String,
    enrollments_csv_href: String,
    first_href: Option<String>,
    prev_href: Option<String>,
    next_href: Option<String>,
    per: i64,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Query(query): Query<ListQuery>,
) -> AppResult<Response> {
    let params = Params::parse(&query)?;
    let pool = &state.pool;
    let district = scope.district_id;
    let only = scope.schools.as_deref();
    let f = &params.filter;
    let page = db::classes::page(pool, district, f, only, &params.position, params.per).await?;
    let count = db::classes::count_capped(pool, district, f, only, COUNT_CAP).await?;
    let schools = db::schools::options(pool, district, only).await?;
    let terms = db::classes::terms(pool, district).await?;
    let ids: Vec<Uuid> = page.rows.iter().map(|r| r.id).collect();
    let mut teachers: HashMap<Uuid, Vec<Teacher>> = HashMap::new();
    for t in db::classes::teachers_of(pool, district, &ids).await? {
        teachers.entry(t.class_id).or_default().push(Teacher {
            id: t.user_id,
            name: person_name(&t.first_name, &t.last_name, &t.username),
            primary: t.is_primary,
        });
    }
    let students = db::classes::student_counts(pool, district, &ids).await?;
    let school_names: HashMap<Uuid, &str> =
        schools.iter().map(|s| (s.id, s.name.as_str())).collect();
    let term_names: HashMap<Uuid, &str> = terms.iter().map(|t| (t.id, t.title.as_str())).collect();

    let rows = page
        .rows
        .iter()
        .map(|r| Row {
            id: r.id,
            title: r.title.clone(),
            external_id: r.external_id.clone(),
            school: school_names
                .get(&r.school_id)
                .map(|s| s.to_string())
                .unwrap_or_default(),
            term: r
                .term_id
                .and_then(|t| term_names.get(&t).map(|s| s.to_string()))
                .unwrap_or_default(),
            teachers: teachers.remove(&r.id).unwrap_or_default(),
            students: students.get(&r.id).copied().unwrap_or(0),
            archived: r.archived_at.is_some(),
        })
        .collect();

    let filter_pairs = params.filter_pairs();
    let mut base = filter_pairs.clone();
    if params.per != keyset::PER_PAGE {
        base.push(("per", params.per.to_string()));
    }
    let links = keyset::links(
        "/classes",
        &base,
        params.position == Position::First,
        page.has_prev
            .then(|| page.rows.first())
            .flatten()
            .map(|r| encode_cursor(&r.key())),
        page.has_next
            .then(|| page.rows.last())
            .flatten()
            .map(|r| encode_cursor(&r.key())),
    );

    let current_school = f.school.map(|s| s.to_string()).unwrap_or_default();
    let current_term = f.term.map(|s| s.to_string()).unwrap_or_default();
    let view = ClassesPage {
        chrome: chrome(&session, Some(&scope.person), "/classes").await,
        q: f.q.clone().unwrap_or_default(),
        status_opts: ClassStatus::ALL
            .iter()
            .map(|s| Opt::new(s.as_str(), s.label(), f.status.as_str()))
            .collect(),
        school_opts: std::iter::once(Opt::new("", "Any school", &current_school))
            .chain(
                schools
                    .iter()
                    .map(|s| Opt::new(s.id.to_string(), s.name.clone(), &current_school)),
            )
            .collect(),
        term_opts: std::iter::once(Opt::new("", "Any term", &current_term))
            .chain(
                terms
                    .iter()
                    .map(|t| Opt::new(t.id.to_string(), t.title.clone(), &current_term)),
            )
            .collect(),
        rows,
        count_label: if count > COUNT_CAP {
            format!("{}+ classes", thousands(COUNT_CAP))
        } else if count == 1 {
            "1 class".to_string()
        } else {
            format!("{} classes", thousands(count))
        },
        filtered: !filter_pairs.is_empty(),
        classes_csv_href: url("/classes.csv", &filter_pairs),
        enrollments_csv_href: url("/enrollments.csv", &filter_pairs),
        first_href: links.first,
        prev_href: links.prev,
        next_href: links.next,
        per: params.per,
    };
    Ok(render(&view)?.into_response())
}
