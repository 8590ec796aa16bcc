//! The roster CSV (SPEC §6a): one row per enrollment — `class_external_id, class_title,
//! school_external_id, role, user` and optional class and term columns — read into a
//! [`RosterFeed`].
//!
//! A row whose `role` and `user` are both blank only defines a class (the classes download
//! is such a file); a file in which no row names a user says nothing about enrollments.
//! The first row of a class defines it; a later row of the same class that gives a
//! different value for one of its columns is a row error naming that column. References
//! (school, user, class) are resolved by the engine, which knows the district.
//!
//! An optional `class_guid` column (the downloads append it) names the class by its GUID:
//! the engine edits such a class in place instead of moving it to the file's source (see
//! `reconcile::roster`, rule 3). A cell that is not a GUID, or a later row of a class that
//! gives another GUID than its first row, is a row error naming `class_guid`; a GUID that
//! names no class of the district, or another class than `class_external_id`, is the
//! engine's row error.

use super::headers::fold;
use super::read::{self, FileError, ReadOptions};
use crate::domain::roster::{
    At, CLASS_GUID_COLUMN, EnrollmentRole, Id, IncomingClass, IncomingEnrollment, IncomingTerm,
    RosterFail, RosterFeed, UserRef,
};
use std::collections::HashMap;
use std::io::{Read, Seek};
use time::Date;

/// The roster CSV's columns, each with the spellings accepted for it (folded: lower-case,
/// no spaces, `_`, `-` or `.`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    ClassExternalId,
    ClassTitle,
    SchoolExternalId,
    Role,
    User,
    Primary,
    CourseCode,
    Subject,
    Period,
    Grades,
    Term,
    TermStart,
    TermEnd,
}

impl Column {
    pub const ALL: [Column; 13] = [
        Column::ClassExternalId,
        Column::ClassTitle,
        Column::SchoolExternalId,
        Column::Role,
        Column::User,
        Column::Primary,
        Column::CourseCode,
        Column::Subject,
        Column::Period,
        Column::Grades,
        Column::Term,
        Column::TermStart,
        Column::TermEnd,
    ];

    /// The canonical name (`crate::domain::roster::ROSTER_CSV_HEADER`).
    pub fn name(self) -> &'static str {
        crate::domain::roster::ROSTER_CSV_HEADER[self as usize]
    }

    fn spellings(self) -> &'static [&'static str] {
        match self {
            Column::ClassExternalId => &[
                "classexternalid",
                "classid",
                "classsourcedid",
                "classsisid",
                "sectionid",
                "sectionsisid",
            ],
            Column::ClassTitle => &["classtitle", "classname", "sectionname"],
            Column::SchoolExternalId => &[
                "schoolexternalid",
                "schoolid",
                "schoolsisid",
                "schoolsourcedid",
            ],
            Column::Role => &["role", "enrollmentrole"],
            Column::User => &["user", "userid", "userkey"],
            Column::Primary => &["primary", "isprimary", "primaryteacher"],
            Column::CourseCode => &["coursecode", "course", "coursenumber"],
            Column::Subject => &["subject", "subjects"],
            Column::Period => &["period", "periods"],
            Column::Grades => &["grades", "grade", "gradelevels"],
            Column::Term => &["term", "termname", "session"],
            Column::TermStart => &["termstart", "termstartdate"],
            Column::TermEnd => &["termend", "termenddate"],
        }
    }

    fn of(header: &str) -> Option<Column> {
        let f = fold(header);
        Column::ALL
            .into_iter()
            .find(|c| c.spellings().contains(&f.as_str()))
    }
}

/// The columns a roster CSV must have.
const REQUIRED: [Column; 3] = [
    Column::ClassExternalId,
    Column::ClassTitle,
    Column::SchoolExternalId,
];

/// Whether a header is a roster CSV's (rather than a user CSV's): it names the class's
/// external ID and its title or school. The intake sends such a file to the roster engine
/// instead of the users' column mapper.
pub fn is_roster_header(headers: &[String]) -> bool {
    let cols: Vec<Column> = headers.iter().filter_map(|h| Column::of(h)).collect();
    cols.contains(&Column::ClassExternalId)
        && (cols.contains(&Column::ClassTitle) || cols.contains(&Column::SchoolExternalId))
}

/// Why a roster CSV cannot be used at all (nothing of it is applied).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RosterFileError {
    #[error("{0}")]
    Read(#[from] FileError),
    #[error("the roster file needs the column{} {}; it has: {}",
        if .missing.len() == 1 { "" } else { "s" }, .missing.join(", "), .has.join(", "))]
    MissingColumns {
        missing: Vec<&'static str>,
        has: Vec<String>,
    },
    #[error(
        "the roster file has a {has} column but no {lacks} column: an enrollment needs both (or neither, for a file of classes only)"
    )]
    HalfEnrollment {
        has: &'static str,
        lacks: &'static str,
    },
}

/// Read a roster CSV file from disk; see [`parse`]. `Err` outside: the file cannot be opened.
pub fn read_path(
    path: &std::path::Path,
    opts: &ReadOptions,
    file: &str,
) -> std::io::Result<Result<RosterFeed, RosterFileError>> {
    let f = std::fs::File::open(path)?;
    Ok(parse(std::io::BufReader::new(f), opts, file))
}

/// Read a roster CSV (any encoding, delimiter and line ending the user CSV reader takes).
/// `file` names the file in row errors. Every row that fails (whatever part of it is at
/// fault) is one `Err` in `enrollments`, in file order among the enrollments.
pub fn parse<R: Read + Seek>(
    input: R,
    opts: &ReadOptions,
    file: &str,
) -> Result<RosterFeed, RosterFileError> {
    let reader = read::open(input, opts)?;
    let headers = reader.headers().to_vec();
    let mut index: HashMap<Column, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if let Some(c) = Column::of(h) {
            index.entry(c).or_insert(i);
        }
    }
    let missing: Vec<&'static str> = REQUIRED
        .iter()
        .filter(|c| !index.contains_key(c))
        .map(|c| c.name())
        .collect();
    if !missing.is_empty() {
        return Err(RosterFileError::MissingColumns {
            missing,
            has: headers.clone(),
        });
    }
    match (
        index.contains_key(&Column::Role),
        index.contains_key(&Column::User),
    ) {
        (true, false) => {
            return Err(RosterFileError::HalfEnrollment {
                has: "role",
                lacks: "user",
            });
        }
        (false, true) => {
            return Err(RosterFileError::HalfEnrollment {
                has: "user",
                lacks: "role",
            });
        }
        _ => {}
    }
    let guid_index = headers
        .iter()
        .position(|h| fold(h) == fold(CLASS_GUID_COLUMN));
    let mut state = State::new(file);
    for item in reader {
        match item? {
            Err(issue) => state.feed.enrollments.push(Err(Box::new(RosterFail {
                at: state.at(issue.line),
                column: None,
                message: issue.message,
                class_external_id: None,
            }))),
            Ok(rec) => {
                let cell = |c: Column| -> &str {
                    index
                        .get(&c)
                        .and_then(|i| rec.fields.get(*i))
                        .map_or("", |s| unneutralise(s.trim()))
                };
                let guid = guid_index
                    .and_then(|i| rec.fields.get(i))
                    .map_or("", |s| s.trim());
                state.row(rec.line, &cell, guid);
            }
        }
    }
    Ok(state.finish())
}

/// The downloads prefix a cell that a spreadsheet would read as a formula with `'`
/// (SPEC §5); such a cell comes back with it.
fn unneutralise(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

/// A date as districts write it: `2026-08-24`, or `8/24/2026`.
pub fn parse_date(s: &str) -> Option<Date> {
    let iso = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = Date::parse(s, &iso) {
        return Some(d);
    }
    let mut parts = s.split('/');
    let (m, d, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

fn parse_primary(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "n" | "0" => Some(false),
        "true" | "yes" | "y" | "1" => Some(true),
        _ => None,
    }
}

/// What a row says about its class, compared between rows of the same class.
#[derive(Debug, Clone)]
struct ClassSeen {
    line: u64,
    /// Position in `feed.classes`.
    at: usize,
}

struct State<'a> {
    file: &'a str,
    feed: RosterFeed,
    classes: HashMap<String, ClassSeen>,
    /// Term name → (line, start, end).
    terms: HashMap<String, (u64, Option<Date>, Option<Date>)>,
    /// (class, user as written, folded) → line.
    enrolled: HashMap<(String, String), u64>,
    any_user: bool,
}

type Cell<'c> = dyn Fn(Column) -> &'c str + 'c;

impl<'a> State<'a> {
    fn new(file: &'a str) -> Self {
        State {
            file,
            feed: RosterFeed::default(),
            classes: HashMap::new(),
            terms: HashMap::new(),
            enrolled: HashMap::new(),
            any_user: false,
        }
    }

    fn at(&self, line: u64) -> At {
        At {
            file: compact_str::CompactString::from(self.file),
            line,
        }
    }

    fn fail(&mut self, line: u64, column: Column, message: String, class: &str) {
        self.fail_in(line, column.name(), message, class)
    }

    fn fail_in(&mut self, line: u64, column: &str, message: String, class: &str) {
        self.feed.enrollments.push(Err(Box::new(RosterFail {
            at: self.at(line),
            column: Some(column.to_string()),
            message,
            class_external_id: (!class.is_empty()).then(|| class.to_string()),
        })));
    }

    fn row<'c>(&mut self, line: u64, cell: &Cell<'c>, guid: &str) {
        let class_id = cell(Column::ClassExternalId);
        let (role_text, user) = (cell(Column::Role), cell(Column::User));
        if guid.is_empty() && Column::ALL.iter().all(|c| cell(*c).is_empty()) {
            return; // a wholly blank row says nothing
        }
        if !user.is_empty() {
            self.any_user = true;
        }
        for (c, what) in [
            (Column::ClassExternalId, "the class's external ID"),
            (Column::ClassTitle, "the class's title"),
            (
                Column::SchoolExternalId,
                "the class's school (its external ID)",
            ),
        ] {
            if cell(c).is_empty() {
                return self.fail(line, c, format!("{what} is required"), class_id);
            }
        }
        // The enrollment's own cells.
        let role = match (role_text.is_empty(), user.is_empty()) {
            (true, true) => None,
            (false, true) => {
                return self.fail(
                    line,
                    Column::User,
                    "a role is given but no user (custom_id, email or user_guid)".into(),
                    class_id,
                );
            }
            (true, false) => {
                return self.fail(
                    line,
                    Column::Role,
                    "a user is given but no role (teacher or student)".into(),
                    class_id,
                );
            }
            (false, false) => match EnrollmentRole::from_text(role_text) {
                Some(r) => Some(r),
                None => {
                    return self.fail(
                        line,
                        Column::Role,
                        format!("\"{role_text}\" is not a role: use teacher or student"),
                        class_id,
                    );
                }
            },
        };
        let Some(primary) = parse_primary(cell(Column::Primary)) else {
            return self.fail(
                line,
                Column::Primary,
                format!("\"{}\" is not true or false", cell(Column::Primary)),
                class_id,
            );
        };
        // The term.
        let term = cell(Column::Term);
        let mut dates = [None, None];
        for (i, c) in [Column::TermStart, Column::TermEnd].into_iter().enumerate() {
            let v = cell(c);
            if v.is_empty() {
                continue;
            }
            if term.is_empty() {
                return self.fail(
                    line,
                    c,
                    format!("{} is given but no term", c.name()),
                    class_id,
                );
            }
            match parse_date(v) {
                Some(d) => dates[i] = Some(d),
                None => {
                    return self.fail(
                        line,
                        c,
                        format!("\"{v}\" is not a date (write it as 2026-08-24)"),
                        class_id,
                    );
                }
            }
        }
        if let (Some(s), Some(e)) = (dates[0], dates[1])
            && e < s
        {
            return self.fail(
                line,
                Column::TermEnd,
                format!("the term ends ({e}) before it starts ({s})"),
                class_id,
            );
        }
        if !term.is_empty() {
            match self.terms.get(term) {
                Some((first, s, e))
                    if (dates[0].is_some() && dates[0] != *s)
                        || (dates[1].is_some() && dates[1] != *e) =>
                {
                    let column = if dates[0].is_some() && dates[0] != *s {
                        Column::TermStart
                    } else {
                        Column::TermEnd
                    };
                    let first = *first;
                    return self.fail(
                        line,
                        column,
                        format!("the term \"{term}\" has other dates on line {first}"),
                        class_id,
                    );
                }
                Some(_) => {}
                None => {
                    self.terms
                        .insert(term.to_string(), (line, dates[0], dates[1]));
                    self.feed.terms.push(Ok(IncomingTerm {
                        at: self.at(line),
                        external_id: term.to_string(),
                        // The roster CSV names a term by its key (the downloads write
                        // `terms.external_id`): a blank title leaves a known term's title
                        // alone, and a new term is titled by its key.
                        title: String::new(),
                        start: dates[0],
                        end: dates[1],
                    }));
                }
            }
        }
        // The class's GUID (optional): checked like the class's other columns below.
        let guid = match guid {
            "" => None,
            g => match uuid::Uuid::parse_str(g) {
                Ok(g) => Some(g),
                Err(_) => {
                    return self.fail_in(
                        line,
                        CLASS_GUID_COLUMN,
                        format!("\"{g}\" is not a class GUID (leave it blank for a new class)"),
                        class_id,
                    );
                }
            },
        };
        if let (Some(g), Some(seen)) = (guid, self.classes.get(class_id)) {
            match self.feed.class_guids.get(class_id) {
                Some(first) if *first == g => {}
                _ => {
                    let first = seen.line;
                    return self.fail_in(
                        line,
                        CLASS_GUID_COLUMN,
                        format!(
                            "{CLASS_GUID_COLUMN} differs from line {first} of the same class ({class_id})"
                        ),
                        class_id,
                    );
                }
            }
        }
        // The class: defined by its first row, checked on the others.
        let grades: Vec<String> = cell(Column::Grades)
            .split([',', ';', '|'])
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(String::from)
            .collect();
        let class = IncomingClass {
            at: self.at(line),
            external_id: class_id.to_string(),
            title: cell(Column::ClassTitle).to_string(),
            school_external_id: cell(Column::SchoolExternalId).to_string(),
            course_code: cell(Column::CourseCode).to_string(),
            subject: cell(Column::Subject).to_string(),
            period: cell(Column::Period).to_string(),
            grades,
            term_external_id: (!term.is_empty()).then(|| term.to_string()),
            to_be_deleted: false,
        };
        match self.classes.get(class_id).cloned() {
            None => {
                self.classes.insert(
                    class_id.to_string(),
                    ClassSeen {
                        line,
                        at: self.feed.classes.len(),
                    },
                );
                self.feed.classes.push(Ok(class));
                if let Some(g) = guid {
                    self.feed.class_guids.insert(class_id.to_string(), g);
                }
            }
            Some(seen) => {
                if let Some(Ok(first)) = self.feed.classes.get(seen.at)
                    && let Some(column) = differs(first, &class)
                {
                    return self.fail(
                        line,
                        column,
                        format!(
                            "{} differs from line {} of the same class ({})",
                            column.name(),
                            seen.line,
                            class_id
                        ),
                        class_id,
                    );
                }
            }
        }
        let Some(role) = role else {
            return;
        };
        let key = (class_id.to_string(), user.to_lowercase());
        if let Some(first) = self.enrolled.get(&key) {
            let first = *first;
            return self.fail(
                line,
                Column::User,
                format!("{user} is enrolled in {class_id} twice (also on line {first})"),
                class_id,
            );
        }
        self.enrolled.insert(key, line);
        self.feed.enrollments.push(Ok(IncomingEnrollment {
            at: self.at(line),
            class_external_id: Id::from(class_id),
            user: UserRef::Key(Id::from(user)),
            role,
            primary,
            begin: None,
            end: None,
            to_be_deleted: false,
        }));
    }

    fn finish(mut self) -> RosterFeed {
        self.feed.classes_complete = true;
        self.feed.enrollments_complete = self.any_user;
        self.feed.keeps_enrollment_dates = true;
        self.feed.enrollments.seal();
        self.feed
    }
}

/// The first class column a later row of the same class gives differently (blank cells
/// repeat nothing and differ from nothing, except the title and school, which every row has).
fn differs(first: &IncomingClass, later: &IncomingClass) -> Option<Column> {
    let blank_or_same = |a: &str, b: &str| b.is_empty() || a == b;
    if first.title != later.title {
        return Some(Column::ClassTitle);
    }
    if first.school_external_id != later.school_external_id {
        return Some(Column::SchoolExternalId);
    }
    if !blank_or_same(&first.course_code, &later.course_code) {
        return Some(Column::CourseCode);
    }
    if !blank_or_same(&first.subject, &later.subject) {
        return Some(Column::Subject);
    }
    if !blank_or_same(&first.period, &later.period) {
        return Some(Column::Period);
    }
    if !later.grades.is_empty() && first.grades != later.grades {
        return Some(Column::Grades);
    }
    if later.term_external_id.is_some() && first.term_external_id != later.term_external_id {
        return Some(Column::Term);
    }
    None
}

#[cfg(test)]
mod tests;
