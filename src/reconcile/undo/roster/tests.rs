use super::*;
use crate::domain::roster::CurrentTerm;
use serde_json::json;

const SCHOOL_A: Uuid = Uuid::from_u128(0xA);
const SCHOOL_B: Uuid = Uuid::from_u128(0xB);
const TERM: Uuid = Uuid::from_u128(0x7E);

fn file() -> Source {
    Source::File("rosters.csv".into())
}

fn class(n: u128, title: &str, archived: bool) -> CurrentClass {
    CurrentClass {
        id: Uuid::from_u128(n),
        external_id: format!("C{n}"),
        school_id: SCHOOL_A,
        title: title.into(),
        course_code: String::new(),
        subject: String::new(),
        period: String::new(),
        grades: Vec::new(),
        term_id: None,
        source: file(),
        archived,
    }
}

fn enr(class: u128, user: u128, role: EnrollmentRole) -> CurrentEnrollment {
    CurrentEnrollment {
        class_id: Uuid::from_u128(class),
        user_id: Uuid::from_u128(user),
        role,
        primary: false,
        begin: None,
        end: None,
    }
}

fn district(classes: Vec<CurrentClass>, enrollments: Vec<CurrentEnrollment>) -> RosterCurrent {
    RosterCurrent {
        terms: vec![CurrentTerm {
            id: TERM,
            external_id: "T".into(),
            title: "Term".into(),
            start: None,
            end: None,
        }],
        classes,
        enrollments: enrollments.into(),
        schools: [("A".to_string(), SCHOOL_A), ("B".to_string(), SCHOOL_B)].into(),
    }
}

fn w(kind: ChangeKind, class: u128, user: Option<u128>, before: Option<Value>) -> RosterWritten {
    RosterWritten {
        kind,
        class_id: Uuid::from_u128(class),
        user_id: user.map(Uuid::from_u128),
        before,
        changed_since: false,
    }
}

fn approved() -> RosterRules {
    RosterRules {
        approved: true,
        ..RosterRules::default()
    }
}

fn outcome(p: &RosterPlan, line: u32) -> RecordOutcome {
    listed(p, line).unwrap()
}

/// The outcome listed for record `line`: an enrollment ended or already as before is
/// counted, not listed.
fn listed(p: &RosterPlan, line: u32) -> Option<RecordOutcome> {
    p.results().find(|r| r.line == line).map(|r| r.outcome)
}

/// A created class is archived (never deleted); an archived one restored; a restored one
/// archived again; updated fields and the owner get their earlier values back.
#[test]
fn classes_go_back_to_what_they_were() {
    let mut moved = class(4, "Physics II", false);
    moved.source = Source::File("other.csv".into());
    moved.term_id = Some(TERM);
    moved.grades = vec!["9".into()];
    let current = district(
        vec![
            class(1, "New", false),
            class(2, "Gone", true),
            class(3, "Back", false),
            moved,
        ],
        Vec::new(),
    );
    let written = vec![
        w(ChangeKind::ClassCreated, 1, None, None),
        w(
            ChangeKind::ClassArchived,
            2,
            None,
            Some(json!({"archived": false})),
        ),
        w(
            ChangeKind::ClassRestored,
            3,
            None,
            Some(json!({"external_id": "C3", "archived": true})),
        ),
        w(
            ChangeKind::ClassUpdated,
            4,
            None,
            Some(
                json!({"external_id": "C4", "title": "Physics", "school_id": SCHOOL_B,
                        "term_id": null, "grades": ["10", "11"], "source": "file:rosters.csv"}),
            ),
        ),
    ];
    let p = plan(&current, written, &file(), &approved());
    assert_eq!(outcome(&p, 1), RecordOutcome::Archived);
    assert_eq!(outcome(&p, 2), RecordOutcome::Restored);
    assert_eq!(outcome(&p, 3), RecordOutcome::Archived);
    assert_eq!(outcome(&p, 4), RecordOutcome::Updated);
    let archived: Vec<Uuid> = p.archive.iter().map(|c| c.id).collect();
    assert_eq!(archived, vec![Uuid::from_u128(1), Uuid::from_u128(3)]);
    assert_eq!(p.classes.len(), 2);
    assert_eq!(p.classes[0].change, ClassChange::Restore);
    assert_eq!(p.classes[0].write.id, Uuid::from_u128(2));
    let up = &p.classes[1];
    assert_eq!(up.change, ClassChange::Update);
    assert_eq!(up.write.title, "Physics");
    assert_eq!(up.write.school_id, SCHOOL_B);
    assert_eq!(up.write.term_id, None);
    assert_eq!(up.write.grades, vec!["10".to_string(), "11".to_string()]);
    assert_eq!(up.write.source, file());
    assert_eq!(
        up.changed,
        vec!["title", "school", "grades", "term", "source"]
    );
    assert_eq!(p.counts.classes_archived, 2);
    assert_eq!(p.counts.classes_restored, 1);
    assert_eq!(p.counts.classes_updated, 1);
    assert_eq!(p.counts.roster_errors, 0);
    assert!(p.review.is_none());
}

/// An added enrollment is removed; an ended one comes back with its old values; a changed
/// one gets its old role, primary and dates back.
#[test]
fn enrollments_go_back_to_what_they_were() {
    let mut changed = enr(1, 12, EnrollmentRole::Teacher);
    changed.primary = true;
    let current = district(
        vec![class(1, "Math", false)],
        vec![enr(1, 11, EnrollmentRole::Student), changed],
    );
    let written = vec![
        w(ChangeKind::EnrollmentAdded, 1, Some(11), None),
        w(
            ChangeKind::EnrollmentChanged,
            1,
            Some(12),
            Some(json!({"role": "teacher", "primary": false, "begin": "2026-09-01", "end": null})),
        ),
        w(
            ChangeKind::EnrollmentEnded,
            1,
            Some(13),
            Some(json!({"role": "student", "primary": false, "begin": null, "end": "2027-06-30"})),
        ),
    ];
    let p = plan(&current, written, &file(), &approved());
    assert_eq!(listed(&p, 1), None, "ended: counted, not listed");
    assert_eq!(p.records, Some(3));
    assert_eq!(outcome(&p, 2), RecordOutcome::Changed);
    assert_eq!(outcome(&p, 3), RecordOutcome::Added);
    assert_eq!(p.ended, vec![enr(1, 11, EnrollmentRole::Student)]);
    assert_eq!(p.enrollments.len(), 2);
    let back = p.write_now(0);
    assert!(!back.primary);
    assert_eq!(back.begin, Some(time::macros::date!(2026 - 09 - 01)));
    assert_eq!(p.write_before(0), Some(&changed));
    let put_back = p.write_now(1);
    assert_eq!(p.write_before(1), None);
    assert!(!p.enrollments[1].changed());
    assert_eq!(put_back.user_id, Uuid::from_u128(13));
    assert_eq!(put_back.end, Some(time::macros::date!(2027 - 06 - 30)));
    assert_eq!(
        p.results().find(|r| r.line == 2).unwrap().changed(),
        vec!["primary", "begin"],
        "the fields that go back"
    );
    assert_eq!(p.counts.enrollments_ended, 1);
    assert_eq!(p.counts.enrollments_changed, 1);
    assert_eq!(p.counts.enrollments_added, 1);
}

/// Changes recorded more than once for one class or enrollment (an undo's record read with
/// another's, rows of older migrations) fold into one record at its first change: the first
/// change's earlier values win, a created class stays created, and the records are numbered
/// in the order first recorded, the district's enrollments found in any order.
#[test]
fn changes_of_one_key_fold_at_the_first_in_the_order_recorded() {
    let current = district(
        vec![class(2, "Now", false), class(1, "Later", false)],
        vec![
            enr(2, 12, EnrollmentRole::Teacher),
            enr(1, 11, EnrollmentRole::Teacher),
        ],
    );
    let student = json!({"role": "student", "primary": false, "begin": null, "end": null});
    let teacher = json!({"role": "teacher", "primary": false, "begin": null, "end": null});
    let written = vec![
        w(ChangeKind::EnrollmentChanged, 2, Some(12), Some(student)),
        w(ChangeKind::ClassCreated, 1, None, None),
        w(ChangeKind::EnrollmentAdded, 1, Some(11), None),
        w(
            ChangeKind::ClassUpdated,
            1,
            None,
            Some(json!({"title": "Earlier"})),
        ),
        w(ChangeKind::EnrollmentChanged, 2, Some(12), Some(teacher)),
        w(
            ChangeKind::ClassUpdated,
            2,
            None,
            Some(json!({"title": "Before"})),
        ),
    ];
    let p = plan(&current, written, &file(), &approved());
    let lines: Vec<(u32, RecordKind, RecordOutcome)> =
        p.results().map(|r| (r.line, r.kind, r.outcome)).collect();
    assert_eq!(
        lines,
        [
            (1, RecordKind::Enrollment, RecordOutcome::Changed),
            (2, RecordKind::Class, RecordOutcome::Archived),
            (4, RecordKind::Class, RecordOutcome::Updated),
        ],
        "record 3, class 1's enrollment ended, is counted, not listed"
    );
    assert_eq!(p.records, Some(4));
    assert_eq!(p.counts.enrollments_ended, 1);
    // Class 2's enrollment of user 12 goes back to the first recorded: a student.
    assert_eq!(p.enrollments.len(), 1);
    assert_eq!(p.write_now(0).role, EnrollmentRole::Student);
    assert_eq!(p.ended, vec![enr(1, 11, EnrollmentRole::Teacher)]);
    assert_eq!(
        p.classes.len(),
        1,
        "class 2 retitled, class 1 archived apart"
    );
    assert_eq!(p.classes[0].write.title, "Before");
}

/// A class or enrollment changed again by a later run is left as it is (skipped); one
/// already in its earlier state writes nothing.
#[test]
fn changed_since_is_left_and_nothing_to_do_is_unchanged() {
    let current = district(
        vec![
            class(1, "Later title", false),
            class(2, "Was archived", true),
        ],
        vec![enr(1, 11, EnrollmentRole::Student)],
    );
    let mut since = w(
        ChangeKind::ClassUpdated,
        1,
        None,
        Some(json!({"title": "First"})),
    );
    since.changed_since = true;
    let mut enr_since = w(ChangeKind::EnrollmentAdded, 1, Some(11), None);
    enr_since.changed_since = true;
    let written = vec![
        since,
        enr_since,
        // Created, then archived by someone: already as before.
        w(ChangeKind::ClassCreated, 2, None, None),
        // Added, already gone.
        w(ChangeKind::EnrollmentAdded, 1, Some(99), None),
    ];
    let p = plan(&current, written, &file(), &approved());
    assert_eq!(outcome(&p, 1), RecordOutcome::Skipped);
    assert_eq!(outcome(&p, 2), RecordOutcome::Skipped);
    assert_eq!(outcome(&p, 3), RecordOutcome::Unchanged);
    assert_eq!(listed(&p, 4), None, "an enrollment already gone: counted");
    assert!(p.classes.is_empty() && p.archive.is_empty());
    assert!(p.enrollments.is_empty() && p.ended.is_empty());
    assert_eq!(p.counts.classes_unchanged, 1);
    assert_eq!(p.counts.enrollments_unchanged, 1);
}

/// A value that cannot be put back (a school gone, unreadable JSON) is an error naming the
/// class; that class is left as it is.
#[test]
fn what_cannot_be_put_back_is_an_error() {
    let current = district(
        vec![class(1, "Math", false), class(2, "Art", false)],
        vec![],
    );
    let gone = Uuid::from_u128(0xDEAD);
    let written = vec![
        w(
            ChangeKind::ClassUpdated,
            1,
            None,
            Some(json!({"school_id": gone})),
        ),
        w(
            ChangeKind::ClassUpdated,
            2,
            None,
            Some(json!({"grades": 7})),
        ),
        w(
            ChangeKind::EnrollmentEnded,
            2,
            Some(5),
            Some(json!({"role": "pilot"})),
        ),
    ];
    let p = plan(&current, written, &file(), &approved());
    assert_eq!(p.counts.roster_errors, 3);
    assert!(p.classes.is_empty() && p.enrollments.is_empty());
    let errors: Vec<String> = p
        .results()
        .map(|r| r.error().unwrap().to_string())
        .collect();
    assert!(
        errors[0].contains("school of class C1 no longer exists"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("grades of class C2 cannot be read"),
        "{errors:?}"
    );
    assert!(errors[2].contains("enrollment in class C2"), "{errors:?}");
}

/// Undoing the undo: the undo's own recorded changes, planned again, redo the run.
#[test]
fn undoing_the_undo_redoes() {
    // The run created class 1 with a student; the undo archived the class and ended the
    // enrollment, recording that.
    let after_undo = district(vec![class(1, "Math", true)], Vec::new());
    let undo_recorded = vec![
        w(
            ChangeKind::ClassArchived,
            1,
            None,
            Some(json!({"archived": false})),
        ),
        w(
            ChangeKind::EnrollmentEnded,
            1,
            Some(11),
            Some(json!({"role": "student", "primary": false, "begin": null, "end": null})),
        ),
    ];
    let p = plan(&after_undo, undo_recorded, &file(), &approved());
    assert_eq!(outcome(&p, 1), RecordOutcome::Restored);
    assert_eq!(outcome(&p, 2), RecordOutcome::Added);
    assert_eq!(p.write_now(0), enr(1, 11, EnrollmentRole::Student));
    assert_eq!(p.counts.classes_restored, 1);
}

/// The guard: an undo that would archive or end more than the threshold of the source's
/// classes or enrollments stops for review unless approved.
#[test]
fn the_guard_holds_a_large_undo() {
    let classes: Vec<CurrentClass> = (1..=20).map(|n| class(n, "K", false)).collect();
    let enrollments: Vec<CurrentEnrollment> = (1..=20)
        .map(|n| enr(n, 100 + n, EnrollmentRole::Student))
        .collect();
    let current = district(classes, enrollments);
    let written: Vec<RosterWritten> = (1..=20)
        .flat_map(|n| {
            [
                w(ChangeKind::ClassCreated, n, None, None),
                w(ChangeKind::EnrollmentAdded, n, Some(100 + n), None),
            ]
        })
        .collect();
    let p = plan(&current, written.clone(), &file(), &RosterRules::default());
    let review = p.review.expect("held for review");
    assert_eq!(review.would_archive, 20);
    assert_eq!(review.would_end, 20);
    assert!(
        review.reason.contains("would archive 20 of 20 classes"),
        "{}",
        review.reason
    );
    assert!(
        plan(&current, written, &file(), &approved())
            .review
            .is_none()
    );
}
