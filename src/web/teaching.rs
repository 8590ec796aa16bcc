//! A teacher's pages: My classes, a class's students (read-only), and issuing a student of
//! theirs a new temporary password. Anything outside the teacher's own classes answers 404.

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{Person, Reject};
use super::users::actions::issue_temporary_password;
use crate::auth::TEMP_PASSWORD_DAYS;
use crate::db;
use crate::db::teaching::{ClassStudent, TaughtClass};
use crate::domain::person::display_name;
use crate::domain::teaching::{ResetRefusal, SignInState, is_helpable_student, may_reset};
use crate::domain::{Role, UserStatus};
use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use time::Duration;
use tower_sessions::Session;
use uuid::Uuid;

/// A signed-in member who teaches at least one non-archived class; anyone else: 404.
pub struct Teacher(pub db::users::Member);

impl FromRequestParts<AppState> for Teacher {
    type Rejection = Reject;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Person::from_request_parts(parts, state).await? {
            Person::Member(m) if m.teaches => Ok(Teacher(m)),
            _ => Err(Reject::Error(AppError::NotFound)),
        }
    }
}

fn id_of(raw: &str) -> AppResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::NotFound)
}

async fn taught(state: &AppState, t: &db::users::Member, class: &str) -> AppResult<TaughtClass> {
    db::teaching::class(&state.pool, t.district_id, t.id, id_of(class)?)
        .await?
        .ok_or(AppError::NotFound)
}

#[derive(Template)]
#[template(path = "teaching.html")]
struct ClassesPage {
    chrome: Chrome,
    classes: Vec<TaughtClass>,
}

pub async fn classes(
    State(state): State<AppState>,
    session: Session,
    Teacher(t): Teacher,
) -> AppResult<Response> {
    let classes = db::teaching::classes(&state.pool, t.district_id, t.id).await?;
    let page = ClassesPage {
        chrome: chrome(&session, Some(&Person::Member(t)), "/teaching").await,
        classes,
    };
    Ok(render(&page)?.into_response())
}

/// A student's row on the class page.
struct StudentRow {
    id: Uuid,
    name: String,
    username: String,
    active: bool,
    sign_in: &'static str,
    /// `pending`, `expired`, … for the row's mark.
    sign_in_kind: &'static str,
    can_reset: bool,
}

fn sign_in_state(s: &ClassStudent, now: time::OffsetDateTime) -> SignInState {
    SignInState::of(
        s.has_password,
        s.password_temporary,
        s.password_set_at,
        s.temp_password_used_at,
        now,
        Duration::days(TEMP_PASSWORD_DAYS),
    )
}

fn helpable(s: &ClassStudent) -> bool {
    Role::parse(&s.role).is_some_and(|r| is_helpable_student(r, s.portal_role, s.teaches))
}

fn row(s: ClassStudent, now: time::OffsetDateTime) -> StudentRow {
    let state = sign_in_state(&s, now);
    StudentRow {
        id: s.id,
        can_reset: helpable(&s) && may_reset(s.status, state).is_ok(),
        name: display_name(&s.first_name, &s.last_name, &s.username),
        username: s.username,
        active: s.status == UserStatus::Active,
        sign_in: state.label(),
        sign_in_kind: match state {
            SignInState::NoPassword => "none",
            SignInState::TemporaryPending => "pending",
            SignInState::TemporaryUsed => "used",
            SignInState::TemporaryExpired => "expired",
            SignInState::OwnPassword => "own",
        },
    }
}

#[derive(Template)]
#[template(path = "teaching_class.html")]
struct ClassPage {
    chrome: Chrome,
    class: TaughtClass,
    students: Vec<StudentRow>,
}

pub async fn class(
    State(state): State<AppState>,
    session: Session,
    Teacher(t): Teacher,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let class = taught(&state, &t, &id).await?;
    let now = state.clock.now();
    let students = db::teaching::students(&state.pool, t.district_id, class.id)
        .await?
        .into_iter()
        .map(|s| row(s, now))
        .collect();
    let page = ClassPage {
        chrome: chrome(&session, Some(&Person::Member(t)), "/teaching").await,
        class,
        students,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
pub struct ResetForm {
    /// `yes` once the teacher confirmed; without it the confirm step is shown.
    #[serde(default)]
    confirm: String,
}

#[derive(Template)]
#[template(path = "teaching_password.html")]
struct ResetPage {
    chrome: Chrome,
    class: TaughtClass,
    student_id: Uuid,
    name: String,
    login: String,
    /// `None`: the confirm step; `Some`: the new password, shown once.
    password: Option<String>,
}

/// A teacher issues a student of one of their classes a new temporary password: first a
/// confirm step, then (with `confirm=yes`) the password, shown once. The student must
/// choose their own at the next sign-in. Only an active, plain student of the class who
/// has no password of their own; anyone else is not found.
pub async fn reset_password(
    State(state): State<AppState>,
    session: Session,
    Teacher(t): Teacher,
    Path((class_id, guid)): Path<(String, String)>,
    Form(form): Form<ResetForm>,
) -> AppResult<Response> {
    let class = taught(&state, &t, &class_id).await?;
    let student_id = id_of(&guid)?;
    let mut tx = state.pool.begin().await?;
    let student = db::teaching::student_for_update(&mut *tx, t.district_id, class.id, student_id)
        .await?
        .filter(helpable)
        .ok_or(AppError::NotFound)?;
    let name = display_name(&student.first_name, &student.last_name, &student.username);
    match may_reset(student.status, sign_in_state(&student, state.clock.now())) {
        Ok(()) => {}
        Err(ResetRefusal::Inactive) => {
            return Err(AppError::Conflict(format!(
                "{name} is inactive and cannot sign in. Ask your district administrator."
            )));
        }
        Err(ResetRefusal::OwnPassword) => {
            return Err(AppError::Conflict(format!(
                "{name} has chosen their own password. Only your district administrator can reset it."
            )));
        }
    }
    let login = student.email.clone().unwrap_or(student.username.clone());
    let password = if form.confirm == "yes" {
        let actor = Person::Member(t.clone()).actor();
        let after = json!({
            "password": "temporary password issued",
            "by": "teacher",
            "class": class.external_id,
        });
        let secret =
            issue_temporary_password(&mut tx, &state, t.district_id, student.id, &actor, after)
                .await?;
        tx.commit().await?;
        tracing::info!(district = %t.district_id, user = %student.id, teacher = %t.id, "password reset by a teacher");
        Some(secret)
    } else {
        None
    };
    let page = ResetPage {
        chrome: chrome(&session, Some(&Person::Member(t)), "/teaching").await,
        class,
        student_id: student.id,
        name,
        login,
        password,
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], render(&page)?).into_response())
}
