//! The Users screen and the account lifecycle: the list (search, filters, keyset pages, the
//! master CSV), the add/edit form with the user's history, and the status, archive,
//! restore and password-reset actions.

pub mod actions;
pub mod bulk;
pub mod bulk_bar;
pub mod form;
mod history;
pub mod kept;
pub mod list;
pub mod owner;
mod snapshot;
mod validate;
mod view;

use super::AppState;
use super::error::{AppError, AppResult};
use super::session::DistrictScope;
use crate::db;
use crate::db::user_edit::UserRecord;
use crate::domain::PortalRole;
use crate::user_listing::cache;
use uuid::Uuid;

/// A user the scope may see, or 404: another district's GUID, a user outside a school
/// admin's schools and a malformed GUID all answer the same.
pub(crate) async fn load(
    state: &AppState,
    scope: &DistrictScope,
    guid: &str,
) -> AppResult<UserRecord> {
    let id = Uuid::parse_str(guid).map_err(|_| AppError::NotFound)?;
    db::user_edit::get(&state.pool, scope.district_id, id, scope.schools.as_deref())
        .await?
        .ok_or(AppError::NotFound)
}

/// A school admin manages the plain users of their schools; admin accounts are read-only to
/// them (changing an admin's email or resetting their password would hand over the admin's
/// rights).
pub(crate) fn can_manage(scope: &DistrictScope, user: &UserRecord) -> bool {
    scope.is_district_admin() || user.portal_role == PortalRole::User
}

/// The user's own record (an admin must not lock themselves out).
pub(crate) fn is_self(scope: &DistrictScope, user: &UserRecord) -> bool {
    match &scope.person {
        super::session::Person::Member(m) => m.id == user.id,
        _ => false,
    }
}

pub(crate) use crate::domain::person::display_name;

/// A user's source as a person reads it: a sync by its connection's name
/// (`sync_names`: `db::syncs::names`).
pub(crate) fn source_label(
    source: &str,
    sync_names: &std::collections::HashMap<uuid::Uuid, String>,
) -> String {
    crate::reconcile::report::source_name(source, sync_names)
}

/// Is a user of this `users.source` provided by a feed (a file or a roster sync)? Only those
/// have fields to keep (SPEC §4, "Fields an admin edited"): a manual user has no feed to keep
/// them against.
pub(crate) fn feed_owned(source: &str) -> bool {
    !matches!(
        crate::domain::Source::from_db(source),
        crate::domain::Source::Manual
    )
}

/// May an admin's change of this form field be kept against feeds? The feed fields of the
/// user CSV, but `status`: SPEC §2 makes Active/Inactive a toggle both an admin and a file's
/// `status` column flip (a student a file makes active again was re-enrolled in the SIS), so
/// the latest one wins, as for the Make inactive button; `portal_role` and
/// `prevent_archiving` are no feed's to write anyway.
pub(crate) fn keepable(field: &str) -> bool {
    field != "status"
        && crate::domain::Field::from_name(field).is_some_and(|f| {
            !matches!(
                f,
                crate::domain::Field::UserGuid | crate::domain::Field::Password
            )
        })
}

/// The Users screen's remembered counts and pages are stale (users changed elsewhere).
pub(crate) fn list_changed(district_id: uuid::Uuid) {
    cache::forget(district_id);
}

/// An option of a `<select>`.
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Opt {
    pub fn new(value: impl Into<String>, label: impl Into<String>, current: &str) -> Opt {
        let value = value.into();
        let selected = value == current;
        Opt {
            value,
            label: label.into(),
            selected,
        }
    }
}

/// "1,234,567".
pub(crate) fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Where to go back to after an action on the list: a Users screen URL, never elsewhere.
pub(crate) fn safe_back(back: Option<&str>, fallback: String) -> String {
    match back {
        Some(b)
            if (b == "/users" || b.starts_with("/users?") || b.starts_with("/users/"))
                && !b.contains("//")
                && !b.contains('\\') =>
        {
            b.to_string()
        }
        _ => fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn back_stays_on_the_users_screen() {
        let f = || "/users".to_string();
        assert_eq!(
            safe_back(Some("/users?q=a&status=inactive"), f()),
            "/users?q=a&status=inactive"
        );
        assert_eq!(safe_back(Some("https://evil.example/"), f()), "/users");
        assert_eq!(safe_back(Some("//evil.example/users"), f()), "/users");
        assert_eq!(safe_back(Some("/users//evil"), f()), "/users");
        assert_eq!(safe_back(None, f()), "/users");
    }
}
