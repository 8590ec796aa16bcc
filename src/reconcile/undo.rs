//! Undo a run (SPEC §4 "Undo"), planned. Pure: the audit entries the undone run wrote, the
//! district's current users and which of those users changed again since, in; an ordinary
//! [`Plan`] out, which the apply layer writes like any run's (one transaction, the same
//! guard, audit entries carrying the undo's own run id — so undoing an undo redoes).
//!
//! # Rules, per user the undone run wrote (its audit entries, in the order written)
//! 1. **Changed since**: a user with a later audit entry (a later run, an admin, a connection
//!    deleted) is left as they are, listed as [`Outcome::Skipped`].
//! 2. **Created** by the run (`user.create`): archived ([`Outcome::Archived`]). Users are never
//!    deleted: the GUID, history and memberships stay.
//! 3. **Fields**: every field in the entries' `before` (the first entry's value wins when a run
//!    wrote a user twice) is put back — names, identifiers, role, schools, grade, position,
//!    status, and the owner (`source`, `source_key`): a user the run took over returns to
//!    their former owner (counted as `moved`).
//! 4. **Archived state**: `before.archived` is put back too — users the run archived are
//!    restored ([`Outcome::Restored`]), users it restored are archived again.
//! 5. **Identifiers stay unique**: a `custom_id`, `email` (case-insensitive) or `username`
//!    (case-insensitive) to put back that another user holds now (archived included), or
//!    that an earlier user of this undo takes back, is an error naming the user; that user
//!    is left as they are.
//! 6. **Portal admins and `prevent_archiving`**: an undo never archives a portal admin nor a
//!    user whose `prevent_archiving` is set (error, left as they are).
//! 7. **Nothing to do** (already in the earlier state): [`Outcome::Unchanged`], writes nothing.
//! 8. **Guard** (unless approved): the feed's mass-change guard over the undone run's scope
//!    (its source's non-archived users, or the district's file and manual users for a
//!    district-scope run).
//!
//! Rows are numbered 1, 2, … in the order of the undone run's entries.

use std::collections::{HashMap, HashSet};

use compact_str::CompactString;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::plan::{self, Counts, NewUser, Outcome, Plan, RowPlan, Rules};
use crate::domain::{CurrentUser, CurrentUsers, Grade, Role, Scope, Source, Status};
use holders::Holders;

/// What the undone run wrote about one user (one audit entry).
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub user: Uuid,
    /// `user.create`, `user.update`, `user.restore`, `user.archive`.
    pub action: String,
    /// The entry's `before` (`None` for a create): the changed fields' earlier values, and
    /// `archived` when the run archived or restored the user.
    pub before: Option<Value>,
    /// A later audit entry for this user exists (another run, an admin).
    pub changed_since: bool,
}

/// The fields an undo puts back, in the order `changed` lists them.
const FIELDS: [&str; 13] = [
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
    "source",
    "source_key",
];

/// One user's entries, folded.
struct Group {
    user: Uuid,
    created: bool,
    changed_since: bool,
    /// Earlier values, the first entry's winning.
    before: Map<String, Value>,
    current: Option<usize>,
}

/// Plan the undo of a run from what it wrote (`written`, in the order written) against every
/// user of the district. `source` and `rules.scope` are the undone run's.
pub fn plan(current: &CurrentUsers, written: Vec<Written>, source: &Source, rules: &Rules) -> Plan {
    plan_counted(current, written, source, rules, None)
}

/// [`plan`] with `current` holding only the users the undo names and the holders of what it
/// takes back ([`UndoRows::keys`]), and `source_total` counted by the database (the users
/// in scope, for the guard; `None`: counted from `current`).
pub fn plan_counted(
    current: &CurrentUsers,
    written: Vec<Written>,
    source: &Source,
    rules: &Rules,
    source_total: Option<usize>,
) -> Plan {
    let mut groups: Vec<Group> = Vec::new();
    let mut at: HashMap<Uuid, usize> = HashMap::new();
    for w in written {
        let i = *at.entry(w.user).or_insert_with(|| {
            groups.push(Group {
                user: w.user,
                created: false,
                changed_since: false,
                before: Map::new(),
                current: None,
            });
            groups.len() - 1
        });
        let g = &mut groups[i];
        g.changed_since |= w.changed_since;
        g.created |= w.action == "user.create";
        if let Some(Value::Object(before)) = w.before {
            for (k, v) in before {
                g.before.entry(k).or_insert(v);
            }
        }
    }
    let in_scope = |owner: &Source| match rules.scope {
        Scope::District => !owner.is_sync(),
        Scope::Source | Scope::Patch => owner == source,
    };
    let mut counted = 0;
    for i in 0..current.len() {
        if !current.archived(i) && in_scope(current.source(i)) {
            counted += 1;
        }
        if let Some(&g) = at.get(&current.guid(i)) {
            groups[g].current = Some(i);
        }
    }
    drop(at);
    let source_total = source_total.unwrap_or(counted);

    let holders = Holders::find(current, &groups);
    let mut taken: HashSet<(&'static str, String)> = HashSet::new();
    let mut rows = Vec::with_capacity(groups.len());
    let mut archive = Vec::new();
    for (n, g) in groups.iter().enumerate() {
        let line = n as u64 + 1;
        let Some(cur) = g.current.map(|i| current.get(i)) else {
            rows.push(row(line, Some(g.user), None, Outcome::Skipped));
            continue;
        };
        let name = Some(cur.username.to_string());
        if g.changed_since {
            rows.push(row(line, Some(g.user), name, Outcome::Skipped));
            continue;
        }
        let planned = if g.created {
            undo_create(&cur)
        } else {
            undo_changes(&cur, &g.before, &holders, &mut taken)
        };
        match planned {
            Err(message) => rows.push(row(line, Some(g.user), name, Outcome::Error { message })),
            Ok((outcome, write, archive_it)) => {
                if archive_it {
                    archive.push(g.user);
                }
                let mut r = row(
                    line,
                    Some(g.user),
                    Some(
                        write
                            .as_ref()
                            .map_or_else(|| cur.username.to_string(), |w| w.username.to_string()),
                    ),
                    outcome,
                );
                r.extra = plan::RowExtra {
                    previous_source: write
                        .as_ref()
                        .filter(|w| w.source != cur.source)
                        .map(|_| cur.source.clone()),
                    ..plan::RowExtra::default()
                }
                .boxed();
                r.write = write.map(Box::new);
                rows.push(r);
            }
        }
    }
    archive.sort_unstable();
    archive.dedup();

    let counts = Counts::of(&rows, archive.len());
    let review = plan::guard_review(rules, source, source_total, counts.archived, counts.updated);
    Plan {
        rows,
        unchanged: Vec::new(),
        created: Default::default(),
        archive,
        counts,
        review,
        source_total,
    }
}

fn row(line: u64, user: Option<Uuid>, username: Option<String>, outcome: Outcome) -> RowPlan {
    RowPlan {
        line,
        outcome,
        matched_by: None,
        user_guid: user,
        username: username.map(Into::into),
        temp_password: None,
        write: None,
        extra: None,
    }
}

type Planned = Result<(Outcome, Option<NewUser>, bool), String>;

/// Rule 2: a user the run created is archived.
fn undo_create(cur: &CurrentUser) -> Planned {
    if cur.archived {
        return Ok((Outcome::Unchanged, None, false));
    }
    refuse_archive(cur)?;
    Ok((Outcome::Archived, None, true))
}

fn refuse_archive(cur: &CurrentUser) -> Result<(), String> {
    if cur.portal_role.is_admin() {
        return Err(format!(
            "{} is a portal administrator (managed in the portal): left as they are",
            cur.username
        ));
    }
    if cur.prevent_archiving {
        return Err(format!(
            "{} is protected from archiving (prevent_archiving): left as they are",
            cur.username
        ));
    }
    Ok(())
}

/// Rules 3–7 for a user the run updated, restored or archived.
fn undo_changes(
    cur: &CurrentUser,
    before: &Map<String, Value>,
    holders: &Holders,
    taken: &mut HashSet<(&'static str, String)>,
) -> Planned {
    let mut new = new_user(cur);
    let mut archived = None;
    for (field, value) in before {
        if field == "archived" {
            archived = value.as_bool();
        } else {
            put_back(&mut new, field, value).map_err(|e| {
                format!(
                    "the earlier value of {field} of {} cannot be read ({e}): left as they are",
                    cur.username
                )
            })?;
        }
    }
    let changed: Vec<&'static str> = FIELDS
        .into_iter()
        .filter(|f| differs(cur, &new, f))
        .collect();
    // Rule 5: the identifiers to take back must be free.
    let mut claims = Vec::new();
    for (field, value) in [
        ("custom_id", new.custom_id.as_deref().map(String::from)),
        (
            "email",
            new.email.as_ref().map(|e| e.as_str().to_lowercase()),
        ),
        ("username", Some(new.username.as_str().to_lowercase())),
    ] {
        let Some(value) = value.filter(|_| changed.contains(&field)) else {
            continue;
        };
        let key = (field, value);
        if let Some((_, holder)) = holders.get(&key).filter(|(h, _)| *h != cur.user_guid) {
            return Err(format!(
                "{field} \"{}\" of {} is now held by {holder}: left as they are",
                key.1, cur.username
            ));
        }
        if taken.contains(&key) {
            return Err(format!(
                "{field} \"{}\" of {} is taken back by another user of this undo: left as they are",
                key.1, cur.username
            ));
        }
        claims.push(key);
    }
    let archive_it = archived == Some(true) && !cur.archived;
    let restore_it = archived == Some(false) && cur.archived;
    if archive_it {
        refuse_archive(cur)?;
    }
    taken.extend(claims);
    let write = (!changed.is_empty() || restore_it).then_some(new);
    let outcome = if restore_it {
        Outcome::Restored { changed }
    } else if !changed.is_empty() {
        Outcome::Updated { changed }
    } else if archive_it {
        Outcome::Archived
    } else {
        Outcome::Unchanged
    };
    Ok((outcome, write, archive_it))
}

fn new_user(u: &CurrentUser) -> NewUser {
    NewUser {
        user_guid: u.user_guid,
        custom_id: u.custom_id.clone(),
        email: u.email.clone(),
        username: u.username.clone(),
        first_name: u.first_name.clone(),
        middle_name: u.middle_name.clone(),
        last_name: u.last_name.clone(),
        role: u.role,
        schools: u.schools.clone(),
        grade: u.grade,
        position: u.position.clone(),
        status: u.status,
        source: u.source.clone(),
        source_key: u.source_key.clone(),
        prevent_archiving: u.prevent_archiving,
    }
}

/// Set one field of `new` to its value in an audit entry (as `reconcile::apply` writes them).
fn put_back(new: &mut NewUser, field: &str, value: &Value) -> Result<(), &'static str> {
    let text = || value.as_str().map(CompactString::from).ok_or("not text");
    let optional = || match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(CompactString::from(s.as_str()))),
        _ => Err("not text"),
    };
    match field {
        "custom_id" => new.custom_id = optional()?,
        "email" => new.email = optional()?.map(|e| e.to_lowercase()),
        "username" => new.username = text()?,
        "first_name" => new.first_name = text()?,
        "middle_name" => new.middle_name = text()?,
        "last_name" => new.last_name = text()?,
        "position" => new.position = text()?,
        "role" => new.role = Role::parse(&text()?).ok_or("unknown role")?,
        "grade" => new.grade = Grade::parse(&text()?).unwrap_or(Grade::UNSPECIFIED),
        "status" => new.status = Status::parse(&text()?).ok_or("unknown status")?,
        "source" => new.source = Source::from_db(&text()?),
        "source_key" => new.source_key = optional()?,
        "school_external_id" => {
            let list = value.as_array().ok_or("not a list")?;
            let mut schools = list
                .iter()
                .map(|s| s.as_str().map(CompactString::from).ok_or("not text"))
                .collect::<Result<Vec<_>, _>>()?;
            schools.sort();
            schools.dedup();
            new.schools = schools;
        }
        // Anything else an entry may carry (never a password) is not put back.
        _ => {}
    }
    Ok(())
}

fn differs(cur: &CurrentUser, new: &NewUser, field: &str) -> bool {
    match field {
        "custom_id" => cur.custom_id != new.custom_id,
        "email" => cur.email.as_deref().map(str::to_lowercase).as_deref() != new.email.as_deref(),
        "username" => cur.username != new.username,
        "first_name" => cur.first_name != new.first_name,
        "middle_name" => cur.middle_name != new.middle_name,
        "last_name" => cur.last_name != new.last_name,
        "role" => cur.role != new.role,
        "school_external_id" => cur.schools != new.schools,
        "grade" => cur.grade != new.grade,
        "position" => cur.position != new.position,
        "status" => cur.status != new.status,
        "source" => cur.source != new.source,
        "source_key" => cur.source_key != new.source_key,
        _ => false,
    }
}

mod holders;
pub mod roster;
/// The rows of an undo: what the undone run wrote, read in the undo's transaction once it
/// holds the district's lock (so no run changes the users in between).
pub struct UndoRows {
    target: Uuid,
    written: Vec<Written>,
    /// Distinct users in `written`: the undo's rows.
    users: usize,
    /// The classes and enrollments the undone run changed (SPEC §6a).
    rosters: Vec<roster::RosterWritten>,
    /// The users in the undo's scope, counted by the database when the undo is planned
    /// against only the users it names ([`UndoRows::keys`]).
    pub(in crate::reconcile) source_total: Option<usize>,
}

impl UndoRows {
    pub fn new(target: Uuid) -> UndoRows {
        UndoRows {
            target,
            written: Vec::new(),
            users: 0,
            rosters: Vec::new(),
            source_total: None,
        }
    }

    pub(in crate::reconcile) async fn load(
        &mut self,
        conn: &mut sqlx::PgConnection,
        district_id: Uuid,
    ) -> anyhow::Result<()> {
        self.written = crate::db::undo::written(conn, district_id, self.target)
            .await?
            .into_iter()
            .map(|w| Written {
                user: w.user_id,
                action: w.action,
                before: w.before,
                changed_since: w.changed_since,
            })
            .collect();
        self.users = self
            .written
            .iter()
            .map(|w| w.user)
            .collect::<std::collections::HashSet<_>>()
            .len();
        let (target, mut rosters) = (self.target, Vec::new());
        crate::db::undo::roster_written(conn, district_id, target, |w| {
            let Some(kind) = roster::ChangeKind::parse(&w.kind) else {
                anyhow::bail!(
                    "run {target} recorded an unknown roster change {:?}",
                    w.kind
                );
            };
            rosters.push(roster::RosterWritten {
                kind,
                class_id: w.class_id,
                user_id: w.user_id,
                before: w.before,
                changed_since: w.changed_since,
            });
            Ok(())
        })
        .await?;
        rosters.shrink_to_fit();
        self.rosters = rosters;
        Ok(())
    }

    /// The classes and enrollments the undone run changed (once loaded), taken out to be
    /// planned by [`roster::plan`]; `None` when it changed none.
    pub(in crate::reconcile) fn take_rosters(&mut self) -> Option<Vec<roster::RosterWritten>> {
        let rosters = std::mem::take(&mut self.rosters);
        (!rosters.is_empty()).then_some(rosters)
    }

    /// Users the undone run wrote: the undo's rows (0 until loaded).
    pub(in crate::reconcile) fn len(&self) -> usize {
        self.users
    }

    /// The undo planned against `current`: the district's users, or those
    /// [`UndoRows::keys`] find (with [`UndoRows::source_total`] counted by the database).
    pub(in crate::reconcile) fn plan(
        self,
        current: &CurrentUsers,
        source: &Source,
        rules: &Rules,
    ) -> Plan {
        plan_counted(current, self.written, source, rules, self.source_total)
    }

    /// The users the undo is about, and the holders of the identifiers it would take back
    /// (rule 5): all of the district's users an undo needs (once loaded).
    pub(in crate::reconcile) fn keys(&self) -> crate::domain::windows::WindowKeys {
        let mut keys = crate::domain::windows::WindowKeys::default();
        let mut seen = std::collections::HashSet::new();
        for w in &self.written {
            if seen.insert(w.user) {
                keys.guids.push(w.user);
            }
            let Some(Value::Object(before)) = &w.before else {
                continue;
            };
            let text = |field: &str| match before.get(field) {
                Some(Value::String(v)) if !v.is_empty() => Some(v.clone()),
                _ => None,
            };
            keys.custom_ids.extend(text("custom_id"));
            keys.emails.extend(text("email").map(|e| e.to_lowercase()));
            keys.usernames
                .extend(text("username").map(|u| u.to_lowercase()));
        }
        keys
    }
}

#[cfg(test)]
mod tests;
