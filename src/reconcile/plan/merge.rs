//! Who may take over a user, and what a row changes about them.

use std::collections::HashMap;

use compact_str::CompactString;
use uuid::Uuid;

use crate::domain::{CurrentUser, Field, FieldSet, Grade, IncomingUser, Source};

use super::NewUser;
use super::index::nonblank;

/// May a row of `feed` take over `user`? Only a live user of another roster sync is refused
/// here: files share their users (a row of one file takes over a user of another, `moved`),
/// feeds adopt manual users, and syncs adopt file and manual users. A file row about a
/// sync-owned user is decided by the planner (skipped when unchanged, else an error).
pub(super) fn ownership(
    user: &CurrentUser,
    feed: &Source,
    sync_names: &HashMap<Uuid, String>,
) -> Result<(), String> {
    match (&user.source, feed) {
        (Source::Sync(id), Source::Sync(f)) if id != f && !user.archived => Err(format!(
            "user is provisioned by another roster sync ({})",
            sync_label(*id, sync_names)
        )),
        _ => Ok(()),
    }
}

/// How a sync connection is named in a message: `"Clever nightly"`, or `connection <id>`
/// when its name is not known.
pub(super) fn sync_label(id: Uuid, sync_names: &HashMap<Uuid, String>) -> String {
    match sync_names.get(&id) {
        Some(name) => format!("\"{name}\""),
        None => format!("connection {id}"),
    }
}

/// The user as this row would leave them (owned by `source`), and the names of the fields
/// that differ. A change of owner is not among them: the caller compares the sources (a
/// moved row keeps the outcome its other fields give it). Fields an admin keeps
/// ([`CurrentUser::kept`]) keep their current value whatever the row says.
pub(super) fn merge(
    user: &CurrentUser,
    inc: IncomingUser,
    source: &Source,
) -> (NewUser, Vec<&'static str>) {
    merge_honouring(user, inc, source, user.kept)
}

/// The kept fields of `user` that this row would have changed were they not kept (for the
/// completed file's `kept` column), given `changed`, what the row does change. Empty, and
/// free, for the users nobody edited by hand.
pub(super) fn overridden(
    user: &CurrentUser,
    inc: &IncomingUser,
    source: &Source,
    changed: &[&'static str],
) -> Vec<&'static str> {
    if user.kept.is_empty() {
        return Vec::new();
    }
    let (_, free) = merge_honouring(user, inc.clone(), source, FieldSet::default());
    free.into_iter()
        .filter(|name| {
            Field::from_name(name).is_some_and(|f| user.kept.contains(f)) && !changed.contains(name)
        })
        .collect()
}

fn merge_honouring(
    user: &CurrentUser,
    inc: IncomingUser,
    source: &Source,
    kept: FieldSet,
) -> (NewUser, Vec<&'static str>) {
    let username = match explicit_username(&inc) {
        Some(name) if !kept.contains(Field::Username) => CompactString::from(name),
        _ => user.username.clone(),
    };
    let present = inc.present.without(kept);
    let has = |f: Field| present.contains(f);
    let role = if has(Field::Role) {
        inc.role
    } else {
        user.role
    };
    let (now_student, was_student) = (role.is_student(), user.role.is_student());
    let grade = match (now_student, was_student) {
        (true, _) if has(Field::Grade) => inc.grade,
        (true, true) | (false, false) => user.grade,
        _ => Grade::UNSPECIFIED,
    };
    let position = match (now_student, was_student) {
        (false, _) if has(Field::Position) => inc.position.into(),
        (false, false) | (true, true) => user.position.clone(),
        _ => CompactString::default(),
    };
    let text = |carried: bool, new: String, old: &CompactString| {
        if carried { new.into() } else { old.clone() }
    };
    let optional = |carried: bool, new: Option<String>, old: &Option<CompactString>| {
        if carried {
            new.filter(|v| !v.trim().is_empty())
                .map(CompactString::from)
        } else {
            old.clone()
        }
    };
    let target = NewUser {
        user_guid: user.user_guid,
        custom_id: optional(has(Field::CustomId), inc.custom_id, &user.custom_id),
        email: optional(has(Field::Email), inc.email, &user.email),
        username,
        first_name: text(has(Field::FirstName), inc.first_name, &user.first_name),
        middle_name: text(has(Field::MiddleName), inc.middle_name, &user.middle_name),
        last_name: text(has(Field::LastName), inc.last_name, &user.last_name),
        role,
        schools: if has(Field::SchoolExternalId) {
            school_set(inc.schools.into_iter().map(CompactString::from).collect())
        } else {
            school_set(user.schools.clone())
        },
        grade,
        position,
        status: if has(Field::Status) {
            inc.status
        } else {
            user.status
        },
        source: source.clone(),
        source_key: inc
            .source_key
            .map(CompactString::from)
            .or_else(|| user.source_key.clone()),
        prevent_archiving: user.prevent_archiving,
    };

    let mut changed = Vec::new();
    let mut note = |name: &'static str, same: bool| {
        if !same {
            changed.push(name);
        }
    };
    note(Field::CustomId.name(), target.custom_id == user.custom_id);
    note(Field::Email.name(), target.email == user.email);
    note(Field::Username.name(), target.username == user.username);
    note(
        Field::FirstName.name(),
        target.first_name == user.first_name,
    );
    note(
        Field::MiddleName.name(),
        target.middle_name == user.middle_name,
    );
    note(Field::LastName.name(), target.last_name == user.last_name);
    note(Field::Role.name(), target.role == user.role);
    note(
        Field::SchoolExternalId.name(),
        same_set(&target.schools, &user.schools),
    );
    note(Field::Grade.name(), target.grade == user.grade);
    note(Field::Position.name(), target.position == user.position);
    note(Field::Status.name(), target.status == user.status);
    note("source_key", target.source_key == user.source_key);
    (target, changed)
}

/// Sorted and de-duplicated (already so in the common case: then nothing moves).
pub(super) fn school_set<S: Ord>(mut schools: Vec<S>) -> Vec<S> {
    if !schools.is_sorted() {
        schools.sort_unstable();
    }
    schools.dedup();
    schools
}

/// `a` is a sorted set; `b` should be one too but is checked.
fn same_set(a: &[CompactString], b: &[CompactString]) -> bool {
    if b.windows(2).all(|w| w[0] < w[1]) {
        a == b
    } else {
        a == school_set(b.to_vec()).as_slice()
    }
}

/// A username the row gives (carried and not blank); blank means keep or generate.
pub(super) fn explicit_username(inc: &IncomingUser) -> Option<&str> {
    if inc.present.contains(Field::Username) {
        nonblank(&inc.username)
    } else {
        None
    }
}
