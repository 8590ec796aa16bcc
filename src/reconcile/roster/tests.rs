use super::*;
use crate::domain::roster::RosterFail;
use crate::domain::{CurrentUser, CurrentUsers, Grade, PortalRole, Status};

struct Ids(u128);
impl Secrets for Ids {
    fn temp_password(&mut self) -> String {
        "x".into()
    }
    fn new_guid(&mut self) -> Uuid {
        self.0 += 1;
        Uuid::from_u128(0xF000 + self.0)
    }
    fn password_fingerprint(&self, _: Uuid, _: &str) -> [u8; 32] {
        [0; 32]
    }
}

const SCHOOL_A: Uuid = Uuid::from_u128(0xA);
const SCHOOL_B: Uuid = Uuid::from_u128(0xB);

fn file() -> Source {
    Source::File("rosters.csv".into())
}

fn user(n: u128, role: Role, schools: &[&str], source: Source) -> CurrentUser {
    CurrentUser {
        user_guid: Uuid::from_u128(n),
        custom_id: Some(format!("c{n}").into()),
        email: Some(format!("u{n}@d.org").into()),
        username: format!("u{n}").into(),
        first_name: "F".into(),
        middle_name: Default::default(),
        last_name: "L".into(),
        role,
        schools: schools.iter().map(|s| (*s).into()).collect(),
        grade: Grade::UNSPECIFIED,
        position: Default::default(),
        status: Status::Active,
        archived: false,
        source,
        prevent_archiving: false,
        source_key: Some(format!("p{n}").into()),
        portal_role: PortalRole::User,
        kept: Default::default(),
        feed_password_mac: None,
    }
}

fn users() -> Vec<CurrentUser> {
    vec![
        user(1, Role::Teacher, &["A"], file()),
        user(2, Role::Student, &["A"], file()),
        user(3, Role::Student, &["B"], file()),
        user(4, Role::Staff, &[], file()),
    ]
}

/// A user file's row for a student named F L at `school`, with no identifiers.
fn student_row(line: u64, school: &str) -> crate::domain::IncomingUser {
    crate::domain::IncomingUser {
        line,
        user_guid: None,
        custom_id: None,
        email: None,
        username: None,
        first_name: "F".into(),
        middle_name: String::new(),
        last_name: "L".into(),
        role: Role::Student,
        schools: vec![school.into()],
        grade: Grade::UNSPECIFIED,
        position: String::new(),
        status: Status::Active,
        password: None,
        source_key: None,
        present: crate::domain::FieldSet::all(),
        to_be_deleted: false,
    }
}

fn at(line: u64) -> At {
    At {
        file: "rosters.csv".into(),
        line,
    }
}

fn class(ext: &str, line: u64) -> IncomingClass {
    IncomingClass {
        at: at(line),
        external_id: ext.into(),
        title: format!("Class {ext}"),
        school_external_id: "A".into(),
        course_code: String::new(),
        subject: String::new(),
        period: String::new(),
        grades: Vec::new(),
        term_external_id: None,
        to_be_deleted: false,
    }
}

fn enr(ext: &str, user: &str, role: EnrollmentRole, line: u64) -> IncomingEnrollment {
    IncomingEnrollment {
        at: at(line),
        class_external_id: ext.into(),
        user: UserRef::Key(user.into()),
        role,
        primary: false,
        begin: None,
        end: None,
        to_be_deleted: false,
    }
}

fn current_class(n: u128, ext: &str, source: Source) -> CurrentClass {
    CurrentClass {
        id: Uuid::from_u128(0xC00 + n),
        external_id: ext.into(),
        school_id: SCHOOL_A,
        title: format!("Class {ext}"),
        course_code: String::new(),
        subject: String::new(),
        period: String::new(),
        grades: Vec::new(),
        term_id: None,
        source,
        archived: false,
    }
}

fn current() -> Current {
    Current {
        schools: [("A".to_string(), SCHOOL_A), ("B".to_string(), SCHOOL_B)].into(),
        ..Current::default()
    }
}

fn feed(classes: Vec<IncomingClass>, enrollments: Vec<IncomingEnrollment>) -> RosterFeed {
    RosterFeed {
        terms: Vec::new(),
        classes: classes.into_iter().map(Ok).collect(),
        enrollments: enrollments.into_iter().map(Ok).collect(),
        classes_complete: true,
        enrollments_complete: true,
        ..RosterFeed::default()
    }
}

/// Change a feed's enrollment records as a list of values.
fn edit_enrollments(
    f: &mut RosterFeed,
    edit: impl FnOnce(&mut Vec<crate::domain::roster::EnrollmentRecord>),
) {
    let mut all: Vec<_> = std::mem::take(&mut f.enrollments).into_iter().collect();
    edit(&mut all);
    f.enrollments = all.into_iter().collect();
}

fn run(cur: &Current, f: RosterFeed) -> RosterPlan {
    run_with(cur, f, &RosterRules::default())
}

fn run_with(cur: &Current, f: RosterFeed, rules: &RosterRules) -> RosterPlan {
    let packed = CurrentUsers::from(users());
    plan(cur, packed, None, f, &file(), rules, &mut Ids(0))
}

fn errors(p: &RosterPlan) -> Vec<String> {
    p.results()
        .filter_map(|r| r.error().map(str::to_string))
        .collect()
}

use EnrollmentRole::{Student as S, Teacher as T};

#[test]
fn a_first_feed_creates_classes_and_enrollments() {
    let p = run(
        &current(),
        feed(
            vec![class("M1", 2)],
            vec![enr("M1", "c1", T, 2), enr("M1", "U2@D.ORG", S, 3)],
        ),
    );
    assert_eq!(p.counts.classes_created, 1);
    assert_eq!(p.counts.enrollments_added, 2);
    assert_eq!(p.counts.roster_errors, 0, "{:?}", errors(&p));
    assert_eq!(p.classes[0].change, ClassChange::Create);
    assert_eq!(p.classes[0].write.source, file());
    let id = p.classes[0].write.id;
    assert!((0..p.enrollments.len()).all(|i| p.write_now(i).class_id == id));
    // The email resolves case-insensitively; the user guid resolves too.
    assert!((0..p.enrollments.len()).any(|i| p.write_now(i).user_id == Uuid::from_u128(2)));
    assert!(p.review.is_none());
}

#[test]
fn the_same_feed_again_changes_nothing() {
    let mut cur = current();
    cur.classes.push(current_class(1, "M1", file()));
    let cid = cur.classes[0].id;
    cur.enrollments.push(CurrentEnrollment {
        class_id: cid,
        user_id: Uuid::from_u128(1),
        role: T,
        primary: false,
        begin: None,
        end: None,
    });
    let guid = Uuid::from_u128(1).to_string();
    let p = run(
        &cur,
        feed(vec![class("M1", 2)], vec![enr("M1", &guid, T, 2)]),
    );
    assert!(p.classes.is_empty());
    assert!(p.enrollments.is_empty());
    assert!(p.ended.is_empty());
    assert!(p.archive.is_empty());
    assert_eq!(p.counts.classes_unchanged, 1);
    assert_eq!(p.counts.enrollments_unchanged, 1);
}

#[test]
fn changed_fields_and_roles_are_listed() {
    let mut cur = current();
    cur.classes.push(current_class(1, "M1", file()));
    let cid = cur.classes[0].id;
    cur.enrollments.push(CurrentEnrollment {
        class_id: cid,
        user_id: Uuid::from_u128(1),
        role: T,
        primary: false,
        begin: None,
        end: None,
    });
    let mut c = class("M1", 2);
    c.title = "Algebra".into();
    c.period = "3".into();
    let mut e = enr("M1", "c1", T, 2);
    e.primary = true;
    let p = run(&cur, feed(vec![c], vec![e]));
    assert_eq!(p.counts.classes_updated, 1);
    assert_eq!(p.classes[0].changed, vec!["title", "period"]);
    assert_eq!(p.counts.enrollments_changed, 1);
    assert!(p.write_now(0).primary);
    assert!(!p.write_before(0).unwrap().primary);
}

#[test]
fn missing_classes_are_archived_and_missing_enrollments_end() {
    let mut cur = current();
    cur.classes.push(current_class(1, "M1", file()));
    cur.classes.push(current_class(2, "M2", file()));
    cur.classes
        .push(current_class(3, "OTHER", Source::File("other.csv".into())));
    let (m1, m2) = (cur.classes[0].id, cur.classes[1].id);
    for (c, u, r) in [
        (m1, 1, T),
        (m1, 2, S),
        (m2, 2, S),
        (cur.classes[2].id, 2, S),
    ] {
        cur.enrollments.push(CurrentEnrollment {
            class_id: c,
            user_id: Uuid::from_u128(u),
            role: r,
            primary: false,
            begin: None,
            end: None,
        });
    }
    let rules = RosterRules {
        archive_min: 100,
        ..RosterRules::default()
    };
    let p = run_with(
        &cur,
        feed(vec![class("M1", 2)], vec![enr("M1", "c1", T, 2)]),
        &rules,
    );
    // M2 archived (its enrollment stays with it); the student of M1 ends; OTHER untouched.
    assert_eq!(p.archive.iter().map(|c| c.id).collect::<Vec<_>>(), vec![m2]);
    assert_eq!(p.ended.len(), 1);
    assert_eq!(
        (p.ended[0].class_id, p.ended[0].user_id),
        (m1, Uuid::from_u128(2))
    );
    assert_eq!(p.counts.enrollments_ended, 1);

    // A delta (not complete) archives and ends nothing.
    let mut f = feed(vec![class("M1", 2)], vec![enr("M1", "c1", T, 2)]);
    f.classes_complete = false;
    f.enrollments_complete = false;
    let p = run_with(&cur, f, &rules);
    assert!(p.archive.is_empty() && p.ended.is_empty());
}

#[test]
fn an_archived_class_keeps_its_enrollments_run_after_run() {
    // M2 was archived by an earlier run of this file, its enrollment kept with it (rule 4).
    let mut cur = current();
    cur.classes.push(current_class(1, "M1", file()));
    let mut archived = current_class(2, "M2", file());
    archived.archived = true;
    cur.classes.push(archived);
    let (m1, m2) = (cur.classes[0].id, cur.classes[1].id);
    for (c, u, r) in [(m1, 1, T), (m2, 2, S)] {
        cur.enrollments.push(CurrentEnrollment {
            class_id: c,
            user_id: Uuid::from_u128(u),
            role: r,
            primary: false,
            begin: None,
            end: None,
        });
    }
    // The same file again: it neither archives M2 again nor ends its enrollment.
    let p = run(
        &cur,
        feed(vec![class("M1", 2)], vec![enr("M1", "c1", T, 2)]),
    );
    assert!(p.archive.is_empty(), "{:?}", p.archive);
    assert!(p.ended.is_empty(), "{:?}", p.ended);
    assert_eq!(p.counts.enrollments_ended, 0);
    assert_eq!(p.counts.classes_unchanged, 1);

    // Listed again, M2 is restored and its roster is the feed's again: the student it no
    // longer lists ends.
    let p = run(
        &cur,
        feed(
            vec![class("M1", 2), class("M2", 3)],
            vec![enr("M1", "c1", T, 2)],
        ),
    );
    assert_eq!(p.counts.classes_restored, 1);
    assert_eq!(
        p.ended
            .iter()
            .map(|e| (e.class_id, e.user_id))
            .collect::<Vec<_>>(),
        vec![(m2, Uuid::from_u128(2))]
    );
}

#[test]
fn an_archived_class_listed_again_is_restored() {
    let mut cur = current();
    let mut c = current_class(1, "M1", file());
    c.archived = true;
    cur.classes.push(c);
    let p = run(&cur, feed(vec![class("M1", 2)], vec![]));
    assert_eq!(p.counts.classes_restored, 1);
    assert_eq!(p.classes[0].change, ClassChange::Restore);
    assert_eq!(p.classes[0].write.id, Uuid::from_u128(0xC01));
}

#[test]
fn row_errors_name_file_line_and_column() {
    let mut bad_school = class("X1", 5);
    bad_school.school_external_id = "ZZ".into();
    let mut bad_term = class("X2", 6);
    bad_term.term_external_id = Some("Fall 2030".into());
    let p = run(
        &current(),
        feed(
            vec![class("M1", 2), bad_school, bad_term],
            vec![
                enr("M1", "nobody@d.org", S, 2),
                enr("NOPE", "c2", S, 3),
                enr("M1", "c2", T, 4),
                enr("M1", "c1", S, 7),
                enr("M1", "c3", S, 8),
                enr("M1", "c2", S, 9),
                enr("M1", "c2", S, 10),
                enr("M1", "c4", S, 11),
            ],
        ),
    );
    let errs = errors(&p);
    let has = |needle: &str| {
        assert!(
            errs.iter().any(|e| e.contains(needle)),
            "{needle} not in {errs:#?}"
        );
    };
    has("rosters.csv line 5, column school_external_id: unknown school \"ZZ\"");
    has("rosters.csv line 6, column term: unknown term \"Fall 2030\"");
    has("rosters.csv line 2, column user: unknown user \"nobody@d.org\"");
    has("rosters.csv line 3, column class_external_id: unknown class \"NOPE\"");
    has("rosters.csv line 4, column role: student enrolled as teacher");
    has("rosters.csv line 7, column role: teacher enrolled as student");
    has("rosters.csv line 8, column user: user c3 is not at the class's school");
    has(
        "rosters.csv line 10, column user: duplicate enrollment: the same class and user as line 9",
    );
    // A district-level user (no school) may be enrolled anywhere — but staff not as students.
    has("rosters.csv line 11, column role: teacher enrolled as student");
    assert_eq!(p.counts.enrollments_added, 1);
    assert_eq!(p.counts.roster_errors, errs.len());
}

#[test]
fn archived_users_are_errors_and_district_users_enroll_anywhere() {
    let mut us = users();
    us[1].archived = true;
    let (packed, written) = (CurrentUsers::from(us), None);
    let mut c = class("M1", 2);
    c.school_external_id = "B".into();
    let p = plan(
        &current(),
        packed.clone(),
        written,
        feed(vec![c], vec![enr("M1", "c2", S, 2), enr("M1", "c4", T, 3)]),
        &file(),
        &RosterRules::default(),
        &mut Ids(0),
    );
    let errs = errors(&p);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("line 2, column user: user c2 is archived"),
        "{errs:?}"
    );
    assert_eq!(p.counts.enrollments_added, 1);
}

#[test]
fn users_the_same_run_creates_or_archives_resolve() {
    use crate::reconcile::plan::{Plan as UserPlan, Rules};
    let incoming = crate::domain::IncomingUser {
        custom_id: Some("new-kid".into()),
        email: Some("kid@d.org".into()),
        first_name: "New".into(),
        last_name: "Kid".into(),
        ..student_row(2, "A")
    };
    let rules = Rules {
        scope: crate::domain::Scope::Patch,
        ..Rules::default()
    };
    let up: UserPlan = crate::reconcile::plan::plan(
        &users().into(),
        vec![Ok(incoming)],
        &file(),
        &rules,
        &mut Ids(100),
    );
    let (packed, written) = (CurrentUsers::from(users()), Some(&up));
    let p = plan(
        &current(),
        packed.clone(),
        written,
        feed(
            vec![class("M1", 2)],
            vec![enr("M1", "new-kid", S, 2), enr("M1", "kid@d.org", S, 3)],
        ),
        &file(),
        &RosterRules::default(),
        &mut Ids(0),
    );
    assert_eq!(p.counts.enrollments_added, 1, "{:?}", errors(&p));
    assert!(errors(&p)[0].contains("duplicate enrollment"));
}

#[test]
fn users_the_same_run_moves_or_archives_are_read_as_it_leaves_them() {
    use crate::reconcile::plan::{Plan as UserPlan, Rules};
    // The file moves user 3 from school B to A with a new email; with scope source the
    // users it does not list (1, 2 and 4) are archived.
    let moved = crate::domain::IncomingUser {
        custom_id: Some("c3".into()),
        email: Some("moved@d.org".into()),
        username: Some("u3".into()),
        ..student_row(2, "A")
    };
    let rules = Rules {
        scope: crate::domain::Scope::Source,
        approved: true,
        ..Rules::default()
    };
    let packed = CurrentUsers::from(users());
    let up: UserPlan =
        crate::reconcile::plan::plan(&packed, vec![Ok(moved)], &file(), &rules, &mut Ids(100));
    assert_eq!(up.archive.len(), 3, "{:?}", up.archive);
    let written = Some(&up);
    let p = plan(
        &current(),
        packed.clone(),
        written,
        feed(
            vec![class("M1", 2)],
            vec![
                // Found by the email they had: at school A now, so they may join M1.
                enr("M1", "u3@d.org", S, 2),
                // …and by the new one: the same user.
                enr("M1", "moved@d.org", S, 3),
                // Archived by this run.
                enr("M1", "c2", S, 4),
            ],
        ),
        &file(),
        &RosterRules::default(),
        &mut Ids(0),
    );
    let errs = errors(&p);
    assert_eq!(p.counts.enrollments_added, 1, "{errs:?}");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].contains("duplicate enrollment"), "{errs:?}");
    assert!(errs[1].contains("user c2 is archived"), "{errs:?}");
    let added = &p.write_now(0);
    assert_eq!(added.user_id, Uuid::from_u128(3));
}

#[test]
fn provider_refs_resolve_only_users_of_the_source() {
    let sync = Source::Sync(Uuid::from_u128(0x5));
    let mut us = users();
    us[0].source = sync.clone();
    let (packed, written) = (CurrentUsers::from(us), None);
    let mut e1 = enr("M1", "", T, 2);
    e1.user = UserRef::Provider("p1".into());
    let mut e2 = enr("M1", "", S, 3);
    e2.user = UserRef::Provider("p2".into());
    let p = plan(
        &current(),
        packed.clone(),
        written,
        feed(vec![class("M1", 2)], vec![e1, e2]),
        &sync,
        &RosterRules::default(),
        &mut Ids(0),
    );
    assert_eq!(p.counts.enrollments_added, 1);
    assert!(errors(&p)[0].contains("unknown user \"p2\""));
}

/// A provider's feed is resolved without the resolver's copy of the written users
/// (`FeedUsers::by_provider`): it finds every user the resolver finds, as the run leaves
/// them — a written user before the district's, a user the run moves at their new school, a
/// user it archives archived, an id with spaces around it, and nobody for an id of another
/// source or of no one.
#[test]
fn a_providers_feed_finds_the_users_the_resolver_finds() {
    /// A user as found: id, role, archived, may join a class of school A, of school B.
    type Seen = (Uuid, Role, bool, bool, bool);
    use crate::reconcile::plan::Rules;
    let sync = Source::Sync(Uuid::from_u128(0x5));
    let mut us = users();
    for u in &mut us[..3] {
        u.source = sync.clone();
    }
    let packed = CurrentUsers::from(us);
    let row = |line: u64, custom: &str, key: &str, school: &str| crate::domain::IncomingUser {
        custom_id: Some(custom.into()),
        source_key: Some(key.into()),
        ..student_row(line, school)
    };
    // User 2 (p2) moves to school B and is q2 from now on; p9 is new; p1 and p3 are not
    // listed: archived (scope source).
    let rules = Rules {
        scope: crate::domain::Scope::Source,
        approved: true,
        ..Rules::default()
    };
    let up = crate::reconcile::plan::plan(
        &packed,
        vec![Ok(row(2, "c2", "q2", "B")), Ok(row(3, "c9", "p9", "A"))],
        &sync,
        &rules,
        &mut Ids(100),
    );
    assert_eq!(up.archive.len(), 2, "{:?}", up.archive);
    let provider = |k: &str| {
        let mut e = enr("M1", "", S, 2);
        e.user = UserRef::Provider(k.into());
        Ok(e)
    };
    let list: crate::domain::roster::EnrollmentList = [
        "p1", "p2", " p2 ", "p3", "p4", "p9", "nobody", "p9", "", "q2",
    ]
    .into_iter()
    .map(provider)
    .collect();
    assert!(list.by_provider_only());
    for plan in [None, Some(&up)] {
        let (fast, fast_ids) = users::FeedUsers::by_provider(&list, &packed, plan, &sync);
        let (slow, slow_ids) = users::FeedUsers::by_resolver(&list, &packed, plan, &sync);
        let seen = |f: &users::FeedUsers, ids: &[Uuid]| -> Vec<Option<Seen>> {
            list.clone()
                .into_slotted()
                .map(|(slot, _)| {
                    f.get(slot, ids)
                        .map(|u| (u.id, u.role, u.archived, u.may_join("A"), u.may_join("B")))
                })
                .collect()
        };
        let found = seen(&fast, &fast_ids);
        assert_eq!(found, seen(&slow, &slow_ids), "plan: {}", plan.is_some());
        let id = |n: u128| Some(Uuid::from_u128(n));
        let ids: Vec<Option<Uuid>> = found.iter().map(|u| u.map(|u| u.0)).collect();
        match plan {
            None => assert_eq!(
                ids,
                [
                    id(1),
                    id(2),
                    id(2),
                    id(3),
                    None,
                    None,
                    None,
                    None,
                    None,
                    None
                ]
            ),
            Some(_) => {
                let new = ids[5];
                assert!(new.is_some() && new != id(9), "p9 is created: {ids:?}");
                assert_eq!(
                    ids,
                    [
                        id(1),
                        id(2),
                        id(2),
                        id(3),
                        None,
                        new,
                        None,
                        new,
                        None,
                        id(2)
                    ]
                );
                assert!(
                    found[0].unwrap().2 && found[3].unwrap().2,
                    "p1, p3 archived"
                );
                // Found by the key they had, read as the run writes them.
                let p2 = found[1].unwrap();
                assert!(!p2.2 && !p2.3 && p2.4, "user 2 at school B now: {p2:?}");
                assert_eq!(found[9], found[1], "and by their new key");
            }
        }
    }
}

#[test]
fn ownership_follows_the_users_rules() {
    let sync_id = Uuid::from_u128(0x5);
    let mut cur = current();
    cur.classes
        .push(current_class(1, "F1", Source::File("old.csv".into())));
    cur.classes
        .push(current_class(2, "S1", Source::Sync(sync_id)));
    cur.classes
        .push(current_class(3, "S2", Source::Sync(sync_id)));
    cur.classes.push(current_class(4, "MAN", Source::Manual));
    let mut s2 = class("S2", 4);
    s2.title = "Renamed".into();
    let rules = RosterRules {
        syncs: [(sync_id, "Clever".to_string())].into(),
        ..RosterRules::default()
    };
    let p = run_with(
        &cur,
        feed(
            vec![class("F1", 2), class("S1", 3), s2, class("MAN", 5)],
            vec![enr("S1", "c2", S, 3)],
        ),
        &rules,
    );
    // F1 and MAN are taken over (written, counted unchanged, `source` among the changes).
    let moved: Vec<&str> = p
        .classes
        .iter()
        .map(|c| c.write.external_id.as_str())
        .collect();
    assert_eq!(moved, vec!["F1", "MAN"]);
    assert!(p.classes.iter().all(|c| c.changed == ["source"]));
    assert_eq!(p.counts.classes_unchanged, 2);
    // S1 changes nothing: skipped; its enrollments are the sync's.
    let s1 = p
        .results()
        .find(|r| r.key == "S1" && r.kind == RecordKind::Class)
        .unwrap();
    assert_eq!(s1.outcome, RecordOutcome::Skipped);
    let errs = errors(&p);
    assert!(
        errs.iter().any(|e| e
            .contains("line 4, column class_external_id: provisioned by roster sync \"Clever\"")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("line 3, column class_external_id: class S1 cannot be changed")),
        "{errs:?}"
    );
    assert!(p.archive.is_empty());
}

#[test]
fn failed_rows_protect_their_class_and_enrollments() {
    let mut cur = current();
    cur.classes.push(current_class(1, "M1", file()));
    cur.classes.push(current_class(2, "M2", file()));
    let (m1, m2) = (cur.classes[0].id, cur.classes[1].id);
    for (c, u) in [(m1, 2), (m2, 2)] {
        cur.enrollments.push(CurrentEnrollment {
            class_id: c,
            user_id: Uuid::from_u128(u),
            role: S,
            primary: false,
            begin: None,
            end: None,
        });
    }
    let mut f = feed(vec![], vec![]);
    f.classes.push(Err(RosterFail {
        at: at(2),
        column: Some("class_title".into()),
        message: "too long".into(),
        class_external_id: Some("M1".into()),
    }));
    f.enrollments.push(Err(Box::new(RosterFail {
        at: at(3),
        column: Some("role".into()),
        message: "unknown role \"tutor\"".into(),
        class_external_id: Some("M2".into()),
    })));
    let p = run(&cur, f);
    assert!(p.archive.is_empty(), "{:?}", p.archive);
    assert!(p.ended.is_empty(), "{:?}", p.ended);
    assert_eq!(p.counts.roster_errors, 2);
    assert!(errors(&p)[0].starts_with("rosters.csv line 2, column class_title: too long"));
}

#[test]
fn to_be_deleted_archives_and_ends() {
    let mut cur = current();
    cur.classes.push(current_class(1, "M1", file()));
    cur.classes.push(current_class(2, "M2", file()));
    let (m1, _) = (cur.classes[0].id, cur.classes[1].id);
    cur.enrollments.push(CurrentEnrollment {
        class_id: m1,
        user_id: Uuid::from_u128(2),
        role: S,
        primary: false,
        begin: None,
        end: None,
    });
    let mut gone = class("M2", 3);
    gone.to_be_deleted = true;
    let mut ended = enr("M1", "c2", S, 4);
    ended.to_be_deleted = true;
    let mut f = feed(vec![class("M1", 2), gone], vec![ended]);
    f.classes_complete = false;
    f.enrollments_complete = false;
    let p = run(&cur, f);
    assert_eq!(p.counts.classes_archived, 1);
    assert_eq!(p.archive[0].external_id, "M2");
    assert_eq!(p.counts.enrollments_ended, 1);
}

#[test]
fn the_guard_stops_a_truncated_feed_unless_approved() {
    let mut cur = current();
    for n in 0..20u128 {
        cur.classes.push(current_class(n, &format!("K{n}"), file()));
        cur.enrollments.push(CurrentEnrollment {
            class_id: Uuid::from_u128(0xC00 + n),
            user_id: Uuid::from_u128(2),
            role: S,
            primary: false,
            begin: None,
            end: None,
        });
    }
    let rules = RosterRules {
        archive_min: 2,
        ..RosterRules::default()
    };
    let f = || {
        feed(
            vec![class("K0", 2)],
            (0..10u128)
                .map(|n| enr(&format!("K{n}"), "c2", S, 2 + n as u64))
                .collect(),
        )
    };
    let p = run_with(&cur, f(), &rules);
    let review = p.review.expect("guarded");
    // K1..K9 are listed by their enrollments; K10..K19 are archived; their enrollments stay.
    assert_eq!(review.would_archive, 10);
    assert_eq!(
        review.reason,
        "would archive 10 of 20 classes of rosters.csv (50%)"
    );
    let approved = RosterRules {
        approved: true,
        ..rules.clone()
    };
    assert!(run_with(&cur, f(), &approved).review.is_none());

    // Ending enrollments trips it too.
    let p = run_with(
        &cur,
        feed(
            (0..20u128).map(|n| class(&format!("K{n}"), 2)).collect(),
            vec![],
        ),
        &rules,
    );
    let review = p.review.expect("guarded");
    assert_eq!(review.would_end, 20);
    assert!(
        review
            .reason
            .starts_with("would end 20 of 20 enrollments of rosters.csv")
    );
}

#[test]
fn terms_are_created_updated_and_referenced() {
    let mut cur = current();
    cur.terms.push(CurrentTerm {
        id: Uuid::from_u128(0x7),
        external_id: "Spring".into(),
        title: "Spring".into(),
        start: None,
        end: None,
    });
    let mut f = feed(vec![], vec![]);
    let d = time::macros::date!(2026 - 09 - 01);
    f.terms.push(Ok(IncomingTerm {
        at: at(2),
        external_id: "Fall".into(),
        title: "Fall".into(),
        start: Some(d),
        end: None,
    }));
    f.terms.push(Ok(IncomingTerm {
        at: at(3),
        external_id: "Spring".into(),
        title: "Spring".into(),
        start: Some(d),
        end: None,
    }));
    let mut a = class("M1", 2);
    a.term_external_id = Some("Fall".into());
    let mut b = class("M2", 3);
    b.term_external_id = Some("Spring".into());
    f.classes = vec![Ok(a), Ok(b)];
    let p = run(&cur, f);
    assert_eq!(p.terms.len(), 2);
    assert!(p.terms[0].created && !p.terms[1].created);
    assert_eq!(p.classes[0].write.term_id, Some(p.terms[0].id));
    assert_eq!(p.classes[1].write.term_id, Some(Uuid::from_u128(0x7)));
}

#[test]
fn a_class_repeated_on_every_row_is_one_class() {
    let mut other = class("M1", 4);
    other.title = "Different".into();
    let p = run(
        &current(),
        feed(vec![class("M1", 2), class("M1", 3), other], vec![]),
    );
    assert_eq!(p.counts.classes_created, 1);
    assert_eq!(p.classes.len(), 1);
    let errs = errors(&p);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .contains("line 4, column class_external_id: class M1 is given differently on line 2")
    );
}

// ---- Rule 3, editing in place (the downloads' `class_guid`) ----

fn sync() -> Source {
    Source::Sync(Uuid::from_u128(0x5))
}

/// M1 (of `owner`) with users 1 (primary teacher, dated) and 2 (student) enrolled.
fn one_class_of(owner: Source) -> Current {
    let mut cur = current();
    cur.classes.push(current_class(1, "M1", owner));
    let cid = cur.classes[0].id;
    for (u, role) in [(1, T), (2, S)] {
        cur.enrollments.push(CurrentEnrollment {
            class_id: cid,
            user_id: Uuid::from_u128(u),
            role,
            primary: role == T,
            begin: Some(time::macros::date!(2025 - 08 - 20)),
            end: None,
        });
    }
    cur
}

/// The download of [`one_class_of`] as the roster CSV reader hands it over: M1 named by GUID,
/// no enrollment dates.
fn download_of(cur: &Current, district_scope: bool) -> RosterFeed {
    let mut teacher = enr("M1", "c1", T, 2);
    teacher.primary = true;
    RosterFeed {
        class_guids: [("M1".to_string(), cur.classes[0].id)].into(),
        district_scope,
        keeps_enrollment_dates: true,
        ..feed(vec![class("M1", 2)], vec![teacher, enr("M1", "c2", S, 3)])
    }
}

fn outcomes(p: &RosterPlan) -> Vec<(RecordKind, RecordOutcome)> {
    p.results().map(|r| (r.kind, r.outcome)).collect()
}

#[test]
fn a_class_named_by_guid_is_edited_in_place_never_moved() {
    for owner in [Source::File("roster.csv".into()), Source::Manual] {
        let cur = one_class_of(owner.clone());
        let p = run(&cur, download_of(&cur, false));
        assert_eq!(errors(&p), Vec::<String>::new());
        assert!(p.classes.is_empty() && p.enrollments.is_empty() && p.ended.is_empty());
        assert_eq!(p.counts.classes_unchanged, 1);
        assert_eq!(p.counts.enrollments_unchanged, 2);
        // Edited: the title changes, the owner stays.
        let mut f = download_of(&cur, false);
        f.classes[0].as_mut().unwrap().title = "Algebra".into();
        let p = run(&cur, f);
        assert_eq!(p.classes.len(), 1);
        assert_eq!(p.classes[0].changed, vec!["title"]);
        assert_eq!(p.classes[0].write.source, owner);
        assert_eq!(p.counts.classes_updated, 1);
        // Without the GUID the same file moves it (SPEC §4's file rule, unchanged).
        let mut f = download_of(&cur, false);
        f.class_guids.clear();
        let p = run(&cur, f);
        assert_eq!(p.classes[0].changed, vec!["source"]);
        assert_eq!(p.classes[0].write.source, file());
    }
}

#[test]
fn a_removed_enrollment_row_ends_only_with_district_scope() {
    let cur = one_class_of(Source::Manual);
    for district in [false, true] {
        let mut f = download_of(&cur, district);
        edit_enrollments(&mut f, |all| drop(all.pop()));
        let p = run(&cur, f);
        assert_eq!(errors(&p), Vec::<String>::new());
        if district {
            assert_eq!(p.ended.len(), 1);
            assert_eq!(p.ended[0].user_id, Uuid::from_u128(2));
        } else {
            assert!(p.ended.is_empty(), "{:?}", p.ended);
        }
    }
    // A class of this file's own source ends its missing enrollments whatever the scope.
    let cur = one_class_of(file());
    let mut f = download_of(&cur, false);
    edit_enrollments(&mut f, |all| drop(all.pop()));
    assert_eq!(run(&cur, f).ended.len(), 1);
}

#[test]
fn a_sync_class_named_by_guid_and_unchanged_is_skipped_with_its_enrollments() {
    let cur = one_class_of(sync());
    let p = run(&cur, download_of(&cur, true));
    assert_eq!(errors(&p), Vec::<String>::new());
    assert_eq!(
        outcomes(&p),
        [
            (RecordKind::Class, RecordOutcome::Skipped),
            (RecordKind::Enrollment, RecordOutcome::Skipped),
            (RecordKind::Enrollment, RecordOutcome::Skipped),
        ]
    );
    assert!(p.classes.is_empty() && p.enrollments.is_empty() && p.ended.is_empty());
    // A change to a sync's class or enrollment is still an error naming the sync.
    let mut f = download_of(&cur, false);
    edit_enrollments(&mut f, |all| {
        if let Ok(e) = &mut all[1] {
            e.role = T;
        }
    });
    let errs = errors(&run(&cur, f));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("provisioned by roster sync"), "{errs:?}");
}

#[test]
fn a_guid_of_no_class_or_of_another_class_is_an_error_on_class_guid() {
    let mut cur = one_class_of(Source::Manual);
    cur.classes.push(current_class(2, "M2", Source::Manual));
    let other = cur.classes[1].id;
    for (guid, says) in [
        (
            Uuid::from_u128(0xBAD),
            "names no class of this district".to_string(),
        ),
        (other, format!("class_guid {other} is class M2, not M1")),
    ] {
        let mut f = download_of(&cur, true);
        f.class_guids.insert("M1".into(), guid);
        let p = run(&cur, f);
        let errs = errors(&p);
        assert!(
            errs[0].starts_with("rosters.csv line 2, column class_guid: ")
                && errs[0].contains(&says),
            "{errs:?}"
        );
        // Its enrollments are refused with it and nothing of M1 ends.
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(p.classes.is_empty() && p.ended.is_empty());
    }
}

#[test]
fn a_feed_without_enrollment_dates_keeps_them_and_an_archived_users_enrollment_listed_as_is() {
    let cur = one_class_of(file());
    let mut us = users();
    us[1].archived = true;
    let (packed, written) = (CurrentUsers::from(us), None);
    let mut f = download_of(&cur, false);
    edit_enrollments(&mut f, |all| all[0].as_mut().unwrap().primary = false);
    let p = plan(
        &cur,
        packed.clone(),
        written,
        f,
        &file(),
        &RosterRules::default(),
        &mut Ids(0),
    );
    assert_eq!(errors(&p), Vec::<String>::new());
    // The teacher's change keeps the begin date the file does not carry.
    assert_eq!(p.enrollments.len(), 1);
    assert_eq!(
        p.write_now(0).begin,
        Some(time::macros::date!(2025 - 08 - 20))
    );
    assert!(!p.write_now(0).primary);
    // The archived student's unchanged enrollment is unchanged, not an error.
    assert_eq!(p.counts.enrollments_unchanged, 1);
    // Changing it is still an error.
    let mut f = download_of(&cur, false);
    edit_enrollments(&mut f, |all| all[1].as_mut().unwrap().role = T);
    let errs = errors(&plan(
        &cur,
        packed.clone(),
        None,
        f,
        &file(),
        &RosterRules::default(),
        &mut Ids(0),
    ));
    assert!(errs[0].contains("user c2 is archived"), "{errs:?}");
}

#[test]
fn a_pair_listed_twice_is_a_duplicate_whether_the_first_adds_it_or_ends_what_is_not_there() {
    let mut ended = enr("M1", "c2", S, 3);
    ended.to_be_deleted = true;
    let p = run(
        &current(),
        feed(
            vec![class("M1", 2)],
            vec![
                // Ends an enrollment the district does not have (nothing to end)…
                ended,
                // …so the same pair again is a duplicate of that line.
                enr("M1", "c2", S, 4),
                // Added, then listed again.
                enr("M1", "c1", T, 5),
                enr("M1", "c1", T, 6),
            ],
        ),
    );
    let errs = errors(&p);
    assert_eq!(
        errs,
        [
            "rosters.csv line 4, column user: duplicate enrollment: the same class and user as line 3",
            "rosters.csv line 6, column user: duplicate enrollment: the same class and user as line 5",
        ],
        "{errs:#?}"
    );
    assert_eq!(p.counts.enrollments_added, 1);
    assert_eq!(p.write_now(0).user_id, Uuid::from_u128(1));
}

/// An enrollment written keeps its result in the write; the results still read back in the
/// records' order, whole or from any point.
#[test]
fn results_of_writes_and_of_other_records_keep_the_records_order() {
    let p = run(
        &current(),
        feed(
            vec![class("M1", 2)],
            vec![
                enr("M1", "c1", T, 3),
                enr("M1", "c1", T, 4),
                enr("M1", "c2", S, 5),
                enr("M1", "nobody", S, 6),
            ],
        ),
    );
    let all: Vec<(u32, RecordOutcome)> = p.results().map(|r| (r.line, r.outcome)).collect();
    use RecordOutcome::{Added, Created, Error};
    assert_eq!(
        all,
        [(2, Created), (3, Added), (4, Error), (5, Added), (6, Error)]
    );
    assert_eq!(p.results_len(), 5);
    assert_eq!(p.enrollments.len(), 2);
    let every: Vec<RecordResult> = p.results().collect();
    for from in 0..=every.len() {
        let tail: Vec<RecordResult> = p.results_from(from).collect();
        assert_eq!(tail, every[from..], "from {from}");
        if from < every.len() {
            assert_eq!(p.result(from), every[from], "at {from}");
        }
    }
    let added = &every[3];
    assert_eq!(added.key.as_str(), "M1");
    assert_eq!(added.user_id.get(), Some(p.write_now(1).user_id));
    assert_eq!(p.file_of(added), p.file_of(&every[0]));
}

/// A sync stores the results of the classes it writes and of its errors, not one per
/// enrollment it writes (those are the run's changes already); a roster CSV, whose completed
/// file lists every row, stores every result. Read from any point, the stored results are
/// the same list.
#[test]
fn a_sync_stores_no_result_for_an_enrollment_it_writes() {
    let mut cur = current();
    cur.classes.push(current_class(1, "M1", file()));
    cur.classes.push(current_class(9, "OLD", file()));
    // Listed no more: ends.
    cur.enrollments.push(CurrentEnrollment {
        class_id: cur.classes[0].id,
        user_id: Uuid::from_u128(2),
        role: EnrollmentRole::Student,
        primary: false,
        begin: None,
        end: None,
    });
    let records = || {
        feed(
            vec![class("M1", 2), class("NEW", 3)],
            vec![enr("M1", "c1", T, 4), enr("M1", "nobody", S, 5)],
        )
    };
    let stored = |p: &RosterPlan| -> Vec<(RecordKind, u32, RecordOutcome)> {
        let all: Vec<_> = p
            .stored_from(0)
            .map(|r| (r.kind, r.line, r.outcome))
            .collect();
        assert_eq!(all.len(), p.stored_len());
        for from in 0..=all.len() {
            let tail: Vec<_> = p
                .stored_from(from)
                .map(|r| (r.kind, r.line, r.outcome))
                .collect();
            assert_eq!(tail, all[from..], "from {from}");
        }
        all
    };
    use RecordKind::{Class, Enrollment};
    use RecordOutcome::{Added, Created, Error};

    let sync = run(&cur, records());
    assert!(sync.writes_unlisted);
    assert_eq!(sync.counts.enrollments_added, 1);
    assert_eq!(sync.counts.enrollments_ended, 1);
    assert_eq!(sync.counts.classes_archived, 1);
    // The class created and the row in error; not the enrollment added (nor, as before,
    // the unchanged class: archived classes and ended enrollments are the run's changes).
    assert_eq!(stored(&sync), [(Class, 3, Created), (Enrollment, 5, Error)]);
    assert_eq!(sync.stored_len(), sync.results_len() - 1);

    let mut csv = records();
    csv.every_result = true;
    let csv = run(&cur, csv);
    assert!(!csv.writes_unlisted);
    let every: Vec<_> = csv.results().map(|r| (r.kind, r.line, r.outcome)).collect();
    assert_eq!(stored(&csv), every);
    assert_eq!(every.iter().filter(|r| r.2 == Added).count(), 1);
}

/// A first sync keeps a write, which is its result too, for each of millions of enrollments
/// added: it stays small (a write and a result apart took 56 + 64 bytes), and a result's
/// optional ids read back as given.
#[test]
fn per_enrollment_records_stay_small() {
    assert_eq!(std::mem::size_of::<RecordResult>(), 64);
    assert_eq!(std::mem::size_of::<EnrollmentWrite>(), 32);
    let id = Uuid::from_u128(7);
    assert_eq!(OptId::from(Some(id)).get(), Some(id));
    assert_eq!(OptId::from(None).get(), None);
}
