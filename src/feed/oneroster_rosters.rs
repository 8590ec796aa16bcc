//! OneRoster rosters: the CSV binding's `academicSessions.csv`, `courses.csv`, `classes.csv`
//! and `enrollments.csv` (1.1 and 1.2 alike) and the REST binding's `/academicSessions`,
//! `/courses`, `/classes` and `/enrollments` records, turned into one [`RosterFeed`]. Pure:
//! no SQL, no HTTP.
//!
//! How OneRoster maps onto Rollcall's rosters (SPEC §6a):
//! - a class's `course_code` is its course's `courseCode`; its subject its own `subjects`,
//!   else its course's; its period its `periods`, comma-joined; grades as CEDS codes read
//!   like users' grades (`09` → `9`);
//! - a class taught in several terms is put in the term that holds them all: their common
//!   `parentSourcedId`, else the set's one `schoolYear` session of their common `schoolYear`;
//!   else its first term;
//! - OneRoster may enroll a user in one class several times (one enrollment per term, each
//!   with its own sourcedId); Rollcall keeps one per class and user: the earliest begin, the
//!   latest end (open when any is open), primary when any is, teacher when any is;
//! - enrollments of parents, guardians and relatives are skipped (not portal users);
//! - `status = tobedeleted` marks classes and enrollments to archive or end; such terms are
//!   left out.

use crate::domain::roster::{
    At, EnrollmentList, EnrollmentRole, IncomingClass, IncomingEnrollment, IncomingTerm,
    RosterFail, RosterFeed, UserRef,
};
use crate::feed::oneroster::{FileMode, Manifest, SetError, SetInput, Table, list, text};
use crate::feed::provider::parse_grade;
use crate::feed::read::{RawRecord, RowIssue};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use time::{Date, Month};

/// Longest external ID (`classes.external_id`, `terms.external_id`).
const MAX_ID: usize = 200;
/// Longest class title (`classes.title`).
const MAX_TITLE: usize = 300;
/// Enrollment roles that are not portal users: skipped, like their users.
const SKIPPED_ROLES: [&str; 3] = ["parent", "guardian", "relative"];

/// A course: what its classes take from it.
#[derive(Debug, Clone, Default)]
struct Course {
    code: String,
    subjects: Vec<String>,
}

/// A class as read, before its course and terms are resolved.
#[derive(Debug, Clone)]
struct Draft {
    class: IncomingClass,
    course: String,
    terms: Vec<String>,
    subjects: Vec<String>,
}

/// What a reader collects, file by file or page by page; [`Collected::into_feed`] resolves
/// courses and terms and merges a user's enrollments in one class.
#[derive(Debug, Default)]
pub struct Collected {
    terms: Vec<Result<IncomingTerm, RosterFail>>,
    /// Term → its parent term.
    parents: HashMap<String, String>,
    /// Term → its `schoolYear`.
    years: HashMap<String, String>,
    /// `schoolYear` → the sessions of type `schoolYear` for it.
    year_sessions: HashMap<String, Vec<String>>,
    courses: HashMap<String, Course>,
    classes: Vec<Result<Draft, RosterFail>>,
    /// The class and user ids the enrollments name are kept once each, there.
    enrollments: Enrollments,
}

type Enrollments = EnrollmentList;

fn at(file: &str, line: u64) -> At {
    At {
        file: compact_str::CompactString::from(file),
        line,
    }
}

fn fail(at: At, column: &str, message: impl Into<String>, class: Option<&str>) -> RosterFail {
    RosterFail {
        at,
        column: Some(column.to_string()),
        message: message.into(),
        class_external_id: class.filter(|c| !c.is_empty()).map(str::to_string),
    }
}

/// A date as OneRoster writes it, `YYYY-MM-DD`; a date-time's date is taken too (some REST
/// providers send `2020-08-17T00:00:00.000Z`). Empty is no date.
pub fn parse_date(raw: &str) -> Result<Option<Date>, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || format!("\"{s}\" is not a date (YYYY-MM-DD)");
    let day = match s.get(..10) {
        Some(d) if s.len() == 10 || s[10..].starts_with('T') => d,
        _ => return Err(bad()),
    };
    let parts: Vec<&str> = day.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u8>(), d.parse::<u8>()) else {
        return Err(bad());
    };
    let month = Month::try_from(m).map_err(|_| bad())?;
    Date::from_calendar_date(y, month, d)
        .map(Some)
        .map_err(|_| bad())
}

/// `primary`: `true`, `false` or empty (not primary).
fn parse_primary(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" | "" => Ok(false),
        other => Err(format!("\"{other}\" is not true or false")),
    }
}

/// A session record's fields, from a CSV row or a JSON object.
struct SessionRec<'a> {
    id: &'a str,
    title: &'a str,
    kind: &'a str,
    start: &'a str,
    end: &'a str,
    parent: &'a str,
    year: &'a str,
    deleted: bool,
}

struct ClassRec<'a> {
    id: &'a str,
    title: &'a str,
    school: &'a str,
    course: &'a str,
    terms: Vec<String>,
    grades: Vec<String>,
    subjects: Vec<String>,
    periods: Vec<String>,
    deleted: bool,
}

struct EnrollmentRec<'a> {
    class: &'a str,
    user: &'a str,
    role: &'a str,
    primary: String,
    begin: &'a str,
    end: &'a str,
    deleted: bool,
}

/// An enrollment's checked values.
struct Checked {
    role: EnrollmentRole,
    primary: bool,
    begin: Option<Date>,
    end: Option<Date>,
}

/// Check an enrollment record: `None` for one that is skipped (a parent's), `Err` names the
/// column at fault.
fn check_enrollment(
    r: &EnrollmentRec,
    names: &Names,
) -> Result<Option<Checked>, (&'static str, String)> {
    if r.class.is_empty() {
        return Err((names.class, "the enrollment has no class".to_string()));
    }
    if r.user.is_empty() {
        return Err((names.user, "the enrollment has no user".to_string()));
    }
    let word = r.role.trim();
    if SKIPPED_ROLES.iter().any(|s| s.eq_ignore_ascii_case(word)) {
        return Ok(None);
    }
    let role = EnrollmentRole::from_text(word).ok_or_else(|| {
        (
            "role",
            format!("role \"{word}\" is not one of teacher, student, administrator, aide, proctor"),
        )
    })?;
    let primary = parse_primary(&r.primary).map_err(|e| ("primary", e))?;
    let begin = parse_date(r.begin).map_err(|e| ("beginDate", e))?;
    let end = parse_date(r.end).map_err(|e| ("endDate", e))?;
    if let (Some(b), Some(e)) = (begin, end)
        && e < b
    {
        return Err((
            "endDate",
            format!("the enrollment ends ({e}) before it begins ({b})"),
        ));
    }
    Ok(Some(Checked {
        role,
        primary,
        begin,
        end,
    }))
}

/// Column names for messages: the CSV binding's, or the JSON binding's.
struct Names {
    class: &'static str,
    user: &'static str,
    school: &'static str,
}

const CSV_NAMES: Names = Names {
    class: "classSourcedId",
    user: "userSourcedId",
    school: "schoolSourcedId",
};
const JSON_NAMES: Names = Names {
    class: "class",
    user: "user",
    school: "school",
};

impl Collected {
    fn add_session(&mut self, at: At, r: SessionRec) {
        let id = r.id;
        if id.is_empty() {
            self.terms.push(Err(fail(
                at,
                "sourcedId",
                "the session has no sourcedId",
                None,
            )));
            return;
        }
        if id.chars().count() > MAX_ID {
            self.terms.push(Err(fail(
                at,
                "sourcedId",
                format!("the sourcedId is longer than {MAX_ID} characters"),
                None,
            )));
            return;
        }
        if r.deleted {
            return;
        }
        if !r.parent.is_empty() {
            self.parents.insert(id.to_string(), r.parent.to_string());
        }
        if !r.year.is_empty() {
            self.years.insert(id.to_string(), r.year.to_string());
            if r.kind.eq_ignore_ascii_case("schoolYear") {
                self.year_sessions
                    .entry(r.year.to_string())
                    .or_default()
                    .push(id.to_string());
            }
        }
        let start = match parse_date(r.start) {
            Ok(d) => d,
            Err(e) => return self.terms.push(Err(fail(at, "startDate", e, None))),
        };
        let end = match parse_date(r.end) {
            Ok(d) => d,
            Err(e) => return self.terms.push(Err(fail(at, "endDate", e, None))),
        };
        let title = if r.title.is_empty() { id } else { r.title };
        self.terms.push(Ok(IncomingTerm {
            at,
            external_id: id.to_string(),
            title: title.chars().take(MAX_TITLE).collect(),
            start,
            end,
        }));
    }

    fn add_course(&mut self, id: &str, code: &str, subjects: Vec<String>) {
        if !id.is_empty() {
            self.courses.insert(
                id.to_string(),
                Course {
                    code: code.to_string(),
                    subjects,
                },
            );
        }
    }

    fn add_class(&mut self, at: At, r: ClassRec, names: &Names) {
        let id = Some(r.id);
        let problem = if r.id.is_empty() {
            Some(("sourcedId", "the class has no sourcedId".to_string()))
        } else if r.id.chars().count() > MAX_ID {
            Some((
                "sourcedId",
                format!("the sourcedId is longer than {MAX_ID} characters"),
            ))
        } else if r.deleted {
            // A class to archive needs nothing else.
            None
        } else if r.title.is_empty() {
            Some(("title", "the class has no title".to_string()))
        } else if r.title.chars().count() > MAX_TITLE {
            Some((
                "title",
                format!("the title is longer than {MAX_TITLE} characters"),
            ))
        } else if r.school.is_empty() {
            Some((names.school, "the class has no school".to_string()))
        } else {
            None
        };
        if let Some((column, message)) = problem {
            self.classes.push(Err(fail(at, column, message, id)));
            return;
        }
        let grades = r
            .grades
            .into_iter()
            .map(|g| parse_grade(&g).map_or(g, |p| p.as_str().to_string()))
            .collect();
        self.classes.push(Ok(Draft {
            class: IncomingClass {
                at,
                external_id: r.id.to_string(),
                title: r.title.to_string(),
                school_external_id: r.school.to_string(),
                course_code: String::new(),
                subject: String::new(),
                period: r.periods.join(","),
                grades,
                term_external_id: None,
                to_be_deleted: r.deleted,
            },
            course: r.course.to_string(),
            terms: r.terms,
            subjects: r.subjects,
        }));
    }

    fn add_enrollment(&mut self, at: At, r: EnrollmentRec, names: &Names) {
        match check_enrollment(&r, names) {
            Ok(None) => {}
            Ok(Some(ok)) => {
                let class_external_id = self.enrollments.id(r.class);
                let user = UserRef::Provider(self.enrollments.id(r.user));
                self.enrollments.push(Ok(IncomingEnrollment {
                    at,
                    class_external_id,
                    user,
                    role: ok.role,
                    primary: ok.primary,
                    begin: ok.begin,
                    end: ok.end,
                    to_be_deleted: r.deleted,
                }))
            }
            Err((column, message)) => {
                self.enrollments
                    .push(Err(Box::new(fail(at, column, message, Some(r.class)))))
            }
        }
    }

    /// The term a class taught in `terms` is put in (see the module's rules).
    fn term_of(&self, terms: &[String], known: &HashSet<&str>) -> Option<String> {
        let first = terms.first()?;
        if terms.len() == 1 {
            return Some(first.clone());
        }
        let parent = self.parents.get(first);
        if let Some(p) = parent
            && known.contains(p.as_str())
            && terms.iter().all(|t| self.parents.get(t) == Some(p))
        {
            return Some(p.clone());
        }
        let year = self.years.get(first);
        if let Some(y) = year
            && terms.iter().all(|t| self.years.get(t) == Some(y))
            && let Some([one]) = self.year_sessions.get(y).map(Vec::as_slice)
        {
            return Some(one.clone());
        }
        Some(first.clone())
    }

    /// Resolve courses and terms, merge enrollments, and say whether the feed lists every
    /// class / every enrollment of its source.
    pub fn into_feed(self, classes_complete: bool, enrollments_complete: bool) -> RosterFeed {
        let known: HashSet<&str> = self
            .terms
            .iter()
            .flatten()
            .map(|t| t.external_id.as_str())
            .collect();
        let classes = self
            .classes
            .iter()
            .map(|d| {
                let d = d.as_ref().map_err(Clone::clone)?;
                let mut class = d.class.clone();
                let course = self.courses.get(&d.course);
                if let Some(c) = course {
                    class.course_code = c.code.clone();
                }
                let subjects = match (&d.subjects, course) {
                    (s, _) if !s.is_empty() => s.as_slice(),
                    (_, Some(c)) => c.subjects.as_slice(),
                    _ => &[],
                };
                class.subject = subjects.join(", ");
                class.term_external_id = self.term_of(&d.terms, &known);
                Ok(class)
            })
            .collect();
        RosterFeed {
            terms: self.terms,
            classes,
            enrollments: merge(self.enrollments),
            classes_complete,
            enrollments_complete,
            ..RosterFeed::default()
        }
    }
}

/// One enrollment per class and user (see the module's rules); the rest stay in file order.
/// The records arrive in file order (one file, or one list's positions); each later record
/// of a class and user is folded into the first, and the folded ones are dropped, in place
/// ([`EnrollmentList::fold_same`]: a file of 3,000,000 enrollments is never copied into a
/// second list, issue 15, memory). Then the table that numbered the ids is let go.
fn merge(mut all: Enrollments) -> Enrollments {
    debug_assert!(
        all.iter()
            .map(|r| match r {
                Ok(e) => e.at.line,
                Err(f) => f.at.line,
            })
            .is_sorted(),
        "enrollment records arrive in file order"
    );
    all.fold_same(absorb);
    all.seal();
    all
}

/// Fold `e` (a later record of the same class and user) into `into`.
fn absorb(into: &mut IncomingEnrollment, e: IncomingEnrollment) {
    match (into.to_be_deleted, e.to_be_deleted) {
        (false, true) => return,
        (true, false) => {
            let at = std::mem::take(&mut into.at);
            *into = IncomingEnrollment { at, ..e };
            return;
        }
        _ => {}
    }
    into.begin = match (into.begin, e.begin) {
        (Some(a), Some(b)) => Some(a.min(b)),
        _ => None,
    };
    into.end = match (into.end, e.end) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    };
    into.primary |= e.primary;
    if e.role == EnrollmentRole::Teacher {
        into.role = EnrollmentRole::Teacher;
    }
}

// ---- the CSV binding ----

fn deleted(status: &str) -> bool {
    status.eq_ignore_ascii_case("tobedeleted")
}

/// A record of a table: a readable one (not longer than its header) or a failure.
fn row<'r>(
    t: &Table,
    file: &'static str,
    r: Result<&'r RawRecord, &RowIssue>,
) -> Result<&'r RawRecord, RosterFail> {
    match r {
        Err(issue) => Err(RosterFail {
            at: at(file, issue.line),
            column: None,
            message: issue.message.clone(),
            class_external_id: None,
        }),
        Ok(rec) if t.overlong(rec) => Err(RosterFail {
            at: at(file, rec.line),
            column: None,
            message: format!(
                "the row has {} fields but the header has {}",
                rec.fields.len(),
                t.width
            ),
            class_external_id: None,
        }),
        Ok(rec) => Ok(rec),
    }
}

/// Read a set's roster files as its manifest lists them (`file` gives a file's bytes by its
/// lower-case name). `None` when the manifest lists none of them: the set says nothing
/// about rosters. A file listed bulk makes the feed complete for its records; delta never.
pub fn read_csv<'a>(
    manifest: &Manifest,
    file: impl Fn(&str) -> Option<SetInput<'a>>,
    max_bytes: u64,
) -> Result<Option<RosterFeed>, SetError> {
    let modes = [
        manifest.academic_sessions,
        manifest.courses,
        manifest.classes,
        manifest.enrollments,
    ];
    // A roster file the manifest lists but the set lacks is taken as absent: the set's users
    // still go in, and nothing is archived or ended for a file that is not there.
    let present = |mode: FileMode, name: &str| {
        mode != FileMode::Absent && file(&name.to_ascii_lowercase()).is_some()
    };
    if ![
        "academicSessions.csv",
        "courses.csv",
        "classes.csv",
        "enrollments.csv",
    ]
    .iter()
    .zip(modes)
    .any(|(name, mode)| present(mode, name))
    {
        return Ok(None);
    }
    let get = |mode: FileMode, name: &'static str| -> Result<Option<SetInput<'a>>, SetError> {
        match mode {
            FileMode::Absent => Ok(None),
            _ => Ok(file(&name.to_ascii_lowercase())),
        }
    };
    let mut c = Collected::default();
    // Record by record (no table of raw records kept: enrollments.csv runs to millions).
    if let Some(bytes) = get(manifest.academic_sessions, "academicSessions.csv")? {
        const F: &str = "academicSessions.csv";
        let required = ["sourcedId", "title", "startDate", "endDate"];
        Table::each(F, bytes, max_bytes, &required, |t, r| match row(t, F, r) {
            Err(f) => c.terms.push(Err(f)),
            Ok(rec) => {
                let v = |col| t.cell(rec, col);
                let r = SessionRec {
                    id: v("sourcedId"),
                    title: v("title"),
                    kind: v("type"),
                    start: v("startDate"),
                    end: v("endDate"),
                    parent: v("parentSourcedId"),
                    year: v("schoolYear"),
                    deleted: deleted(v("status")),
                };
                c.add_session(at(F, rec.line), r);
            }
        })?;
    }
    if let Some(bytes) = get(manifest.courses, "courses.csv")? {
        Table::each("courses.csv", bytes, max_bytes, &["sourcedId"], |t, r| {
            if let Ok(rec) = r {
                let v = |col| t.cell(rec, col);
                if !deleted(v("status")) {
                    c.add_course(v("sourcedId"), v("courseCode"), list(v("subjects")));
                }
            }
        })?;
    }
    if let Some(bytes) = get(manifest.classes, "classes.csv")? {
        const F: &str = "classes.csv";
        let required = ["sourcedId", "title", "schoolSourcedId"];
        Table::each(F, bytes, max_bytes, &required, |t, r| match row(t, F, r) {
            Err(f) => c.classes.push(Err(f)),
            Ok(rec) => {
                let v = |col| t.cell(rec, col);
                let r = ClassRec {
                    id: v("sourcedId"),
                    title: v("title"),
                    school: v("schoolSourcedId"),
                    course: v("courseSourcedId"),
                    terms: list(v("termSourcedIds")),
                    grades: list(v("grades")),
                    subjects: list(v("subjects")),
                    periods: list(v("periods")),
                    deleted: deleted(v("status")),
                };
                c.add_class(at(F, rec.line), r, &CSV_NAMES);
            }
        })?;
    }
    if let Some(bytes) = get(manifest.enrollments, "enrollments.csv")? {
        const F: &str = "enrollments.csv";
        let required = ["classSourcedId", "userSourcedId", "role"];
        Table::each(F, bytes, max_bytes, &required, |t, r| match row(t, F, r) {
            Err(f) => c.enrollments.push(Err(Box::new(f))),
            Ok(rec) => {
                let v = |col| t.cell(rec, col);
                let r = EnrollmentRec {
                    class: v("classSourcedId"),
                    user: v("userSourcedId"),
                    role: v("role"),
                    primary: v("primary").to_string(),
                    begin: v("beginDate"),
                    end: v("endDate"),
                    deleted: deleted(v("status")),
                };
                c.add_enrollment(at(F, rec.line), r, &CSV_NAMES);
            }
        })?;
    }
    Ok(Some(c.into_feed(
        manifest.classes == FileMode::Bulk && present(manifest.classes, "classes.csv"),
        manifest.enrollments == FileMode::Bulk && present(manifest.enrollments, "enrollments.csv"),
    )))
}

// ---- the REST binding's JSON ----

/// A GUIDRef's `sourcedId` (`{"sourcedId": …, "href": …, "type": …}`).
fn guid<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(|r| r.get("sourcedId"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
}

/// A list of strings: a JSON array, or a comma-separated string.
fn strings(v: &Value, key: &str) -> Vec<String> {
    match v.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) => list(s),
        _ => Vec::new(),
    }
}

fn json_deleted(v: &Value) -> bool {
    deleted(text(v, "status"))
}

/// A JSON record that is not an object.
fn not_object(file: &str, n: usize) -> RosterFail {
    RosterFail {
        at: at(file, n as u64),
        column: None,
        message: "the record is not a JSON object".into(),
        class_external_id: None,
    }
}

impl Collected {
    /// A record of `GET …/academicSessions`; `n` is its position (1-based).
    pub fn session_json(&mut self, v: &Value, n: usize) {
        const F: &str = "/academicSessions";
        if !v.is_object() {
            return self.terms.push(Err(not_object(F, n)));
        }
        let r = SessionRec {
            id: text(v, "sourcedId"),
            title: text(v, "title"),
            kind: text(v, "type"),
            start: text(v, "startDate"),
            end: text(v, "endDate"),
            parent: guid(v, "parent"),
            year: text(v, "schoolYear"),
            deleted: json_deleted(v),
        };
        self.add_session(at(F, n as u64), r);
    }

    /// A record of `GET …/courses`.
    pub fn course_json(&mut self, v: &Value) {
        if !json_deleted(v) {
            self.add_course(
                text(v, "sourcedId"),
                text(v, "courseCode"),
                strings(v, "subjects"),
            );
        }
    }

    /// A record of `GET …/classes`; `n` is its position (1-based).
    pub fn class_json(&mut self, v: &Value, n: usize) {
        const F: &str = "/classes";
        if !v.is_object() {
            return self.classes.push(Err(not_object(F, n)));
        }
        let terms = v
            .get("terms")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.get("sourcedId").and_then(Value::as_str))
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let r = ClassRec {
            id: text(v, "sourcedId"),
            title: text(v, "title"),
            school: guid(v, "school"),
            course: guid(v, "course"),
            terms,
            grades: strings(v, "grades"),
            subjects: strings(v, "subjects"),
            periods: strings(v, "periods"),
            deleted: json_deleted(v),
        };
        self.add_class(at(F, n as u64), r, &JSON_NAMES);
    }

    /// A record of `GET …/enrollments`; `n` is its position (1-based). `primary` is a string
    /// in the 1.1 JSON binding; some providers send a boolean.
    pub fn enrollment_json(&mut self, v: &Value, n: usize) {
        const F: &str = "/enrollments";
        if !v.is_object() {
            return self.enrollments.push(Err(Box::new(not_object(F, n))));
        }
        let primary = match v.get("primary") {
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let r = EnrollmentRec {
            class: guid(v, "class"),
            user: guid(v, "user"),
            role: text(v, "role"),
            primary,
            begin: text(v, "beginDate"),
            end: text(v, "endDate"),
            deleted: json_deleted(v),
        };
        self.add_enrollment(at(F, n as u64), r, &JSON_NAMES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::bundle::{self, Limits};
    use crate::feed::oneroster::parse_manifest;
    use serde_json::json;
    use std::path::Path;

    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/test-data/edfi-lms-toolkit/oneroster-1.1"
    );
    const SET_1P2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/oneroster-1.2");

    fn date(s: &str) -> Option<Date> {
        parse_date(s).unwrap()
    }

    fn ok<'a, T: Clone + 'a, E: std::fmt::Debug + 'a>(
        rows: impl IntoIterator<Item = &'a Result<T, E>>,
    ) -> Vec<T> {
        rows.into_iter()
            .map(|r| r.as_ref().expect("no failure").clone())
            .collect()
    }

    /// A set of `files` with a manifest listing them in `mode`.
    fn read(mode: &str, files: &[(&str, &str)]) -> Result<Option<RosterFeed>, SetError> {
        let mut manifest = String::from("propertyName,value\noneroster.version,1.1\n");
        for (name, _) in files {
            let key = name.trim_end_matches(".csv");
            manifest.push_str(&format!("file.{key},{mode}\n"));
        }
        let m = parse_manifest(manifest.as_bytes()).unwrap();
        let files: HashMap<String, &[u8]> = files
            .iter()
            .map(|(n, b)| (n.to_ascii_lowercase(), b.as_bytes()))
            .collect();
        read_csv(&m, |n| files.get(n).copied().map(SetInput::Bytes), 1 << 20)
    }

    #[test]
    fn dates() {
        assert_eq!(date("2020-08-17").unwrap().to_string(), "2020-08-17");
        assert_eq!(
            date("2023-08-15T00:00:00.000Z").unwrap().to_string(),
            "2023-08-15"
        );
        assert_eq!(date(" "), None);
        for bad in [
            "2020-13-01",
            "2021-02-29",
            "17/08/2020",
            "2020-8-17",
            "2020-08-17x",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_sample_set_carries_its_rosters() {
        if !Path::new(SAMPLE).is_dir() {
            eprintln!("shared test data not found; skipped");
            return;
        }
        let set = bundle::from_dir(Path::new(SAMPLE), &Limits::for_upload(1 << 20)).unwrap();
        let read = set.read_oneroster(1 << 20).unwrap();
        assert_eq!(read.users.len(), 10, "users as before");
        let feed = read.rosters.expect("the manifest lists roster files");
        assert!(feed.classes_complete && feed.enrollments_complete, "bulk");
        let terms = ok(&feed.terms);
        assert_eq!(terms.len(), 3);
        assert_eq!(terms[1].title, "2020-2021 Fall Semester");
        assert_eq!(
            (terms[1].start, terms[1].end),
            (date("2020-08-17"), date("2020-12-18"))
        );
        let classes = ok(&feed.classes);
        assert_eq!(classes.len(), 2);
        let eng = &classes[0];
        assert_eq!(eng.external_id, "25590100101Trad120ENG112011");
        assert_eq!(eng.title, "ENG-1");
        assert_eq!(eng.school_external_id, "255901001");
        assert_eq!(eng.course_code, "ENG-1", "courses.csv courseCode");
        assert_eq!(
            eng.subject, "English/Language Arts I (9th grade)",
            "the class's own subjects first"
        );
        assert_eq!(
            (eng.period.as_str(), eng.grades.clone()),
            ("1", vec!["9".to_string()])
        );
        assert_eq!(
            eng.term_external_id.as_deref(),
            Some("255901001_2021_2020-2021_SchoolYear"),
            "Fall and Spring of school year 2021: the set's one schoolYear session"
        );
        assert_eq!(classes[1].course_code, "ALG-1", "course 03100500's code");
        assert!(classes.iter().all(|c| !c.to_be_deleted));
        // 24 records: each user in each class once per semester; one enrollment each.
        let enrollments = ok(&feed.enrollments.iter().collect::<Vec<_>>());
        assert_eq!(enrollments.len(), 12);
        let mary_eng = enrollments
            .iter()
            .find(|e| {
                e.user == UserRef::Provider("604863".into())
                    && e.class_external_id == eng.external_id
            })
            .unwrap();
        assert_eq!(mary_eng.role, EnrollmentRole::Student);
        assert_eq!(
            (mary_eng.begin, mary_eng.end),
            (date("2020-08-17"), date("2021-05-28")),
            "Fall's begin, Spring's end"
        );
        assert_eq!(
            mary_eng.at,
            At {
                file: "enrollments.csv".into(),
                line: 2
            }
        );
        let teachers: Vec<_> = enrollments
            .iter()
            .filter(|e| e.role == EnrollmentRole::Teacher)
            .collect();
        assert_eq!(teachers.len(), 2);
        assert!(teachers.iter().all(|t| t.primary));
    }

    #[test]
    fn a_1p2_set_goes_in_without_hand_mapping() {
        let set = bundle::from_dir(Path::new(SET_1P2), &Limits::for_upload(1 << 20)).unwrap();
        let read = set.read_oneroster(1 << 20).unwrap();
        assert_eq!(read.manifest.version.as_deref(), Some("1.2"));
        let by_id = |id: &str| read.users.iter().find(|u| u.key == id).unwrap();
        assert!(read.users.iter().all(|u| u.problem.is_none()));
        assert_eq!(
            (by_id("st1").role.as_str(), by_id("st1").orgs.clone()),
            ("student", vec![compact_str::CompactString::from("S1")])
        );
        assert_eq!(
            by_id("t1").orgs,
            vec!["S1", "S2"],
            "primary and secondary teacher"
        );
        assert_eq!(
            (by_id("a1").role.as_str(), by_id("a1").orgs.clone()),
            ("principal", vec![compact_str::CompactString::from("S1")]),
            "the primary role wins; its kind's orgs only"
        );
        assert_eq!(by_id("p1").role, "parent");
        assert!(!by_id("st3").enabled);
        assert_eq!(by_id("st1").custom_id, "100201");
        assert_eq!(by_id("st1").first_name, "Ava", "the legal given name");
        let feed = read.rosters.unwrap();
        let classes = ok(&feed.classes);
        assert_eq!(
            classes[0].term_external_id.as_deref(),
            Some("Y2025"),
            "the semesters' parent"
        );
        assert_eq!(
            (
                classes[0].course_code.as_str(),
                classes[0].subject.as_str(),
                classes[0].grades.clone()
            ),
            (
                "MATH101",
                "Mathematics",
                vec!["9".to_string(), "10".to_string()]
            )
        );
        assert_eq!(
            (
                classes[1].subject.as_str(),
                classes[1].period.as_str(),
                classes[1].term_external_id.as_deref()
            ),
            ("Life Science", "4,5", Some("S2025"))
        );
        let enrollments = ok(&feed.enrollments.iter().collect::<Vec<_>>());
        assert_eq!(enrollments.len(), 6);
        let t1: Vec<(crate::domain::roster::Id, bool)> = enrollments
            .iter()
            .filter(|e| e.user == UserRef::Provider("t1".into()))
            .map(|e| (e.class_external_id.clone(), e.primary))
            .collect();
        assert_eq!(t1, vec![("K1".into(), true), ("K2".into(), false)]);
    }

    const CLASSES: &str = "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods\n";
    const ENROLLMENTS: &str = "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate\n";

    #[test]
    fn delta_marks_tobedeleted_and_is_never_complete() {
        let classes = format!(
            "{CLASSES}K1,active,2025-01-02T00:00:00Z,Art,,C1,,scheduled,,S1,T1,,,\nK2,tobedeleted,2025-01-02T00:00:00Z,,,,,,,,,,,\n"
        );
        let enrollments = format!(
            "{ENROLLMENTS}E1,tobedeleted,2025-01-02T00:00:00Z,K1,S1,u1,student,,,\nE2,active,2025-01-02T00:00:00Z,K1,S1,u2,Teacher,TRUE,,\n"
        );
        let feed = read(
            "delta",
            &[("classes.csv", &classes), ("enrollments.csv", &enrollments)],
        )
        .unwrap()
        .unwrap();
        assert!(!feed.classes_complete && !feed.enrollments_complete);
        let classes = ok(&feed.classes);
        assert_eq!(
            classes
                .iter()
                .map(|c| (c.external_id.as_str(), c.to_be_deleted))
                .collect::<Vec<_>>(),
            vec![("K1", false), ("K2", true)],
            "a class to archive needs no title or school"
        );
        let enrollments = ok(&feed.enrollments.iter().collect::<Vec<_>>());
        assert!(enrollments[0].to_be_deleted && !enrollments[1].to_be_deleted);
        assert!(enrollments[1].primary && enrollments[1].role == EnrollmentRole::Teacher);
        // Bulk: complete; absent: nothing at all.
        let feed = read(
            "bulk",
            &[(
                "classes.csv",
                &format!("{CLASSES}K1,,,Art,,C1,,scheduled,,S1,T1,,,\n"),
            )],
        )
        .unwrap()
        .unwrap();
        assert!(feed.classes_complete && !feed.enrollments_complete);
        assert!(feed.enrollments.is_empty());
        assert!(read("bulk", &[]).unwrap().is_none());
    }

    #[test]
    fn bad_records_name_file_line_and_column() {
        let enrollments = format!(
            "\u{feff}{}E1,,,K1,S1,u1,student,,2024-13-01,\nE2,,,K1,S1,u2,janitor,,,\nE3,,,K1,S1,u3,student,maybe,,\nE4,,,K1,S1,,student,,,\nE5,,,K1,S1,u5,student,,2025-06-01,2025-01-01\nE6,,,K1,S1,u6,student,,,,,oops\nE7,,,K1,S1,u7,guardian,,,\nE8,,,K1,S1,u8,student,,,,,",
            ENROLLMENTS.trim_end().to_string() + ",metadata.note\n"
        );
        let feed = read("bulk", &[("enrollments.csv", &enrollments)])
            .unwrap()
            .unwrap();
        let fails: Vec<String> = feed
            .enrollments
            .iter()
            .filter_map(|r| r.err())
            .map(|f| f.to_string())
            .collect();
        assert_eq!(
            fails,
            vec![
                "enrollments.csv line 2, column beginDate: \"2024-13-01\" is not a date (YYYY-MM-DD)",
                "enrollments.csv line 3, column role: role \"janitor\" is not one of teacher, student, administrator, aide, proctor",
                "enrollments.csv line 4, column primary: \"maybe\" is not true or false",
                "enrollments.csv line 5, column userSourcedId: the enrollment has no user",
                "enrollments.csv line 6, column endDate: the enrollment ends (2025-01-01) before it begins (2025-06-01)",
                "enrollments.csv line 7: the row has 12 fields but the header has 11",
            ]
        );
        assert!(
            feed.enrollments
                .get(0)
                .unwrap()
                .as_ref()
                .unwrap_err()
                .class_external_id
                .as_deref()
                == Some("K1")
        );
        let good = ok(&feed.enrollments.iter().skip(6).collect::<Vec<_>>());
        assert_eq!(
            good.len(),
            1,
            "the guardian skipped; a trailing empty field and no final newline are fine"
        );
        assert_eq!(good[0].user, UserRef::Provider("u8".into()));

        let classes =
            format!("{CLASSES}K1,,,,,C1,,scheduled,,S1,T1,,,\nK2,,,Art,,C1,,scheduled,,,T1,,,\n");
        let sessions = "sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear\nT1,,,Fall,term,2024-08-19,Jan 2025,,2025\n";
        let feed = read(
            "bulk",
            &[
                ("classes.csv", &classes),
                ("academicSessions.csv", sessions),
            ],
        )
        .unwrap()
        .unwrap();
        fn fail<T>(r: &Result<T, RosterFail>) -> Option<String> {
            r.as_ref().err().map(RosterFail::to_string)
        }
        assert_eq!(
            fail(&feed.classes[0]).unwrap(),
            "classes.csv line 2, column title: the class has no title"
        );
        assert_eq!(
            fail(&feed.classes[1]).unwrap(),
            "classes.csv line 3, column schoolSourcedId: the class has no school"
        );
        assert_eq!(
            fail(&feed.terms[0]).unwrap(),
            "academicSessions.csv line 2, column endDate: \"Jan 2025\" is not a date (YYYY-MM-DD)"
        );
        // A listed file that is not there, and a file without its columns.
        let m = parse_manifest(b"propertyName,value\nfile.classes,bulk\n").unwrap();
        assert!(read_csv(&m, |_| None, 1 << 20).unwrap().is_none());
        assert!(matches!(
            read(
                "bulk",
                &[("enrollments.csv", "sourcedId,classSourcedId\nE1,K1\n")]
            ),
            Err(SetError::MissingColumn {
                column: "userSourcedId",
                ..
            })
        ));
    }

    #[test]
    fn rest_json_records_become_the_same_feed() {
        let guid = |kind: &str, id: &str| json!({"href": format!("https://sis/{kind}/{id}"), "sourcedId": id, "type": kind});
        let mut c = Collected::default();
        c.session_json(&json!({"sourcedId": "Y", "status": "active", "title": "2024-2025", "type": "schoolYear",
            "startDate": "2024-08-19", "endDate": "2025-06-14", "parent": null, "children": [], "schoolYear": "2025"}), 1);
        for (id, n) in [("F", 2), ("S", 3)] {
            c.session_json(&json!({"sourcedId": id, "status": "active", "title": id, "type": "semester",
                "startDate": "2024-08-19T00:00:00.000Z", "endDate": "2025-06-14", "parent": guid("academicSession", "Y"),
                "schoolYear": "2025"}), n);
        }
        c.course_json(
            &json!({"sourcedId": "C1", "status": "active", "title": "Algebra", "courseCode": "ALG",
            "subjects": ["Mathematics"], "org": guid("org", "D1")}),
        );
        c.class_json(&json!({"sourcedId": "K1", "status": "active", "title": "Algebra - P1", "classCode": "A1",
            "classType": "scheduled", "grades": ["09"], "subjects": [], "course": guid("course", "C1"),
            "school": guid("org", "S1"), "terms": [guid("academicSession", "F"), guid("academicSession", "S")],
            "periods": ["1"]}), 1);
        c.class_json(&json!({"sourcedId": "K2", "status": "tobedeleted", "title": "Old", "school": guid("org", "S1")}), 2);
        c.class_json(
            &json!({"sourcedId": "K3", "status": "active", "title": "No school"}),
            3,
        );
        c.enrollment_json(&json!({"sourcedId": "E1", "status": "active", "user": guid("user", "u1"),
            "class": guid("class", "K1"), "school": guid("org", "S1"), "role": "teacher", "primary": "true",
            "beginDate": "2024-08-19", "endDate": "2025-06-14"}), 1);
        c.enrollment_json(&json!({"sourcedId": "E2", "status": "active", "user": guid("user", "u2"),
            "class": guid("class", "K1"), "school": guid("org", "S1"), "role": "student", "primary": false}), 2);
        c.enrollment_json(
            &json!({"sourcedId": "E3", "status": "active", "user": guid("user", "u3"),
            "school": guid("org", "S1"), "role": "student"}),
            3,
        );
        c.enrollment_json(&json!("x"), 4);
        let feed = c.into_feed(true, true);
        assert_eq!(ok(&feed.terms).len(), 3);
        assert_eq!(ok(&feed.terms)[1].start, date("2024-08-19"));
        let k1 = feed.classes[0].as_ref().unwrap();
        assert_eq!(
            (
                k1.course_code.as_str(),
                k1.subject.as_str(),
                k1.term_external_id.as_deref(),
                k1.at.file.as_str()
            ),
            ("ALG", "Mathematics", Some("Y"), "/classes")
        );
        assert!(feed.classes[1].as_ref().unwrap().to_be_deleted);
        let f = feed.classes[2].as_ref().unwrap_err();
        assert_eq!(
            f.to_string(),
            "/classes line 3, column school: the class has no school"
        );
        assert_eq!(f.class_external_id.as_deref(), Some("K3"));
        let e1 = feed.enrollments.get(0).unwrap().unwrap();
        assert!(e1.primary && e1.role == EnrollmentRole::Teacher);
        assert_eq!(e1.user, UserRef::Provider("u1".into()));
        assert!(
            !feed.enrollments.get(1).unwrap().as_ref().unwrap().primary,
            "a boolean primary"
        );
        assert_eq!(
            feed.enrollments
                .get(2)
                .unwrap()
                .as_ref()
                .unwrap_err()
                .to_string(),
            "/enrollments line 3, column class: the enrollment has no class"
        );
        assert!(feed.enrollments.get(3).unwrap().is_err());
    }

    #[test]
    fn a_users_enrollments_in_one_class_merge() {
        let enrollments = format!(
            "{ENROLLMENTS}E1,,,K1,S1,u1,aide,false,2024-08-19,2025-01-18\nE2,,,K2,S1,u1,student,,,\nE3,,,K1,S1,u1,teacher,true,2025-01-21,\n"
        );
        let feed = read("bulk", &[("enrollments.csv", &enrollments)])
            .unwrap()
            .unwrap();
        let e = ok(&feed.enrollments.iter().collect::<Vec<_>>());
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].class_external_id.as_str(), e[0].at.line), ("K1", 2));
        assert!(e[0].primary && e[0].role == EnrollmentRole::Teacher);
        assert_eq!(
            (e[0].begin, e[0].end),
            (date("2024-08-19"), None),
            "open when one is open"
        );
        assert_eq!(e[1].class_external_id, "K2");
    }
}
