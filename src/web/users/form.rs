//! The add-user and edit-user forms (`/users/new`, `/users/{guid}`), with the user's history.

use super::{Opt, can_manage, counts, display_name, history, is_self, load, source_label};
use crate::auth;
use crate::db;
use crate::db::audit::Entry;
use crate::db::schools::SchoolOption;
use crate::db::user_edit::{UserFields, UserRecord};
use crate::domain::{Grade, PortalRole, Role, parse_email};
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::page::{Chrome, chrome, render};
use crate::web::session::{DistrictScope, set_flash};
use askama::Template;
use axum::extract::{Path, RawForm, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use tower_sessions::Session;
use uuid::Uuid;

/// The form's values as typed (re-shown as they were when something is wrong).
#[derive(Debug, Clone, Default)]
pub struct FormValues {
    pub custom_id: String,
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub middle_name: String,
    pub last_name: String,
    pub role: String,
    pub grade: String,
    pub position: String,
    pub active: bool,
    pub portal_role: String,
    pub prevent_archiving: bool,
    pub schools: Vec<String>,
    pub version: i64,
}

impl FormValues {
    fn blank() -> FormValues {
        FormValues {
            active: true,
            portal_role: "user".into(),
            // Manually added users are protected from feeds' archiving by default (SPEC §4).
            prevent_archiving: true,
            ..FormValues::default()
        }
    }

    fn from_record(u: &UserRecord) -> FormValues {
        FormValues {
            custom_id: u.custom_id.clone().unwrap_or_default(),
            email: u.email.clone().unwrap_or_default(),
            username: u.username.clone(),
            first_name: u.first_name.clone(),
            middle_name: u.middle_name.clone(),
            last_name: u.last_name.clone(),
            role: u.role.clone(),
            grade: if u.role == "Student" && u.grade != "Unspecified" {
                u.grade.clone()
            } else {
                String::new()
            },
            position: u.position.clone(),
            active: u.status == "active",
            portal_role: u.portal_role.clone(),
            prevent_archiving: u.prevent_archiving,
            schools: u.school_ids.iter().map(Uuid::to_string).collect(),
            version: u.version,
        }
    }

    /// The values and the password field from an urlencoded body (`schools` repeats).
    fn parse(body: &[u8]) -> (FormValues, String) {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let mut v = FormValues::default();
        let mut password = String::new();
        for (k, val) in pairs {
            match k.as_str() {
                "custom_id" => v.custom_id = val,
                "email" => v.email = val,
                "username" => v.username = val,
                "first_name" => v.first_name = val,
                "middle_name" => v.middle_name = val,
                "last_name" => v.last_name = val,
                "role" => v.role = val,
                "grade" => v.grade = val,
                "position" => v.position = val,
                "active" => v.active = true,
                "portal_role" => v.portal_role = val,
                "prevent_archiving" => v.prevent_archiving = true,
                "schools" => v.schools.push(val),
                "version" => v.version = val.trim().parse().unwrap_or(-1),
                "password" => password = val,
                _ => {}
            }
        }
        (v, password)
    }
}

/// Messages next to the fields they are about.
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<&'static str, String>);

impl FieldErrors {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    fn add(&mut self, field: &'static str, msg: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| msg.into());
    }
}

/// The user page's facts and actions (edit only).
pub struct UserView {
    pub id: Uuid,
    pub state: &'static str,
    pub state_label: &'static str,
    pub source: String,
    pub created: String,
    pub updated: String,
    pub password_state: &'static str,
    pub archived: bool,
    pub active: bool,
    pub manageable: bool,
    pub is_self: bool,
    pub name: String,
}

#[derive(Template)]
#[template(path = "user_form.html")]
struct FormPage {
    chrome: Chrome,
    is_new: bool,
    action: String,
    title: String,
    v: FormValues,
    errors: FieldErrors,
    notice: Option<String>,
    role_opts: Vec<Opt>,
    grade_opts: Vec<Opt>,
    school_opts: Vec<Opt>,
    portal_opts: Vec<Opt>,
    can_grant_admin: bool,
    readonly: bool,
    user: Option<UserView>,
    history: Vec<history::Item>,
}

fn date_time(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

fn user_view(scope: &DistrictScope, u: &UserRecord) -> UserView {
    let state = if u.archived_at.is_some() {
        "archived"
    } else if u.status == "inactive" {
        "inactive"
    } else {
        "active"
    };
    UserView {
        id: u.id,
        state,
        state_label: match state {
            "archived" => "Archived",
            "inactive" => "Inactive",
            _ => "Active",
        },
        source: source_label(&u.source),
        created: date_time(u.created_at),
        updated: date_time(u.updated_at),
        password_state: match (u.has_password, u.password_temporary) {
            (false, _) => "None: reset it to let them sign in",
            (true, true) => "Temporary: must be changed at first sign-in",
            (true, false) => "Set by the user",
        },
        archived: u.archived_at.is_some(),
        active: u.status == "active",
        manageable: can_manage(scope, u),
        is_self: is_self(scope, u),
        name: display_name(&u.first_name, &u.last_name, &u.username),
    }
}

/// Everything a form page needs besides the values; `schools` are the ones the admin may
/// assign.
#[allow(clippy::too_many_arguments)]
async fn form_page(
    session: &Session,
    scope: &DistrictScope,
    schools: &[SchoolOption],
    v: FormValues,
    errors: FieldErrors,
    notice: Option<String>,
    user: Option<(&UserRecord, Vec<history::Item>)>,
) -> FormPage {
    let is_new = user.is_none();
    let role_opts = std::iter::once(Opt::new("", "Choose…", &v.role))
        .chain(
            Role::ALL
                .iter()
                .map(|r| Opt::new(r.as_str(), r.as_str(), &v.role)),
        )
        .collect();
    let grade_opts = std::iter::once(Opt::new("", "— (adults, or not known)", &v.grade))
        .chain(
            Grade::all()
                .filter(|g| *g != Grade::UNSPECIFIED)
                .map(|g| Opt::new(g.as_str(), g.as_str(), &v.grade)),
        )
        .collect();
    let school_opts = schools
        .iter()
        .map(|s| Opt {
            value: s.id.to_string(),
            label: format!("{} ({})", s.name, s.external_id),
            selected: v.schools.iter().any(|x| *x == s.id.to_string()),
        })
        .collect();
    let portal_opts = [
        PortalRole::User,
        PortalRole::SchoolAdmin,
        PortalRole::DistrictAdmin,
    ]
    .iter()
    .map(|p| Opt::new(p.as_str(), p.label(), &v.portal_role))
    .collect();
    let (title, action, readonly, view, history) = match user {
        None => (
            "Add a user".to_string(),
            "/users".to_string(),
            false,
            None,
            Vec::new(),
        ),
        Some((u, history)) => {
            let view = user_view(scope, u);
            (
                view.name.clone(),
                format!("/users/{}", u.id),
                view.archived || !view.manageable,
                Some(view),
                history,
            )
        }
    };
    FormPage {
        chrome: chrome(session, Some(&scope.person), "/users").await,
        is_new,
        action,
        title,
        v,
        errors,
        notice,
        role_opts,
        grade_opts,
        school_opts,
        portal_opts,
        can_grant_admin: scope.is_district_admin(),
        readonly,
        user: view,
        history,
    }
}

pub async fn new_form(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
) -> AppResult<Response> {
    let schools =
        db::schools::options(&state.pool, scope.district_id, scope.schools.as_deref()).await?;
    let mut v = FormValues::blank();
    if schools.len() == 1 {
        v.schools = vec![schools[0].id.to_string()];
    }
    let page = form_page(
        &session,
        &scope,
        &schools,
        v,
        FieldErrors::default(),
        None,
        None,
    )
    .await;
    Ok(render(&page)?.into_response())
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Path(guid): Path<String>,
) -> AppResult<Response> {
    let user = load(&state, &scope, &guid).await?;
    let schools =
        db::schools::options(&state.pool, scope.district_id, scope.schools.as_deref()).await?;
    let items =
        history::items(db::audit::for_entity(&state.pool, scope.district_id, user.id).await?);
    let notice = user.archived_at.is_some().then(|| {
        "This user is archived: off the lists, search and master CSV, and unable to sign in. Restore them to make changes."
            .to_string()
    });
    let page = form_page(
        &session,
        &scope,
        &schools,
        FormValues::from_record(&user),
        FieldErrors::default(),
        notice,
        Some((&user, items)),
    )
    .await;
    Ok(render(&page)?.into_response())
}

/// A form that passed every check.
struct Valid {
    fields: UserFields,
    schools: Vec<Uuid>,
    password: Option<String>,
}

const MAX_NAME: usize = 100;

/// Check the form against SPEC §2 and the admin's rights; `existing` is the user being
/// edited. Every message goes next to its field.
async fn validate(
    state: &AppState,
    scope: &DistrictScope,
    v: &FormValues,
    password: &str,
    existing: Option<&UserRecord>,
    all_schools: &[SchoolOption],
) -> AppResult<Result<Valid, FieldErrors>> {
    let mut e = FieldErrors::default();
    let text =
        |e: &mut FieldErrors, field: &'static str, label: &str, value: &str, required: bool| {
            let t = value.trim().to_string();
            if required && t.is_empty() {
                e.add(field, format!("{label} is required."));
            } else if t.chars().count() > MAX_NAME {
                e.add(
                    field,
                    format!("{label} must be at most {MAX_NAME} characters."),
                );
            }
            t
        };
    let first_name = text(&mut e, "first_name", "First name", &v.first_name, true);
    let middle_name = text(&mut e, "middle_name", "Middle name", &v.middle_name, false);
    let last_name = text(&mut e, "last_name", "Last name", &v.last_name, true);
    let custom_id =
        Some(text(&mut e, "custom_id", "Custom ID", &v.custom_id, false)).filter(|s| !s.is_empty());
    let position = text(&mut e, "position", "Position", &v.position, false);

    let role = Role::parse(&v.role);
    if role.is_none() {
        e.add("role", format!("Choose a role: {}.", Role::expected()));
    }
    let student = role.is_some_and(Role::is_student);

    let email = match v.email.trim() {
        "" => None,
        raw => match parse_email(raw) {
            Some(m) if m.len() <= 254 => Some(m),
            _ => {
                e.add(
                    "email",
                    format!("\"{raw}\" is not a valid email address (like name@school.org)."),
                );
                None
            }
        },
    };
    if role.is_some() && !student && email.is_none() && !e.has("email") {
        e.add(
            "email",
            "Email is required for teachers, staff and administrators.",
        );
    }
    if student && email.is_none() && custom_id.is_none() && !e.has("email") {
        e.add("custom_id", "A student needs a custom ID or an email.");
    }

    let grade = match v.grade.trim() {
        "" => Some(Grade::UNSPECIFIED),
        g => Grade::parse(g),
    };
    match grade {
        None => e.add("grade", format!("Choose a grade: {}.", Grade::expected())),
        Some(g) if role.is_some() && !student && g != Grade::UNSPECIFIED => {
            e.add("grade", "Grade is only for students.")
        }
        _ => {}
    }
    if student && !position.is_empty() {
        e.add(
            "position",
            "Position is only for adults (teachers, staff, administrators).",
        );
    }

    // Portal rights: only a district admin grants or removes admin rights.
    let current_portal = existing.map_or("user", |u| u.portal_role.as_str());
    let portal_role = if v.portal_role.trim().is_empty() {
        PortalRole::parse(current_portal).unwrap_or(PortalRole::User)
    } else {
        match PortalRole::parse(v.portal_role.trim()) {
            Some(p) => p,
            None => {
                e.add("portal_role", "Choose a portal role.");
                PortalRole::User
            }
        }
    };
    if !scope.is_district_admin() && portal_role.as_str() != current_portal {
        e.add(
            "portal_role",
            "Only district admins can give or remove admin rights.",
        );
    }
    let me = existing.is_some_and(|u| is_self(scope, u));
    if me && portal_role != PortalRole::parse(current_portal).unwrap_or(PortalRole::User) {
        e.add("portal_role", "You cannot change your own admin rights.");
    }
    if me && !v.active {
        e.add("status", "You cannot make your own account inactive.");
    }

    // Schools: the district's, and for a school admin only their own; a school admin keeps
    // the user's other schools as they are.
    let known: HashMap<String, Uuid> = all_schools
        .iter()
        .map(|s| (s.id.to_string(), s.id))
        .collect();
    let mut chosen: Vec<Uuid> = Vec::new();
    for s in &v.schools {
        match known.get(s.trim()) {
            Some(id) if scope.schools.as_ref().is_none_or(|mine| mine.contains(id)) => {
                if !chosen.contains(id) {
                    chosen.push(*id)
                }
            }
            Some(_) => e.add("schools", "You can only assign your own schools."),
            None => e.add("schools", "Choose schools from the list."),
        }
    }
    if let (Some(mine), Some(u)) = (&scope.schools, existing) {
        for id in &u.school_ids {
            if !mine.contains(id) && !chosen.contains(id) {
                chosen.push(*id);
            }
        }
    }
    if scope.schools.is_some()
        && !chosen
            .iter()
            .any(|id| scope.schools.as_ref().is_some_and(|m| m.contains(id)))
    {
        e.add("schools", "Choose at least one of your schools.");
    } else if chosen.is_empty() && portal_role != PortalRole::DistrictAdmin {
        e.add("schools", "Choose at least one school.");
    }

    // Username: given, or generated from the name (`first.last`, `first.last2`…).
    let username = match v.username.trim() {
        "" if first_name.is_empty() && last_name.is_empty() => String::new(),
        "" => {
            free_username(
                state,
                scope.district_id,
                &first_name,
                &last_name,
                existing.map(|u| u.username.as_str()),
            )
            .await?
        }
        u => {
            if u.chars().count() > MAX_NAME
                || !u
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
            {
                e.add(
                    "username",
                    "Use letters, digits, dots, dashes, underscores or @ only (at most 100).",
                );
            }
            u.to_string()
        }
    };

    let password = (!password.is_empty()).then(|| password.to_string());
    if let Some(pw) = &password
        && let Err(err) = auth::check_new_password(pw, pw, &username, email.as_deref())
    {
        e.add("password", format!("Not a usable password: {err}."));
    }

    if !username.is_empty() {
        let taken = db::user_edit::taken(
            &state.pool,
            scope.district_id,
            existing.map(|u| u.id),
            custom_id.as_deref(),
            email.as_deref(),
            &username,
        )
        .await?;
        if taken.custom_id {
            e.add(
                "custom_id",
                "This custom ID is already used by another user in the district.",
            );
        }
        if taken.email {
            e.add(
                "email",
                "This email is already used by another user in the district.",
            );
        }
        if taken.username {
            e.add(
                "username",
                "This username is already used by another user in the district.",
            );
        }
    }

    if !e.is_empty() {
        return Ok(Err(e));
    }
    let role = role.expect("checked above");
    Ok(Ok(Valid {
        fields: UserFields {
            custom_id,
            email,
            username,
            first_name,
            middle_name,
            last_name,
            role: role.as_str().to_string(),
            grade: if student {
                grade.unwrap_or(Grade::UNSPECIFIED).as_str().to_string()
            } else {
                Grade::UNSPECIFIED.as_str().to_string()
            },
            position: if student { String::new() } else { position },
            status: if v.active { "active" } else { "inactive" }.to_string(),
            portal_role: portal_role.as_str().to_string(),
            prevent_archiving: v.prevent_archiving,
        },
        schools: chosen,
        password,
    }))
}

/// Username material from a name part: lower-case ASCII letters and digits, common accented
/// letters folded (é → e, ß → ss).
fn username_part(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => out.push('a'),
            'ç' | 'ć' | 'č' => out.push('c'),
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' | 'ī' => out.push('i'),
            'ñ' | 'ń' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => out.push('o'),
            'ù' | 'ú' | 'û' | 'ü' | 'ū' => out.push('u'),
            'ý' | 'ÿ' => out.push('y'),
            'ś' | 'š' => out.push('s'),
            'ž' | 'ź' | 'ż' => out.push('z'),
            'ł' => out.push('l'),
            'ß' => out.push_str("ss"),
            _ => {}
        }
    }
    out
}

/// The first free `first.last`, `first.last2`, … in the district (the user's own current
/// username counts as free).
async fn free_username(
    state: &AppState,
    district_id: Uuid,
    first: &str,
    last: &str,
    own: Option<&str>,
) -> AppResult<String> {
    let (f, l) = (username_part(first), username_part(last));
    let base = match (f.is_empty(), l.is_empty()) {
        (false, false) => format!("{f}.{l}"),
        (false, true) => f,
        (true, false) => l,
        (true, true) => "user".to_string(),
    };
    let own = own.map(str::to_lowercase);
    for start in (1..=1000).step_by(50) {
        let candidates: Vec<String> = (start..start + 50)
            .map(|n| {
                if n == 1 {
                    base.clone()
                } else {
                    format!("{base}{n}")
                }
            })
            .collect();
        let used = db::user_edit::usernames_in_use(&state.pool, district_id, &candidates).await?;
        if let Some(free) = candidates
            .into_iter()
            .find(|c| !used.contains(c) || own.as_deref() == Some(c.as_str()))
        {
            return Ok(free);
        }
    }
    Ok(format!(
        "{base}.{}",
        &Uuid::new_v4().simple().to_string()[..6]
    ))
}

/// A user's fields as the audit log records them (the same keys as a run's entries).
fn snapshot(f: &UserFields, schools: &[Uuid], all: &[SchoolOption]) -> Map<String, Value> {
    let mut ext: Vec<&str> = all
        .iter()
        .filter(|s| schools.contains(&s.id))
        .map(|s| s.external_id.as_str())
        .collect();
    ext.sort_unstable();
    let mut m = Map::new();
    m.insert("custom_id".into(), json!(f.custom_id));
    m.insert("email".into(), json!(f.email));
    m.insert("username".into(), json!(f.username));
    m.insert("first_name".into(), json!(f.first_name));
    m.insert("middle_name".into(), json!(f.middle_name));
    m.insert("last_name".into(), json!(f.last_name));
    m.insert("role".into(), json!(f.role));
    m.insert("school_external_id".into(), json!(ext));
    m.insert("grade".into(), json!(f.grade));
    m.insert("position".into(), json!(f.position));
    m.insert(
        "status".into(),
        json!(if f.status == "inactive" {
            "Inactive"
        } else {
            "Active"
        }),
    );
    m.insert("portal_role".into(), json!(f.portal_role));
    m.insert("prevent_archiving".into(), json!(f.prevent_archiving));
    m
}

fn record_fields(u: &UserRecord) -> UserFields {
    UserFields {
        custom_id: u.custom_id.clone(),
        email: u.email.clone(),
        username: u.username.clone(),
        first_name: u.first_name.clone(),
        middle_name: u.middle_name.clone(),
        last_name: u.last_name.clone(),
        role: u.role.clone(),
        grade: u.grade.clone(),
        position: u.position.clone(),
        status: u.status.clone(),
        portal_role: u.portal_role.clone(),
        prevent_archiving: u.prevent_archiving,
    }
}

/// A unique violation that slipped past the checks (two admins at once), as a field message.
fn constraint_field(e: &sqlx::Error) -> Option<(&'static str, &'static str)> {
    let field = match e.as_database_error()?.constraint()? {
        "users_district_custom_id_key" => "custom_id",
        "users_district_email_key" => "email",
        "users_district_username_key" => "username",
        _ => return None,
    };
    Some((field, db::constraint_message(e)?))
}

#[derive(Template)]
#[template(path = "user_password.html")]
pub struct PasswordShown {
    pub chrome: Chrome,
    pub id: Uuid,
    pub name: String,
    pub login: String,
    pub password: String,
    pub created: bool,
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    RawForm(body): RawForm,
) -> AppResult<Response> {
    let (v, password) = FormValues::parse(&body);
    let all_schools = db::schools::options(&state.pool, scope.district_id, None).await?;
    let mine =
        db::schools::options(&state.pool, scope.district_id, scope.schools.as_deref()).await?;
    let valid = match validate(&state, &scope, &v, &password, None, &all_schools).await? {
        Ok(valid) => valid,
        Err(errors) => {
            let page = form_page(&session, &scope, &mine, v, errors, None, None).await;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
        }
    };
    let (secret, temporary) = match valid.password.clone() {
        Some(pw) => (pw, false),
        None => (auth::generate_temporary(), true),
    };
    let to_hash = secret.clone();
    let hash = tokio::task::spawn_blocking(move || {
        if temporary {
            auth::hash_temporary(&to_hash)
        } else {
            auth::hash_password(&to_hash)
        }
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;

    let id = Uuid::new_v4();
    let mut tx = state.pool.begin().await?;
    let now = state.clock.now();
    if let Err(e) = db::user_edit::insert(
        &mut *tx,
        scope.district_id,
        id,
        &valid.fields,
        &hash,
        temporary,
        now,
    )
    .await
    {
        return match constraint_field(&e) {
            Some((field, msg)) => {
                let mut errors = FieldErrors::default();
                errors.add(field, format!("{}{}.", msg[..1].to_uppercase(), &msg[1..]));
                let page = form_page(&session, &scope, &mine, v, errors, None, None).await;
                Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
            }
            None => Err(e.into()),
        };
    }
    db::user_edit::set_schools(&mut tx, scope.district_id, id, &valid.schools).await?;
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "user.create",
            entity_kind: "user",
            entity_id: Some(id),
            run_id: None,
            before: None,
            after: Some(Value::Object(snapshot(
                &valid.fields,
                &valid.schools,
                &all_schools,
            ))),
        },
    )
    .await?;
    tx.commit().await?;
    counts::forget(scope.district_id);
    tracing::info!(district = %scope.district_id, user = %id, "user added");

    let name = display_name(
        &valid.fields.first_name,
        &valid.fields.last_name,
        &valid.fields.username,
    );
    if !temporary {
        set_flash(&session, "success", format!("{name} added.")).await;
        return Ok(Redirect::to(&format!("/users/{id}")).into_response());
    }
    let page = PasswordShown {
        chrome: chrome(&session, Some(&scope.person), "/users").await,
        id,
        name,
        login: valid
            .fields
            .email
            .clone()
            .unwrap_or(valid.fields.username.clone()),
        password: secret,
        created: true,
    };
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        render(&page)?,
    )
        .into_response())
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    Path(guid): Path<String>,
    RawForm(body): RawForm,
) -> AppResult<Response> {
    let existing = load(&state, &scope, &guid).await?;
    if !can_manage(&scope, &existing) {
        return Err(AppError::Forbidden);
    }
    if existing.archived_at.is_some() {
        return Err(AppError::Conflict(
            "This user is archived. Restore them before making changes.".into(),
        ));
    }
    let (v, _) = FormValues::parse(&body);
    let all_schools = db::schools::options(&state.pool, scope.district_id, None).await?;
    let mine =
        db::schools::options(&state.pool, scope.district_id, scope.schools.as_deref()).await?;
    let again = |v: FormValues, errors: FieldErrors, notice: Option<String>, status: StatusCode| {
        let (state, session, scope, mine, existing) = (&state, &session, &scope, &mine, &existing);
        async move {
            let items = history::items(
                db::audit::for_entity(&state.pool, scope.district_id, existing.id).await?,
            );
            let page = form_page(
                session,
                scope,
                mine,
                v,
                errors,
                notice,
                Some((existing, items)),
            )
            .await;
            Ok::<_, AppError>((status, render(&page)?).into_response())
        }
    };
    let valid = match validate(&state, &scope, &v, "", Some(&existing), &all_schools).await? {
        Ok(valid) => valid,
        Err(errors) => return again(v, errors, None, StatusCode::UNPROCESSABLE_ENTITY).await,
    };

    let before = snapshot(
        &record_fields(&existing),
        &existing.school_ids,
        &all_schools,
    );
    let after = snapshot(&valid.fields, &valid.schools, &all_schools);
    let changed: Vec<&String> = after
        .iter()
        .filter(|(k, val)| before.get(*k) != Some(val))
        .map(|(k, _)| k)
        .collect();
    if changed.is_empty() {
        set_flash(&session, "info", "Nothing to save: no field was changed.").await;
        return Ok(Redirect::to(&format!("/users/{}", existing.id)).into_response());
    }

    let mut tx = state.pool.begin().await?;
    let written = match db::user_edit::update(
        &mut *tx,
        scope.district_id,
        existing.id,
        v.version,
        &valid.fields,
    )
    .await
    {
        Ok(w) => w,
        Err(e) => {
            drop(tx);
            return match constraint_field(&e) {
                Some((field, msg)) => {
                    let mut errors = FieldErrors::default();
                    errors.add(field, format!("{}{}.", msg[..1].to_uppercase(), &msg[1..]));
                    again(v, errors, None, StatusCode::UNPROCESSABLE_ENTITY).await
                }
                None => Err(e.into()),
            };
        }
    };
    if written.is_none() {
        drop(tx);
        // Someone else saved in between: keep this admin's values, carry the current
        // version so that saving again (after a look) is a deliberate choice.
        let current = load(&state, &scope, &guid).await?;
        let mut v = v;
        v.version = current.version;
        let notice = "This user was changed by someone else since you opened the page, so your changes were not saved. \
                      Open the user again in another tab to see their changes; saving this form again will replace them."
            .to_string();
        return again(
            v,
            FieldErrors::default(),
            Some(notice),
            StatusCode::CONFLICT,
        )
        .await;
    }
    if before.get("school_external_id") != after.get("school_external_id") {
        db::user_edit::set_schools(&mut tx, scope.district_id, existing.id, &valid.schools).await?;
    }
    let pick = |m: &Map<String, Value>| -> Value {
        Value::Object(
            changed
                .iter()
                .map(|k| ((*k).clone(), m.get(*k).cloned().unwrap_or(Value::Null)))
                .collect(),
        )
    };
    db::audit::record(
        &mut *tx,
        scope.district_id,
        &scope.actor(),
        Entry {
            action: "user.update",
            entity_kind: "user",
            entity_id: Some(existing.id),
            run_id: None,
            before: Some(pick(&before)),
            after: Some(pick(&after)),
        },
    )
    .await?;
    tx.commit().await?;
    counts::forget(scope.district_id);
    let name = display_name(
        &valid.fields.first_name,
        &valid.fields.last_name,
        &valid.fields.username,
    );
    set_flash(&session, "success", format!("{name} saved.")).await;
    Ok(Redirect::to(&format!("/users/{}", existing.id)).into_response())
}
