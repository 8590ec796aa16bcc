//! Files a person downloads: the master CSV's rows, with spreadsheet formulas neutralised.

use crate::db::export::ExportRow;
use crate::domain::Source;
use std::borrow::Cow;
use std::collections::HashMap;
use uuid::Uuid;

/// An owner as an admin reads it: `manual`, the file's name (`students.csv`), or the sync
/// connection's name (`sync connection <id>` when it is not known any more).
pub fn owner_label(source: &Source, sync_names: &HashMap<Uuid, String>) -> String {
    match source {
        Source::Manual => "manual".to_string(),
        Source::File(name) => name.to_string(),
        Source::Sync(id) => match sync_names.get(id) {
            Some(name) => format!("roster sync {name}"),
            None => format!("sync connection {id}"),
        },
    }
}

/// A run's or user's source as the screens name it (issue 14: never `Sync 4cf73770`):
/// "Manual", the file's name, or the sync connection's own name (`db::syncs::names`), and
/// "Deleted connection" for a connection that is gone. Every run list, the users' Source
/// column and filter, the home page and alerts use this one function.
pub fn source_name(source: &str, sync_names: &HashMap<Uuid, String>) -> String {
    match Source::from_db(source) {
        Source::Manual => "Manual".to_string(),
        Source::File(name) => name.into(),
        Source::Sync(id) => match sync_names.get(&id) {
            Some(name) => name.clone(),
            None => "Deleted connection".to_string(),
        },
    }
}

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

/// A cell that a spreadsheet would run as a formula gets a leading `'`; our reader strips it
/// again on the way back in. That is a cell starting with `=`, `+`, `-` or `@`, also behind
/// leading whitespace or control characters (`" =1+1"`, `"\n=1+1"`, which spreadsheets
/// trim), and any cell starting with tab, CR or LF. The one escaping function of every CSV
/// a person downloads: the master CSV, the export, and a run's three files.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if crate::feed::read::formula_like(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The byte order mark the master CSV starts with (Excel then reads it as UTF-8).
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The master CSV's stable download name: `<district-slug>-users.csv`.
pub fn master_file_name(district_slug: &str) -> String {
    format!("{district_slug}-users.csv")
}

/// One master CSV record for a user.
///
/// A user with no school is written with the district's own external ID in the school
/// column, when the district has one (issue 16, item 7): the file sent back names them
/// district-level again, a no-op.
pub fn master_record<'a>(
    u: &'a ExportRow,
    district_external_id: Option<&'a str>,
) -> [Cow<'a, str>; 13] {
    let grade = if u.role == "Student" {
        u.grade.as_str()
    } else {
        ""
    };
    // Borrowed from the row wherever nothing needs escaping: a million-user download
    // allocates per row only what it must (the GUID, the joined schools).
    let schools = match (u.schools.as_slice(), district_external_id) {
        ([], Some(d)) => Cow::Borrowed(d),
        ([one], _) => Cow::Borrowed(one.as_str()),
        (many, _) => Cow::Owned(many.join(";")),
    };
    let cell = |c: Cow<'a, str>| match c {
        Cow::Borrowed(b) => neutralise(b),
        Cow::Owned(o) => Cow::Owned(neutralise(&o).into_owned()),
    };
    [
        Cow::Owned(u.id.to_string()),
        cell(Cow::Borrowed(u.custom_id.as_deref().unwrap_or_default())),
        cell(Cow::Borrowed(u.email.as_deref().unwrap_or_default())),
        cell(Cow::Borrowed(&u.username)),
        cell(Cow::Borrowed(&u.first_name)),
        cell(Cow::Borrowed(&u.middle_name)),
        cell(Cow::Borrowed(&u.last_name)),
        cell(Cow::Borrowed(&u.role)),
        cell(schools),
        cell(Cow::Borrowed(grade)),
        cell(Cow::Borrowed(&u.position)),
        Cow::Borrowed(u.status.label()),
        Cow::Borrowed(""),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_named_as_an_admin_reads_them() {
        let id = Uuid::new_v4();
        let gone = Uuid::new_v4();
        let names = HashMap::from([(id, "ClassLink nightly".to_string())]);
        assert_eq!(source_name("manual", &names), "Manual");
        assert_eq!(source_name("file:students.csv", &names), "students.csv");
        assert_eq!(
            source_name(&format!("sync:{id}"), &names),
            "ClassLink nightly"
        );
        assert_eq!(
            source_name(&format!("sync:{gone}"), &names),
            "Deleted connection"
        );
    }

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

    #[test]
    fn formulas_behind_whitespace_and_control_characters_are_neutralised() {
        assert_eq!(neutralise(" =4+4"), "' =4+4");
        assert_eq!(neutralise("\n=3+3"), "'\n=3+3");
        assert_eq!(neutralise("\r+1"), "'\r+1");
        assert_eq!(neutralise("\t@x"), "'\t@x");
        assert_eq!(neutralise("\u{a0}\u{3000} -2"), "'\u{a0}\u{3000} -2");
        assert_eq!(neutralise("\u{1}\u{7f}=1"), "'\u{1}\u{7f}=1");
        assert_eq!(
            neutralise("\nplain"),
            "'\nplain",
            "a leading line break is suspect"
        );
        assert_eq!(neutralise("  Smith"), "  Smith");
        assert_eq!(neutralise("a=1"), "a=1");
        assert_eq!(neutralise("O'Brien-Smith"), "O'Brien-Smith");
    }
}

/// Which of a run's three downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The file as sent, with any password column emptied.
    Uploaded,
    /// Every row processed successfully, with user_guid, username, outcome and (for accounts
    /// created without a password) the temporary password.
    Completed,
    /// The failed rows as sent plus an `Error` column; fixed and sent again, it goes in.
    Errors,
}

impl FileKind {
    pub fn parse(s: &str) -> Option<FileKind> {
        match s {
            "uploaded" => Some(FileKind::Uploaded),
            "completed" => Some(FileKind::Completed), // vocab-literals: a download, not a run status
            "errors" | "error" => Some(FileKind::Errors),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Uploaded => "uploaded",
            FileKind::Completed => "completed",
            FileKind::Errors => "errors",
        }
    }
}

/// One row's result, as stored for the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowResult {
    pub line: u64,
    pub outcome: String,
    pub user_guid: Option<String>,
    pub username: Option<String>,
    pub temp_password: Option<String>,
    pub error: Option<String>,
    /// How the row found its user (`guid`, `custom_id`, `email`, `new`).
    pub matched_by: Option<String>,
    /// The user's owner before the run, as an admin reads it, when the row moved them.
    pub previous_source: Option<String>,
    /// Kept fields (SPEC §4, "Fields an admin edited") the row would otherwise have changed.
    pub kept: Vec<String>,
}

/// The header of a download, and where in it the columns we fill in sit.
pub struct Layout {
    pub header: Vec<String>,
    width: usize,
    password: Option<usize>,
    guid: usize,
    username: usize,
    outcome: Option<usize>,
    temp: Option<usize>,
    matched_by: Option<usize>,
    previous_source: Option<usize>,
    error: Option<usize>,
    kept: Option<usize>,
}

fn find(headers: &[String], names: &[&str]) -> Option<usize> {
    headers.iter().position(|h| {
        let f = crate::feed::headers::fold(h);
        names.iter().any(|n| crate::feed::headers::fold(n) == f)
    })
}

impl Layout {
    /// `headers` as the file has them; `password`, `guid`, `username` the columns the run's
    /// mapping gave those fields, if any.
    pub fn new(
        kind: FileKind,
        headers: &[String],
        password: Option<usize>,
        guid: Option<usize>,
        username: Option<usize>,
    ) -> Layout {
        let mut header: Vec<String> = headers.to_vec();
        let existing_error = find(headers, &["error"]);
        let mut add = |name: &str, existing: Option<usize>| -> usize {
            existing.unwrap_or_else(|| {
                header.push(name.to_string());
                header.len() - 1
            })
        };
        let (mut m, mut p) = (None, None);
        let (g, u, o, t, e) = match kind {
            FileKind::Uploaded => (usize::MAX, usize::MAX, None, None, None),
            FileKind::Completed => {
                let g = add("user_guid", guid);
                let u = add("username", username);
                let o = add("outcome", find(headers, &["outcome"]));
                let t = add("temporary_password", find(headers, &["temporary_password"]));
                m = Some(add("matched_by", find(headers, &["matched_by"])));
                p = Some(add("previous_source", find(headers, &["previous_source"])));
                (g, u, Some(o), Some(t), None)
            }
            // An error row that matched a user carries their GUID in the file's own
            // user_guid column ([`Layout::errors_with_guids`] adds one).
            FileKind::Errors => (
                guid.unwrap_or(usize::MAX),
                usize::MAX,
                None,
                None,
                Some(add("Error", existing_error)),
            ),
        };
        // The completed file's `kept` column: the fields an admin keeps that the row would
        // otherwise have changed (`grade;email`), empty for most rows.
        let kept = (kind == FileKind::Completed).then(|| {
            find(&header, &["kept"]).unwrap_or_else(|| {
                header.push("kept".to_string());
                header.len() - 1
            })
        });
        let width = header.len();
        Layout {
            header,
            width,
            password,
            guid: g,
            username: u,
            outcome: o,
            temp: t,
            matched_by: m,
            previous_source: p,
            error: e,
            kept,
        }
    }

    /// The error file of a run whose error rows name users (seed 003: "the Error file will
    /// include the relevant GUIDs"): a file without a user_guid column gets one, before the
    /// Error column (which stays on the far right, unless the file already had one).
    pub fn errors_with_guids(
        headers: &[String],
        password: Option<usize>,
        guid: Option<usize>,
    ) -> Layout {
        if guid.is_some() {
            return Layout::new(FileKind::Errors, headers, password, guid, None);
        }
        let mut with_guid = headers.to_vec();
        with_guid.push("user_guid".to_string());
        let mut layout = Layout::new(
            FileKind::Errors,
            &with_guid,
            password,
            Some(headers.len()),
            None,
        );
        layout.header[headers.len()] = "user_guid".to_string();
        layout
    }

    /// The output record for one file record and its result, or `None` when this download
    /// leaves the row out.
    pub fn record(
        &self,
        kind: FileKind,
        fields: &[String],
        result: Option<&RowResult>,
    ) -> Option<Vec<String>> {
        let keep = match kind {
            FileKind::Uploaded => true,
            FileKind::Completed => result.is_some_and(|r| r.outcome != "error"),
            FileKind::Errors => result.is_some_and(|r| r.outcome == "error"),
        };
        if !keep {
            return None;
        }
        let mut out: Vec<String> = fields.iter().take(self.width).cloned().collect();
        out.resize(self.width, String::new());
        if let Some(p) = self.password
            && p < out.len()
        {
            out[p].clear();
        }
        if let Some(r) = result {
            let mut set = |i: usize, v: &str| {
                if i < out.len() {
                    out[i] = v.to_string();
                }
            };
            match kind {
                FileKind::Completed => {
                    set(self.guid, r.user_guid.as_deref().unwrap_or(""));
                    set(self.username, r.username.as_deref().unwrap_or(""));
                    set(self.outcome.unwrap_or(usize::MAX), &r.outcome);
                    set(
                        self.temp.unwrap_or(usize::MAX),
                        r.temp_password.as_deref().unwrap_or(""),
                    );
                    set(
                        self.matched_by.unwrap_or(usize::MAX),
                        r.matched_by.as_deref().unwrap_or(""),
                    );
                    set(
                        self.previous_source.unwrap_or(usize::MAX),
                        r.previous_source.as_deref().unwrap_or(""),
                    );
                    set(self.kept.unwrap_or(usize::MAX), &r.kept.join(";"));
                }
                FileKind::Errors => {
                    if let Some(g) = r.user_guid.as_deref() {
                        set(self.guid, g);
                    }
                    set(
                        self.error.unwrap_or(usize::MAX),
                        r.error.as_deref().unwrap_or(""),
                    )
                }
                FileKind::Uploaded => {}
            }
        }
        Some(out.iter().map(|c| neutralise(c).into_owned()).collect())
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn result(line: u64, outcome: &str) -> RowResult {
        RowResult {
            line,
            outcome: outcome.into(),
            user_guid: Some("g-1".into()),
            username: Some("ann.lee".into()),
            temp_password: Some("Tmp123".into()),
            error: (outcome == "error").then(|| "line 2, column \"grade\": bad".into()),
            matched_by: Some("custom_id".into()),
            previous_source: Some("adults.csv".into()),
            kept: Vec::new(),
        }
    }

    #[test]
    fn completed_file_adds_guid_username_outcome_and_temp_password() {
        let headers = s(&["custom_id", "first_name", "password"]);
        let l = Layout::new(FileKind::Completed, &headers, Some(2), None, None);
        assert_eq!(
            l.header,
            s(&[
                "custom_id",
                "first_name",
                "password",
                "user_guid",
                "username",
                "outcome",
                "temporary_password",
                "matched_by",
                "previous_source",
                "kept"
            ])
        );
        let row = l
            .record(
                FileKind::Completed,
                &s(&["S1", "Ann", "secret"]),
                Some(&result(2, "created")),
            )
            .unwrap();
        assert_eq!(
            row,
            s(&[
                "S1",
                "Ann",
                "",
                "g-1",
                "ann.lee",
                "created",
                "Tmp123",
                "custom_id",
                "adults.csv",
                ""
            ])
        );
        let mut kept = result(3, "unchanged");
        kept.kept = vec!["grade".into(), "email".into()];
        let row = l
            .record(FileKind::Completed, &s(&["S2", "Bo", "pw"]), Some(&kept))
            .unwrap();
        assert_eq!(
            row[9], "grade;email",
            "the completed file marks kept fields"
        );
        assert_eq!(row[2], "", "never the given password");
        assert!(
            l.record(
                FileKind::Completed,
                &s(&["S2", "Bo", ""]),
                Some(&result(3, "error"))
            )
            .is_none()
        );
    }

    #[test]
    fn error_file_keeps_the_row_and_reuses_an_existing_error_column() {
        let headers = s(&["custom_id", "grade", "Error"]);
        let l = Layout::new(FileKind::Errors, &headers, None, None, None);
        assert_eq!(l.header, headers, "no second Error column");
        let row = l
            .record(
                FileKind::Errors,
                &s(&["S1", "13", "old reason"]),
                Some(&result(2, "error")),
            )
            .unwrap();
        assert_eq!(row, s(&["S1", "13", "line 2, column \"grade\": bad"]));
        assert!(
            l.record(
                FileKind::Errors,
                &s(&["S1", "9", ""]),
                Some(&result(2, "created"))
            )
            .is_none()
        );
    }

    #[test]
    fn error_rows_that_matched_a_user_carry_their_guid() {
        let headers = s(&["custom_id", "grade"]);
        let l = Layout::errors_with_guids(&headers, None, None);
        assert_eq!(l.header, s(&["custom_id", "grade", "user_guid", "Error"]));
        let row = l
            .record(
                FileKind::Errors,
                &s(&["S1", "13"]),
                Some(&result(2, "error")),
            )
            .unwrap();
        assert_eq!(
            row,
            s(&["S1", "13", "g-1", "line 2, column \"grade\": bad"])
        );
        let mut new_user = result(3, "error");
        new_user.user_guid = None;
        let row = l
            .record(FileKind::Errors, &s(&["S9", "13"]), Some(&new_user))
            .unwrap();
        assert_eq!(&row[2], "", "no user matched: no GUID");

        // The file's own user_guid column is filled, never blanked.
        let headers = s(&["user_guid", "custom_id", "grade"]);
        let l = Layout::errors_with_guids(&headers, None, Some(0));
        assert_eq!(l.header, s(&["user_guid", "custom_id", "grade", "Error"]));
        let row = l
            .record(
                FileKind::Errors,
                &s(&["", "S1", "13"]),
                Some(&result(2, "error")),
            )
            .unwrap();
        assert_eq!(&row[0], "g-1");
        let row = l
            .record(
                FileKind::Errors,
                &s(&["not-a-guid", "S9", "13"]),
                Some(&new_user),
            )
            .unwrap();
        assert_eq!(&row[0], "not-a-guid", "kept as sent");
    }

    #[test]
    fn uploaded_file_blanks_passwords_and_neutralises_formulas() {
        let headers = s(&["first_name", "password"]);
        let l = Layout::new(FileKind::Uploaded, &headers, Some(1), None, None);
        assert_eq!(
            l.record(FileKind::Uploaded, &s(&["=HYPERLINK()", "hunter2"]), None)
                .unwrap(),
            s(&["'=HYPERLINK()", ""])
        );
    }
}

/// One line of a roster CSV run, as its completed and error files tell it: the line's
/// enrollment record (or, for a row that only defines a class, its class record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterLine {
    pub line: u64,
    pub outcome: String,
    pub class_guid: Option<String>,
    pub user_guid: Option<String>,
    pub error: Option<String>,
}

/// One stored roster record as the files read it: kind, line, outcome, class, user, error.
pub type RosterRecord = (
    String,
    u64,
    String,
    Option<Uuid>,
    Option<Uuid>,
    Option<String>,
);

/// The records of one line folded into its [`RosterLine`]: an error wins, then the
/// enrollment record, then the class record (whose class GUID the line keeps).
pub struct LineFold {
    rank: u8,
    line: RosterLine,
}

impl LineFold {
    pub fn new(record: RosterRecord) -> LineFold {
        let (kind, line, outcome, class, user, error) = record;
        let rank = if outcome == "error" {
            3
        } else if kind == "enrollment" {
            2
        } else {
            1
        };
        LineFold {
            rank,
            line: RosterLine {
                line,
                outcome,
                class_guid: class.map(|c| c.to_string()),
                user_guid: user.map(|u| u.to_string()),
                error,
            },
        }
    }

    /// The line this fold is of.
    pub fn line(&self) -> u64 {
        self.line.line
    }

    /// Another record of the same line.
    pub fn add(&mut self, record: RosterRecord) {
        let next = LineFold::new(record);
        if self.rank < next.rank {
            let class_guid = next.line.class_guid.or(self.line.class_guid.take());
            *self = LineFold {
                rank: next.rank,
                line: RosterLine {
                    class_guid,
                    ..next.line
                },
            };
        }
    }

    pub fn finish(self) -> RosterLine {
        self.line
    }
}

/// The roster records of a run merged into one result per line, in line order (`records`
/// in any order; a download streams them in line order through [`LineFold`] instead).
#[cfg(test)]
pub fn roster_lines(records: impl IntoIterator<Item = RosterRecord>) -> Vec<RosterLine> {
    let mut by_line: std::collections::BTreeMap<u64, LineFold> = Default::default();
    for record in records {
        match by_line.get_mut(&record.1) {
            Some(fold) => fold.add(record),
            None => {
                by_line.insert(record.1, LineFold::new(record));
            }
        }
    }
    by_line.into_values().map(LineFold::finish).collect()
}

/// The header of a roster CSV run's completed or error file: the file's columns, then
/// `class_guid`, `user_guid`, `outcome` (completed) or `Error` (errors; a fixed error file
/// sent back goes in as a patch).
pub fn roster_header(kind: FileKind, headers: &[String]) -> (Vec<String>, [Option<usize>; 4]) {
    let mut header = headers.to_vec();
    let mut add = |name: &str| -> usize {
        find(&header, &[name]).unwrap_or_else(|| {
            header.push(name.to_string());
            header.len() - 1
        })
    };
    let cols = match kind {
        FileKind::Completed => [
            Some(add("class_guid")),
            Some(add("user_guid")),
            Some(add("outcome")),
            None,
        ],
        FileKind::Errors => [None, None, None, Some(add("Error"))],
        FileKind::Uploaded => [None; 4],
    };
    (header, cols)
}

/// One roster CSV record in a completed or error file, or `None` when that file leaves the
/// row out.
pub fn roster_record(
    kind: FileKind,
    width: usize,
    cols: [Option<usize>; 4],
    fields: &[String],
    result: Option<&RosterLine>,
) -> Option<Vec<String>> {
    let r = result?;
    let keep = match kind {
        FileKind::Uploaded => true,
        FileKind::Completed => r.outcome != "error",
        FileKind::Errors => r.outcome == "error",
    };
    if !keep {
        return None;
    }
    let mut out: Vec<String> = fields.iter().take(width).cloned().collect();
    out.resize(width, String::new());
    let mut set = |i: Option<usize>, v: &str| {
        if let Some(i) = i.filter(|i| *i < out.len()) {
            out[i] = v.to_string();
        }
    };
    set(cols[0], r.class_guid.as_deref().unwrap_or(""));
    set(cols[1], r.user_guid.as_deref().unwrap_or(""));
    set(cols[2], &r.outcome);
    set(cols[3], r.error.as_deref().unwrap_or(""));
    Some(out.iter().map(|c| neutralise(c).into_owned()).collect())
}

/// The files of a completed or error download of a run that read classes and enrollments
/// from a set (OneRoster, Clever, SDS; SPEC §6a): a zip of the users' file as for any run,
/// then the run's classes and the enrollments it wrote (completed) or its roster errors
/// (errors), each with its header. A roster CSV is one file and keeps its own layout
/// ([`roster_header`]).
#[allow(clippy::type_complexity)]
pub fn roster_set_files(
    kind: FileKind,
) -> Option<(
    &'static str,
    &'static [(&'static str, &'static [&'static str])],
)> {
    match kind {
        FileKind::Completed => Some((
            "users.csv",
            &[
                ("classes.csv", &CLASS_RESULT_HEADER),
                ("enrollments.csv", &ENROLLMENT_RESULT_HEADER),
            ],
        )),
        FileKind::Errors => Some(("users.csv", &[("roster-errors.csv", &ROSTER_ERROR_HEADER)])),
        FileKind::Uploaded => None,
    }
}

/// The header of a set's `classes.csv` (its completed file): each class the run stored a
/// result for, with its GUID; `changed` lists the fields it changed (`title;period`).
pub const CLASS_RESULT_HEADER: [&str; 7] = [
    "class_external_id",
    "class_guid",
    "title",
    "school_external_id",
    "term",
    "outcome",
    "changed",
];

/// One class of a set's completed file, spreadsheet formulas neutralised.
pub fn class_result_record(
    external_id: &str,
    class_guid: Option<Uuid>,
    title: &str,
    school_external_id: &str,
    term: &str,
    outcome: &str,
    changed: &[String],
) -> Vec<String> {
    let guid = class_guid.map(|g| g.to_string()).unwrap_or_default();
    [
        external_id,
        &guid,
        title,
        school_external_id,
        term,
        outcome,
        &changed.join(";"),
    ]
    .iter()
    .map(|c| neutralise(c).into_owned())
    .collect()
}

/// The header of a set's `enrollments.csv` (its completed file): each enrollment the run
/// added, changed or ended, by class and user (an unchanged one is only counted).
pub const ENROLLMENT_RESULT_HEADER: [&str; 5] = [
    "class_external_id",
    "class_guid",
    "user_guid",
    "custom_id",
    "outcome",
];

/// One enrollment of a set's completed file: `kind` as the run recorded the change
/// (`enrollment_added` → `added`), spreadsheet formulas neutralised.
pub fn enrollment_result_record(
    class_external_id: &str,
    class_guid: Uuid,
    user_guid: Uuid,
    custom_id: &str,
    kind: &str,
) -> Vec<String> {
    [
        class_external_id,
        &class_guid.to_string(),
        &user_guid.to_string(),
        custom_id,
        kind.strip_prefix("enrollment_").unwrap_or(kind),
    ]
    .iter()
    .map(|c| neutralise(c).into_owned())
    .collect()
}

/// The header of a set's `roster-errors.csv` (its error file): each class, term or
/// enrollment record that failed, where it was read (`file`, `line`), its key as the feed
/// gave it (an enrollment's is its class's), the GUIDs it found, and the reason.
pub const ROSTER_ERROR_HEADER: [&str; 7] = [
    "record",
    "file",
    "line",
    "external_id",
    "class_guid",
    "user_guid",
    "Error",
];

/// One failed roster record of a set's error file, spreadsheet formulas neutralised.
pub fn roster_error_record(
    record: &str,
    file: &str,
    line: u64,
    external_id: &str,
    class_guid: Option<Uuid>,
    user_guid: Option<Uuid>,
    error: &str,
) -> Vec<String> {
    let guid = |g: Option<Uuid>| g.map(|g| g.to_string()).unwrap_or_default();
    [
        record,
        file,
        &line.to_string(),
        external_id,
        &guid(class_guid),
        &guid(user_guid),
        error,
    ]
    .iter()
    .map(|c| neutralise(c).into_owned())
    .collect()
}

#[cfg(test)]
mod roster_file_tests {
    use super::*;

    #[test]
    fn a_set_lists_its_classes_with_guids_and_its_roster_errors_with_file_and_line() {
        let c = Uuid::from_u128(7);
        let (users, files) = roster_set_files(FileKind::Completed).unwrap();
        assert_eq!(
            (users, files[0].0, files[1].0),
            ("users.csv", "classes.csv", "enrollments.csv")
        );
        assert_eq!(files[0].1.len(), 7);
        assert_eq!(
            class_result_record(
                "K1",
                Some(c),
                "=Algebra",
                "HS",
                "Fall",
                "updated",
                &["title".into(), "period".into()]
            ),
            vec![
                "K1".to_string(),
                c.to_string(),
                "'=Algebra".into(),
                "HS".into(),
                "Fall".into(),
                "updated".into(),
                "title;period".into()
            ]
        );
        let (_, files) = roster_set_files(FileKind::Errors).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, "roster-errors.csv");
        assert_eq!(files[0].1.last(), Some(&"Error"));
        assert_eq!(
            roster_error_record(
                "enrollment",
                "enrollments.csv",
                9,
                "K1",
                Some(c),
                None,
                "enrollments.csv line 9, column userSourcedId: unknown user"
            ),
            vec![
                "enrollment".to_string(),
                "enrollments.csv".into(),
                "9".into(),
                "K1".into(),
                c.to_string(),
                String::new(),
                "enrollments.csv line 9, column userSourcedId: unknown user".into()
            ]
        );
        assert!(roster_set_files(FileKind::Uploaded).is_none());
        let u = Uuid::from_u128(8);
        assert_eq!(
            enrollment_result_record("K1", c, u, "+S1", "enrollment_ended"),
            vec![
                "K1".to_string(),
                c.to_string(),
                u.to_string(),
                "'+S1".into(),
                "ended".into()
            ]
        );
        assert_eq!(ENROLLMENT_RESULT_HEADER.len(), 5);
    }

    #[test]
    fn a_line_says_its_enrollment_or_its_error() {
        let c = Uuid::from_u128(1);
        let u = Uuid::from_u128(2);
        let lines = roster_lines(vec![
            ("class".into(), 2, "created".into(), Some(c), None, None),
            (
                "enrollment".into(),
                2,
                "added".into(),
                Some(c),
                Some(u),
                None,
            ),
            (
                "enrollment".into(),
                3,
                "error".into(),
                Some(c),
                None,
                Some("line 3: bad".into()),
            ),
            ("class".into(), 4, "unchanged".into(), Some(c), None, None),
        ]);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].outcome, "added");
        assert_eq!(lines[0].class_guid.as_deref(), Some(c.to_string().as_str()));
        assert_eq!(lines[1].outcome, "error");
        let headers: Vec<String> = ["class_external_id", "user"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (h, cols) = roster_header(FileKind::Completed, &headers);
        assert_eq!(
            h,
            [
                "class_external_id",
                "user",
                "class_guid",
                "user_guid",
                "outcome"
            ]
        );
        let rec = roster_record(
            FileKind::Completed,
            h.len(),
            cols,
            &headers,
            Some(&lines[0]),
        )
        .unwrap();
        assert_eq!(rec[2], c.to_string());
        assert_eq!(rec[3], u.to_string());
        assert_eq!(rec[4], "added");
        assert!(
            roster_record(
                FileKind::Completed,
                h.len(),
                cols,
                &headers,
                Some(&lines[1])
            )
            .is_none()
        );
        let (h, cols) = roster_header(FileKind::Errors, &headers);
        assert_eq!(h, ["class_external_id", "user", "Error"]);
        let rec =
            roster_record(FileKind::Errors, h.len(), cols, &headers, Some(&lines[1])).unwrap();
        assert_eq!(rec[2], "line 3: bad");
    }
}
