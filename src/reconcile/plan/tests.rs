//! One named test per rule of SPEC §4 and per decision documented in `plan.rs`.

use uuid::Uuid;

use super::*;
use crate::domain::{
    CurrentUser, CurrentUsers, Field, FieldSet, Grade, IncomingUser, PortalRole, Role, Source,
    Status,
};

// ---------------------------------------------------------------- fixtures

/// Deterministic secrets: GUIDs `0xfeed_0001…`, passwords `temp-1…`.
#[derive(Default)]
struct Seq {
    guids: u128,
    passwords: u32,
}

impl Secrets for Seq {
    fn temp_password(&mut self) -> String {
        self.passwords += 1;
        format!("temp-{}", self.passwords)
    }
    fn new_guid(&mut self) -> Uuid {
        self.guids += 1;
        Uuid::from_u128(0xfeed_0000 + self.guids)
    }
    fn password_fingerprint(&self, user_guid: Uuid, password: &str) -> [u8; 32] {
        fingerprint(user_guid, password)
    }
}

/// A deterministic stand-in for the keyed fingerprint (the real one is an HMAC).
fn fingerprint(user_guid: Uuid, password: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(user_guid.as_bytes())
        .chain_update(password.as_bytes())
        .finalize()
        .into()
}

fn g(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn new_guid(n: u128) -> Uuid {
    Uuid::from_u128(0xfeed_0000 + n)
}

fn students() -> Source {
    Source::File("students.csv".into())
}

fn adults() -> Source {
    Source::File("adults.csv".into())
}

fn sync() -> Source {
    Source::Sync(g(0xc1e7e7))
}

fn grade(s: &str) -> Grade {
    Grade::parse(s).unwrap()
}

/// A student of `students.csv`: custom_id `S{n}`, email `s{n}@d.org`, username `s{n}`.
fn student(n: u128) -> CurrentUser {
    CurrentUser {
        kept: Default::default(),
        feed_password_mac: None,
        user_guid: g(n),
        custom_id: Some(format!("S{n}").into()),
        email: Some(format!("s{n}@d.org").into()),
        username: format!("s{n}").into(),
        first_name: "Ann".into(),
        middle_name: Default::default(),
        last_name: format!("Lee{n}").into(),
        role: Role::Student,
        schools: vec!["HS".into()],
        grade: grade("9"),
        position: Default::default(),
        status: Status::Active,
        archived: false,
        source: students(),
        prevent_archiving: false,
        source_key: None,
        portal_role: PortalRole::User,
    }
}

/// A teacher of `adults.csv`: custom_id `T{n}`, email `t{n}@d.org`, username `t{n}`.
fn teacher(n: u128) -> CurrentUser {
    CurrentUser {
        kept: Default::default(),
        custom_id: Some(format!("T{n}").into()),
        email: Some(format!("t{n}@d.org").into()),
        username: format!("t{n}").into(),
        role: Role::Teacher,
        grade: Grade::UNSPECIFIED,
        position: "Math".into(),
        source: adults(),
        ..student(n)
    }
}

/// The columns of a typical file: everything but user_guid.
fn file_columns() -> FieldSet {
    Field::ALL
        .into_iter()
        .filter(|f| *f != Field::UserGuid)
        .collect()
}

/// The row a file would carry for `u` today (blank username and password).
fn row_for(u: &CurrentUser, line: u64) -> IncomingUser {
    IncomingUser {
        line,
        user_guid: None,
        custom_id: u.custom_id.as_deref().map(String::from),
        email: u.email.as_deref().map(String::from),
        username: None,
        first_name: u.first_name.to_string(),
        middle_name: u.middle_name.to_string(),
        last_name: u.last_name.to_string(),
        role: u.role,
        schools: u.schools.iter().map(|s| s.to_string()).collect(),
        grade: u.grade,
        position: u.position.to_string(),
        status: u.status,
        password: None,
        source_key: None,
        to_be_deleted: false,
        present: file_columns(),
    }
}

/// A new student row nobody matches: custom_id `N{n}`, email `n{n}@d.org`.
fn new_row(n: u128, line: u64) -> IncomingUser {
    let mut r = row_for(&student(n), line);
    r.custom_id = Some(format!("N{n}"));
    r.email = Some(format!("n{n}@d.org"));
    r.first_name = "New".into();
    r.last_name = format!("Kid{n}");
    r
}

fn ok(rows: Vec<IncomingUser>) -> Vec<Result<IncomingUser, RowFail>> {
    rows.into_iter().map(Ok).collect()
}

fn run(current: &[CurrentUser], rows: Vec<IncomingUser>, source: &Source) -> Plan {
    run_with(current, ok(rows), source, &Rules::default())
}

fn run_with(
    current: &[CurrentUser],
    incoming: Vec<Result<IncomingUser, RowFail>>,
    source: &Source,
    rules: &Rules,
) -> Plan {
    let reserved = reserved_usernames(&incoming);
    let (n, again) = (incoming.len(), incoming.clone());
    let windows_of = incoming.clone();
    // Packed as a run loads them; they come back as they went in.
    let packed = CurrentUsers::from(current);
    assert!(packed.iter().eq(current.iter().cloned()));
    let current = &packed;
    let full = plan(current, incoming, source, rules, &mut Seq::default());
    // Every test also checks the compact plan a run makes: the same plan, with the plainly
    // unchanged rows set apart as 24-byte rows. Rows a reader would let through (no value
    // carried twice) are planned as a run plans them, without remembering custom_ids and
    // emails: still the same plan.
    let distinct = crate::feed::validate::duplicates_among(&again).is_empty();
    let window_keys = keys_of(&reserved);
    let given = if distinct {
        GivenNames::Keys(keys_of(&reserved))
    } else {
        GivenNames::Lines(reserved)
    };
    let compact = plan_rows(
        current,
        given,
        again,
        n,
        source,
        rules,
        &mut Seq::default(),
        Mode {
            compact: true,
            distinct,
        },
    );
    assert_compact_matches(&full, compact);
    // And window by window, as a run plans a large file (`window`): one row, then three
    // rows, at a time, each window holding only the users its rows name.
    if distinct {
        for size in [1, 3] {
            let windowed = plan_in_windows(
                current,
                windows_of.clone(),
                window_keys.clone(),
                source,
                rules,
                size,
            );
            assert_compact_matches(&full, windowed);
        }
    }
    full
}

/// [`Windows`] driven as a run drives it, with `current` standing in for the database: each
/// window gets the users its keys and its probes find, with their marks from earlier
/// windows; the sweep is found as the run's SQL finds it.
fn plan_in_windows(
    current: &CurrentUsers,
    incoming: Vec<Result<IncomingUser, RowFail>>,
    given: Vec<u64>,
    source: &Source,
    rules: &Rules,
    size: usize,
) -> Plan {
    use std::collections::BTreeSet;
    let index = Index::new(current);
    let mut secrets = Seq::default();
    let mut windows = Windows::new(given, source, rules);
    let subset = |picked: &BTreeSet<usize>| {
        let mut users = CurrentUsers::default();
        for &i in picked {
            users.push(&current.get(i));
        }
        users
    };
    let mut rows = incoming.into_iter().peekable();
    while rows.peek().is_some() {
        let window: Vec<_> = rows.by_ref().take(size).collect();
        let found = |keys: &WindowKeys| -> Vec<usize> {
            keys.guids
                .iter()
                .filter_map(|g| index.by_guid(*g))
                .chain(keys.custom_ids.iter().filter_map(|c| index.by_custom_id(c)))
                .chain(keys.emails.iter().filter_map(|e| index.by_email(e)))
                .chain(keys.usernames.iter().filter_map(|u| index.by_username(u)))
                .collect()
        };
        let mut picked: BTreeSet<usize> = found(&WindowKeys::of(&window)).into_iter().collect();
        let holders = WindowKeys::holders(&subset(&picked), &window);
        picked.extend(found(&holders));
        loop {
            let probes = windows.probes(&subset(&picked), &window);
            let before = picked.len();
            picked.extend(probes.iter().filter_map(|n| index.by_username(n)));
            if picked.len() == before {
                break;
            }
        }
        let users = subset(&picked);
        windows.plan(&users, window, &mut secrets);
    }
    // The sweep's query (which only counts when the run can archive nobody).
    let mut found = SweepFound::default();
    let archives_anyone = windows.archives_anyone();
    for i in 0..current.len() {
        if current.archived(i)
            || !planner::in_scope(current.source(i), source, rules.scope)
            || rules
                .school
                .as_ref()
                .is_some_and(|s| !s.covers(current.schools(i)))
        {
            continue;
        }
        found.scope_total += 1;
        for school in current.schools(i) {
            *found.school_totals.entry(school.to_string()).or_default() += 1;
        }
        let may_archive = !current.prevent_archiving(i) && !current.portal_role(i).is_admin();
        if archives_anyone
            && windows.archives(
                current.guid(i),
                may_archive,
                current.custom_id(i),
                current.email(i),
            )
        {
            found.archived.push(current.guid(i));
            for school in current.schools(i) {
                *found.school_archived.entry(school.to_string()).or_default() += 1;
            }
        }
    }
    windows.finish(found)
}

/// The keys a reader keeps of the usernames rows give ([`GivenNames::Keys`]).
fn keys_of(reserved: &[(u64, compact_str::CompactString)]) -> Vec<u64> {
    reserved
        .iter()
        .map(|(_, name)| crate::domain::fold::username_key(name))
        .collect()
}

fn assert_compact_matches(full: &Plan, compact: Plan) {
    assert_eq!(compact.created.len(), full.counts.created);
    let compact = compact.with_writes();
    let loud: Vec<&RowPlan> = full
        .rows
        .iter()
        .filter(|r| r.quiet_row().is_none())
        .collect();
    let quiet: Vec<QuietRow> = full.rows.iter().filter_map(RowPlan::quiet_row).collect();
    assert_eq!(compact.rows.iter().collect::<Vec<_>>(), loud);
    assert_eq!(compact.unchanged, quiet);
    assert_eq!(compact.counts, full.counts);
    assert_eq!(compact.archive, full.archive);
    assert_eq!(compact.review, full.review);
    assert_eq!(compact.source_total, full.source_total);
    assert!(full.unchanged.is_empty());
}

fn outcome(p: &Plan, line: u64) -> &Outcome {
    &p.rows.iter().find(|r| r.line == line).expect("row").outcome
}

fn error(p: &Plan, line: u64) -> &str {
    match outcome(p, line) {
        Outcome::Error { message } => message,
        other => panic!("line {line}: expected an error, got {other:?}"),
    }
}

fn updated(changed: &[&'static str]) -> Outcome {
    Outcome::Updated {
        changed: changed.to_vec(),
    }
}

/// What the apply layer would leave behind: writes upserted by GUID, archives applied.
fn apply(current: &[CurrentUser], p: &Plan) -> Vec<CurrentUser> {
    assert!(p.review.is_none(), "a plan under review applies nothing");
    let mut users = current.to_vec();
    for row in &p.rows {
        let Some(w) = &row.write else { continue };
        let before = current.iter().find(|u| u.user_guid == w.user_guid);
        let next = CurrentUser {
            kept: before.map_or_else(Default::default, |u| u.kept),
            feed_password_mac: row
                .password_mac()
                .map(|m| Box::new(*m))
                .or_else(|| before.and_then(|u| u.feed_password_mac.clone())),
            user_guid: w.user_guid,
            custom_id: w.custom_id.as_deref().map(Into::into),
            email: w.email.as_deref().map(Into::into),
            username: w.username.as_str().into(),
            first_name: w.first_name.as_str().into(),
            middle_name: w.middle_name.as_str().into(),
            last_name: w.last_name.as_str().into(),
            role: w.role,
            schools: w.schools.iter().map(|s| s.as_str().into()).collect(),
            grade: w.grade,
            position: w.position.as_str().into(),
            status: w.status,
            archived: false,
            source: w.source.clone(),
            prevent_archiving: w.prevent_archiving,
            source_key: w.source_key.as_deref().map(Into::into),
            portal_role: current
                .iter()
                .find(|u| u.user_guid == w.user_guid)
                .map_or(PortalRole::User, |u| u.portal_role),
        };
        match users.iter_mut().find(|u| u.user_guid == w.user_guid) {
            Some(u) => *u = next,
            None => users.push(next),
        }
    }
    for u in &mut users {
        if p.archive.contains(&u.user_guid) {
            u.archived = true;
        }
    }
    users
}

// ---------------------------------------------------------------- matching

#[test]
fn match_by_guid_even_when_custom_id_and_email_change() {
    let current = [student(1)];
    let mut r = row_for(&current[0], 2);
    r.user_guid = Some(g(1));
    r.present.insert(Field::UserGuid);
    r.custom_id = Some("S1-new".into());
    r.email = Some("ann.new@d.org".into());
    let p = run(&current, vec![r], &students());
    assert_eq!(outcome(&p, 2), &updated(&["custom_id", "email"]));
    assert_eq!(p.rows[0].user_guid, Some(g(1)));
    assert!(p.archive.is_empty());
}

#[test]
fn unknown_guid_is_an_error() {
    let current = [student(1)];
    let mut r = row_for(&current[0], 2);
    r.user_guid = Some(g(99));
    let p = run(&current, vec![r], &students());
    assert_eq!(
        error(&p, 2),
        format!("user_guid {} is not a user of this district", g(99))
    );
    // The row's custom_id still identifies student 1: not archived for it.
    assert!(p.archive.is_empty());
}

#[test]
fn match_by_custom_id_keeps_record_when_email_changes() {
    let current = [student(1)];
    let mut r = row_for(&current[0], 2);
    r.email = Some("ann.married@d.org".into());
    let p = run(&current, vec![r], &students());
    assert_eq!(outcome(&p, 2), &updated(&["email"]));
    let w = p.rows[0].write.as_ref().unwrap();
    assert_eq!(w.user_guid, g(1));
    assert_eq!(w.email.as_deref(), Some("ann.married@d.org"));
    assert_eq!(w.username, "s1");
    assert!(p.archive.is_empty());
}

#[test]
fn match_by_email_when_the_row_has_no_custom_id() {
    let mut u = student(1);
    u.custom_id = None;
    let current = [u];
    let mut r = row_for(&current[0], 2);
    r.email = Some("S1@D.ORG".to_lowercase());
    r.last_name = "Lee-Smith".into();
    let p = run(&current, vec![r], &students());
    assert_eq!(outcome(&p, 2), &updated(&["last_name"]));
    assert_eq!(p.rows[0].user_guid, Some(g(1)));
}

#[test]
fn email_match_is_case_insensitive_against_stored_mixed_case() {
    let mut u = student(1);
    u.custom_id = None;
    u.email = Some("S1@D.org".into());
    let current = [u];
    let mut r = row_for(&current[0], 2);
    r.email = Some("s1@d.org".into());
    let p = run(&current, vec![r], &students());
    assert_eq!(p.rows[0].user_guid, Some(g(1)));
    // The stored spelling is normalised to the feed's.
    assert_eq!(outcome(&p, 2), &updated(&["email"]));
}

#[test]
fn email_change_without_custom_id_creates_new_user_and_archives_old() {
    let mut u = student(1);
    u.custom_id = None;
    let current = [u];
    let mut r = row_for(&current[0], 2);
    r.email = Some("ann.new@d.org".into());
    let p = run(&current, vec![r], &students());
    assert_eq!(outcome(&p, 2), &Outcome::Created);
    assert_eq!(p.rows[0].user_guid, Some(new_guid(1)));
    assert_eq!(p.archive, vec![g(1)]);
    assert_eq!(p.counts.archived, 1);
}

#[test]
fn custom_id_without_match_does_not_fall_back_to_email() {
    // Row: custom_id C (nobody) + email held by student 1 (custom_id S1) → error, not a match.
    let current = [student(1)];
    let mut r = row_for(&current[0], 2);
    r.custom_id = Some("C".into());
    let p = run(&current, vec![r], &students());
    assert_eq!(
        error(&p, 2),
        "email \"s1@d.org\" is already used by another user (custom_id S1)"
    );
    assert!(p.rows[0].write.is_none());
    assert!(p.archive.is_empty(), "the user the row names is protected");
}

#[test]
fn row_without_any_identifier_is_an_error() {
    let mut r = new_row(1, 2);
    r.custom_id = None;
    r.email = None;
    let p = run(&[], vec![r], &students());
    assert_eq!(
        error(&p, 2),
        "the row has no user_guid, custom_id or email to identify the user"
    );
}

#[test]
fn same_user_matched_twice_is_an_error_on_the_second_row() {
    let current = [student(1)];
    let by_id = row_for(&current[0], 2);
    let mut by_email = row_for(&current[0], 3);
    by_email.custom_id = None;
    let p = run(&current, vec![by_id, by_email], &students());
    assert_eq!(outcome(&p, 2), &Outcome::Unchanged);
    assert_eq!(error(&p, 3), "matches the same user as line 2");
    assert_eq!(p.rows[1].user_guid, Some(g(1)));
}

#[test]
fn same_new_custom_id_twice_in_a_run_is_an_error() {
    let a = new_row(1, 2);
    let mut b = new_row(2, 3);
    b.custom_id = a.custom_id.clone();
    let p = run(&[], vec![a, b], &students());
    assert_eq!(outcome(&p, 2), &Outcome::Created);
    assert_eq!(error(&p, 3), "custom_id \"N1\" is already used by line 2");
    assert_eq!(p.counts.created, 1);
}

#[test]
fn same_new_email_twice_in_a_run_is_an_error() {
    let a = new_row(1, 2);
    let mut b = new_row(2, 3);
    b.email = a.email.clone();
    let p = run(&[], vec![a, b], &students());
    assert_eq!(error(&p, 3), "email \"n1@d.org\" is already used by line 2");
}

// ---------------------------------------------------------------- collisions

#[test]
fn email_collision_on_create() {
    let current = [teacher(7)];
    let mut r = new_row(1, 2);
    r.email = Some("t7@d.org".into());
    let p = run(&current, vec![r], &students());
    assert_eq!(
        error(&p, 2),
        "email \"t7@d.org\" is already used by another user (custom_id T7)"
    );
    assert_eq!(p.counts.errors, 1);
}

#[test]
fn email_collision_on_update_includes_archived_and_other_sources() {
    let mut archived = teacher(7);
    archived.archived = true;
    let current = [student(1), archived];
    let mut r = row_for(&current[0], 2);
    r.email = Some("t7@d.org".into());
    let p = run(&current, vec![r], &students());
    assert_eq!(
        error(&p, 2),
        "email \"t7@d.org\" is already used by another user (custom_id T7, archived)"
    );
    assert_eq!(p.rows[0].user_guid, Some(g(1)));
    assert!(
        p.archive.is_empty(),
        "student 1's row failed: never archived for it"
    );
}

#[test]
fn username_collision_is_case_insensitive() {
    let current = [student(1), student(2)];
    let mut r = row_for(&current[0], 2);
    r.username = Some("S2".into());
    let keep = row_for(&current[1], 3);
    let p = run(&current, vec![r, keep], &students());
    assert_eq!(
        error(&p, 2),
        "username \"S2\" is already used by another user (custom_id S2)"
    );
    let mut create = new_row(3, 2);
    create.username = Some("S1".into());
    let p = run(&current, vec![create], &students());
    assert_eq!(
        error(&p, 2),
        "username \"S1\" is already used by another user (custom_id S1)"
    );
}

#[test]
fn custom_id_collision_on_update_by_guid() {
    let current = [student(1), student(2)];
    let mut r = row_for(&current[0], 2);
    r.user_guid = Some(g(1));
    r.custom_id = Some("S2".into());
    let p = run(&current, vec![r], &students());
    assert_eq!(
        error(&p, 2),
        "custom_id \"S2\" is already used by another user"
    );
}

#[test]
fn value_freed_in_the_same_run_is_still_taken() {
    // Line 2 moves student 1 off s1@d.org; line 3 cannot take it in the same run.
    let current = [student(1)];
    let mut moved = row_for(&current[0], 2);
    moved.email = Some("ann.new@d.org".into());
    let mut taker = new_row(2, 3);
    taker.email = Some("s1@d.org".into());
    let p = run(&current, vec![moved, taker], &students());
    assert_eq!(outcome(&p, 2), &updated(&["email"]));
    assert!(error(&p, 3).starts_with("email \"s1@d.org\" is already used by another user"));
}

// ---------------------------------------------------------------- ownership

#[test]
fn sync_owned_user_refused_in_files() {
    let mut u = student(1);
    u.source = sync();
    let mut archived = student(2);
    archived.source = sync();
    archived.archived = true;
    let current = [u, archived];
    let mut changed = row_for(&current[0], 2);
    changed.last_name = "Other".into();
    let rows = vec![changed, row_for(&current[1], 3)];
    let p = run(&current, rows, &students());
    let msg = format!(
        "user is provisioned by roster sync connection {}; remove them from this file or change them in the sync",
        g(0xc1e7e7)
    );
    assert_eq!(error(&p, 2), msg);
    assert_eq!(
        error(&p, 3),
        msg,
        "archived sync users are not adopted by files either"
    );
}

#[test]
fn sync_adopts_manual_and_file_users_marked_moved() {
    let mut manual = student(1);
    manual.source = Source::Manual;
    manual.prevent_archiving = true;
    let current = [manual, student(2)];
    let mut r1 = row_for(&current[0], 1);
    r1.source_key = Some("sis-1".into());
    let mut r2 = row_for(&current[1], 2);
    r2.source_key = Some("sis-2".into());
    let p = run(&current, vec![r1, r2], &sync());
    assert_eq!(outcome(&p, 1), &updated(&["source_key"]));
    assert_eq!(outcome(&p, 2), &updated(&["source_key"]));
    assert_eq!(p.rows[0].previous_source(), Some(&Source::Manual));
    assert_eq!(p.rows[1].previous_source(), Some(&students()));
    assert_eq!(p.counts.moved, 2);
    let w = p.rows[0].write.as_ref().unwrap();
    assert_eq!(w.source, sync());
    assert_eq!(w.source_key.as_deref(), Some("sis-1"));
    assert!(w.prevent_archiving, "the flag is kept");
}

#[test]
fn user_of_another_live_sync_is_refused() {
    let other = Source::Sync(g(0xbeef));
    let mut live = student(1);
    live.source = other.clone();
    let mut gone = student(2);
    gone.source = other;
    gone.archived = true;
    let current = [live, gone];
    let p = run(
        &current,
        vec![row_for(&current[0], 1), row_for(&current[1], 2)],
        &sync(),
    );
    assert_eq!(
        error(&p, 1),
        format!(
            "user is provisioned by another roster sync (connection {})",
            g(0xbeef)
        )
    );
    assert_eq!(outcome(&p, 2), &Outcome::Restored { changed: vec![] });
    assert_eq!(p.rows[1].previous_source(), Some(&Source::Sync(g(0xbeef))));
}

#[test]
fn user_of_another_file_is_taken_over_and_marked_moved() {
    let mut archived = teacher(2);
    archived.archived = true;
    let mut renamed = teacher(3);
    renamed.last_name = "Before".into();
    let current = [teacher(1), archived, renamed];
    let mut r3 = row_for(&current[2], 4);
    r3.last_name = "After".into();
    let p = run(
        &current,
        vec![row_for(&current[0], 2), row_for(&current[1], 3), r3],
        &students(),
    );
    // Only the owner changes: unchanged, marked moved, and the new owner is written.
    assert_eq!(outcome(&p, 2), &Outcome::Unchanged);
    assert_eq!(p.rows[0].previous_source(), Some(&adults()));
    assert_eq!(p.rows[0].write.as_ref().unwrap().source, students());
    assert_eq!(outcome(&p, 3), &Outcome::Restored { changed: vec![] });
    assert_eq!(p.rows[1].previous_source(), Some(&adults()));
    assert_eq!(outcome(&p, 4), &updated(&["last_name"]));
    assert_eq!(p.rows[2].previous_source(), Some(&adults()));
    assert_eq!(
        (
            p.counts.moved,
            p.counts.unchanged,
            p.counts.updated,
            p.counts.restored
        ),
        (3, 1, 1, 1)
    );
    assert!(p.archive.is_empty());
    let after = apply(&current, &p);
    assert!(after.iter().all(|u| u.source == students() && !u.archived));
}

#[test]
fn manual_user_adopted_keeps_prevent_archiving() {
    let mut u = student(1);
    u.source = Source::Manual;
    u.prevent_archiving = true;
    let current = [u];
    let p = run(&current, vec![row_for(&current[0], 2)], &students());
    assert_eq!(outcome(&p, 2), &Outcome::Unchanged);
    assert_eq!(p.rows[0].previous_source(), Some(&Source::Manual));
    assert_eq!(p.counts.moved, 1);
    let after = apply(&current, &p);
    assert_eq!(after[0].source, students());
    assert!(after[0].prevent_archiving);
    // Dropped from the next upload: still protected until an admin unchecks the flag.
    let p = run(&after, vec![], &students());
    assert!(p.archive.is_empty());
    assert_eq!(p.source_total, 1);
}

#[test]
fn archived_user_restored_with_same_guid() {
    let mut u = student(1);
    u.archived = true;
    let current = [u];
    let mut r = row_for(&current[0], 2);
    r.grade = grade("10");
    let p = run(&current, vec![r], &students());
    assert_eq!(
        outcome(&p, 2),
        &Outcome::Restored {
            changed: vec!["grade"]
        }
    );
    assert_eq!(p.rows[0].user_guid, Some(g(1)));
    assert_eq!(p.rows[0].write.as_ref().unwrap().user_guid, g(1));
    assert_eq!(p.counts.restored, 1);
    assert_eq!(p.counts.updated, 0);
    assert_eq!(
        p.source_total, 0,
        "archived users are not counted in the source"
    );
}

#[test]
fn archived_user_restored_even_when_nothing_else_changed() {
    let mut u = student(1);
    u.archived = true;
    let current = [u];
    let p = run(&current, vec![row_for(&current[0], 2)], &students());
    assert_eq!(outcome(&p, 2), &Outcome::Restored { changed: vec![] });
    assert!(p.rows[0].write.is_some());
}

// ---------------------------------------------------------------- fields

#[test]
fn unchanged_when_every_carried_field_is_equal() {
    let current = [student(1)];
    let p = run(&current, vec![row_for(&current[0], 2)], &students());
    assert_eq!(outcome(&p, 2), &Outcome::Unchanged);
    assert!(p.rows[0].write.is_none());
    assert_eq!(p.rows[0].username.as_deref(), Some("s1"));
    assert_eq!(p.counts.unchanged, 1);
}

#[test]
fn updated_lists_changed_fields_in_column_order() {
    let current = [student(1)];
    let mut r = row_for(&current[0], 2);
    r.status = Status::Inactive;
    r.schools = vec!["HS".into(), "MS".into()];
    r.first_name = "Anne".into();
    r.grade = grade("10");
    let p = run(&current, vec![r], &students());
    assert_eq!(
        outcome(&p, 2),
        &updated(&["first_name", "school_external_id", "grade", "status"])
    );
}

#[test]
fn absent_field_keeps_current_value() {
    let mut u = student(1);
    u.middle_name = "Q".into();
    let current = [u];
    let mut r = row_for(&current[0], 2);
    r.present = [
        Field::CustomId,
        Field::FirstName,
        Field::LastName,
        Field::Role,
        Field::SchoolExternalId,
    ]
    .into_iter()
    .collect();
    r.middle_name = String::new();
    r.email = None;
    r.grade = Grade::UNSPECIFIED;
    r.status = Status::Inactive;
    let p = run(&current, vec![r], &students());
    assert_eq!(outcome(&p, 2), &Outcome::Unchanged);
}

#[test]
fn blank_carried_field_clears_it() {
    let mut u = student(1);
    u.middle_name = "Q".into();
    let current = [u];
    let mut r = row_for(&current[0], 2);
    r.middle_name = String::new();
    r.email = None;
    let p = run(&current, vec![r], &students());
    assert_eq!(outcome(&p, 2), &updated(&["email", "middle_name"]));
    let w = p.rows[0].write.as_ref().unwrap();
    assert_eq!(w.email, None);
    assert_eq!(w.middle_name, "");
}

#[test]
fn blank_username_keeps_current_and_given_one_changes_it() {
    let current = [student(1)];
    let mut blank = row_for(&current[0], 2);
    blank.username = Some("  ".into());
    let p = run(&current, vec![blank], &students());
    assert_eq!(outcome(&p, 2), &Outcome::Unchanged);

    let mut given = row_for(&current[0], 2);
    given.username = Some("ann.lee".into());
    let p = run(&current, vec![given], &students());
    assert_eq!(outcome(&p, 2), &updated(&["username"]));
    assert_eq!(p.rows[0].username.as_deref(), Some("ann.lee"));
}

#[test]
fn a_given_password_is_used_for_created_users_with_its_fingerprint() {
    let mut with_password = new_row(2, 3);
    with_password.password = Some("s3cret!x".into());
    let without = new_row(3, 4);
    let p = run(&[], vec![with_password, without], &students());
    assert_eq!(p.rows[0].password(), Some("s3cret!x"));
    assert_eq!(p.rows[0].temp_password, None);
    assert_eq!(
        p.rows[0].password_mac(),
        Some(&fingerprint(new_guid(1), "s3cret!x")),
        "stored so the same file again is a no-op"
    );
    assert_eq!(p.rows[1].password(), None);
    assert_eq!(p.rows[1].password_mac(), None);
    assert_eq!(p.rows[1].temp_password.as_deref(), Some("temp-1"));
}

/// Rule 6a: a file's password sets an existing user's password; blank leaves it.
#[test]
fn a_given_password_sets_an_existing_users_password() {
    let current = [student(1), student(2)];
    let mut given = row_for(&current[0], 2);
    given.password = Some("hunter22".into());
    let mut blank = row_for(&current[1], 3);
    blank.password = Some(String::new());
    let p = run(&current, vec![given, blank], &students());
    assert_eq!(outcome(&p, 2), &updated(&["password"]));
    assert_eq!(p.rows[0].password(), Some("hunter22"));
    assert_eq!(
        p.rows[0].password_mac(),
        Some(&fingerprint(g(1), "hunter22"))
    );
    assert_eq!(
        p.rows[0].write.as_deref().map(|w| w.user_guid),
        Some(g(1)),
        "the user is written (their fields as they are)"
    );
    assert_eq!(outcome(&p, 3), &Outcome::Unchanged, "blank leaves it");
    assert_eq!(p.rows[1].password(), None);
    assert_eq!(p.counts.updated, 1);
}

/// Rule 6a: the same password as last time changes nothing (no rehash, no write), so the
/// same file uploaded again is a no-op; a new value in the file is applied again.
#[test]
fn the_same_given_password_again_is_unchanged() {
    let mut current = [student(1)];
    let mut row = row_for(&current[0], 2);
    row.password = Some("hunter22".into());
    let first = run(&current, vec![row.clone()], &students());
    let after = apply(&current, &first);
    assert_eq!(
        after[0].feed_password_mac.as_deref(),
        Some(&fingerprint(g(1), "hunter22"))
    );
    let again = run(&after, vec![row.clone()], &students());
    assert_eq!(outcome(&again, 2), &Outcome::Unchanged);
    assert!(again.rows[0].write.is_none() && again.rows[0].password().is_none());

    row.password = Some("hunter23".into());
    current[0].feed_password_mac = after[0].feed_password_mac.clone();
    let changed = run(&current, vec![row], &students());
    assert_eq!(outcome(&changed, 2), &updated(&["password"]));
}

/// Rule 6a: a password shorter than the sign-in rule is a row error naming the column and
/// never echoing the value; nothing about the user changes.
#[test]
fn a_short_given_password_for_an_existing_user_is_an_error() {
    let current = [student(1)];
    let mut r = row_for(&current[0], 2);
    r.password = Some("abc".into());
    r.first_name = "Changed".into();
    let p = run(&current, vec![r], &students());
    let e = error(&p, 2);
    assert!(e.starts_with("line 2, column \"password\":"), "{e}");
    assert!(!e.contains("abc"), "never echoes the password: {e}");
    assert!(p.rows[0].write.is_none());
    assert_eq!(p.rows[0].user_guid, Some(g(1)));
    assert!(p.archive.is_empty(), "the user is protected");
}

/// Rule 6a with 4a: a file never sets a portal admin's password.
#[test]
fn a_given_password_for_a_portal_admin_is_an_error() {
    let mut admin = district_admin(1);
    admin.source = adults();
    let current = [admin];
    let mut r = row_for(&current[0], 2);
    r.password = Some("long-enough-pw".into());
    let p = run(&current, vec![r], &adults());
    let e = error(&p, 2);
    assert!(e.starts_with("line 2, column \"password\":"), "{e}");
    assert!(
        e.contains("administrators are managed in the portal"),
        "{e}"
    );
    assert!(!e.contains("long-enough-pw"));
    assert!(p.rows[0].write.is_none());
}

/// Rule 6: a kept field keeps its value whatever the feed says; the row lists it as kept,
/// and a row that differs only in kept fields writes nothing.
#[test]
fn a_kept_field_keeps_its_value_and_is_listed() {
    let mut edited = student(1);
    edited.grade = grade("10");
    edited.kept = [Field::Grade].into_iter().collect();
    let current = [edited.clone(), student(2)];
    // The feed still says grade 9 (what the admin changed by hand).
    let mut r1 = row_for(&student(1), 2);
    r1.last_name = edited.last_name.to_string();
    let r2 = row_for(&current[1], 3);
    let p = run(&current, vec![r1.clone(), r2], &students());
    assert_eq!(
        outcome(&p, 2),
        &Outcome::Unchanged,
        "only a kept field differs"
    );
    assert_eq!(p.rows[0].kept(), vec!["grade"]);
    assert!(p.rows[0].write.is_none());
    assert!(p.rows[1].kept().is_empty());

    // Another field still follows the feed; the kept one stays.
    r1.first_name = "Anna".into();
    let p = run(&current, vec![r1.clone()], &students());
    assert_eq!(outcome(&p, 2), &updated(&["first_name"]));
    assert_eq!(p.rows[0].kept(), vec!["grade"]);
    let w = p.rows[0].write.as_deref().unwrap();
    assert_eq!((w.grade, w.first_name.as_str()), (grade("10"), "Anna"));

    // When the feed agrees with the kept value, nothing is listed.
    r1.grade = grade("10");
    let p = run(&current, vec![r1.clone()], &students());
    assert!(p.rows[0].kept().is_empty());

    // Released (no longer kept), the feed's value wins again.
    let mut released = edited;
    released.kept = FieldSet::default();
    r1.grade = grade("9");
    let p = run(&[released], vec![r1], &students());
    assert_eq!(outcome(&p, 2), &updated(&["first_name", "grade"]));
    assert!(p.rows[0].kept().is_empty());
}

/// Rule 6: a kept identifier is neither written nor claimed, so the feed's old value held
/// by nobody (or by someone else) is no reason to refuse the row.
#[test]
fn a_kept_email_is_not_claimed() {
    let mut edited = student(1);
    edited.email = Some("ann.personal@d.org".into());
    edited.kept = [Field::Email, Field::Username].into_iter().collect();
    // Someone else now has the address the feed still gives.
    let mut other = student(2);
    other.email = Some("s1@d.org".into());
    let current = [edited, other];
    let mut r = row_for(&student(1), 2);
    r.last_name = current[0].last_name.to_string();
    r.username = Some("s2".into());
    let p = run(&current, vec![r, row_for(&current[1], 3)], &students());
    assert_eq!(outcome(&p, 2), &Outcome::Unchanged);
    assert_eq!(p.rows[0].kept(), vec!["email", "username"]);
}

#[test]
fn passwords_are_redacted_in_debug_and_never_serialised() {
    let mut r = new_row(1, 2);
    r.password = Some("s3cret!x".into());
    let p = run(&[], vec![r, new_row(2, 3)], &students());
    let debug = format!("{p:?}");
    assert!(!debug.contains("s3cret!x") && !debug.contains("temp-1"));
    let json = serde_json::to_string(&p).unwrap();
    assert!(!json.contains("s3cret!x"));
    assert!(json.contains("\"outcome\":\"created\""));
}

#[test]
fn grade_ignored_for_adults() {
    let current = [teacher(1)];
    let mut r = row_for(&current[0], 2);
    r.grade = grade("5");
    let p = run(&current, vec![r], &adults());
    assert_eq!(outcome(&p, 2), &Outcome::Unchanged);
    let mut created = row_for(&teacher(2), 3);
    created.grade = grade("5");
    let p = run(&[], vec![created], &adults());
    assert_eq!(p.rows[0].write.as_ref().unwrap().grade, Grade::UNSPECIFIED);
}

#[test]
fn position_ignored_for_students() {
    let current = [student(1)];
    let mut r = row_for(&current[0], 2);
    r.position = "Class rep".into();
    let p = run(&current, vec![r], &students());
    assert_eq!(outcome(&p, 2), &Outcome::Unchanged);
    let mut created = new_row(2, 3);
    created.position = "Class rep".into();
    let p = run(&[], vec![created], &students());
    assert_eq!(p.rows[0].write.as_ref().unwrap().position, "");
}

#[test]
fn role_change_clears_the_field_that_no_longer_applies() {
    // A graduate hired as staff: grade goes, position comes.
    let current = [student(1)];
    let mut r = row_for(&current[0], 2);
    r.role = Role::Staff;
    r.position = "Aide".into();
    let p = run(&current, vec![r], &students());
    assert_eq!(outcome(&p, 2), &updated(&["role", "grade", "position"]));
    let w = p.rows[0].write.as_ref().unwrap();
    assert_eq!((w.grade, w.position.as_str()), (Grade::UNSPECIFIED, "Aide"));
}

#[test]
fn schools_compared_as_sets() {
    let mut u = student(1);
    u.schools = vec!["A".into(), "B".into()];
    let current = [u];
    let mut r = row_for(&current[0], 2);
    r.schools = vec!["B".into(), "A".into(), "B".into()];
    let p = run(&current, vec![r], &students());
    assert_eq!(outcome(&p, 2), &Outcome::Unchanged);
}

#[test]
fn status_change_is_an_update() {
    let current = [student(1)];
    let mut r = row_for(&current[0], 2);
    r.status = Status::Inactive;
    let p = run(&current, vec![r], &students());
    assert_eq!(outcome(&p, 2), &updated(&["status"]));
    assert_eq!(p.rows[0].write.as_ref().unwrap().status, Status::Inactive);
}

// ---------------------------------------------------------------- archiving

#[test]
fn missing_users_of_this_source_are_archived() {
    let current = [student(1), student(2), student(3)];
    let p = run(&current, vec![row_for(&current[0], 2)], &students());
    assert_eq!(p.archive, vec![g(2), g(3)]);
    assert_eq!(p.counts.archived, 2);
    assert_eq!(p.source_total, 3);
}

#[test]
fn users_of_other_sources_never_touched() {
    let mut manual = student(3);
    manual.source = Source::Manual;
    let mut synced = student(4);
    synced.source = sync();
    let current = [student(1), teacher(2), manual, synced];
    let p = run(&current, vec![row_for(&current[0], 2)], &students());
    assert!(p.archive.is_empty());
    assert_eq!(p.source_total, 1);
}

#[test]
fn prevent_archiving_respected() {
    let mut kept = student(2);
    kept.prevent_archiving = true;
    let current = [student(1), kept];
    let p = run(&current, vec![row_for(&current[0], 2)], &students());
    assert!(p.archive.is_empty());
}

#[test]
fn already_archived_users_are_not_archived_again() {
    let mut gone = student(2);
    gone.archived = true;
    let current = [student(1), gone];
    let p = run(&current, vec![row_for(&current[0], 2)], &students());
    assert!(p.archive.is_empty());
}

#[test]
fn delta_feed_never_archives_missing_users() {
    let current = [student(1), student(2)];
    let rules = Rules {
        scope: Scope::Patch,
        ..Rules::default()
    };
    let p = run_with(
        &current,
        ok(vec![row_for(&current[0], 2)]),
        &students(),
        &rules,
    );
    assert!(p.archive.is_empty());
}

#[test]
fn validation_error_row_protects_the_user_it_names() {
    let current = [student(1), student(2), student(3), student(4)];
    let fails = |line, guid, custom_id: Option<&str>, email: Option<&str>| {
        Err(RowFail {
            line,
            message: "unknown school external ID \"XX\"".into(),
            user_guid: guid,
            custom_id: custom_id.map(str::to_string),
            email: email.map(str::to_string),
        })
    };
    let incoming = vec![
        fails(2, Some(g(1)), None, None),
        fails(3, None, Some("S2"), None),
        fails(4, None, None, Some("s3@d.org")),
    ];
    let p = run_with(&current, incoming, &students(), &Rules::default());
    assert_eq!(p.archive, vec![g(4)]);
    assert_eq!(p.counts.errors, 3);
    assert_eq!(p.rows[1].user_guid, Some(g(2)));
    assert_eq!(error(&p, 3), "unknown school external ID \"XX\"");
}

#[test]
fn validation_error_without_identifiers_protects_no_one() {
    // The documented limitation: a row validation could not read any identifier of.
    let current = [student(1)];
    let incoming = vec![Err(RowFail {
        line: 2,
        message: "extra non-empty fields".into(),
        user_guid: None,
        custom_id: None,
        email: None,
    })];
    let p = run_with(&current, incoming, &students(), &Rules::default());
    assert_eq!(p.archive, vec![g(1)]);
    assert_eq!(p.rows[0].user_guid, None);
}

#[test]
fn planner_error_row_protects_its_user() {
    let current = [student(1), student(2)];
    let mut r = row_for(&current[0], 2);
    r.email = Some("s2@d.org".into());
    let p = run(&current, vec![r], &students());
    assert!(error(&p, 2).starts_with("email \"s2@d.org\""));
    // Student 1 (matched) and student 2 (named by the email) are both left alone.
    assert!(p.archive.is_empty());
}

// ---------------------------------------------------------------- to_be_deleted

#[test]
fn tobedeleted_archives_the_user_of_this_sync() {
    let mut u = student(1);
    u.source = sync();
    let mut other = student(2);
    other.source = sync();
    let current = [u, other];
    let mut r = row_for(&current[0], 1);
    r.to_be_deleted = true;
    let rules = Rules {
        scope: Scope::Patch,
        ..Rules::default()
    };
    let p = run_with(
        &current,
        ok(vec![r, row_for(&current[1], 2)]),
        &sync(),
        &rules,
    );
    assert_eq!(outcome(&p, 1), &Outcome::Archived);
    assert!(p.rows[0].write.is_none());
    assert_eq!(p.archive, vec![g(1)]);
    assert_eq!(p.counts.archived, 1);
    assert_eq!(p.counts.unchanged, 1);
}

#[test]
fn tobedeleted_leaves_alone_unknown_protected_archived_and_foreign_users() {
    let mut protected = student(1);
    protected.source = sync();
    protected.prevent_archiving = true;
    let mut archived = student(2);
    archived.source = sync();
    archived.archived = true;
    let foreign = student(3); // students.csv
    let current = [protected, archived, foreign];
    let mut rows: Vec<IncomingUser> = current
        .iter()
        .zip(1..)
        .map(|(u, l)| row_for(u, l))
        .collect();
    rows.push(new_row(9, 4));
    for r in &mut rows {
        r.to_be_deleted = true;
    }
    let p = run(&current, rows, &sync());
    for line in 1..=4 {
        assert_eq!(outcome(&p, line), &Outcome::Unchanged, "line {line}");
    }
    assert!(p.archive.is_empty());
    assert_eq!(p.rows[3].user_guid, None);
}

// ---------------------------------------------------------------- new users

#[test]
fn created_user_gets_feed_source_and_generated_secrets() {
    let mut r = new_row(1, 2);
    r.source_key = Some("sis-77".into());
    r.first_name = "Zoë".into();
    r.last_name = "O'Brien".into();
    let p = run(&[], vec![r], &sync());
    let row = &p.rows[0];
    assert_eq!(row.outcome, Outcome::Created);
    assert_eq!(row.user_guid, Some(new_guid(1)));
    assert_eq!(row.username.as_deref(), Some("zoe.obrien"));
    assert_eq!(row.temp_password.as_deref(), Some("temp-1"));
    let w = row.write.as_ref().unwrap();
    assert_eq!(w.user_guid, new_guid(1));
    assert_eq!(w.source, sync());
    assert_eq!(w.source_key.as_deref(), Some("sis-77"));
    assert!(!w.prevent_archiving);
    assert_eq!(w.custom_id.as_deref(), Some("N1"));
    assert_eq!(p.counts.created, 1);
}

#[test]
fn username_slug_folds_accents_and_drops_the_rest() {
    assert_eq!(
        username::base("José-María", "Núñez Åström"),
        "josemaria.nunezastrom"
    );
    assert_eq!(username::base("Łukasz", "Straße"), "lukasz.strasse");
    assert_eq!(username::base("李", "Wang"), "wang");
    assert_eq!(username::base("Al", ""), "al");
    assert_eq!(username::base("李", "王"), "user");
}

#[test]
fn username_generation_skips_existing_including_archived_case_insensitive() {
    let mut taken = student(1);
    taken.username = "Ann.Smith".into();
    let mut archived = student(2);
    archived.username = "ann.smith2".into();
    archived.archived = true;
    let current = [taken, archived];
    let mut r = new_row(3, 2);
    r.first_name = "Ann".into();
    r.last_name = "Smith".into();
    let rules = Rules {
        scope: Scope::Patch,
        ..Rules::default()
    };
    let p = run_with(&current, ok(vec![r]), &students(), &rules);
    assert_eq!(p.rows[0].username.as_deref(), Some("ann.smith3"));
}

#[test]
fn username_generation_unique_within_run() {
    let rows: Vec<_> = (1..=3)
        .map(|n| {
            let mut r = new_row(n, n as u64 + 1);
            r.first_name = "Ann".into();
            r.last_name = "Smith".into();
            r
        })
        .collect();
    let p = run(&[], rows, &students());
    let names: Vec<_> = p.rows.iter().map(|r| r.username.clone().unwrap()).collect();
    assert_eq!(names, ["ann.smith", "ann.smith2", "ann.smith3"]);
}

#[test]
fn username_generation_avoids_usernames_given_later_in_the_file() {
    let mut first = new_row(1, 2);
    first.first_name = "Ann".into();
    first.last_name = "Smith".into();
    let mut later = new_row(2, 3);
    later.username = Some("Ann.Smith".into());
    let p = run(&[], vec![first, later], &students());
    assert_eq!(p.rows[0].username.as_deref(), Some("ann.smith2"));
    assert_eq!(p.rows[1].username.as_deref(), Some("Ann.Smith"));
    assert_eq!(p.counts.created, 2);
}

#[test]
fn username_generation_stays_linear_for_many_namesakes() {
    let rows: Vec<_> = (1..=3000)
        .map(|n| {
            let mut r = new_row(n, n as u64 + 1);
            r.first_name = "John".into();
            r.last_name = "Smith".into();
            r
        })
        .collect();
    let p = run(&[], rows, &students());
    assert_eq!(p.rows[2999].username.as_deref(), Some("john.smith3000"));
    let mut names: Vec<_> = p.rows.iter().map(|r| r.username.clone().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3000);
}

#[test]
fn temp_password_only_when_no_password() {
    let mut given = new_row(1, 2);
    given.password = Some("pw-from-sis".into());
    let mut blank = new_row(2, 3);
    blank.password = Some(String::new());
    let p = run(&[], vec![given, blank], &students());
    assert_eq!(p.rows[0].temp_password, None);
    assert_eq!(p.rows[1].temp_password.as_deref(), Some("temp-1"));
    assert_eq!(p.rows[1].password(), None);
}

// ---------------------------------------------------------------- guard

fn many(n: u128) -> Vec<CurrentUser> {
    (1..=n).map(student).collect()
}

#[test]
fn guard_trips_on_archive_percentage() {
    let current = many(5000);
    let rows: Vec<_> = current[..790]
        .iter()
        .zip(2..)
        .map(|(u, l)| row_for(u, l))
        .collect();
    let p = run(&current, rows, &students());
    let review = p.review.expect("guard trips");
    assert_eq!(
        review.reason,
        "would archive 4,210 of 5,000 users of students.csv (84%)"
    );
    assert_eq!((review.would_archive, review.source_total), (4210, 5000));
    assert_eq!(p.archive.len(), 4210, "the preview is complete");
    assert_eq!(p.counts.unchanged, 790);
}

#[test]
fn guard_needs_the_minimum_count_of_archives() {
    // 9 of 20 is 45%, but fewer than 10 users.
    let current = many(20);
    let rows: Vec<_> = current[..11]
        .iter()
        .zip(2..)
        .map(|(u, l)| row_for(u, l))
        .collect();
    let p = run(&current, rows, &students());
    assert_eq!(p.counts.archived, 9);
    assert!(p.review.is_none());
}

#[test]
fn guard_needs_more_than_the_percentage() {
    // Exactly 10% (10 of 100) does not trip; 11 does.
    let current = many(100);
    let rows = |keep: usize| {
        current[..keep]
            .iter()
            .zip(2..)
            .map(|(u, l)| row_for(u, l))
            .collect()
    };
    assert!(run(&current, rows(90), &students()).review.is_none());
    let p = run(&current, rows(89), &students());
    assert_eq!(
        p.review.unwrap().reason,
        "would archive 11 of 100 users of students.csv (11%)"
    );
}

#[test]
fn guard_shows_a_decimal_when_rounding_would_hide_the_excess() {
    let current = many(1000);
    let rows = current[..896]
        .iter()
        .zip(2..)
        .map(|(u, l)| row_for(u, l))
        .collect();
    let p = run(&current, rows, &students());
    assert_eq!(
        p.review.unwrap().reason,
        "would archive 104 of 1,000 users of students.csv (10.4%)"
    );
}

#[test]
fn guard_trips_on_updates() {
    let current = many(100);
    let rows = current
        .iter()
        .zip(2..)
        .map(|(u, l)| {
            let mut r = row_for(u, l);
            if l < 78 {
                r.grade = grade("10");
            }
            r
        })
        .collect();
    let p = run(&current, rows, &students());
    assert_eq!(p.counts.updated, 76);
    let review = p.review.unwrap();
    assert_eq!(
        review.reason,
        "would update 76 of 100 users of students.csv (76%)"
    );
    assert_eq!(review.would_update, 76);
}

#[test]
fn guard_on_updates_needs_the_minimum_too() {
    let current = many(8);
    let rows = current
        .iter()
        .zip(2..)
        .map(|(u, l)| {
            let mut r = row_for(u, l);
            r.status = Status::Inactive;
            r
        })
        .collect();
    let p = run(&current, rows, &students());
    assert_eq!(p.counts.updated, 8);
    assert!(p.review.is_none());
}

#[test]
fn guard_names_both_reasons() {
    let current = many(100);
    let rows = current[..80]
        .iter()
        .zip(2..)
        .map(|(u, l)| {
            let mut r = row_for(u, l);
            r.status = Status::Inactive;
            r
        })
        .collect();
    let p = run(&current, rows, &students());
    assert_eq!(
        p.review.unwrap().reason,
        "would archive 20 of 100 users of students.csv (20%); \
         would update 80 of 100 users of students.csv (80%)"
    );
}

#[test]
fn guard_never_trips_for_an_empty_source() {
    let rows = (1..=50).map(|n| new_row(n, n as u64 + 1)).collect();
    let p = run(&many(0), rows, &students());
    assert_eq!(p.source_total, 0);
    assert!(p.review.is_none());
}

#[test]
fn approved_bypasses_the_guard() {
    let current = many(100);
    let rules = Rules {
        approved: true,
        ..Rules::default()
    };
    let p = run_with(&current, ok(vec![]), &students(), &rules);
    assert_eq!(p.counts.archived, 100);
    assert!(p.review.is_none());
}

#[test]
fn thousands_separators() {
    assert_eq!(guard::thousands(0), "0");
    assert_eq!(guard::thousands(999), "999");
    assert_eq!(guard::thousands(1000), "1,000");
    assert_eq!(guard::thousands(1_234_567), "1,234,567");
}

// ---------------------------------------------------------------- whole runs

#[test]
fn one_outcome_per_row_in_file_order() {
    let current = [student(1), student(2)];
    let mut changed = row_for(&current[1], 4);
    changed.status = Status::Inactive;
    let incoming = vec![
        Ok(row_for(&current[0], 2)),
        Err(RowFail {
            line: 3,
            message: "missing first_name".into(),
            user_guid: None,
            custom_id: None,
            email: None,
        }),
        Ok(changed),
        Ok(new_row(5, 5)),
    ];
    let p = run_with(&current, incoming, &students(), &Rules::default());
    let got: Vec<_> = p
        .rows
        .iter()
        .map(|r| (r.line, r.outcome.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (2, "unchanged"),
            (3, "error"),
            (4, "updated"),
            (5, "created")
        ]
    );
    assert_eq!(
        p.counts,
        Counts {
            created: 1,
            updated: 1,
            unchanged: 1,
            restored: 0,
            archived: 0,
            errors: 1,
            moved: 0,
            skipped: 0,
        }
    );
}

#[test]
fn rerun_after_apply_is_a_no_op() {
    let mut manual = student(3);
    manual.source = Source::Manual;
    manual.prevent_archiving = true;
    let mut returning = student(4);
    returning.archived = true;
    let mut no_id = student(5);
    no_id.custom_id = None;
    let current = vec![
        student(1),
        student(2),
        manual,
        returning,
        no_id,
        student(6),
        teacher(7),
    ];

    let mut edited = row_for(&current[1], 3);
    edited.email = Some("ann.two@d.org".into());
    let mut moved_email = row_for(&current[4], 6);
    moved_email.email = Some("five.new@d.org".into());
    let mut with_password = new_row(8, 8);
    with_password.password = Some("pw-from-sis".into());
    with_password.username = Some("Given.Name".into());
    let rows = vec![
        row_for(&current[0], 2),
        edited,
        row_for(&current[2], 4),
        row_for(&current[3], 5),
        moved_email,
        new_row(7, 7),
        with_password,
    ];
    let first = run(&current, rows.clone(), &students());
    assert_eq!(
        (
            first.counts.created,
            first.counts.updated,
            first.counts.restored
        ),
        (3, 1, 1)
    );
    // The manual user is adopted: unchanged but moved (their new owner is written).
    assert_eq!(first.counts.moved, 1);
    assert_eq!(first.rows[2].previous_source(), Some(&Source::Manual));
    assert!(first.rows[2].write.is_some());
    assert_eq!(first.archive, vec![g(5), g(6)]);

    let after = apply(&current, &first);
    let again = run(&after, rows, &students());
    for row in &again.rows {
        assert_eq!(row.outcome, Outcome::Unchanged, "line {}", row.line);
        assert!(row.write.is_none() && row.temp_password.is_none());
    }
    assert!(again.archive.is_empty());
    assert!(again.review.is_none());
}

#[test]
fn master_csv_round_trip_with_guids_is_a_no_op() {
    let current = vec![student(1), student(2), teacher(3)];
    let rows = current
        .iter()
        .zip(2..)
        .filter(|(u, _)| u.source == students())
        .map(|(u, l)| {
            let mut r = row_for(u, l);
            r.user_guid = Some(u.user_guid);
            r.username = Some(u.username.to_uppercase().to_string());
            r.present = Field::ALL.into_iter().collect();
            r
        })
        .collect();
    let p = run(&current, rows, &students());
    // A username differing only in case is still a change of spelling.
    assert_eq!(p.counts.updated, 2);
    let rows2: Vec<_> = current[..2]
        .iter()
        .zip(2..)
        .map(|(u, l)| {
            let mut r = row_for(u, l);
            r.user_guid = Some(u.user_guid);
            r.username = Some(u.username.to_string());
            r
        })
        .collect();
    let p = run(&current, rows2, &students());
    assert_eq!(p.counts.unchanged, 2);
    assert!(p.archive.is_empty());
}

// ------------------------------------------------ editing in place by user_guid (master CSV)

fn by_guid(u: &CurrentUser, line: u64) -> IncomingUser {
    IncomingUser {
        user_guid: Some(u.user_guid),
        present: FieldSet::all(),
        ..row_for(u, line)
    }
}

#[test]
fn master_csv_sent_back_unchanged_is_a_no_op_across_sources() {
    let mut synced = student(3);
    synced.source = sync();
    let mut manual = teacher(4);
    manual.source = Source::Manual;
    manual.prevent_archiving = true;
    let current = vec![student(1), teacher(2), synced, manual];
    let rows: Vec<_> = current
        .iter()
        .enumerate()
        .map(|(i, u)| by_guid(u, i as u64 + 2))
        .collect();
    let p = run(&current, rows, &Source::File("master.csv".into()));
    assert_eq!(
        p.counts,
        Counts {
            unchanged: 3,
            skipped: 1,
            ..Counts::default()
        }
    );
    assert_eq!(*outcome(&p, 4), Outcome::Skipped);
    assert!(p.archive.is_empty());
    assert!(p.rows.iter().all(|r| r.write.is_none()));
}

#[test]
fn guid_row_edits_another_files_user_in_place_without_taking_them_over() {
    let current = vec![student(1), teacher(2)];
    let mut edited = by_guid(&current[0], 2);
    edited.last_name = "Changed".into();
    let p = run(
        &current,
        vec![edited, by_guid(&current[1], 3)],
        &Source::File("master.csv".into()),
    );
    assert_eq!(*outcome(&p, 2), updated(&["last_name"]));
    let write = p.rows[0].write.as_deref().unwrap();
    assert_eq!(write.source, students(), "still owned by students.csv");
    assert_eq!(*outcome(&p, 3), Outcome::Unchanged);
}

#[test]
fn guid_row_may_not_change_a_sync_owned_user() {
    let mut synced = student(1);
    synced.source = sync();
    let mut edited = by_guid(&synced, 2);
    edited.first_name = "Other".into();
    let p = run(&[synced], vec![edited], &Source::File("master.csv".into()));
    assert!(
        error(&p, 2).contains("provisioned by roster sync"),
        "{}",
        error(&p, 2)
    );
}

#[test]
fn same_row_by_custom_id_from_another_file_moves_the_user() {
    let current = vec![student(1)];
    let master = Source::File("master.csv".into());
    let p = run(&current, vec![row_for(&current[0], 2)], &master);
    assert_eq!(*outcome(&p, 2), Outcome::Unchanged);
    assert_eq!(p.rows[0].previous_source(), Some(&students()));
    assert_eq!(p.rows[0].matched_by, Some(MatchedBy::CustomId));
    assert_eq!(p.rows[0].write.as_deref().unwrap().source, master);
}

// ---------------------------------------------------------------- portal admins (rule 4a)

/// The district admin: a manual user with portal rights.
fn district_admin(n: u128) -> CurrentUser {
    CurrentUser {
        kept: Default::default(),
        role: Role::Administrator,
        source: Source::Manual,
        schools: Vec::new(),
        portal_role: PortalRole::DistrictAdmin,
        ..teacher(n)
    }
}

#[test]
fn admin_row_that_deactivates_and_renames_is_an_error_and_changes_nothing() {
    let current = vec![district_admin(1)];
    let mut r = row_for(&current[0], 2);
    r.status = Status::Inactive;
    r.first_name = "Evil".into();
    let p = run(&current, vec![r], &adults());
    let e = error(&p, 2);
    assert!(e.starts_with("line 2, column \"status\":"), "{e}");
    assert!(
        e.contains("administrators are managed in the portal"),
        "{e}"
    );
    assert!(p.rows[0].write.is_none());
    assert_eq!(p.rows[0].user_guid, Some(g(1)), "the row names its user");
    assert_eq!(
        apply(&current, &p),
        current,
        "the admin is exactly as before"
    );
}

#[test]
fn admin_role_email_and_username_are_locked_even_for_the_owning_feed() {
    let mut admin = district_admin(1);
    admin.source = adults();
    let current = vec![admin];
    let mut role = row_for(&current[0], 2);
    role.role = Role::Teacher;
    let mut email = row_for(&current[0], 3);
    email.user_guid = Some(g(1));
    email.email = Some("new@d.org".into());
    let mut name = row_for(&current[0], 4);
    name.username = Some("boss".into());
    for (r, column) in [(role, "role"), (email, "email"), (name, "username")] {
        let line = r.line;
        let p = run(&current, vec![r], &adults());
        assert!(
            error(&p, line).contains(&format!("column \"{column}\"")),
            "{}",
            error(&p, line)
        );
        assert_eq!(apply(&current, &p), current);
    }
}

#[test]
fn admin_is_not_taken_over_by_a_file_or_a_sync() {
    let current = vec![district_admin(1)];
    let mut renamed = row_for(&current[0], 2);
    renamed.last_name = "Other".into();
    for feed in [adults(), sync()] {
        let p = run(&current, vec![renamed.clone()], &feed);
        let e = error(&p, 2);
        assert!(e.contains("column \"last_name\""), "{e}");
        assert!(e.contains("would make"), "{e}");
        assert_eq!(apply(&current, &p), current);
    }
}

#[test]
fn admin_row_that_changes_nothing_is_unchanged_and_not_adopted() {
    let current = vec![district_admin(1)];
    let mut from_sync = row_for(&current[0], 2);
    from_sync.source_key = Some("ext-1".into());
    for (feed, r) in [(adults(), row_for(&current[0], 2)), (sync(), from_sync)] {
        let p = run(&current, vec![r], &feed);
        assert_eq!(*outcome(&p, 2), Outcome::Unchanged);
        assert!(p.rows[0].write.is_none(), "nothing written, source kept");
    }
}

#[test]
fn owning_feed_may_still_rename_a_school_admin() {
    let mut admin = teacher(1);
    admin.portal_role = PortalRole::SchoolAdmin;
    let current = vec![admin];
    let mut r = row_for(&current[0], 2);
    r.last_name = "Married".into();
    let p = run(&current, vec![r], &adults());
    assert_eq!(*outcome(&p, 2), updated(&["last_name"]));
    assert_eq!(p.rows[0].write.as_deref().unwrap().source, adults());
}

#[test]
fn admin_missing_from_the_feed_that_owns_them_is_not_archived() {
    let mut admin = teacher(1);
    admin.portal_role = PortalRole::SchoolAdmin;
    let current = vec![admin, teacher(2)];
    let p = run(&current, vec![row_for(&current[1], 2)], &adults());
    assert!(p.archive.is_empty(), "{:?}", p.archive);
    assert_eq!(p.source_total, 2);
}

#[test]
fn tobedeleted_record_cannot_archive_an_admin() {
    let mut admin = student(1);
    admin.source = sync();
    admin.portal_role = PortalRole::SchoolAdmin;
    let current = vec![admin];
    let mut r = row_for(&current[0], 1);
    r.to_be_deleted = true;
    let p = run(&current, vec![r], &sync());
    assert!(error(&p, 1).contains("cannot archive"), "{}", error(&p, 1));
    assert!(p.archive.is_empty());
}

#[test]
fn archived_admin_is_not_restored_by_a_feed() {
    let mut admin = district_admin(1);
    admin.source = adults();
    admin.archived = true;
    let current = vec![admin];
    let p = run(&current, vec![row_for(&current[0], 2)], &adults());
    assert!(error(&p, 2).contains("restore"), "{}", error(&p, 2));
}

// ---------------------------------------------------------------- passwords (rule 8)

#[test]
fn short_password_for_a_new_user_is_an_error_naming_the_column() {
    let mut short = new_row(1, 2);
    short.password = Some("Qz7!xw1".into());
    let mut long = new_row(2, 3);
    long.password = Some("Qz7!xw12".into());
    let p = run(&[], vec![short, long], &students());
    let e = error(&p, 2);
    assert!(e.starts_with("line 2, column \"password\":"), "{e}");
    assert!(e.contains('8'), "{e}");
    assert!(!e.contains("Qz7!xw1"), "never echoed");
    assert!(p.rows[0].password().is_none() && p.rows[0].write.is_none());
    assert_eq!(*outcome(&p, 3), Outcome::Created);
    assert_eq!(p.rows[1].password(), Some("Qz7!xw12"));
    // Counted in characters, not bytes.
    let mut accents = new_row(3, 4);
    accents.password = Some("éééééé1".into());
    assert!(matches!(
        outcome(&run(&[], vec![accents], &students()), 4),
        Outcome::Error { .. }
    ));
}

// ---------------------------------------------------------------- owners and moves (issue 13)

fn all_csv() -> Source {
    Source::File("all.csv".into())
}

fn rows_of(users: &[CurrentUser], keep: impl Fn(&CurrentUser) -> bool) -> Vec<IncomingUser> {
    users
        .iter()
        .filter(|u| keep(u))
        .zip(2..)
        .map(|(u, l)| row_for(u, l))
        .collect()
}

#[test]
fn matched_by_is_set_for_every_row_that_found_or_created_a_user() {
    let current = vec![student(1), student(2), student(3)];
    let by_guid = IncomingUser {
        user_guid: Some(g(1)),
        ..row_for(&current[0], 2)
    };
    let by_custom_id = row_for(&current[1], 3);
    let mut by_email = row_for(&current[2], 4);
    by_email.custom_id = None;
    let mut refused = new_row(9, 6);
    refused.email = Some("s1@d.org".into());
    let p = run(
        &current,
        vec![by_guid, by_custom_id, by_email, new_row(8, 5), refused],
        &students(),
    );
    let by = |line: u64| p.rows.iter().find(|r| r.line == line).unwrap().matched_by;
    assert_eq!(by(2), Some(MatchedBy::Guid));
    assert_eq!(by(3), Some(MatchedBy::CustomId));
    assert_eq!(by(4), Some(MatchedBy::Email));
    assert_eq!(by(5), Some(MatchedBy::New));
    assert!(matches!(outcome(&p, 6), Outcome::Error { .. }));
    assert_eq!(by(6), None, "an error row found or created nobody");
}

#[test]
fn sync_owned_row_is_skipped_when_unchanged_and_refused_by_name_when_changed() {
    let mut a = student(1);
    a.source = sync();
    a.source_key = Some("sis-1".into());
    let mut b = student(2);
    b.source = sync();
    let current = vec![a, b, student(3)];
    let mut changed = row_for(&current[1], 3);
    changed.grade = grade("10");
    let rules = Rules {
        names: Names {
            syncs: [(g(0xc1e7e7), "Clever nightly".to_string())].into(),
            ..Names::default()
        },
        ..Rules::default()
    };
    let p = run_with(
        &current,
        ok(vec![
            row_for(&current[0], 2),
            changed,
            row_for(&current[2], 4),
        ]),
        &students(),
        &rules,
    );
    assert_eq!(*outcome(&p, 2), Outcome::Skipped);
    assert!(p.rows[0].write.is_none(), "a skipped row writes nothing");
    assert_eq!(p.rows[0].matched_by, Some(MatchedBy::CustomId));
    assert_eq!(p.rows[0].previous_source(), None);
    let e = error(&p, 3);
    assert!(
        e.starts_with("user is provisioned by roster sync \"Clever nightly\""),
        "{e}"
    );
    assert_eq!(p.rows[1].user_guid, Some(g(2)));
    assert_eq!(
        (p.counts.skipped, p.counts.errors, p.counts.unchanged),
        (1, 1, 1)
    );
    assert!(p.archive.is_empty());
}

#[test]
fn moved_only_row_writes_the_new_owner_and_the_rerun_writes_nothing() {
    let current = vec![student(1), teacher(2)];
    let p = run(&current, vec![row_for(&current[0], 2)], &adults());
    assert_eq!(*outcome(&p, 2), Outcome::Unchanged);
    assert_eq!(p.rows[0].previous_source(), Some(&students()));
    assert_eq!(p.rows[0].write.as_deref().unwrap().source, adults());
    // teacher(2) is adults.csv's and missing: archived as usual.
    assert_eq!(p.archive, vec![g(2)]);
    let after = apply(&current, &p);
    let again = run(&after, vec![row_for(&current[0], 2)], &adults());
    assert_eq!(*outcome(&again, 2), Outcome::Unchanged);
    assert!(again.rows[0].write.is_none() && again.rows[0].previous_source().is_none());
    assert_eq!(again.counts.moved, 0);
}

#[test]
fn district_scope_file_never_moves_users() {
    let mut manual = teacher(3);
    manual.source = Source::Manual;
    let current = vec![student(1), teacher(2), manual];
    let mut edited = row_for(&current[0], 2);
    edited.last_name = "New".into();
    let rules = Rules {
        scope: Scope::District,
        ..Rules::default()
    };
    let master = Source::File("d-users.csv".into());
    let p = run_with(
        &current,
        ok(vec![
            edited,
            row_for(&current[1], 3),
            row_for(&current[2], 4),
        ]),
        &master,
        &rules,
    );
    assert_eq!(*outcome(&p, 2), updated(&["last_name"]));
    assert_eq!(p.rows[0].write.as_deref().unwrap().source, students());
    assert_eq!(*outcome(&p, 3), Outcome::Unchanged);
    assert_eq!(*outcome(&p, 4), Outcome::Unchanged);
    assert!(p.rows[1].write.is_none() && p.rows[2].write.is_none());
    assert_eq!(p.counts.moved, 0);
}

#[test]
fn two_files_to_one_and_back_moves_everyone_and_archives_nobody() {
    let mut current: Vec<CurrentUser> = (1..=5).map(student).chain((6..=8).map(teacher)).collect();
    // students.csv + adults.csv → all.csv
    let p = run(&current, rows_of(&current, |_| true), &all_csv());
    assert_eq!(p.counts.moved, 8);
    assert_eq!(p.counts.errors, 0);
    assert!(p.archive.is_empty());
    assert!(p.review.is_none());
    current = apply(&current, &p);
    assert!(current.iter().all(|u| u.source == all_csv()));
    // …and back: students.csv first, then adults.csv.
    let p = run(
        &current,
        rows_of(&current, |u| u.role.is_student()),
        &students(),
    );
    assert_eq!((p.counts.moved, p.counts.errors), (5, 0));
    assert!(p.archive.is_empty());
    current = apply(&current, &p);
    let p = run(
        &current,
        rows_of(&current, |u| !u.role.is_student()),
        &adults(),
    );
    assert_eq!((p.counts.moved, p.counts.errors), (3, 0));
    assert!(p.archive.is_empty());
    current = apply(&current, &p);
    for u in &current {
        let owner = if u.role.is_student() {
            students()
        } else {
            adults()
        };
        assert_eq!(u.source, owner);
        assert!(!u.archived);
    }
    // all.csv owns nobody now: uploading it again empty of its old users archives nobody.
    let p = run(&current, vec![], &all_csv());
    assert!(p.archive.is_empty());
}

#[test]
fn a_student_moves_to_the_adults_file_adults_first_archives_nobody() {
    let current = vec![student(1), student(2), teacher(3)];
    // S1 becomes staff: adults.csv now lists them.
    let mut s1 = row_for(&current[0], 3);
    s1.role = Role::Staff;
    let p = run(&current, vec![row_for(&current[2], 2), s1], &adults());
    assert_eq!(*outcome(&p, 3), updated(&["role", "grade"]));
    assert_eq!(p.rows[1].previous_source(), Some(&students()));
    assert!(p.archive.is_empty());
    let after = apply(&current, &p);
    // students.csv without S1: S1 is not students.csv's any more.
    let p = run(&after, vec![row_for(&after[1], 2)], &students());
    assert!(p.archive.is_empty(), "{:?}", p.archive);
    assert_eq!(p.source_total, 1);
}

#[test]
fn a_student_moves_to_the_adults_file_students_first_comes_back_with_the_same_guid() {
    // students.csv (without S1) first cannot know that adults.csv will list S1: S1 is
    // archived as missing, and adults.csv restores them, same GUID, marked moved.
    let current = vec![student(1), student(2), teacher(3)];
    let p = run(&current, vec![row_for(&current[1], 2)], &students());
    assert_eq!(p.archive, vec![g(1)]);
    let after = apply(&current, &p);
    let mut s1 = row_for(&current[0], 3);
    s1.role = Role::Staff;
    let p = run(&after, vec![row_for(&after[2], 2), s1], &adults());
    assert_eq!(
        *outcome(&p, 3),
        Outcome::Restored {
            changed: vec!["role", "grade"]
        }
    );
    assert_eq!(p.rows[1].user_guid, Some(g(1)));
    assert_eq!(p.rows[1].previous_source(), Some(&students()));
    let after = apply(&after, &p);
    let s1 = after.iter().find(|u| u.user_guid == g(1)).unwrap();
    assert_eq!((s1.source.clone(), s1.archived), (adults(), false));
}

#[test]
fn admin_is_still_not_taken_over_by_another_file() {
    let mut admin = teacher(1);
    admin.portal_role = PortalRole::SchoolAdmin;
    let current = vec![admin];
    let p = run(&current, vec![row_for(&current[0], 2)], &students());
    assert_eq!(*outcome(&p, 2), Outcome::Unchanged);
    assert!(p.rows[0].write.is_none() && p.rows[0].previous_source().is_none());
    assert_eq!(p.counts.moved, 0);
}

// ---------------------------------------------------------------- per-school guard

/// `n` students of school `school`, GUIDs from `from`.
fn school_students(from: u128, n: u128, school: &str) -> Vec<CurrentUser> {
    (from..from + n)
        .map(|i| CurrentUser {
            schools: vec![school.into()],
            ..student(i)
        })
        .collect()
}

fn school_rules() -> Rules {
    Rules {
        // The whole-source rule is out of the way: this is about one school.
        archive_pct: 90.0,
        names: Names {
            schools: [("E1".to_string(), "Lincoln Elementary".to_string())].into(),
            ..Names::default()
        },
        ..Rules::default()
    }
}

#[test]
fn per_school_guard_trips_on_one_emptied_school_inside_a_full_file() {
    let mut current = school_students(1, 200, "HS");
    current.extend(school_students(1001, 30, "E1"));
    // Everyone but 10 of E1's 30.
    let rows = rows_of(&current, |u| u.schools[0] == "HS" || u.user_guid < g(1011));
    let p = run_with(&current, ok(rows), &students(), &school_rules());
    let review = p.review.expect("the school guard trips");
    assert_eq!(
        review.reason,
        "would archive 20 of 30 users of school Lincoln Elementary (67%)"
    );
    assert_eq!(review.schools, vec!["Lincoln Elementary".to_string()]);
    assert_eq!(p.archive.len(), 20, "the preview is complete");
    // Approved, it goes through.
    let approved = Rules {
        approved: true,
        ..school_rules()
    };
    let rows = rows_of(&current, |u| u.schools[0] == "HS" || u.user_guid < g(1011));
    assert!(
        run_with(&current, ok(rows), &students(), &approved)
            .review
            .is_none()
    );
}

/// A patch archives only the users its `to_be_deleted` rows name, and the school guard
/// weighs them as it weighs users missing from a full file (planned in windows too, where
/// the sweep of a patch that deletes nobody only counts).
#[test]
fn per_school_guard_weighs_a_patch_s_to_be_deleted_rows() {
    let mut current = school_students(1, 200, "HS");
    current.extend(school_students(1001, 30, "E1"));
    let rows: Vec<IncomingUser> = current
        .iter()
        .filter(|u| u.user_guid >= g(1011))
        .zip(2..)
        .map(|(u, line)| IncomingUser {
            to_be_deleted: true,
            ..row_for(u, line)
        })
        .collect();
    let rules = Rules {
        scope: Scope::Patch,
        ..school_rules()
    };
    let p = run_with(&current, ok(rows), &students(), &rules);
    let review = p.review.expect("the school guard trips");
    assert_eq!(
        review.reason,
        "would archive 20 of 30 users of school Lincoln Elementary (67%)"
    );
    assert_eq!(p.archive.len(), 20);
}

#[test]
fn per_school_guard_needs_the_minimum_and_more_than_the_percentage() {
    // A school of 19 emptied: under the minimum of 20.
    let mut current = school_students(1, 200, "HS");
    current.extend(school_students(1001, 19, "E1"));
    let rows = rows_of(&current, |u| u.schools[0] == "HS");
    assert!(
        run_with(&current, ok(rows), &students(), &school_rules())
            .review
            .is_none()
    );
    // Exactly half of 40: not more than half.
    let mut current = school_students(1, 200, "HS");
    current.extend(school_students(1001, 40, "E1"));
    let rows = rows_of(&current, |u| u.schools[0] == "HS" || u.user_guid < g(1021));
    assert!(
        run_with(&current, ok(rows), &students(), &school_rules())
            .review
            .is_none()
    );
}

#[test]
fn per_school_guard_counts_a_user_in_several_schools_in_each() {
    let mut current = school_students(1, 200, "HS");
    // 25 users in both E1 and M1; 21 of them archived: both schools are emptied.
    current.extend((1001..1026).map(|i| CurrentUser {
        schools: vec!["E1".into(), "M1".into()],
        ..student(i)
    }));
    let rows = rows_of(&current, |u| u.schools[0] == "HS" || u.user_guid < g(1005));
    let p = run_with(&current, ok(rows), &students(), &school_rules());
    let review = p.review.expect("trips");
    assert_eq!(
        review.schools,
        vec!["Lincoln Elementary".to_string(), "M1".to_string()],
        "named by name when known, else by external ID"
    );
    assert!(
        review.reason.contains("21 of 25 users of school M1"),
        "{}",
        review.reason
    );
}

#[test]
fn a_user_listed_by_a_waiting_file_of_another_source_is_not_archived() {
    let mut no_custom_id = student(3);
    no_custom_id.custom_id = None;
    let current = vec![student(1), student(2), no_custom_id, student(4)];
    let rules = Rules {
        elsewhere: Elsewhere {
            custom_ids: ["S1".to_string()].into(),
            emails: ["s3@d.org".to_string()].into(),
            ..Elsewhere::default()
        },
        ..Rules::default()
    };
    let p = run_with(
        &current,
        ok(vec![row_for(&current[1], 2)]),
        &students(),
        &rules,
    );
    assert_eq!(p.archive, vec![g(4)], "only S4 is missing from every file");
    // A district-scope file lists everyone itself: the queue does not change its sweep.
    let district = Rules {
        scope: Scope::District,
        ..rules
    };
    let p = run_with(
        &current,
        ok(vec![row_for(&current[1], 2)]),
        &students(),
        &district,
    );
    assert_eq!(p.archive, vec![g(1), g(3), g(4)]);
}

// ---------------------------------------------------------------- kept fields and passwords

/// Rule 6: kept fields hold against roster syncs too ("locked against feeds").
#[test]
fn a_kept_field_holds_against_a_sync() {
    let mut u = student(1);
    u.source = sync();
    u.first_name = "Annie".into();
    u.kept = [Field::FirstName].into_iter().collect();
    let current = [u];
    let mut r = row_for(&current[0], 2);
    r.first_name = "Ann".into();
    r.grade = grade("10");
    let p = run(&current, vec![r], &sync());
    assert_eq!(outcome(&p, 2), &updated(&["grade"]));
    assert_eq!(p.rows[0].kept(), vec!["first_name"]);
    assert_eq!(p.rows[0].write.as_deref().unwrap().first_name, "Annie");
}

/// Rule 6 (documented): a role change the feed makes still clears a kept grade that no
/// longer applies; the grade is then a change, not a kept field.
#[test]
fn a_role_change_clears_a_kept_grade() {
    let mut u = student(1);
    u.grade = grade("10");
    u.kept = [Field::Grade].into_iter().collect();
    let current = [u];
    let mut r = row_for(&current[0], 2);
    r.role = Role::Teacher;
    r.grade = Grade::UNSPECIFIED;
    let p = run(&current, vec![r], &students());
    assert_eq!(outcome(&p, 2), &updated(&["role", "grade"]));
    assert!(p.rows[0].kept().is_empty());
}

/// Rule 6a: a file that edits a sync-owned user in place (the master CSV) may not set their
/// password; the same row without a password is skipped (not the file's to change).
#[test]
fn a_file_cannot_set_a_sync_owned_users_password() {
    let mut u = student(1);
    u.source = sync();
    let current = [u];
    let mut r = row_for(&current[0], 2);
    r.user_guid = Some(g(1));
    let master = Source::File("master.csv".into());
    let p = run(&current, vec![r.clone()], &master);
    assert_eq!(outcome(&p, 2), &Outcome::Skipped);
    r.password = Some("long-enough-pw".into());
    let p = run(&current, vec![r], &master);
    assert!(error(&p, 2).contains("provisioned by roster sync"));
    assert!(p.rows[0].write.is_none());
}

// ---------------------------------------------------------------- progress (issue 13, item 8)

/// The progress bar's "applying" phase counts plan rows as they are written: every part a
/// run writes passes over every row once, so a 10,000-row create that writes users,
/// memberships, audit and results counts 40,000, over several chunks.
#[test]
fn applying_counts_every_row_of_every_part_written() {
    use crate::reconcile::apply::{Actor, Part, Writes};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let rows: Vec<IncomingUser> = (0..10_000).map(|n| new_row(n, n as u64 + 2)).collect();
    let p = run(&[], rows, &students());
    assert_eq!(p.counts.created, 10_000);
    let actor = Actor {
        kind: crate::domain::ActorKind::Cli,
        id: None,
        label: "test".into(),
    };
    let mut writes = Writes::new(
        p,
        Default::default(),
        true,
        g(1),
        g(2),
        time::OffsetDateTime::UNIX_EPOCH,
        actor,
        [("HS".to_string(), g(3))].into(),
    )
    .unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    writes.count_encoded_into(counter.clone());
    let writes = Arc::new(writes);
    assert_eq!(writes.count(Part::Changes), 0);
    let mut seen = Vec::new();
    for part in [
        Part::NewUsers,
        Part::NewMemberships,
        Part::NewAudit,
        Part::Results,
    ] {
        let chunks: Vec<_> = writes.chunks(part).collect::<Result<_, _>>().unwrap();
        assert!(chunks.len() > 1, "{part:?} is written in several chunks");
        seen.push(counter.load(Ordering::Relaxed));
    }
    assert_eq!(seen, vec![10_000, 20_000, 30_000, 40_000]);
}

/// Issue 16, item 6 (`super::SchoolOnly`): a file for one school changes that school's users
/// only — a row for another school and a row matching another school's user are errors
/// naming the row (and the column), and the sweep archives that school's missing users only.
#[test]
fn a_file_for_one_school_stays_within_it() {
    let mut ms = student(2);
    ms.schools = vec!["MS".into()];
    let mut both = student(3);
    both.schools = vec!["HS".into(), "MS".into()];
    let hs_missing = student(4);
    let current = vec![student(1), ms.clone(), both.clone(), hs_missing.clone()];
    let mut other_school = new_row(9, 3);
    other_school.schools = vec!["MS".into()];
    let mut takes_ms = row_for(&ms, 4);
    takes_ms.schools = vec!["HS".into()];
    let rows = vec![
        row_for(&student(1), 2),
        other_school,
        takes_ms,
        new_row(8, 5),
    ];
    let rules = Rules {
        school: Some(SchoolOnly {
            external_id: "HS".into(),
            name: "High School".into(),
        }),
        ..Rules::default()
    };
    let p = run_with(&current, ok(rows), &students(), &rules);
    assert_eq!(*outcome(&p, 2), Outcome::Unchanged);
    assert_eq!(
        error(&p, 3),
        "line 3, column \"school_external_id\": school \"MS\" is not High School (HS), the only school this file is for"
    );
    assert!(
        error(&p, 4).starts_with("line 4: this row matches s2, who is not only at High School")
    );
    assert_eq!(*outcome(&p, 5), Outcome::Created);
    // The HS student missing is archived; the MS student and the one in both schools are not.
    assert_eq!(p.archive, vec![hs_missing.user_guid]);
    // Without the restriction the same file archives every missing student of the source.
    let p = run(&current, vec![row_for(&student(1), 2)], &students());
    assert_eq!(p.archive.len(), 3);
}

// ---------------------------------------------------------------- compact plans (issue 19)

/// A run's plan keeps the plainly unchanged rows as 24-byte rows, in file order; a row with
/// something to say (moved, updated, a kept field) stays a full row.
#[test]
fn a_compact_plan_sets_plainly_unchanged_rows_apart() {
    assert_eq!(std::mem::size_of::<QuietRow>(), 24);
    // A first import keeps one full row per user created: what few rows say is boxed.
    assert_eq!(std::mem::size_of::<RowPlan>(), 128);
    let current: Vec<CurrentUser> = (1..=4).map(student).collect();
    let mut rows: Vec<IncomingUser> = current
        .iter()
        .zip(2..)
        .map(|(u, line)| row_for(u, line))
        .collect();
    rows[2].last_name = "Changed".into();
    rows.push(new_row(9, 6));
    let incoming = ok(rows);
    let reserved = reserved_usernames(&incoming);
    let p = plan_rows(
        &CurrentUsers::from(current),
        GivenNames::Keys(keys_of(&reserved)),
        incoming,
        5,
        &students(),
        &Rules::default(),
        &mut Seq::default(),
        Mode::FEED,
    );
    let quiet: Vec<(u32, Uuid)> = p.unchanged.iter().map(|q| (q.line, q.user_guid)).collect();
    assert_eq!(quiet, vec![(2, g(1)), (3, g(2)), (5, g(4))]);
    assert!(
        p.unchanged
            .iter()
            .all(|q| q.matched_by == MatchedBy::CustomId)
    );
    assert_eq!(p.rows.len(), 1);
    assert_eq!(p.rows[0].line, 4);
    assert_eq!(p.counts.unchanged, 3);
    assert_eq!(p.counts.updated, 1);
    assert_eq!(p.counts.created, 1);
    // The created row is kept encoded, found by its line, and comes back whole after the
    // plan's own rows.
    assert_eq!(p.created.len(), 1);
    assert_eq!(p.row_count(), 2);
    let row = p.row(1);
    assert_eq!((row.line, &row.outcome), (6, &Outcome::Created));
    assert_eq!(row.matched_by, Some(MatchedBy::New));
    assert_eq!(row.temp_password.as_deref(), Some("temp-1"));
    let made = p.created.get(6).expect("line 6 creates a user");
    assert_eq!(row.write.as_deref(), Some(&made));
    assert_eq!(Some(made.user_guid), row.user_guid);
    assert_eq!(row.username.as_ref(), Some(&made.username));
    assert_eq!(
        made.custom_id.as_deref(),
        new_row(9, 6).custom_id.as_deref()
    );
    assert_eq!(made.schools, vec![CompactString::from("HS")]);
    assert!(p.created.get(5).is_none());
}
