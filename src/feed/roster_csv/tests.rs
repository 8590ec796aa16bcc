use super::*;
use std::io::Cursor;

fn read(text: &str) -> Result<RosterFeed, RosterFileError> {
    parse(
        Cursor::new(text.as_bytes().to_vec()),
        &ReadOptions::default(),
        "rosters.csv",
    )
}

fn fails(feed: &RosterFeed) -> Vec<String> {
    feed.terms
        .iter()
        .filter_map(|t| t.as_ref().err())
        .chain(feed.classes.iter().filter_map(|c| c.as_ref().err()))
        .map(|f| f.to_string())
        .chain(
            feed.enrollments
                .iter()
                .filter_map(|e| e.err().map(|f| f.to_string())),
        )
        .collect()
}

const GOOD: &str = "class_external_id,class_title,school_external_id,role,user,primary,course_code,subject,period,grades,term,term_start,term_end\r\n\
    ALG1-01,Algebra I,N1,teacher,T100,true,ALG1,Math,1,\"9,10\",Fall 2026,2026-08-24,2026-12-18\r\n\
    ALG1-01,Algebra I,N1,student,S1,,,,,,Fall 2026,,\r\n\
    ALG1-01,Algebra I,N1,student,ann@d.org,,,,,,,,\r\n\
    BIO-02,Biology,S1,,,,BIO,Science,3,,Fall 2026,8/24/2026,12/18/2026\r\n";

#[test]
fn a_roster_file_gives_its_terms_classes_and_enrollments() {
    let feed = read(GOOD).unwrap();
    assert_eq!(fails(&feed), Vec::<String>::new());
    assert!(feed.classes_complete && feed.enrollments_complete);
    let terms: Vec<_> = feed.terms.iter().map(|t| t.as_ref().unwrap()).collect();
    assert_eq!(terms.len(), 1);
    assert_eq!(terms[0].external_id, "Fall 2026");
    assert_eq!(terms[0].start, Some(time::macros::date!(2026 - 08 - 24)));
    assert_eq!(terms[0].end, Some(time::macros::date!(2026 - 12 - 18)));
    let classes: Vec<_> = feed.classes.iter().map(|c| c.as_ref().unwrap()).collect();
    assert_eq!(classes.len(), 2);
    assert_eq!(classes[0].external_id, "ALG1-01");
    assert_eq!(classes[0].title, "Algebra I");
    assert_eq!(classes[0].school_external_id, "N1");
    assert_eq!(classes[0].course_code, "ALG1");
    assert_eq!(classes[0].subject, "Math");
    assert_eq!(classes[0].period, "1");
    assert_eq!(classes[0].grades, vec!["9".to_string(), "10".to_string()]);
    assert_eq!(classes[0].term_external_id.as_deref(), Some("Fall 2026"));
    assert_eq!(classes[0].at.line, 2);
    assert_eq!(classes[1].external_id, "BIO-02");
    let enr: Vec<_> = feed.enrollments.iter().map(|e| e.unwrap()).collect();
    assert_eq!(enr.len(), 3);
    assert_eq!(enr[0].role, EnrollmentRole::Teacher);
    assert!(enr[0].primary);
    assert_eq!(enr[0].user, UserRef::Key("T100".into()));
    assert_eq!(enr[2].user, UserRef::Key("ann@d.org".into()));
    assert!(!enr[2].primary);
    assert_eq!(enr[2].at.line, 4);
}

#[test]
fn a_file_of_classes_only_leaves_enrollments_alone() {
    let feed = read("Class ID;Class Name;School ID\nA;Art;N1\nB;Band;N1\n").unwrap();
    assert_eq!(feed.classes.len(), 2);
    assert!(feed.classes_complete);
    assert!(!feed.enrollments_complete);
    assert!(feed.enrollments.is_empty());
    // Role and user columns present but every one blank: the same.
    let feed =
        read("class_external_id,class_title,school_external_id,role,user\nA,Art,N1,,\n").unwrap();
    assert!(!feed.enrollments_complete);
}

#[test]
fn missing_columns_are_named() {
    let err = read("class_external_id,role,user\nA,student,1\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "the roster file needs the columns class_title, school_external_id; it has: class_external_id, role, user"
    );
    let err =
        read("class_external_id,class_title,school_external_id,user\nA,Art,N1,1\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("has a user column but no role column"),
        "{err}"
    );
}

#[test]
fn each_bad_row_names_its_line_and_column() {
    let text = "class_external_id,class_title,school_external_id,role,user,primary,term,term_start,term_end\n\
        A,Art,N1,teacher,T1,,,,\n\
        ,Art,N1,student,S1,,,,\n\
        A,Art,N1,pupil-ish,S2,,,,\n\
        A,Art,N1,student,,,,,\n\
        A,Art,N1,,S3,,,,\n\
        A,Art,N1,student,S4,maybe,,,\n\
        A,Art,N1,student,S5,,,2026-13-01,\n\
        A,Art,N2,student,S6,,,,\n\
        A,Art,N1,student,s1x,,,,\n\
        A,Art,N1,student,S1X,,,,\n\
        B,Band,N1,student,S7,,T,2026-09-01,2026-08-01\n\
        C,Choir,N1,student,S8,,,2026-09-01,\n";
    let feed = read(text).unwrap();
    assert_eq!(
        fails(&feed),
        vec![
            "rosters.csv line 3, column class_external_id: the class's external ID is required",
            "rosters.csv line 4, column role: \"pupil-ish\" is not a role: use teacher or student",
            "rosters.csv line 5, column user: a role is given but no user (custom_id, email or user_guid)",
            "rosters.csv line 6, column role: a user is given but no role (teacher or student)",
            "rosters.csv line 7, column primary: \"maybe\" is not true or false",
            "rosters.csv line 8, column term_start: term_start is given but no term",
            "rosters.csv line 9, column school_external_id: school_external_id differs from line 2 of the same class (A)",
            "rosters.csv line 11, column user: S1X is enrolled in A twice (also on line 10)",
            "rosters.csv line 12, column term_end: the term ends (2026-08-01) before it starts (2026-09-01)",
            "rosters.csv line 13, column term_start: term_start is given but no term",
        ]
    );
    // A failed row still names its class, so the class is not archived for it.
    let failed: Vec<_> = feed.enrollments.iter().filter_map(|e| e.err()).collect();
    assert_eq!(failed[1].class_external_id.as_deref(), Some("A"));
    assert_eq!(failed[0].class_external_id, None);
    let ok: Vec<_> = feed.enrollments.iter().filter_map(|e| e.ok()).collect();
    assert_eq!(ok.len(), 2); // T1 and s1x
}

#[test]
fn a_term_given_twice_with_other_dates_is_an_error() {
    let text = "class_external_id,class_title,school_external_id,term,term_start,term_end\n\
        A,Art,N1,Fall,2026-08-24,2026-12-18\n\
        B,Band,N1,Fall,2026-08-25,\n\
        C,Choir,N1,Fall,,\n";
    let feed = read(text).unwrap();
    assert_eq!(
        fails(&feed),
        vec!["rosters.csv line 3, column term_start: the term \"Fall\" has other dates on line 2"]
    );
    assert_eq!(feed.terms.len(), 1);
    assert_eq!(feed.classes.len(), 2);
}

#[test]
fn cells_neutralised_by_a_download_come_back() {
    let feed = read("class_external_id,class_title,school_external_id\n'=A1,'-Art,N1\n").unwrap();
    let c = feed.classes[0].as_ref().unwrap();
    assert_eq!(c.external_id, "=A1");
    assert_eq!(c.title, "-Art");
    let feed = read("class_external_id,class_title,school_external_id\n'A1,Art,N1\n").unwrap();
    assert_eq!(feed.classes[0].as_ref().unwrap().external_id, "'A1");
}

#[test]
fn roster_headers_are_told_from_user_headers() {
    let h = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
    assert!(is_roster_header(&h(
        "class_external_id,class_title,school_external_id,role,user"
    )));
    assert!(is_roster_header(&h("Section ID,School ID,Role,User")));
    assert!(!is_roster_header(&h(
        "custom_id,email,first_name,last_name,role,school_external_id"
    )));
    assert!(!is_roster_header(&h("class_title,school_external_id")));
}

#[test]
fn dates_in_both_usual_spellings() {
    assert_eq!(
        parse_date("2026-01-05"),
        Some(time::macros::date!(2026 - 01 - 05))
    );
    assert_eq!(
        parse_date("1/5/2026"),
        Some(time::macros::date!(2026 - 01 - 05))
    );
    assert_eq!(parse_date("2026/01/05"), None);
    assert_eq!(parse_date("1/5/26"), None);
    assert_eq!(parse_date("2/30/2026"), None);
}

#[test]
fn a_class_guid_column_names_classes_and_is_checked_per_row() {
    let g1 = "7d1c1a56-8e0c-4a53-9d5d-2f4f2b1f3f01";
    let g2 = "7d1c1a56-8e0c-4a53-9d5d-2f4f2b1f3f02";
    let text = format!(
        "class_external_id,class_title,school_external_id,role,user,class_guid\n\
         ALG,Algebra,N1,teacher,T1,{g1}\n\
         ALG,Algebra,N1,student,S1,\n\
         ALG,Algebra,N1,student,S2,{g2}\n\
         BIO,Biology,N1,student,S1,not-a-guid\n\
         BIO,Biology,N1,student,S2,\n\
         ART,Art,N1,,,\n"
    );
    let feed = read(&text).unwrap();
    assert_eq!(
        fails(&feed),
        vec![
            "rosters.csv line 4, column class_guid: class_guid differs from line 2 of the same class (ALG)".to_string(),
            "rosters.csv line 5, column class_guid: \"not-a-guid\" is not a class GUID (leave it blank for a new class)".to_string(),
        ]
    );
    assert_eq!(
        feed.class_guids,
        [("ALG".to_string(), uuid::Uuid::parse_str(g1).unwrap())].into()
    );
    // BIO is defined by its next row, without a GUID; ART has none.
    let classes: Vec<_> = feed.classes.iter().map(|c| c.as_ref().unwrap()).collect();
    assert_eq!(classes.len(), 3);
    assert!(feed.keeps_enrollment_dates);
    // A file without the column names no class by GUID.
    assert!(read(GOOD).unwrap().class_guids.is_empty());
}
