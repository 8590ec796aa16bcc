//! Rosters (SPEC §6a) in plain Rust: terms, classes and enrollments as every feed hands them
//! to the reconcile engine (OneRoster CSV and REST, Clever sections, SDS, the roster CSV).
//!
//! A feed reader turns its format into a [`RosterFeed`]; rows it cannot read are
//! [`RosterFail`]s naming the file, row and column. The engine resolves references (school,
//! term, class, user) against the district and plans the changes.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;
use time::Date;

mod current;
mod enrollments;
pub use current::CurrentEnrollments;
pub use enrollments::{EnrollmentList, UserSlot};

/// A class's or user's id as an enrollment names it, shared: a file of 3,000,000
/// enrollments names 40,000 classes and 1,000,000 users, mostly by 36-character GUIDs, and a
/// heap copy of both in every record cost ~100 bytes a record (issue 15, memory). A reader
/// gives equal ids one allocation through an [`Interner`]; cloning one costs no allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(Arc<str>);

impl Id {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Id {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Id {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id(Arc::from(s))
    }
}

impl From<&Id> for Id {
    fn from(id: &Id) -> Self {
        id.clone()
    }
}

impl From<&String> for Id {
    fn from(s: &String) -> Self {
        Id(Arc::from(s.as_str()))
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Id(Arc::from(s))
    }
}

impl PartialEq<str> for Id {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Id {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Id {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl std::fmt::Debug for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Gives equal ids one shared allocation while a feed is read (dropped with the reader).
#[derive(Debug, Default)]
pub struct Interner(HashSet<Id>);

impl Interner {
    pub fn id(&mut self, s: &str) -> Id {
        if let Some(id) = self.0.get(s) {
            return id.clone();
        }
        let id = Id::from(s);
        self.0.insert(id.clone());
        id
    }
}

/// How a user takes part in a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnrollmentRole {
    Teacher,
    Student,
}

impl EnrollmentRole {
    /// The stored text (`enrollments.role`) and the roster CSV's word.
    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentRole::Teacher => "teacher",
            EnrollmentRole::Student => "student",
        }
    }

    /// Teacher or student, as a packed record's flag says.
    pub fn teacher_if(teacher: bool) -> EnrollmentRole {
        if teacher {
            EnrollmentRole::Teacher
        } else {
            EnrollmentRole::Student
        }
    }

    /// The words feeds use: `teacher`/`student`, and OneRoster's `administrator`, `aide`,
    /// `proctor` (staff teaching a class are enrolled as teachers); case and spacing free.
    pub fn from_text(s: &str) -> Option<EnrollmentRole> {
        match s.trim().to_ascii_lowercase().as_str() {
            "teacher" | "administrator" | "aide" | "proctor" | "instructor" => {
                Some(EnrollmentRole::Teacher)
            }
            "student" | "learner" => Some(EnrollmentRole::Student),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            EnrollmentRole::Teacher => "Teacher",
            EnrollmentRole::Student => "Student",
        }
    }
}

/// How a feed names the user of an enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserRef {
    /// The roster CSV's `user` column: a `user_guid`, else a `custom_id`, else an email, tried
    /// in that order within the district.
    Key(Id),
    /// A provider's own id for the user (OneRoster `sourcedId`, Clever `id`, SDS `SIS ID`):
    /// `users.source_key` of a user owned by the run's source.
    Provider(Id),
}

/// A term (OneRoster academic session, Clever term, SDS `Term`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingTerm {
    /// Where it came from, for errors: file name (or API list) and line (or record number).
    pub at: At,
    /// The provider's id; the roster CSV keys a term by its name.
    pub external_id: String,
    pub title: String,
    pub start: Option<Date>,
    pub end: Option<Date>,
}

/// A class (OneRoster class, Clever section, SDS section, the roster CSV's class columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingClass {
    pub at: At,
    /// Unique in the district: the provider's sourcedId / SIS section ID.
    pub external_id: String,
    pub title: String,
    /// The school's `external_id` (OneRoster `schoolSourcedId`).
    pub school_external_id: String,
    pub course_code: String,
    pub subject: String,
    pub period: String,
    pub grades: Vec<String>,
    /// A term's `external_id` (it may come in the same feed's terms or already exist).
    pub term_external_id: Option<String>,
    /// OneRoster `status = tobedeleted` (archive it).
    pub to_be_deleted: bool,
}

/// An enrollment (one user in one class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingEnrollment {
    pub at: At,
    /// Shared, as [`UserRef`]'s id: a district holds millions of enrollments and a feed is
    /// read whole (issue 15).
    pub class_external_id: Id,
    pub user: UserRef,
    pub role: EnrollmentRole,
    pub primary: bool,
    pub begin: Option<Date>,
    pub end: Option<Date>,
    /// OneRoster `status = tobedeleted` (end it).
    pub to_be_deleted: bool,
}

/// Where a record came from: a file of a set (or a provider list) and its line (or record
/// number), for error messages and the completed/error files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct At {
    /// `classes.csv`, `Section.csv`, `/classes`, `sections`, or the uploaded file's name.
    pub file: compact_str::CompactString,
    /// 1-based line of the file (the header is line 1), or the record's position in a list.
    pub line: u64,
}

/// A record a feed reader could not read: which file, which row, which column, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterFail {
    pub at: At,
    /// The column (or field) at fault, when one is.
    pub column: Option<String>,
    pub message: String,
    /// Whatever the row still names, so that what it refers to is not archived or ended
    /// for a row that failed (SPEC §4: "a user whose row has an error is left exactly as
    /// it was").
    pub class_external_id: Option<String>,
}

impl std::fmt::Display for RosterFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} line {}", self.at.file, self.at.line)?;
        if let Some(c) = &self.column {
            write!(f, ", column {c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// An enrollment record as a feed read it, or why it could not be read. The failure is
/// boxed: it is rare and, inline, made each of a feed's millions of records 104 bytes, not 88
/// (issue 19, memory).
pub type EnrollmentRecord = Result<IncomingEnrollment, Box<RosterFail>>;

/// Everything one feed says about rosters.
#[derive(Debug, Clone, Default)]
pub struct RosterFeed {
    pub terms: Vec<Result<IncomingTerm, RosterFail>>,
    pub classes: Vec<Result<IncomingClass, RosterFail>>,
    /// Packed: millions of them, given back a chunk at a time while the roster plan grows
    /// (issues 15 and 19).
    pub enrollments: EnrollmentList,
    /// The feed lists every class of its source (OneRoster bulk, a roster CSV, a full API
    /// sync): classes of the source it does not list are archived (guarded). `false` for a
    /// delta, or a set with no classes file.
    pub classes_complete: bool,
    /// Likewise for enrollments: enrollments of the source's classes it does not list end.
    pub enrollments_complete: bool,
    /// Classes the feed names by [`CLASS_GUID_COLUMN`] (the classes and enrollments
    /// downloads carry it): `external_id` → the GUID given. Such a class is edited in
    /// place, never moved (SPEC §4 "Editing in place"; the roster planner's rule 3).
    pub class_guids: std::collections::HashMap<String, uuid::Uuid>,
    /// The run's scope is `district` (a download sent back as the whole district's): the
    /// enrollments of the classes it edits in place that it does not list end too.
    pub district_scope: bool,
    /// The feed has no enrollment dates (the roster CSV): an enrollment it lists keeps its
    /// begin and end, as a user's absent field keeps its value.
    pub keeps_enrollment_dates: bool,
    /// Every record's result is kept, unchanged ones too (a roster CSV: its completed file
    /// lists every row). Otherwise only changes and errors are listed; unchanged records
    /// are counted.
    pub every_result: bool,
}

impl RosterFeed {
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty() && self.classes.is_empty() && self.enrollments.is_empty()
    }
}

/// The roster CSV's columns (SPEC §6a), in the order the classes and enrollments downloads
/// write them. The first five are required in an upload (`role` and `user` may be blank on
/// a row that only defines a class; a file none of whose rows has a user leaves
/// enrollments alone).
pub const ROSTER_CSV_HEADER: [&str; 13] = [
    "class_external_id",
    "class_title",
    "school_external_id",
    "role",
    "user",
    "primary",
    "course_code",
    "subject",
    "period",
    "grades",
    "term",
    "term_start",
    "term_end",
];

/// The column after [`ROSTER_CSV_HEADER`]'s in the classes and enrollments downloads: the
/// class's GUID. Optional in an upload; a class named by it is edited in place.
pub const CLASS_GUID_COLUMN: &str = "class_guid";

// ---- What the district has (read by the engine, issue 15) ----

/// A term as the district has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentTerm {
    pub id: uuid::Uuid,
    pub external_id: String,
    pub title: String,
    pub start: Option<Date>,
    pub end: Option<Date>,
}

/// A class as the district has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentClass {
    pub id: uuid::Uuid,
    pub external_id: String,
    pub school_id: uuid::Uuid,
    pub title: String,
    pub course_code: String,
    pub subject: String,
    pub period: String,
    pub grades: Vec<String>,
    pub term_id: Option<uuid::Uuid>,
    pub source: crate::domain::Source,
    pub archived: bool,
}

/// An enrollment as the district has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentEnrollment {
    pub class_id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub role: EnrollmentRole,
    pub primary: bool,
    pub begin: Option<Date>,
    pub end: Option<Date>,
}

/// What the district has, read once by a run that carries rosters.
#[derive(Debug, Clone, Default)]
pub struct RosterCurrent {
    pub terms: Vec<CurrentTerm>,
    pub classes: Vec<CurrentClass>,
    pub enrollments: CurrentEnrollments,
    /// School external ID → school id.
    pub schools: std::collections::HashMap<String, uuid::Uuid>,
}

/// The roster counts of a run (also on the run, the CLI summary and the run page).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RosterCounts {
    pub classes_created: usize,
    pub classes_updated: usize,
    pub classes_unchanged: usize,
    pub classes_restored: usize,
    pub classes_archived: usize,
    pub enrollments_added: usize,
    pub enrollments_changed: usize,
    pub enrollments_unchanged: usize,
    pub enrollments_ended: usize,
    pub roster_errors: usize,
}

impl RosterCounts {
    pub fn is_empty(&self) -> bool {
        *self == RosterCounts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interner_gives_equal_ids_one_allocation() {
        let mut ids = Interner::default();
        let guid = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let copy = String::from(guid);
        let (a, b) = (ids.id(guid), ids.id(&copy));
        assert!(Arc::ptr_eq(&a.0, &b.0), "the second is the first, shared");
        assert_eq!(a, guid);
        assert_eq!(a.as_str(), guid);
        let c = ids.id("another");
        assert!(!Arc::ptr_eq(&a.0, &c.0));
        assert_ne!(a, c);
        assert_eq!(Id::from(guid), a, "equal by text, however made");
        assert_eq!(format!("{a} {a:?}"), format!("{guid} {guid:?}"));
    }

    /// A feed holds millions of enrollment records: a record is no bigger than its enrollment
    /// (the rare failure is boxed).
    #[test]
    fn an_enrollment_record_is_the_size_of_its_enrollment() {
        assert_eq!(std::mem::size_of::<IncomingEnrollment>(), 88);
        assert_eq!(std::mem::size_of::<EnrollmentRecord>(), 88);
    }

    #[test]
    fn enrollment_roles_read_the_words_feeds_use() {
        assert_eq!(
            EnrollmentRole::from_text(" Teacher "),
            Some(EnrollmentRole::Teacher)
        );
        assert_eq!(
            EnrollmentRole::from_text("aide"),
            Some(EnrollmentRole::Teacher)
        );
        assert_eq!(
            EnrollmentRole::from_text("STUDENT"),
            Some(EnrollmentRole::Student)
        );
        assert_eq!(EnrollmentRole::from_text("guardian"), None);
        for r in [EnrollmentRole::Teacher, EnrollmentRole::Student] {
            assert_eq!(EnrollmentRole::from_text(r.as_str()), Some(r));
        }
    }

    #[test]
    fn a_failure_names_file_row_and_column() {
        let f = RosterFail {
            at: At {
                file: "enrollments.csv".into(),
                line: 7,
            },
            column: Some("userSourcedId".into()),
            message: "no such user".into(),
            class_external_id: None,
        };
        assert_eq!(
            f.to_string(),
            "enrollments.csv line 7, column userSourcedId: no such user"
        );
    }
}
