//! The school restriction (issue 16, item 6): a file for one school — a school admin's
//! import, or a district admin's upload with a school picked — changes that school's users
//! only. Pure rules the planner asks at three points: a row naming another school is an
//! error naming the row and the column; a row matching a user of another school (or of
//! several, or none) is an error; the sweep of missing users covers that school's users only.

use crate::domain::{CurrentUser, Field, IncomingUser};

/// The one school a file is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolOnly {
    pub external_id: String,
    pub name: String,
}

impl SchoolOnly {
    /// The error for a row whose school column names another school, if it does.
    pub fn refuse_row(&self, inc: &IncomingUser) -> Option<String> {
        if !inc.present.contains(Field::SchoolExternalId) {
            return None;
        }
        // Issue 16, item 7: a district-level row (the district's own ID: given, no school).
        if inc.schools.is_empty() {
            return Some(format!(
                "line {}, column \"{}\": a district-level user (the district's own ID) is not at {} ({}), the only school this file is for",
                inc.line,
                Field::SchoolExternalId.name(),
                self.name,
                self.external_id
            ));
        }
        let other = inc.schools.iter().find(|s| **s != self.external_id)?;
        Some(format!(
            "line {}, column \"{}\": school \"{other}\" is not {} ({}), the only school this file is for",
            inc.line,
            Field::SchoolExternalId.name(),
            self.name,
            self.external_id
        ))
    }

    /// Is `user` this school's alone (so a file for the school may change or archive them)?
    pub fn covers<'s>(&self, mut schools: impl Iterator<Item = &'s str>) -> bool {
        let mut any = false;
        schools.all(|s| {
            any = true;
            s == self.external_id
        }) && any
    }

    /// The error for a row that matched `user` of another school, if so.
    pub fn refuse_user(&self, line: u64, user: &CurrentUser) -> Option<String> {
        if self.covers(user.schools.iter().map(|s| s.as_str())) {
            return None;
        }
        Some(format!(
            "line {line}: this row matches {}, who is not only at {} ({}); a file for one school changes that school's users only",
            user.username, self.name, self.external_id
        ))
    }
}
