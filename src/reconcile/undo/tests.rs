//! One test per rule of the undo planner (see the list at the top of `reconcile::undo`).

use super::*;
use crate::domain::PortalRole;
use serde_json::json;

fn students() -> Source {
    Source::File("students.csv".into())
}

fn user(n: u128, username: &str) -> CurrentUser {
    CurrentUser {
        user_guid: Uuid::from_u128(n),
        custom_id: Some(format!("S{n}").into()),
        email: Some(format!("{username}@d.org").into()),
        username: username.into(),
        first_name: "Ann".into(),
        middle_name: Default::default(),
        last_name: "Lee".into(),
        role: Role::Student,
        schools: vec!["HS".into()],
        grade: Grade::parse("9").unwrap(),
        position: Default::default(),
        status: Status::Active,
        archived: false,
        source: students(),
        prevent_archiving: false,
        source_key: None,
        portal_role: PortalRole::User,
        kept: Default::default(),
        feed_password_mac: None,
    }
}

fn wrote(n: u128, action: &str, before: Option<Value>) -> Written {
    Written {
        user: Uuid::from_u128(n),
        action: action.into(),
        before,
        changed_since: false,
    }
}

fn undo(current: &[CurrentUser], written: Vec<Written>) -> Plan {
    plan(&current.into(), written, &students(), &Rules::default())
}

fn only(p: &Plan) -> &RowPlan {
    assert_eq!(p.rows.len(), 1, "{:?}", p.rows);
    &p.rows[0]
}

#[test]
fn users_the_run_created_are_archived_not_deleted() {
    let p = undo(&[user(1, "ann")], vec![wrote(1, "user.create", None)]);
    let r = only(&p);
    assert_eq!(r.outcome, Outcome::Archived);
    assert!(r.write.is_none(), "nothing but the archive is written");
    assert_eq!(p.archive, vec![Uuid::from_u128(1)]);
    assert_eq!(p.counts.archived, 1);
    assert_eq!(r.username.as_deref(), Some("ann"));
}

#[test]
fn updated_fields_get_their_earlier_values_back() {
    let mut now = user(1, "ann");
    now.first_name = "Annie".into();
    now.grade = Grade::parse("10").unwrap();
    now.schools = vec!["MS".into()];
    now.email = Some("annie@d.org".into());
    let before = json!({ "first_name": "Ann", "grade": "9", "school_external_id": ["HS"],
                         "email": "ann@d.org" });
    let p = undo(&[now], vec![wrote(1, "user.update", Some(before))]);
    let r = only(&p);
    assert_eq!(
        r.outcome,
        Outcome::Updated {
            changed: vec!["email", "first_name", "school_external_id", "grade"]
        }
    );
    let w = r.write.as_deref().unwrap();
    assert_eq!(w.first_name, "Ann");
    assert_eq!(w.grade.as_str(), "9");
    assert_eq!(w.schools, vec!["HS".to_string()]);
    assert_eq!(w.email.as_deref(), Some("ann@d.org"));
    assert_eq!(w.last_name, "Lee", "fields the run did not change stay");
    assert_eq!(p.counts.updated, 1);
    assert!(p.archive.is_empty());
}

#[test]
fn a_user_the_run_took_over_returns_to_their_former_owner() {
    let mut now = user(1, "ann");
    now.source = students();
    now.prevent_archiving = true;
    let before = json!({ "source": "manual", "source_key": null });
    let p = undo(&[now], vec![wrote(1, "user.update", Some(before))]);
    let r = only(&p);
    assert_eq!(
        r.outcome,
        Outcome::Updated {
            changed: vec!["source"]
        }
    );
    assert_eq!(r.write.as_deref().unwrap().source, Source::Manual);
    assert!(r.write.as_deref().unwrap().prevent_archiving, "kept");
    assert_eq!(r.previous_source(), Some(&students()), "counted as moved");
    assert_eq!(p.counts.moved, 1);
}

#[test]
fn archived_users_are_restored_and_restored_users_archived_again() {
    let mut gone = user(1, "ann");
    gone.archived = true;
    let back = user(2, "bo");
    let p = undo(
        &[gone, back],
        vec![
            wrote(1, "user.archive", Some(json!({ "archived": false }))),
            wrote(
                2,
                "user.restore",
                Some(json!({ "archived": true, "last_name": "Kim" })),
            ),
        ],
    );
    assert_eq!(p.rows[0].outcome, Outcome::Restored { changed: vec![] });
    assert!(p.rows[0].write.is_some(), "a restore writes the user");
    assert_eq!(
        p.rows[1].outcome,
        Outcome::Updated {
            changed: vec!["last_name"]
        }
    );
    assert_eq!(p.archive, vec![Uuid::from_u128(2)]);
    assert_eq!(
        (p.counts.restored, p.counts.updated, p.counts.archived),
        (1, 1, 1)
    );
}

#[test]
fn a_user_changed_since_is_left_and_listed() {
    let mut w = wrote(1, "user.update", Some(json!({ "first_name": "Ann" })));
    w.changed_since = true;
    let mut created = wrote(2, "user.create", None);
    created.changed_since = true;
    let mut now = user(1, "ann");
    now.first_name = "Edited".into();
    let p = undo(&[now, user(2, "bo")], vec![w, created]);
    assert!(p.rows.iter().all(|r| r.outcome == Outcome::Skipped));
    assert!(p.rows.iter().all(|r| r.write.is_none()));
    assert!(p.archive.is_empty());
    assert_eq!(p.counts.skipped, 2);
    assert_eq!(p.rows[0].username.as_deref(), Some("ann"), "listed by name");
}

#[test]
fn an_identifier_held_by_another_user_now_leaves_the_user_with_an_error() {
    let mut now = user(1, "ann");
    now.email = Some("new@d.org".into());
    let mut other = user(2, "bo");
    other.email = Some("old@d.org".into());
    other.archived = true; // archived users hold their identifiers too
    let p = undo(
        &[now, other],
        vec![wrote(
            1,
            "user.update",
            Some(json!({ "email": "OLD@d.org" })),
        )],
    );
    match &p.rows[0].outcome {
        Outcome::Error { message } => {
            assert!(
                message.contains("email") && message.contains("bo"),
                "{message}"
            )
        }
        o => panic!("{o:?}"),
    }
    assert!(p.rows[0].write.is_none());
    assert_eq!(p.counts.errors, 1);
}

#[test]
fn two_users_of_one_undo_never_take_back_the_same_username() {
    let mut a = user(1, "ann2");
    a.custom_id = None;
    let mut b = user(2, "ann3");
    b.custom_id = None;
    let p = undo(
        &[a, b],
        vec![
            wrote(1, "user.update", Some(json!({ "username": "ann" }))),
            wrote(2, "user.update", Some(json!({ "username": "Ann" }))),
        ],
    );
    assert!(matches!(p.rows[0].outcome, Outcome::Updated { .. }));
    assert!(matches!(p.rows[1].outcome, Outcome::Error { .. }));
}

#[test]
fn portal_admins_and_protected_users_are_never_archived() {
    let mut admin = user(1, "admin");
    admin.portal_role = PortalRole::DistrictAdmin;
    let mut kept = user(2, "kept");
    kept.prevent_archiving = true;
    let p = undo(
        &[admin, kept],
        vec![wrote(1, "user.create", None), wrote(2, "user.create", None)],
    );
    assert!(
        p.rows
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Error { .. }))
    );
    assert!(p.archive.is_empty());
}

#[test]
fn a_user_already_in_the_earlier_state_is_unchanged() {
    let mut archived = user(2, "bo");
    archived.archived = true;
    let p = undo(
        &[user(1, "ann"), archived],
        vec![
            wrote(1, "user.update", Some(json!({ "first_name": "Ann" }))),
            wrote(2, "user.create", None),
        ],
    );
    assert!(p.rows.iter().all(|r| r.outcome == Outcome::Unchanged));
    assert!(p.rows.iter().all(|r| r.write.is_none()));
    assert!(p.archive.is_empty());
}

#[test]
fn the_first_entry_of_a_user_written_twice_wins() {
    let mut now = user(1, "ann");
    now.first_name = "Third".into();
    let p = undo(
        &[now],
        vec![
            wrote(1, "user.update", Some(json!({ "first_name": "First" }))),
            wrote(1, "user.update", Some(json!({ "first_name": "Second" }))),
        ],
    );
    assert_eq!(only(&p).write.as_deref().unwrap().first_name, "First");
}

#[test]
fn undoing_a_mass_create_stops_for_review_unless_approved() {
    let current: Vec<CurrentUser> = (1..=30).map(|n| user(n, &format!("u{n}"))).collect();
    let written: Vec<Written> = (1..=30).map(|n| wrote(n, "user.create", None)).collect();
    let p = undo(&current, written.clone());
    let review = p.review.as_ref().expect("guard trips");
    assert!(
        review
            .reason
            .contains("would archive 30 of 30 users of students.csv"),
        "{}",
        review.reason
    );
    assert_eq!(p.archive.len(), 30, "the plan still carries the preview");
    let approved = Rules {
        approved: true,
        ..Rules::default()
    };
    assert!(
        plan(&current.as_slice().into(), written, &students(), &approved)
            .review
            .is_none()
    );
}

#[test]
fn a_user_that_no_longer_exists_is_listed_as_left() {
    let p = undo(
        &[],
        vec![wrote(9, "user.update", Some(json!({ "first_name": "X" })))],
    );
    assert_eq!(only(&p).outcome, Outcome::Skipped);
    assert_eq!(only(&p).user_guid, Some(Uuid::from_u128(9)));
}

#[test]
fn unreadable_earlier_values_leave_the_user_with_an_error() {
    let p = undo(
        &[user(1, "ann")],
        vec![wrote(1, "user.update", Some(json!({ "role": "Wizard" })))],
    );
    assert!(matches!(&only(&p).outcome, Outcome::Error { message } if message.contains("role")));
}

#[test]
fn passwords_and_unknown_keys_are_never_put_back() {
    let p = undo(
        &[user(1, "ann")],
        vec![wrote(
            1,
            "user.update",
            Some(json!({ "password": "hunter2", "kept": ["grade"] })),
        )],
    );
    assert_eq!(only(&p).outcome, Outcome::Unchanged);
}

/// The holder of a value is the user who holds it, wherever they are among the district's
/// users (they were once taken to be the first, second or third user).
#[test]
fn the_holder_named_is_the_user_who_holds_the_value() {
    let users: Vec<CurrentUser> = (1..=6).map(|n| user(n, &format!("u{n}"))).collect();
    let mut current = users.clone();
    // User 6 already has its earlier email back: unchanged, not refused.
    // User 5's earlier custom_id is now user 4's.
    current[4].custom_id = Some("X5".into());
    current[3].custom_id = Some("S5".into());
    let p = undo(
        &current,
        vec![
            wrote(5, "user.update", Some(json!({ "custom_id": "S5" }))),
            wrote(6, "user.update", Some(json!({ "email": "u6@d.org" }))),
        ],
    );
    match &p.rows[0].outcome {
        Outcome::Error { message } => assert!(message.contains("held by u4"), "{message}"),
        o => panic!("{o:?}"),
    }
    assert_eq!(p.rows[1].outcome, Outcome::Unchanged, "{:?}", p.rows[1]);
}
