//! Clever Data API v3: list pages (`{"data": [{"data": {...}, "uri": …}], "links": […]}`),
//! schools and users turned into [`Org`]s and [`ProviderUser`]s, sections, courses and terms
//! into the classes, terms and enrollments of a [`RosterFeed`](crate::domain::roster::RosterFeed).
//! Pure: no SQL, no HTTP.

use crate::domain::roster::{
    At, EnrollmentRole, Id, IncomingClass, IncomingEnrollment, IncomingTerm, RosterFail, UserRef,
};
use crate::feed::oneroster::Org;
use crate::feed::provider::ProviderUser;
use serde_json::Value;
use std::collections::HashMap;
use time::Date;

/// The roles a sync asks Clever for, in order: a user with several keeps the first.
pub const ROLES: [&str; 3] = ["student", "teacher", "staff"];

/// One page of a list: its records (the inner `data` objects) and the `next` link.
pub fn page(body: &Value) -> Result<(Vec<Value>, Option<String>), String> {
    let items = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or("the response has no \"data\" list")?;
    let records = items
        .iter()
        .map(|item| item.get("data").cloned().unwrap_or(Value::Null))
        .collect();
    let next = body
        .get("links")
        .and_then(Value::as_array)
        .and_then(|links| {
            links
                .iter()
                .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"))
        })
        .and_then(|l| l.get("uri").and_then(Value::as_str))
        .map(str::to_string);
    Ok((records, next))
}

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for key in path {
        match cur.get(key) {
            Some(next) => cur = next,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("").trim()
}

pub fn school(v: &Value) -> Option<Org> {
    let id = text(v, &["id"]);
    (!id.is_empty()).then(|| Org {
        sourced_id: id.to_string(),
        name: text(v, &["name"]).to_string(),
        org_type: "school".into(),
        to_be_deleted: false,
    })
}

/// A user record as listed for `role` (`student`, `teacher` or `staff`); `n` is its position.
pub fn user(v: &Value, role: &str, n: usize) -> ProviderUser {
    let id = text(v, &["id"]);
    let origin = compact_str::format_compact!("{role} {id} (record {n})");
    let Some(r) = v.get("roles").and_then(|roles| roles.get(role)) else {
        return ProviderUser {
            origin,
            key: id.into(),
            problem: Some(format!("the record has no {role} role")),
            ..Default::default()
        };
    };
    let custom_id = match role {
        "student" => text(r, &["sis_id"]),
        "teacher" => match text(r, &["teacher_number"]) {
            "" => text(r, &["sis_id"]),
            n => n,
        },
        _ => text(r, &["staff_id"]),
    };
    let mut schools: Vec<compact_str::CompactString> = r
        .get("schools")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().into())
                .collect()
        })
        .unwrap_or_default();
    let primary = text(r, &["school"]);
    if !primary.is_empty() && !schools.iter().any(|s| s == primary) {
        schools.push(primary.into());
    }
    ProviderUser {
        origin,
        key: id.into(),
        to_be_deleted: false,
        enabled: true,
        role: role.into(),
        custom_id: custom_id.into(),
        username: text(r, &["credentials", "district_username"]).into(),
        first_name: text(v, &["name", "first"]).into(),
        middle_name: text(v, &["name", "middle"]).into(),
        last_name: text(v, &["name", "last"]).into(),
        email: text(v, &["email"]).into(),
        orgs: schools,
        grade: if role == "student" {
            text(r, &["grade"]).into()
        } else {
            Default::default()
        },
        problem: None,
    }
}

/// Where a section or term record came from: the list and its position in it (1-based).
fn at(list: &str, n: u64) -> At {
    At {
        file: compact_str::CompactString::from(list),
        line: n,
    }
}

/// The ids of a list of ids (`teachers`, `students`), blanks left out.
fn ids<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// A term (`/v3.0/terms`): `id`, `name`, `start_date`, `end_date` (`YYYY-MM-DD`, not
/// guaranteed); `n` is its position in the list.
pub fn term(v: &Value, n: u64) -> Result<IncomingTerm, RosterFail> {
    let fail = |column: &str, message: String| RosterFail {
        at: at("terms", n),
        column: Some(column.into()),
        message,
        class_external_id: None,
    };
    let id = text(v, &["id"]);
    if id.is_empty() {
        return Err(fail("id", "the term has no id".into()));
    }
    let date = |key: &str| -> Result<Option<Date>, RosterFail> {
        match text(v, &[key]) {
            "" => Ok(None),
            raw => parse_date(raw).map(Some).ok_or_else(|| {
                fail(
                    key,
                    format!("term {id}: \"{raw}\" is not a date (YYYY-MM-DD)"),
                )
            }),
        }
    };
    let (start, end) = (date("start_date")?, date("end_date")?);
    let name = text(v, &["name"]);
    Ok(IncomingTerm {
        at: at("terms", n),
        external_id: id.to_string(),
        title: if name.is_empty() { id } else { name }.to_string(),
        start,
        end,
    })
}

/// `YYYY-MM-DD`, or the date part of a W3C date-time.
fn parse_date(raw: &str) -> Option<Date> {
    let day = raw.get(..10)?;
    Date::parse(
        day,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// The district's courses (`/v3.0/courses`: `id`, `name`, `number`), for the sections'
/// course codes. A course without a `number` is left out (its sections fall back).
#[derive(Debug, Default)]
pub struct Courses {
    numbers: HashMap<String, String>,
}

impl Courses {
    /// Take one record of the courses list.
    pub fn add(&mut self, v: &Value) {
        let (id, number) = (text(v, &["id"]), text(v, &["number"]));
        if !id.is_empty() && !number.is_empty() {
            self.numbers.insert(id.to_string(), number.to_string());
        }
    }

    /// The course number of the course `id`, when the list gave one.
    pub fn number(&self, id: &str) -> Option<&str> {
        self.numbers.get(id).map(String::as_str)
    }
}

/// What one section (`/v3.0/sections`) comes to: its class, and its enrollments — every
/// id of `teachers` as a teacher (the `teacher` field, Clever's primary teacher, is primary
/// and enrolled even when `teachers` leaves it out), every id of `students` as a student.
/// Users are named by their Clever id (`users.source_key` of the sync's users). A section
/// without an id or school is a failure, and so are its enrollments (nothing to enrol in).
///
/// The class: `external_id` = `id` (Clever's stable id; `sis_id` is only for matching
/// history), `title` = `name`, `school_external_id` = `school`, `course_code` = the
/// `number` of its `course` in `courses` (the district's course number), else the `course`
/// id itself (sections of one course share it), else its `section_number`; `subject`,
/// `period`, `grades` = [`grade`], term = `term_id`.
pub fn section(
    v: &Value,
    n: u64,
    courses: &Courses,
) -> (
    Result<IncomingClass, RosterFail>,
    Vec<Result<IncomingEnrollment, RosterFail>>,
) {
    let id = text(v, &["id"]);
    let fail = |column: &str, message: String| RosterFail {
        at: at("sections", n),
        column: Some(column.into()),
        message,
        class_external_id: Some(id.to_string()).filter(|s| !s.is_empty()),
    };
    if id.is_empty() {
        return (Err(fail("id", "the section has no id".into())), Vec::new());
    }
    let school = text(v, &["school"]);
    if school.is_empty() {
        return (
            Err(fail("school", format!("section {id} has no school"))),
            Vec::new(),
        );
    }
    let name = text(v, &["name"]);
    let course_code = match text(v, &["course"]) {
        "" => text(v, &["section_number"]),
        c => courses.number(c).unwrap_or(c),
    };
    let grade = text(v, &["grade"]);
    let term = text(v, &["term_id"]);
    let class = IncomingClass {
        at: at("sections", n),
        external_id: id.to_string(),
        title: if name.is_empty() { id } else { name }.to_string(),
        school_external_id: school.to_string(),
        course_code: course_code.to_string(),
        subject: text(v, &["subject"]).to_string(),
        period: text(v, &["period"]).to_string(),
        grades: if grade.is_empty() {
            Vec::new()
        } else {
            vec![grade.to_string()]
        },
        term_external_id: (!term.is_empty()).then(|| term.to_string()),
        to_be_deleted: false,
    };
    let enrol = |user: &str, role: EnrollmentRole, primary: bool| {
        Ok(IncomingEnrollment {
            at: at("sections", n),
            class_external_id: Id::from(&*id),
            user: UserRef::Provider(Id::from(user)),
            role,
            primary,
            begin: None,
            end: None,
            to_be_deleted: false,
        })
    };
    let primary = text(v, &["teacher"]);
    let mut teachers = ids(v, "teachers");
    if !primary.is_empty() && !teachers.contains(&primary) {
        teachers.insert(0, primary);
    }
    let mut seen = std::collections::HashSet::new();
    teachers.retain(|t| seen.insert(*t));
    let mut students = ids(v, "students");
    students.sort_unstable();
    students.dedup();
    let mut enrollments: Vec<_> = teachers
        .iter()
        .map(|t| enrol(t, EnrollmentRole::Teacher, *t == primary))
        .collect();
    enrollments.extend(
        students
            .iter()
            .map(|s| enrol(s, EnrollmentRole::Student, false)),
    );
    (Ok(class), enrollments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_and_links() {
        let body = json!({
            "data": [{"data": {"id": "s1", "name": "High"}, "uri": "/v3.0/schools/s1"}],
            "links": [{"rel": "self", "uri": "/v3.0/schools"}, {"rel": "next", "uri": "/v3.0/schools?starting_after=s1"}]
        });
        let (records, next) = page(&body).unwrap();
        assert_eq!(school(&records[0]).unwrap().sourced_id, "s1");
        assert_eq!(next.as_deref(), Some("/v3.0/schools?starting_after=s1"));
        let last = json!({"data": [], "links": [{"rel": "self", "uri": "/v3.0/schools"}]});
        assert_eq!(page(&last).unwrap().1, None);
        assert!(page(&json!({"error": "x"})).is_err());
    }

    #[test]
    fn users_by_role() {
        let v = json!({
            "id": "u1", "district": "d1", "email": "ann@x.org",
            "name": {"first": "Ann", "middle": "B", "last": "Lee"},
            "roles": {"student": {"sis_id": "1001", "grade": "Kindergarten", "school": "s1", "schools": ["s2"]}}
        });
        let u = user(&v, "student", 1);
        assert_eq!((u.key.as_str(), u.custom_id.as_str()), ("u1", "1001"));
        assert_eq!(u.orgs, vec!["s2", "s1"]);
        assert_eq!(u.grade, "Kindergarten");
        let t = json!({"id": "t1", "name": {"first": "Bo", "last": "Ray"},
                        "roles": {"teacher": {"teacher_number": "T-9", "sis_id": "x", "schools": ["s1"]}}});
        assert_eq!(user(&t, "teacher", 2).custom_id, "T-9");
        let s = json!({"id": "f1", "name": {"first": "Cy", "last": "Ray"},
                        "roles": {"staff": {"staff_id": "E-3", "schools": ["s1"]}}});
        assert_eq!(user(&s, "staff", 3).custom_id, "E-3");
        assert!(user(&s, "teacher", 4).problem.is_some());
    }

    #[test]
    fn a_section_becomes_a_class_and_its_enrollments() {
        let v = json!({
            "id": "sec1", "district": "d1", "school": "s1", "name": "Algebra - Ames - Period 3",
            "sis_id": "ALG-3", "section_number": "3", "course": "crs9", "period": "3",
            "subject": "math", "grade": "9", "term_id": "t1",
            "teacher": "t9", "teachers": ["t9", "t8"], "students": ["u2", "u1", "u2"],
            "created": "2024-01-01T00:00:00.000Z", "last_modified": "2024-01-01T00:00:00.000Z"
        });
        let (class, enrollments) = section(&v, 4, &Courses::default());
        let class = class.unwrap();
        assert_eq!(class.external_id, "sec1");
        assert_eq!(class.title, "Algebra - Ames - Period 3");
        assert_eq!(class.school_external_id, "s1");
        assert_eq!(class.course_code, "crs9");
        assert_eq!(
            (class.subject.as_str(), class.period.as_str()),
            ("math", "3")
        );
        assert_eq!(class.grades, vec!["9"]);
        assert_eq!(class.term_external_id.as_deref(), Some("t1"));
        assert_eq!(
            class.at,
            At {
                file: "sections".into(),
                line: 4
            }
        );
        let got: Vec<_> = enrollments
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                assert_eq!(e.class_external_id, "sec1");
                (e.user, e.role, e.primary)
            })
            .collect();
        let p = |s: &str| UserRef::Provider(s.into());
        assert_eq!(
            got,
            vec![
                (p("t9"), EnrollmentRole::Teacher, true),
                (p("t8"), EnrollmentRole::Teacher, false),
                (p("u1"), EnrollmentRole::Student, false),
                (p("u2"), EnrollmentRole::Student, false),
            ]
        );
    }

    #[test]
    fn a_section_takes_its_course_code_from_the_course_number() {
        let mut courses = Courses::default();
        courses.add(
            &json!({"id": "crs9", "district": "d1", "name": "Algebra I", "number": " ALG-101 "}),
        );
        courses.add(&json!({"id": "crs8", "district": "d1", "name": "No number"}));
        let v = |course: &str| {
            json!({"id": "sec1", "school": "s1", "name": "A", "section_number": "3",
                   "course": course, "teachers": [], "students": []})
        };
        let code = |v: &Value| section(v, 1, &courses).0.unwrap().course_code;
        assert_eq!(code(&v("crs9")), "ALG-101", "the course's number");
        assert_eq!(
            code(&v("crs8")),
            "crs8",
            "no number: the course id, as before"
        );
        assert_eq!(code(&v("crs7")), "crs7", "a course the list lacks: its id");
        assert_eq!(code(&v("")), "3", "no course: the section number");
    }

    #[test]
    fn the_primary_teacher_is_enrolled_even_when_teachers_leaves_it_out() {
        let v = json!({"id": "sec2", "school": "s1", "name": "", "section_number": "7",
                        "teacher": "t1", "teachers": [], "students": []});
        let (class, enrollments) = section(&v, 1, &Courses::default());
        let class = class.unwrap();
        // No name: the id; no course: the section number; no grade or term.
        assert_eq!(
            (class.title.as_str(), class.course_code.as_str()),
            ("sec2", "7")
        );
        assert!(class.grades.is_empty() && class.term_external_id.is_none());
        assert_eq!(enrollments.len(), 1);
        let e = enrollments[0].as_ref().unwrap();
        assert_eq!(
            (&e.user, e.role, e.primary),
            (
                &UserRef::Provider("t1".into()),
                EnrollmentRole::Teacher,
                true
            )
        );
    }

    #[test]
    fn a_section_without_id_or_school_fails_naming_the_field() {
        let (class, enrollments) = section(
            &json!({"school": "s1", "students": ["u1"]}),
            2,
            &Courses::default(),
        );
        let f = class.unwrap_err();
        assert_eq!(
            f.to_string(),
            "sections line 2, column id: the section has no id"
        );
        assert!(enrollments.is_empty());
        let (class, enrollments) = section(
            &json!({"id": "sec3", "students": ["u1"]}),
            3,
            &Courses::default(),
        );
        let f = class.unwrap_err();
        assert_eq!(f.column.as_deref(), Some("school"));
        assert_eq!(f.class_external_id.as_deref(), Some("sec3"));
        assert!(enrollments.is_empty());
    }

    #[test]
    fn terms_with_and_without_dates() {
        let t = term(
            &json!({"id": "t1", "district": "d1", "name": "Fall 2024",
                              "start_date": "2024-08-15", "end_date": "2024-12-20"}),
            1,
        )
        .unwrap();
        assert_eq!(
            (t.external_id.as_str(), t.title.as_str()),
            ("t1", "Fall 2024")
        );
        assert_eq!(t.start, Some(time::macros::date!(2024 - 08 - 15)));
        assert_eq!(t.end, Some(time::macros::date!(2024 - 12 - 20)));
        let bare = term(&json!({"id": "t2"}), 2).unwrap();
        assert_eq!(
            (bare.title.as_str(), bare.start, bare.end),
            ("t2", None, None)
        );
        let bad = term(&json!({"id": "t3", "start_date": "15/08/2024"}), 3).unwrap_err();
        assert_eq!(bad.column.as_deref(), Some("start_date"));
        assert_eq!(bad.at.line, 3);
        assert!(term(&json!({"name": "x"}), 4).is_err());
    }
}
