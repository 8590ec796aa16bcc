//! The user add/edit form's rules: field checks, the admin's rights, generated usernames.
//!
//! Also the form's values as typed, its field messages and the uniqueness messages (SPEC §2).
//!
//! Plain Rust, no SQL, no HTTP: `web::users::validate` composes these steps with the
//! database reads (generated usernames, uniqueness in the district).

use super::{Grade, PortalRole, Role, parse_email};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// The longest name, position, custom ID or username, in characters.
pub const MAX_NAME: usize = 100;

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
            portal_role: PortalRole::User.as_str().into(),
            // Manually added users are protected from feeds' archiving by default (SPEC §4).
            prevent_archiving: true,
            ..FormValues::default()
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

/// Messages next to the fields they are about; a field keeps its first message.
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

/// The fields after their own checks: trimmed, and typed where they parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub first_name: String,
    pub middle_name: String,
    pub last_name: String,
    pub custom_id: Option<String>,
    pub position: String,
    /// `None` when the role did not parse (its message is in the errors).
    pub role: Option<Role>,
    /// Lower-cased; `None` when blank or malformed.
    pub email: Option<String>,
    /// `None` when the grade did not parse; a blank grade is `Unspecified`.
    pub grade: Option<Grade>,
    /// The portal role asked for; blank keeps `current`.
    pub portal_role: PortalRole,
    /// The username as given (trimmed); empty when it is to be generated.
    pub username: String,
}

impl Checked {
    pub fn student(&self) -> bool {
        self.role.is_some_and(Role::is_student)
    }
}

/// A trimmed text field: required or not, at most `MAX_NAME` characters.
fn text(
    e: &mut FieldErrors,
    field: &'static str,
    label: &str,
    value: &str,
    required: bool,
) -> String {
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
}

/// Check each field on its own (SPEC §2): names, custom ID, position, role, email shape and
/// who needs one, grade, portal role word, username shape. `current` is the edited user's
/// portal role (`User` for a new user), kept when the form leaves it blank.
pub fn check_fields(v: &FormValues, current: PortalRole, e: &mut FieldErrors) -> Checked {
    let first_name = text(e, "first_name", "First name", &v.first_name, true);
    let middle_name = text(e, "middle_name", "Middle name", &v.middle_name, false);
    let last_name = text(e, "last_name", "Last name", &v.last_name, true);
    let custom_id =
        Some(text(e, "custom_id", "Custom ID", &v.custom_id, false)).filter(|s| !s.is_empty());
    let position = text(e, "position", "Position", &v.position, false);

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

    let portal_role = if v.portal_role.trim().is_empty() {
        current
    } else {
        match PortalRole::parse(v.portal_role.trim()) {
            Some(p) => p,
            None => {
                e.add("portal_role", "Choose a portal role.");
                PortalRole::User
            }
        }
    };

    let username = v.username.trim().to_string();
    if !username.is_empty()
        && (username.chars().count() > MAX_NAME
            || !username
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
    {
        e.add(
            "username",
            "Use letters, digits, dots, dashes, underscores or @ only (at most 100).",
        );
    }

    Checked {
        first_name,
        middle_name,
        last_name,
        custom_id,
        position,
        role,
        email,
        grade,
        portal_role,
        username,
    }
}

/// The admin filling in the form, as far as rights go.
#[derive(Debug, Clone, Copy)]
pub struct Editor<'a> {
    pub district_admin: bool,
    /// A school admin's schools; `None` for a district admin.
    pub schools: Option<&'a [Uuid]>,
}

/// The user being edited, as far as rights go.
#[derive(Debug, Clone, Copy)]
pub struct Edited<'a> {
    pub portal_role: PortalRole,
    pub schools: &'a [Uuid],
    /// The editor's own account.
    pub is_self: bool,
}

/// What the admin may set: only a district admin grants or removes admin rights, nobody
/// changes their own rights or makes themselves inactive, and schools are the district's
/// (`district_schools`) and, for a school admin, only their own — a school admin keeps the
/// user's other schools as they are. Returns the user's schools.
pub fn check_rights(
    editor: Editor<'_>,
    edited: Option<Edited<'_>>,
    portal_role: PortalRole,
    active: bool,
    wanted: &[String],
    district_schools: &[Uuid],
    e: &mut FieldErrors,
) -> Vec<Uuid> {
    let current = edited.map_or(PortalRole::User, |u| u.portal_role);
    if !editor.district_admin && portal_role != current {
        e.add(
            "portal_role",
            "Only district admins can give or remove admin rights.",
        );
    }
    let me = edited.is_some_and(|u| u.is_self);
    if me && portal_role != current {
        e.add("portal_role", "You cannot change your own admin rights.");
    }
    if me && !active {
        e.add("status", "You cannot make your own account inactive.");
    }

    let known: HashMap<String, Uuid> = district_schools
        .iter()
        .map(|id| (id.to_string(), *id))
        .collect();
    let mut chosen: Vec<Uuid> = Vec::new();
    for s in wanted {
        match known.get(s.trim()) {
            Some(id) if editor.schools.is_none_or(|mine| mine.contains(id)) => {
                if !chosen.contains(id) {
                    chosen.push(*id)
                }
            }
            Some(_) => e.add("schools", "You can only assign your own schools."),
            None => e.add("schools", "Choose schools from the list."),
        }
    }
    if let (Some(mine), Some(u)) = (editor.schools, edited) {
        for id in u.schools {
            if !mine.contains(id) && !chosen.contains(id) {
                chosen.push(*id);
            }
        }
    }
    if let Some(mine) = editor.schools
        && !chosen.iter().any(|id| mine.contains(id))
    {
        e.add("schools", "Choose at least one of your schools.");
    } else if chosen.is_empty()
        && portal_role != PortalRole::DistrictAdmin
        // A district-level user (no school: issue 16, item 7) stays one when edited.
        && !edited.is_some_and(|u| u.schools.is_empty())
    {
        e.add("schools", "Choose at least one school.");
    }
    chosen
}

/// Another user of the district already holds these values (`db::user_edit::taken`): the
/// messages next to their fields.
pub fn add_taken(e: &mut FieldErrors, custom_id: bool, email: bool, username: bool) {
    if custom_id {
        e.add(
            "custom_id",
            "This custom ID is already used by another user in the district.",
        );
    }
    if email {
        e.add(
            "email",
            "This email is already used by another user in the district.",
        );
    }
    if username {
        e.add(
            "username",
            "This username is already used by another user in the district.",
        );
    }
}

/// Username material from a name part, and the generated username's stem: the one rule of
/// `domain::username` (every way in generates usernames alike).
pub use super::username::{base as username_base, part as username_part};

/// How many generated usernames are tried per database look-up.
pub const USERNAME_BATCH: usize = 50;

/// The batch of generated usernames numbered from `start`: `base` for 1, then `base2`, ….
pub fn username_candidates(base: &str, start: usize) -> Vec<String> {
    (start..start + USERNAME_BATCH)
        .map(|n| super::username::numbered(base, n))
        .collect()
}

/// The first candidate not in `used` (lower-cased); the user's own current username (`own`)
/// counts as free.
pub fn first_free(candidates: Vec<String>, used: &[String], own: Option<&str>) -> Option<String> {
    let own = own.map(str::to_lowercase);
    candidates
        .into_iter()
        .find(|c| !used.contains(c) || own.as_deref() == Some(c.as_str()))
}

#[cfg(test)]
mod tests;
