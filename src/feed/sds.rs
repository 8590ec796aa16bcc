//! Microsoft School Data Sync (SDS) v1 CSV sets, read into schools, users and rosters.
//!
//! A set is `School.csv`, `Section.csv`, `Student.csv`, `Teacher.csv`,
//! `StudentEnrollment.csv` and `TeacherRoster.csv`; it comes to schools, [`ProviderUser`]s
//! and a [`RosterFeed`]. Pure: no SQL, no HTTP.
//!
//! Columns are matched by name (case, spaces and BOM ignored); only `SIS ID`-type columns,
//! `Name` and `Section Name` are required, as in the published v1 format. A student or teacher
//! is keyed by its `SIS ID` (`users.source_key` and custom ID); a student listed at two
//! schools (two rows) is one user at both. Sections are classes keyed by their `SIS ID`;
//! the enrollment files name users by `SIS ID` too. A set lists everything of its source:
//! users, classes and enrollments missing from it are archived or ended (guarded).

use crate::domain::roster::{
    At, EnrollmentList, EnrollmentRole, Id, IncomingClass, IncomingEnrollment, IncomingTerm,
    RosterFail, RosterFeed, UserRef,
};
use crate::feed::headers::{fold, with_folded};
use crate::feed::oneroster::Org;
use crate::feed::provider::ProviderUser;
use crate::feed::read::{self, RawRecord, ReadOptions, RowIssue};
use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use time::Date;

/// The files of a set, as SDS names them.
pub const FILES: [&str; 6] = [
    "School.csv",
    "Section.csv",
    "Student.csv",
    "Teacher.csv",
    "StudentEnrollment.csv",
    "TeacherRoster.csv",
];

/// The files of a set, lower-cased (how a [`Bundle`](crate::feed::bundle::Bundle) keys them).
pub const FILES_LOWER: [&str; 6] = [
    "school.csv",
    "section.csv",
    "student.csv",
    "teacher.csv",
    "studentenrollment.csv",
    "teacherroster.csv",
];

/// Is a set with these (lower-case) file names an SDS v1 set? It has `Section.csv` and
/// `StudentEnrollment.csv`, or `School.csv` and `Student.csv`, and no OneRoster
/// `manifest.csv`.
pub fn is_sds(names: &[String]) -> bool {
    let has = |n: &str| names.iter().any(|x| x == n);
    !has("manifest.csv")
        && ((has("section.csv") && has("studentenrollment.csv"))
            || (has("school.csv") && has("student.csv")))
}

/// What a set comes to.
#[derive(Debug, Default)]
pub struct SdsSet {
    /// `School.csv`: every org is a school.
    pub schools: Vec<Org>,
    /// `Student.csv` then `Teacher.csv`, one per SIS ID.
    pub users: Vec<ProviderUser>,
    pub rosters: RosterFeed,
}

/// A CSV file's columns by folded name, and its records.
struct Table {
    file: &'static str,
    cols: HashMap<String, usize>,
    records: Vec<Result<RawRecord, RowIssue>>,
}

impl Table {
    /// Read `file` (a name of [`FILES`]) and check its required columns. `Err`: the set
    /// cannot be used (the message names the file, and the column when one is missing).
    fn read(
        file: &'static str,
        bytes: Option<&[u8]>,
        max_bytes: u64,
        required: &[&str],
    ) -> Result<Table, String> {
        let bytes = bytes.ok_or_else(|| {
            format!(
                "the SDS set has no {file} (a School Data Sync v1 set has {})",
                FILES.join(", ")
            )
        })?;
        let reader = match read::open(Cursor::new(bytes), &ReadOptions::with_max_bytes(max_bytes)) {
            Ok(r) => r,
            Err(read::FileError::HeaderOnly) => {
                return Ok(Table {
                    file,
                    cols: HashMap::new(),
                    records: Vec::new(),
                });
            }
            Err(e) => return Err(format!("{file}: {e}")),
        };
        let cols: HashMap<String, usize> = reader
            .headers()
            .iter()
            .enumerate()
            .map(|(i, h)| (fold(h), i))
            .collect();
        if let Some(c) = required.iter().find(|c| !cols.contains_key(&fold(c))) {
            return Err(format!("{file} has no column {c}"));
        }
        let mut records = Vec::new();
        for item in reader {
            records.push(item.map_err(|e| format!("{file}: {e}"))?);
        }
        Ok(Table {
            file,
            cols,
            records,
        })
    }

    fn cell<'r>(&self, rec: &'r RawRecord, column: &str) -> &'r str {
        with_folded(column, |c| self.cols.get(c).copied())
            .and_then(|i| rec.fields.get(i))
            .map_or("", |c| c.trim())
    }

    fn at(&self, line: u64) -> At {
        At {
            file: compact_str::CompactString::from(self.file),
            line,
        }
    }
}

/// Read a set from its files (`get` takes a lower-case file name). `Err`: the set cannot be
/// used at all (a file or a required column missing, a file unreadable); bad rows are row
/// errors naming file, row and column.
pub fn read_set<'a>(
    get: impl Fn(&str) -> Option<&'a [u8]>,
    max_bytes: u64,
) -> Result<SdsSet, String> {
    let school = Table::read(
        "School.csv",
        get("school.csv"),
        max_bytes,
        &["SIS ID", "Name"],
    )?;
    let section = Table::read(
        "Section.csv",
        get("section.csv"),
        max_bytes,
        &["SIS ID", "School SIS ID", "Section Name"],
    )?;
    let person = ["SIS ID", "School SIS ID", "Username"];
    let student = Table::read("Student.csv", get("student.csv"), max_bytes, &person)?;
    let teacher = Table::read("Teacher.csv", get("teacher.csv"), max_bytes, &person)?;
    let link = ["Section SIS ID", "SIS ID"];
    let student_enr = Table::read(
        "StudentEnrollment.csv",
        get("studentenrollment.csv"),
        max_bytes,
        &link,
    )?;
    let teacher_ros = Table::read(
        "TeacherRoster.csv",
        get("teacherroster.csv"),
        max_bytes,
        &link,
    )?;

    let mut set = SdsSet {
        schools: schools(&school)?,
        ..Default::default()
    };
    users(&student, "student", &mut set.users);
    users(&teacher, "teacher", &mut set.users);
    let (terms, classes) = sections(&section);
    set.rosters.terms = terms;
    set.rosters.classes = classes;
    set.rosters.enrollments = enrollments(&teacher_ros, EnrollmentRole::Teacher);
    set.rosters
        .enrollments
        .extend(enrollments(&student_enr, EnrollmentRole::Student));
    set.rosters.enrollments.seal();
    set.rosters.classes_complete = true;
    set.rosters.enrollments_complete = true;
    Ok(set)
}

/// `School.csv`: a school without a SIS ID stops the set (users and sections refer to it).
fn schools(t: &Table) -> Result<Vec<Org>, String> {
    let mut out = Vec::with_capacity(t.records.len());
    for rec in &t.records {
        let rec = rec.as_ref().map_err(|e| format!("{}: {e}", t.file))?;
        let id = t.cell(rec, "SIS ID");
        if id.is_empty() {
            return Err(format!(
                "{} line {}, column SIS ID: the school has no SIS ID",
                t.file, rec.line
            ));
        }
        out.push(Org {
            sourced_id: id.to_string(),
            name: t.cell(rec, "Name").to_string(),
            org_type: "school".into(),
            to_be_deleted: false,
        });
    }
    Ok(out)
}

/// `Student.csv` / `Teacher.csv` rows as users. A SIS ID on several rows (one per school) is
/// one user at each of those schools; the first row gives the rest.
fn users(t: &Table, role: &str, out: &mut Vec<ProviderUser>) {
    let mut index: HashMap<String, usize> = HashMap::new();
    for rec in &t.records {
        let rec = match rec {
            Ok(rec) => rec,
            Err(issue) => {
                out.push(ProviderUser {
                    origin: compact_str::format_compact!("{} line {}", t.file, issue.line),
                    role: role.into(),
                    problem: Some(issue.message.clone()),
                    ..Default::default()
                });
                continue;
            }
        };
        let c = |col: &str| t.cell(rec, col);
        let id = c("SIS ID");
        let school = c("School SIS ID");
        if let Some(&i) = index.get(id).filter(|_| !id.is_empty()) {
            if !school.is_empty() && !out[i].orgs.iter().any(|o| o == school) {
                out[i].orgs.push(school.into());
            }
            continue;
        }
        let problem = if id.is_empty() {
            Some("column SIS ID is blank".to_string())
        } else if school.is_empty() {
            Some("column School SIS ID is blank".to_string())
        } else {
            None
        };
        if !id.is_empty() {
            index.insert(id.to_string(), out.len());
        }
        out.push(ProviderUser {
            origin: compact_str::format_compact!("{} line {}", t.file, rec.line),
            key: id.into(),
            to_be_deleted: false,
            enabled: !c("Status").eq_ignore_ascii_case("inactive"),
            role: role.into(),
            custom_id: id.into(),
            username: c("Username").into(),
            first_name: c("First Name").into(),
            middle_name: c("Middle Name").into(),
            last_name: c("Last Name").into(),
            email: c("Secondary Email").into(),
            orgs: if school.is_empty() {
                Vec::new()
            } else {
                vec![school.into()]
            },
            grade: if role == "student" {
                c("Grade").into()
            } else {
                Default::default()
            },
            problem,
        });
    }
}

/// SDS dates: ISO 8601 `YYYY-MM-DD` or `YYYYMMDD` (what Microsoft recommends), or US
/// `M/D/YYYY` (what older SIS exports send).
pub fn parse_date(raw: &str) -> Option<Date> {
    use time::macros::format_description;
    let raw = raw.trim();
    if let Ok(d) = Date::parse(raw, format_description!("[year]-[month]-[day]")) {
        return Some(d);
    }
    if raw.len() == 8 && raw.bytes().all(|b| b.is_ascii_digit()) {
        return Date::parse(raw, format_description!("[year][month][day]")).ok();
    }
    let mut parts = raw.split('/');
    let (m, d, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

type Terms = Vec<Result<IncomingTerm, RosterFail>>;
type Classes = Vec<Result<IncomingClass, RosterFail>>;

/// `Section.csv` rows as classes, and the terms they name (`Term SIS ID`, else `Term Name`,
/// with `Term Name`, `Term StartDate`, `Term EndDate`; the first section naming a term
/// gives its name and dates). The course code is `Course Number`, else `Course SIS ID`;
/// the subject `Course Subject`; the period `Periods`.
fn sections(t: &Table) -> (Terms, Classes) {
    let mut terms: Terms = Vec::new();
    let mut term_seen: HashSet<String> = HashSet::new();
    let mut classes: Classes = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for rec in &t.records {
        let rec = match rec {
            Ok(rec) => rec,
            Err(issue) => {
                classes.push(Err(RosterFail {
                    at: t.at(issue.line),
                    column: None,
                    message: issue.message.clone(),
                    class_external_id: None,
                }));
                continue;
            }
        };
        let c = |col: &str| t.cell(rec, col);
        let id = c("SIS ID");
        let fail = |column: &str, message: String| -> Result<IncomingClass, RosterFail> {
            Err(RosterFail {
                at: t.at(rec.line),
                column: Some(column.to_string()),
                message,
                class_external_id: Some(id.to_string()).filter(|s| !s.is_empty()),
            })
        };
        let blank = ["SIS ID", "School SIS ID", "Section Name"]
            .into_iter()
            .find(|col| c(col).is_empty());
        if let Some(col) = blank {
            classes.push(fail(col, format!("the section's {col} is blank")));
            continue;
        }
        if let Some(first) = seen.get(id) {
            classes.push(fail(
                "SIS ID",
                format!("section {id} is listed twice (also on line {first})"),
            ));
            continue;
        }
        seen.insert(id.to_string(), rec.line);
        let mut dates = [None, None];
        let mut bad = None;
        for (i, col) in ["Term StartDate", "Term EndDate"].into_iter().enumerate() {
            let raw = c(col);
            if raw.is_empty() {
                continue;
            }
            match parse_date(raw) {
                Some(d) => dates[i] = Some(d),
                None => bad = Some((col, raw)),
            }
        }
        if let Some((col, raw)) = bad {
            classes.push(fail(
                col,
                format!("\"{raw}\" is not a date (YYYY-MM-DD, YYYYMMDD or M/D/YYYY)"),
            ));
            continue;
        }
        let term = match (c("Term SIS ID"), c("Term Name")) {
            ("", "") => None,
            ("", name) => Some(name),
            (id, _) => Some(id),
        };
        if let Some(term) = term
            && term_seen.insert(term.to_string())
        {
            let name = c("Term Name");
            terms.push(Ok(IncomingTerm {
                at: t.at(rec.line),
                external_id: term.to_string(),
                title: if name.is_empty() { term } else { name }.to_string(),
                start: dates[0],
                end: dates[1],
            }));
        }
        let course_code = match c("Course Number") {
            "" => c("Course SIS ID"),
            n => n,
        };
        classes.push(Ok(IncomingClass {
            at: t.at(rec.line),
            external_id: id.to_string(),
            title: c("Section Name").to_string(),
            school_external_id: c("School SIS ID").to_string(),
            course_code: course_code.to_string(),
            subject: c("Course Subject").to_string(),
            period: c("Periods").to_string(),
            grades: Vec::new(),
            term_external_id: term.map(str::to_string),
            to_be_deleted: false,
        }));
    }
    (terms, classes)
}

/// `StudentEnrollment.csv` / `TeacherRoster.csv` rows (`Section SIS ID`, `SIS ID`).
fn enrollments(t: &Table, role: EnrollmentRole) -> EnrollmentList {
    t.records
        .iter()
        .map(|rec| -> Result<IncomingEnrollment, RosterFail> {
            let rec = rec.as_ref().map_err(|issue| RosterFail {
                at: t.at(issue.line),
                column: None,
                message: issue.message.clone(),
                class_external_id: None,
            })?;
            let section = t.cell(rec, "Section SIS ID");
            let user = t.cell(rec, "SIS ID");
            let blank = [("Section SIS ID", section), ("SIS ID", user)]
                .into_iter()
                .find(|(_, v)| v.is_empty());
            if let Some((col, _)) = blank {
                return Err(RosterFail {
                    at: t.at(rec.line),
                    column: Some(col.to_string()),
                    message: format!("the {col} is blank"),
                    class_external_id: Some(section.to_string()).filter(|s| !s.is_empty()),
                });
            }
            Ok(IncomingEnrollment {
                at: t.at(rec.line),
                class_external_id: Id::from(section),
                user: UserRef::Provider(Id::from(user)),
                role,
                primary: false,
                begin: None,
                end: None,
                to_be_deleted: false,
            })
        })
        .map(|r| r.map_err(Box::new))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const SCHOOL: &str = "SIS ID,Name,School Number\nS1,Lincoln High,100\nS2,Lincoln Middle,200\n";
    const SECTION: &str = "\u{feff}SIS ID,School SIS ID,Section Name,Section Number,Term SIS ID,Term Name,Term StartDate,Term EndDate,Course SIS ID,Course Name,Course Number,Course Subject,Periods\n\
        SEC1,S1,Algebra I - P1,1,T1,Fall 2024,2024-08-15,2024-12-20,C1,Algebra I,MATH-101,Mathematics,1\n\
        SEC2,S2,Biology - P3,3,,Spring 2025,20250106,5/30/2025,C2,Biology,,Science,3\n\
        SEC3,S1,,1,,,,,,,,,\n\
        SEC1,S1,Algebra again,1,,,,,,,,,\n\
        SEC4,S1,History,1,T1,Fall 2024,15.08.2024,,,,,,\n";
    const STUDENT: &str = "SIS ID,School SIS ID,Username,First Name,Last Name,Middle Name,Grade,Secondary Email,Status\n\
        ST1,S1,ana@x.org,Ana,Diaz,,9,ana.home@example.org,Active\n\
        ST1,S2,ana@x.org,Ana,Diaz,,9,ana.home@example.org,Active\n\
        ST2,S1,ben@x.org,Ben,Diaz,,10,,Inactive\n\
        ,S1,nobody@x.org,No,Body,,9,,\n";
    const TEACHER: &str =
        "SIS ID,School SIS ID,Username,First Name,Last Name,Title\nT1,S1,dee@x.org,Dee,Ames,Ms.\n";
    const STUDENT_ENR: &str = "Section SIS ID,SIS ID\nSEC1,ST1\nSEC2,ST1\nSEC1,\n";
    const TEACHER_ROS: &str = "Section SIS ID,SIS ID\nSEC1,T1\n";

    fn files(skip: &str) -> HashMap<&'static str, &'static [u8]> {
        [
            ("school.csv", SCHOOL),
            ("section.csv", SECTION),
            ("student.csv", STUDENT),
            ("teacher.csv", TEACHER),
            ("studentenrollment.csv", STUDENT_ENR),
            ("teacherroster.csv", TEACHER_ROS),
        ]
        .into_iter()
        .filter(|(n, _)| *n != skip)
        .map(|(n, b)| (n, b.as_bytes()))
        .collect()
    }

    fn read(skip: &str) -> Result<SdsSet, String> {
        let f = files(skip);
        read_set(|n| f.get(n).copied(), 1 << 20)
    }

    #[test]
    fn schools_and_users() {
        let set = read("").unwrap();
        let schools: Vec<_> = set
            .schools
            .iter()
            .map(|o| (o.sourced_id.as_str(), o.name.as_str(), o.is_school()))
            .collect();
        assert_eq!(
            schools,
            vec![("S1", "Lincoln High", true), ("S2", "Lincoln Middle", true)]
        );
        assert_eq!(set.users.len(), 4);
        let ana = &set.users[0];
        assert_eq!((ana.key.as_str(), ana.custom_id.as_str()), ("ST1", "ST1"));
        assert_eq!(ana.role, "student");
        assert_eq!(ana.orgs, vec!["S1", "S2"]);
        assert_eq!(
            (ana.username.as_str(), ana.email.as_str()),
            ("ana@x.org", "ana.home@example.org")
        );
        assert_eq!((ana.grade.as_str(), ana.enabled), ("9", true));
        assert_eq!(ana.origin, "Student.csv line 2");
        assert!(!set.users[1].enabled);
        assert_eq!(set.users[2].origin, "Student.csv line 5");
        assert_eq!(
            set.users[2].problem.as_deref(),
            Some("column SIS ID is blank")
        );
        let dee = &set.users[3];
        assert_eq!(
            (dee.key.as_str(), dee.role.as_str(), dee.grade.as_str()),
            ("T1", "teacher", "")
        );
        assert_eq!(dee.orgs, vec!["S1"]);
    }

    #[test]
    fn sections_terms_and_enrollments() {
        let set = read("").unwrap();
        let r = &set.rosters;
        assert!(r.classes_complete && r.enrollments_complete);
        let terms: Vec<_> = r.terms.iter().map(|t| t.clone().unwrap()).collect();
        assert_eq!(terms.len(), 2);
        assert_eq!(
            (
                terms[0].external_id.as_str(),
                terms[0].title.as_str(),
                terms[0].start,
                terms[0].end
            ),
            (
                "T1",
                "Fall 2024",
                Some(date!(2024 - 08 - 15)),
                Some(date!(2024 - 12 - 20))
            )
        );
        // No Term SIS ID: the term is keyed by its name.
        assert_eq!(
            (terms[1].external_id.as_str(), terms[1].start, terms[1].end),
            (
                "Spring 2025",
                Some(date!(2025 - 01 - 06)),
                Some(date!(2025 - 05 - 30))
            )
        );
        let sec1 = r.classes[0].clone().unwrap();
        assert_eq!(
            (
                sec1.external_id.as_str(),
                sec1.title.as_str(),
                sec1.school_external_id.as_str()
            ),
            ("SEC1", "Algebra I - P1", "S1")
        );
        assert_eq!(
            (
                sec1.course_code.as_str(),
                sec1.subject.as_str(),
                sec1.period.as_str()
            ),
            ("MATH-101", "Mathematics", "1")
        );
        assert_eq!(sec1.term_external_id.as_deref(), Some("T1"));
        assert_eq!(
            sec1.at,
            At {
                file: "Section.csv".into(),
                line: 2
            }
        );
        let sec2 = r.classes[1].clone().unwrap();
        assert_eq!(
            sec2.course_code, "C2",
            "no Course Number: the Course SIS ID"
        );
        assert_eq!(sec2.term_external_id.as_deref(), Some("Spring 2025"));
        let fails: Vec<String> = r.classes[2..]
            .iter()
            .map(|c| c.clone().unwrap_err().to_string())
            .collect();
        assert_eq!(
            fails,
            vec![
                "Section.csv line 4, column Section Name: the section's Section Name is blank",
                "Section.csv line 5, column SIS ID: section SEC1 is listed twice (also on line 2)",
                "Section.csv line 6, column Term StartDate: \"15.08.2024\" is not a date (YYYY-MM-DD, YYYYMMDD or M/D/YYYY)",
            ]
        );
        assert_eq!(
            r.classes[4]
                .clone()
                .unwrap_err()
                .class_external_id
                .as_deref(),
            Some("SEC4")
        );

        let enr: Vec<_> = r
            .enrollments
            .iter()
            .filter_map(|e| e.clone().ok())
            .collect();
        let got: Vec<_> = enr
            .iter()
            .map(|e| {
                (
                    e.class_external_id.as_str(),
                    e.user.clone(),
                    e.role,
                    e.at.file.as_str(),
                    e.at.line,
                )
            })
            .collect();
        let p = |s: &str| UserRef::Provider(s.into());
        assert_eq!(
            got,
            vec![
                (
                    "SEC1",
                    p("T1"),
                    EnrollmentRole::Teacher,
                    "TeacherRoster.csv",
                    2
                ),
                (
                    "SEC1",
                    p("ST1"),
                    EnrollmentRole::Student,
                    "StudentEnrollment.csv",
                    2
                ),
                (
                    "SEC2",
                    p("ST1"),
                    EnrollmentRole::Student,
                    "StudentEnrollment.csv",
                    3
                ),
            ]
        );
        let bad = r.enrollments.iter().find_map(|e| e.clone().err()).unwrap();
        assert_eq!(
            bad.to_string(),
            "StudentEnrollment.csv line 4, column SIS ID: the SIS ID is blank"
        );
        assert_eq!(bad.class_external_id.as_deref(), Some("SEC1"));
    }

    #[test]
    fn a_missing_file_or_column_stops_the_set() {
        let e = read("teacherroster.csv").unwrap_err();
        assert!(e.starts_with("the SDS set has no TeacherRoster.csv"), "{e}");
        let f = files("");
        let no_username = "SIS ID,School SIS ID,First Name\nT1,S1,Dee\n";
        let e = read_set(
            |n| match n {
                "teacher.csv" => Some(no_username.as_bytes()),
                _ => f.get(n).copied(),
            },
            1 << 20,
        )
        .unwrap_err();
        assert_eq!(e, "Teacher.csv has no column Username");
        let e = read_set(
            |n| match n {
                "school.csv" => Some(b"SIS ID,Name\n,Nameless\n".as_slice()),
                _ => f.get(n).copied(),
            },
            1 << 20,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "School.csv line 2, column SIS ID: the school has no SIS ID"
        );
    }

    #[test]
    fn sets_are_told_by_their_file_names() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_sds(&names(&FILES_LOWER)));
        assert!(is_sds(&names(&[
            "school.csv",
            "student.csv",
            "teacher.csv"
        ])));
        assert!(!is_sds(&names(&["manifest.csv", "orgs.csv", "users.csv"])));
        assert!(!is_sds(&names(&[
            "manifest.csv",
            "school.csv",
            "student.csv"
        ])));
        assert!(!is_sds(&names(&["users.csv"])));
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("2024-08-15"), Some(date!(2024 - 08 - 15)));
        assert_eq!(parse_date("20240815"), Some(date!(2024 - 08 - 15)));
        assert_eq!(parse_date("8/15/2024"), Some(date!(2024 - 08 - 15)));
        assert_eq!(parse_date("15/8/2024"), None);
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_date("8/15/24"), None);
    }
}
