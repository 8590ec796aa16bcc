//! `GET /classes/{id}`: a class, its teachers and its students.

use super::person_name;
use crate::db;
use crate::domain::UserStatus;
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::page::{Chrome, chrome, render};
use crate::web::session::DistrictScope;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;
use uuid::Uuid;

pub struct Member {
    pub id: Uuid,
    pub name: String,
    pub custom_id: String,
    pub email: String,
    pub primary: bool,
    pub inactive: bool,
}

#[derive(Template)]
#[template(path = "classes_show.html")]
struct ClassPage {
    chrome: Chrome,
    id: Uuid,
    title: String,
    external_id: String,
    school: String,
    term: String,
    course_code: String,
    subject: String,
    period: String,
    grades: String,
    owner: String,
    archived: Option<String>,
    teachers: Vec<Member>,
    students: Vec<Member>,
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Path(id): Path<String>,
) -> AppResult<Response> {
    // Another district's class, one outside a school admin's schools and a malformed id all
    // answer the same.
    let id = Uuid::parse_str(&id).map_err(|_| AppError::NotFound)?;
    let pool = &state.pool;
    let class = db::classes::get(pool, scope.district_id, id, scope.schools.as_deref())
        .await?
        .ok_or(AppError::NotFound)?;
    let sync_names = db::syncs::names(pool, scope.district_id).await?;
    let (mut teachers, mut students) = (Vec::new(), Vec::new());
    for m in db::classes::roster(pool, scope.district_id, class.id).await? {
        let member = Member {
            id: m.user_id,
            name: person_name(&m.first_name, &m.last_name, &m.username),
            custom_id: m.custom_id.unwrap_or_default(),
            email: m.email.unwrap_or_default(),
            primary: m.is_primary,
            inactive: m.status == UserStatus::Inactive,
        };
        match crate::domain::roster::EnrollmentRole::from_text(&m.role) {
            Some(crate::domain::roster::EnrollmentRole::Teacher) => teachers.push(member),
            _ => students.push(member),
        }
    }
    let term = match &class.term_title {
        None => String::new(),
        Some(t) => {
            let name = if t.is_empty() {
                class.term_external_id.clone().unwrap_or_default()
            } else {
                t.clone()
            };
            match (class.term_start, class.term_end) {
                (Some(s), Some(e)) => format!("{name} ({s} – {e})"),
                (Some(s), None) => format!("{name} (from {s})"),
                (None, Some(e)) => format!("{name} (until {e})"),
                (None, None) => name,
            }
        }
    };
    let view = ClassPage {
        chrome: chrome(&session, Some(&scope.person), "/classes").await,
        id: class.id,
        title: class.title.clone(),
        external_id: class.external_id.clone(),
        school: format!("{} ({})", class.school_name, class.school_external_id),
        term,
        course_code: class.course_code.clone(),
        subject: class.subject.clone(),
        period: class.period.clone(),
        grades: class.grades.join(", "),
        owner: crate::web::users::source_label(&class.source, &sync_names),
        archived: class.archived_at.map(crate::web::when::minute),
        teachers,
        students,
    };
    Ok(render(&view)?.into_response())
}
