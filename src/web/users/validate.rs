//! The add/edit form's values and checks: SPEC §2 fields, the admin's rights, uniqueness in
//! the district, generated usernames, and the audit snapshot of a user's fields.

use super::is_self;
use crate::auth;
use crate::db;
use crate::db::schools::SchoolOption;
use crate::db::user_edit::{UserFields, UserRecord};
use crate::domain::{Grade, PortalRole, Role, UserStatus, parse_email};
use crate::web::AppState;
use crate::web::error::AppResult;
use crate::web::session::DistrictScope;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
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
    pub fn blank() -> FormValues {
        FormValues {
            active: true,
            portal_role: "user".into(),
            // Manually added users are protected from feeds' archiving by default (SPEC §4).
            prevent_archiving: true,
            ..FormValues::default()
        }
    }

    pub fn from_record(u: &UserRecord) -> FormValues {
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
            active: u.status == UserStatus::Active,
            portal_role: u.portal_role.as_str().to_string(),
            prevent_archiving: u.prevent_archiving,
            schools: u.school_ids.iter().map(Uuid::to_string).collect(),
            version: u.version,
        }
    }

    /// The values and the password field from an urlencoded body (`schools` repeats).
    pub fn parse(body: &[u8]) -> (FormValues, String) {
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
                "active" => v.active = true, // vocab-literals: a form field
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
    pub fn add(&mut self, field: &'static str, msg: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| msg.into());
    }
}

/// A form that passed every check.
pub(super) struct Valid {
    pub fields: UserFields,
    pub schools: Vec<Uuid>,
    pub password: Option<String>,
}

pub(super) const MAX_NAME: usize = 100;

/// Check the form against SPEC §2 and the admin's rights; `existing` is the user being
/// edited. Every message goes next to its field.
pub(super) async fn validate(
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
            status: if v.active {
                UserStatus::Active
            } else {
                UserStatus::Inactive
            },
            portal_role,
            prevent_archiving: v.prevent_archiving,
        },
        schools: chosen,
        password,
    }))
}

/// Username material from a name part: lower-case ASCII letters and digits, common accented
/// letters folded (é → e, ß → ss).
pub(super) fn username_part(s: &str) -> String {
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
pub(super) async fn free_username(
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
pub(super) fn snapshot(
    f: &UserFields,
    schools: &[Uuid],
    all: &[SchoolOption],
) -> Map<String, Value> {
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
    m.insert("status".into(), json!(f.status.label()));
    m.insert("portal_role".into(), json!(f.portal_role));
    m.insert("prevent_archiving".into(), json!(f.prevent_archiving));
    m
}

pub(super) fn record_fields(u: &UserRecord) -> UserFields {
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
        status: u.status,
        portal_role: u.portal_role,
        prevent_archiving: u.prevent_archiving,
    }
}

/// A unique violation that slipped past the checks (two admins at once), as a field message.
pub(super) fn constraint_field(e: &sqlx::Error) -> Option<(&'static str, &'static str)> {
    let c = db::violated(e)?;
    Some((c.field()?, c.message()))
}
