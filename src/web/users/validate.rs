//! The add/edit form's validation: `domain::user_form`'s checks plus the database reads.
//!
//! Field checks, then the admin's rights, then a generated username (first free in the
//! district), the password, and uniqueness in the district (`db::user_edit`).

use super::is_self;
use crate::auth;
use crate::db;
use crate::db::schools::SchoolOption;
use crate::db::user_edit::{UserFields, UserRecord};
use crate::domain::user_form::{self, Checked, Edited, Editor};
pub use crate::domain::user_form::{FieldErrors, FormValues};
use crate::domain::{Grade, PortalRole, UserStatus};
use crate::web::AppState;
use crate::web::error::AppResult;
use crate::web::session::DistrictScope;
use uuid::Uuid;

impl FormValues {
    /// The form filled in with a user's current values.
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
}

/// A form that passed every check.
pub(super) struct Valid {
    pub fields: UserFields,
    pub schools: Vec<Uuid>,
    pub password: Option<String>,
}

/// Check the form against SPEC §2 and the admin's rights; `existing` is the user being
/// edited. Every message goes next to its field; a field keeps its first message, so the
/// order of the steps decides which one is shown.
pub(super) async fn validate(
    state: &AppState,
    scope: &DistrictScope,
    v: &FormValues,
    password: &str,
    existing: Option<&UserRecord>,
    all_schools: &[SchoolOption],
) -> AppResult<Result<Valid, FieldErrors>> {
    let mut e = FieldErrors::default();
    let current = existing.map_or(PortalRole::User, |u| u.portal_role);
    let c = user_form::check_fields(v, current, &mut e);

    let editor = Editor {
        district_admin: scope.is_district_admin(),
        schools: scope.schools.as_deref(),
    };
    let edited = existing.map(|u| Edited {
        portal_role: u.portal_role,
        schools: &u.school_ids,
        is_self: is_self(scope, u),
    });
    let district_schools: Vec<Uuid> = all_schools.iter().map(|s| s.id).collect();
    let schools = user_form::check_rights(
        editor,
        edited,
        c.portal_role,
        v.active,
        &v.schools,
        &district_schools,
        &mut e,
    );

    // Username: given, or generated from the name (`first.last`, `first.last2`…).
    let username = if !c.username.is_empty() {
        c.username.clone()
    } else if c.first_name.is_empty() && c.last_name.is_empty() {
        String::new()
    } else {
        free_username(
            state,
            scope.district_id,
            &c.first_name,
            &c.last_name,
            existing.map(|u| u.username.as_str()),
        )
        .await?
    };

    let password = (!password.is_empty()).then(|| password.to_string());
    if let Some(pw) = &password
        && let Err(err) = auth::check_new_password(pw, pw, &username, c.email.as_deref())
    {
        e.add("password", format!("Not a usable password: {err}."));
    }

    if !username.is_empty() {
        let taken = db::user_edit::taken(
            &state.pool,
            scope.district_id,
            existing.map(|u| u.id),
            c.custom_id.as_deref(),
            c.email.as_deref(),
            &username,
        )
        .await?;
        user_form::add_taken(&mut e, taken.custom_id, taken.email, taken.username);
    }

    if !e.is_empty() {
        return Ok(Err(e));
    }
    Ok(Ok(Valid {
        fields: user_fields(c, username, v),
        schools,
        password,
    }))
}

/// The checked values as the row to write (a student has no position, an adult no grade).
fn user_fields(c: Checked, username: String, v: &FormValues) -> UserFields {
    let student = c.student();
    let role = c.role.expect("checked: no errors");
    UserFields {
        custom_id: c.custom_id,
        email: c.email,
        username,
        first_name: c.first_name,
        middle_name: c.middle_name,
        last_name: c.last_name,
        role: role.as_str().to_string(),
        grade: if student {
            c.grade.unwrap_or(Grade::UNSPECIFIED).as_str().to_string()
        } else {
            Grade::UNSPECIFIED.as_str().to_string()
        },
        position: if student { String::new() } else { c.position },
        status: if v.active {
            UserStatus::Active
        } else {
            UserStatus::Inactive
        },
        portal_role: c.portal_role,
        prevent_archiving: v.prevent_archiving,
    }
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
    let base = user_form::username_base(first, last);
    for start in (1..=1000).step_by(user_form::USERNAME_BATCH) {
        let candidates = user_form::username_candidates(&base, start);
        let used = db::user_edit::usernames_in_use(&state.pool, district_id, &candidates).await?;
        if let Some(free) = user_form::first_free(candidates, &used, own) {
            return Ok(free);
        }
    }
    Ok(format!(
        "{base}.{}",
        &Uuid::new_v4().simple().to_string()[..6]
    ))
}

/// A unique violation that slipped past the checks (two admins at once), as a field message.
pub(super) fn constraint_field(e: &sqlx::Error) -> Option<(&'static str, &'static str)> {
    let c = db::violated(e)?;
    Some((c.field()?, c.message()))
}
