//! Vocabularies as data: each accepted spelling maps to one canonical value.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Lower-case and drop spaces, `_`, `-` and `.` so `Pre-K`, `pre k` and `PREK` compare equal.
fn fold(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Student,
    Teacher,
    Staff,
    Administrator,
}

const ROLE_WORDS: &[(&str, Role)] = &[
    ("student", Role::Student),
    ("students", Role::Student),
    ("learner", Role::Student),
    ("pupil", Role::Student),
    ("teacher", Role::Teacher),
    ("teachers", Role::Teacher),
    ("faculty", Role::Teacher),
    ("staff", Role::Staff),
    ("aide", Role::Staff),
    ("proctor", Role::Staff),
    ("employee", Role::Staff),
    ("administrator", Role::Administrator),
    ("admin", Role::Administrator),
    ("districtadministrator", Role::Administrator),
    ("schooladministrator", Role::Administrator),
    ("principal", Role::Administrator),
];

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Student,
        Role::Teacher,
        Role::Staff,
        Role::Administrator,
    ];

    pub fn parse(raw: &str) -> Option<Role> {
        let f = fold(raw);
        ROLE_WORDS.iter().find(|(w, _)| *w == f).map(|(_, r)| *r)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "Student",
            Role::Teacher => "Teacher",
            Role::Staff => "Staff",
            Role::Administrator => "Administrator",
        }
    }

    pub fn is_student(self) -> bool {
        self == Role::Student
    }

    /// The accepted values, for error messages.
    pub fn expected() -> &'static str {
        "Student, Teacher, Staff, Administrator"
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A student's grade: an index into [`Grade::LABELS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grade(u8);

const GRADE_WORDS: &[(&str, &str)] = &[
    ("", "Unspecified"),
    ("unspecified", "Unspecified"),
    ("prek", "PreK"),
    ("pk", "PreK"),
    ("tk", "PreK"),
    ("prekindergarten", "PreK"),
    ("k", "K"),
    ("kg", "K"),
    ("kindergarten", "K"),
    ("other", "Other"),
    ("ug", "Other"),
    ("ungraded", "Other"),
];

impl Grade {
    pub const LABELS: [&'static str; 16] = [
        "Unspecified",
        "PreK",
        "K",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "10",
        "11",
        "12",
        "Other",
    ];
    pub const UNSPECIFIED: Grade = Grade(0);

    pub fn all() -> impl Iterator<Item = Grade> {
        (0..Self::LABELS.len() as u8).map(Grade)
    }

    pub fn parse(raw: &str) -> Option<Grade> {
        let f = fold(raw);
        let label = if let Some((_, l)) = GRADE_WORDS.iter().find(|(w, _)| *w == f) {
            *l
        } else {
            // "01".."12", "grade 3", "3rd"
            let digits = f
                .trim_start_matches("grade")
                .trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let n: u8 = digits.parse().ok()?;
            if !(1..=12).contains(&n) {
                return None;
            }
            Self::LABELS[n as usize + 2]
        };
        Self::LABELS
            .iter()
            .position(|l| *l == label)
            .map(|i| Grade(i as u8))
    }

    pub fn as_str(self) -> &'static str {
        Self::LABELS[self.0 as usize]
    }

    pub fn expected() -> &'static str {
        "Unspecified, PreK, K, 1-12, Other"
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    Active,
    Inactive,
}

const STATUS_WORDS: &[(&str, Status)] = &[
    ("", Status::Active),
    ("active", Status::Active),
    ("1", Status::Active),
    ("enabled", Status::Active),
    ("true", Status::Active),
    ("yes", Status::Active),
    ("y", Status::Active),
    ("inactive", Status::Inactive),
    ("0", Status::Inactive),
    ("disabled", Status::Inactive),
    ("false", Status::Inactive),
    ("no", Status::Inactive),
    ("n", Status::Inactive),
    ("suspended", Status::Inactive),
];

impl Status {
    pub fn parse(raw: &str) -> Option<Status> {
        let f = fold(raw);
        STATUS_WORDS.iter().find(|(w, _)| *w == f).map(|(_, s)| *s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "Active",
            Status::Inactive => "Inactive",
        }
    }

    pub fn to_db(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
        }
    }

    pub fn expected() -> &'static str {
        "Active, Inactive (or 1/0, Disabled)"
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert_eq!(Role::parse(" teacher "), Some(Role::Teacher));
        assert_eq!(Role::parse("ADMINISTRATOR"), Some(Role::Administrator));
        assert_eq!(Role::parse("aide"), Some(Role::Staff));
        assert_eq!(Role::parse("guardian"), None);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn grades() {
        assert_eq!(Grade::parse("KG").unwrap().as_str(), "K");
        assert_eq!(Grade::parse("PK").unwrap().as_str(), "PreK");
        assert_eq!(Grade::parse("Pre-K").unwrap().as_str(), "PreK");
        assert_eq!(Grade::parse("09").unwrap().as_str(), "9");
        assert_eq!(Grade::parse("12").unwrap().as_str(), "12");
        assert_eq!(Grade::parse("").unwrap(), Grade::UNSPECIFIED);
        assert_eq!(Grade::parse("13"), None);
        assert_eq!(Grade::parse("0"), None);
        for g in Grade::all() {
            assert_eq!(Grade::parse(g.as_str()), Some(g));
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(Status::parse("1"), Some(Status::Active));
        assert_eq!(Status::parse("Disabled"), Some(Status::Inactive));
        assert_eq!(Status::parse(""), Some(Status::Active));
        assert_eq!(Status::parse("maybe"), None);
    }
}
