//! Files a person downloads: the master CSV's rows, with spreadsheet formulas neutralised.

use crate::db::export::ExportRow;
use std::borrow::Cow;

/// The canonical header of the master CSV (SPEC §3).
pub const MASTER_HEADER: [&str; 13] = [
    "user_guid",
    "custom_id",
    "email",
    "username",
    "first_name",
    "middle_name",
    "last_name",
    "role",
    "school_external_id",
    "grade",
    "position",
    "status",
    "password",
];

/// A cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets
/// a leading `'`; our reader strips it again on the way back in.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// One master CSV record for a user.
pub fn master_record(u: &ExportRow) -> [String; 13] {
    let grade = if u.role == "Student" {
        u.grade.as_str()
    } else {
        ""
    };
    let status = if u.status == "inactive" {
        "Inactive"
    } else {
        "Active"
    };
    let cells = [
        u.id.to_string(),
        u.custom_id.clone().unwrap_or_default(),
        u.email.clone().unwrap_or_default(),
        u.username.clone(),
        u.first_name.clone(),
        u.middle_name.clone(),
        u.last_name.clone(),
        u.role.clone(),
        u.schools.join(";"),
        grade.to_string(),
        u.position.clone(),
        status.to_string(),
        String::new(),
    ];
    cells.map(|c| neutralise(&c).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(neutralise("=1+2"), "'=1+2");
        assert_eq!(neutralise("+44 20"), "'+44 20");
        assert_eq!(neutralise("-5"), "'-5");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("\tx"), "'\tx");
        assert_eq!(neutralise("Smith"), "Smith");
        assert_eq!(neutralise(""), "");
    }
}
