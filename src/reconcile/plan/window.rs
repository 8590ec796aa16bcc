//! A feed planned window by window (issue 19, target 3): a run of a large file holds one
//! window of its rows and the users those rows name, never every user of the district.
//!
//! The planner is the same; what it knew about every user it now learns per window:
//! - **the users a window's rows name** (by the identifier each row matches by, then the
//!   holders of the values rows would take: [`WindowKeys`]) are loaded for it; what earlier
//!   windows did to them is kept here ([`Marks`], 20 bytes a matched user), so rule 2
//!   ("matches the same user as line N") holds across windows;
//! - **the holders of the usernames it may generate** ([`Windows::probes`]) are loaded
//!   beside them, so a generated name is never one a user holds;
//! - **the sweep** (rule 7) is one pass over the users in scope once every window is
//!   planned: [`Windows::archives`] decides each as `Planner::finish` does (the marks,
//!   `prevent_archiving`, admins, the queue's other files: [`Rules::elsewhere`]), and the
//!   database counts them per school for the guard ([`SweepFound`]).
//!
//! What goes from one window to the next is small: the usernames updated rows change to,
//! the generator's next suffix per base, the feed's explicit usernames' keys, and the users
//! `to_be_deleted` rows archive. A plan made in one window holding every user is the same
//! plan (the planner tests check both).

use std::collections::HashSet;
use std::ops::Range;

use uuid::Uuid;

use super::index::{Index, fold_case, nonblank};
use super::merge::explicit_username;
use super::planner::{Carry, Mark, Planner, SchoolSweep, Sweep};
use super::{
    CreatedUsers, Plan, QuietRow, RowFail, RowPlan, Rules, Scope, Secrets, assemble, hold, username,
};
pub use crate::domain::windows::{SweepFound, WindowKeys};
use crate::domain::{CurrentUsers, IncomingUser, Source};

impl WindowKeys {
    /// The users the rows match, by the first identifier of the matching order each row
    /// carries (rule 1), and every user a failed row identifies (they are protected).
    /// Then [`WindowKeys::holders`]: the holders of the values rows would take.
    pub fn of(rows: &[Result<IncomingUser, RowFail>]) -> WindowKeys {
        let mut keys = WindowKeys::default();
        for row in rows {
            match row {
                Ok(inc) => match (
                    inc.user_guid,
                    nonblank(&inc.custom_id),
                    nonblank(&inc.email),
                ) {
                    (Some(guid), _, _) => keys.guids.push(guid),
                    (None, Some(c), _) => keys.custom_ids.push(c.to_string()),
                    (None, None, Some(e)) => keys.emails.push(fold_case(e).into_owned()),
                    (None, None, None) => {}
                },
                Err(fail) => {
                    keys.guids.extend(fail.user_guid);
                    keys.custom_ids
                        .extend(nonblank(&fail.custom_id).map(str::to_string));
                    keys.emails
                        .extend(nonblank(&fail.email).map(|e| fold_case(e).into_owned()));
                }
            }
        }
        keys
    }

    /// The values rows would take that their users (among `users`, loaded by
    /// [`WindowKeys::of`]) do not hold already: whoever holds them must be known (rule 5).
    /// A row that matches nobody would take every identifier it carries.
    pub fn holders(users: &CurrentUsers, rows: &[Result<IncomingUser, RowFail>]) -> WindowKeys {
        let index = Index::new(users);
        let mut keys = WindowKeys::default();
        for inc in rows.iter().flatten() {
            let (custom_id, email) = (nonblank(&inc.custom_id), nonblank(&inc.email));
            let matched = match (inc.user_guid, custom_id, email) {
                (Some(guid), _, _) => index.by_guid(guid),
                (None, Some(c), _) => index.by_custom_id(c),
                (None, None, Some(e)) => index.by_email(e),
                (None, None, None) => continue,
            };
            if let Some(c) = custom_id
                && matched.is_none_or(|i| users.custom_id(i) != Some(c))
            {
                keys.custom_ids.push(c.to_string());
            }
            if let Some(e) = email.map(fold_case)
                && matched.is_none_or(|i| users.email(i).map(fold_case).as_deref() != Some(&*e))
            {
                keys.emails.push(e.into_owned());
            }
            if let Some(name) = explicit_username(inc).map(fold_case)
                && matched.is_none_or(|i| fold_case(users.username(i)) != name)
            {
                keys.usernames.push(name.into_owned());
            }
        }
        keys
    }

    pub fn is_empty(&self) -> bool {
        self.guids.is_empty()
            && self.custom_ids.is_empty()
            && self.emails.is_empty()
            && self.usernames.is_empty()
    }
}

/// What the windows planned so far did to users, by GUID: one run sorted by GUID per
/// window, 20 bytes a user matched or protected (the newest run says last).
#[derive(Default)]
struct Marks {
    runs: Vec<(Vec<u128>, Vec<u32>)>,
}

/// How [`Marks`] keep [`Mark::Protected`]: no line is numbered so.
const PROTECTED: u32 = u32::MAX;

impl Marks {
    fn get(&self, user: Uuid) -> Mark {
        let key = user.as_u128();
        for (ids, lines) in self.runs.iter().rev() {
            if let Ok(at) = ids.binary_search(&key) {
                return match lines[at] {
                    PROTECTED => Mark::Protected,
                    line => Mark::Claimed(line),
                };
            }
        }
        Mark::Free
    }

    fn add(&mut self, mut changed: Vec<(u128, u32)>) {
        if changed.is_empty() {
            return;
        }
        changed.sort_unstable_by_key(|c| c.0);
        self.runs.push(changed.into_iter().unzip());
    }
}

/// A feed's plan made window by window (see the module's text).
pub struct Windows<'r> {
    source: &'r Source,
    rules: &'r Rules,
    carry: Option<Carry>,
    marks: Marks,
    rows: Vec<RowPlan>,
    unchanged: Vec<QuietRow>,
    created: CreatedUsers,
    /// Users `to_be_deleted` rows archive.
    deleted: HashSet<Uuid>,
}

impl<'r> Windows<'r> {
    /// For a feed its reader checked ([`super::Mode::FEED`]), whose rows give the usernames
    /// with the keys `given` ([`super::GivenNames::Keys`]).
    pub fn new(given: Vec<u64>, source: &'r Source, rules: &'r Rules) -> Windows<'r> {
        Windows {
            source,
            rules,
            carry: Some(Carry::feed(given)),
            marks: Marks::default(),
            rows: Vec::new(),
            unchanged: Vec::new(),
            created: CreatedUsers::default(),
            deleted: HashSet::new(),
        }
    }

    /// The usernames whose holders must be among `users` before `rows` are planned: every
    /// name the generator may try for the rows that may create a user (no user_guid, not
    /// `to_be_deleted`, no username given, and nobody among `users` found by their
    /// custom_id or email). Load the holders of those not asked before, and ask again
    /// until no new holder is found.
    pub fn probes(
        &self,
        users: &CurrentUsers,
        rows: &[Result<IncomingUser, RowFail>],
    ) -> Vec<String> {
        let index = Index::new(users);
        let bases: Vec<String> = rows
            .iter()
            .flatten()
            .filter(|inc| {
                inc.user_guid.is_none()
                    && !inc.to_be_deleted
                    && explicit_username(inc).is_none()
                    && match (nonblank(&inc.custom_id), nonblank(&inc.email)) {
                        (Some(c), _) => index.by_custom_id(c).is_none(),
                        (None, Some(e)) => index.by_email(e).is_none(),
                        (None, None) => false,
                    }
            })
            .map(|inc| username::base(&inc.first_name, &inc.last_name))
            .collect();
        if bases.is_empty() {
            return Vec::new();
        }
        self.carry
            .as_ref()
            .expect("windows are planned before the plan is finished")
            .probes(&bases, |candidate| index.by_username(candidate).is_some())
    }

    /// Plan one window: `users` are those its rows name and the holders of what they would
    /// take ([`WindowKeys`], [`Windows::probes`]). Gives the window's rows among
    /// [`Windows::rows`].
    pub fn plan(
        &mut self,
        users: &CurrentUsers,
        rows: Vec<Result<IncomingUser, RowFail>>,
        secrets: &mut dyn Secrets,
    ) -> Range<usize> {
        let before: Vec<Mark> = (0..users.len())
            .map(|i| self.marks.get(users.guid(i)))
            .collect();
        let carry = self
            .carry
            .take()
            .expect("a window is planned once at a time");
        let mut planner = Planner::resume(users, self.source, self.rules, carry, before.clone());
        let start = self.rows.len();
        for item in rows {
            let row = match item {
                Ok(inc) => planner.row(inc, secrets),
                Err(fail) => planner.failed(fail),
            };
            hold(
                true,
                row,
                &mut self.rows,
                &mut self.unchanged,
                &mut self.created,
            );
        }
        let (carry, marks, deleted) = planner.suspend();
        self.carry = Some(carry);
        self.deleted
            .extend(deleted.into_iter().map(|i| users.guid(i)));
        let changed = marks
            .iter()
            .zip(&before)
            .enumerate()
            .filter(|(_, (now, was))| now != was)
            .map(|(i, (now, _))| {
                let line = match *now {
                    Mark::Claimed(line) => line.min(PROTECTED - 1),
                    Mark::Protected | Mark::Free => PROTECTED,
                };
                (users.guid(i).as_u128(), line)
            })
            .collect();
        self.marks.add(changed);
        start..self.rows.len()
    }

    /// Does the run archive `user`, a user in scope: a `to_be_deleted` row archives them,
    /// or no row matched or protected them, they may be archived (`may_archive`: not
    /// `prevent_archiving`, not a portal admin), the feed's scope archives, and no file of
    /// another source waiting in the queue lists them (by GUID, or by the `custom_id` and
    /// `email` given when [`Rules::elsewhere`] is not empty).
    pub fn archives(
        &self,
        user: Uuid,
        may_archive: bool,
        custom_id: Option<&str>,
        email: Option<&str>,
    ) -> bool {
        if self.deleted.contains(&user) {
            return true;
        }
        let scope = self.rules.scope;
        scope != Scope::Patch
            && may_archive
            && self.marks.get(user) == Mark::Free
            && !(scope == Scope::Source && self.rules.elsewhere.lists(user, custom_id, email))
    }

    /// May [`Windows::archives`] say yes for anyone: not for a patch (rule 7) unless its
    /// `to_be_deleted` rows archive someone. When it may not, the sweep only counts.
    pub fn archives_anyone(&self) -> bool {
        self.rules.scope != Scope::Patch || !self.deleted.is_empty()
    }

    /// The rows kept one by one so far (see [`Plan::rows`]).
    pub fn rows(&self) -> &[RowPlan] {
        &self.rows
    }

    /// The plan, once every window is planned, with what the database found for the sweep.
    pub fn finish(self, found: SweepFound) -> Plan {
        let mut archive: Vec<Uuid> = self.deleted.into_iter().collect();
        archive.extend(found.archived);
        let mut schools: Vec<SchoolSweep> = found
            .school_archived
            .into_iter()
            .map(|(external_id, archived)| SchoolSweep {
                total: found.school_totals.get(&external_id).copied().unwrap_or(0),
                external_id,
                archived,
            })
            .collect();
        schools.sort_by(|a, b| a.external_id.cmp(&b.external_id));
        let sweep = Sweep {
            archive,
            scope_total: found.scope_total,
            schools,
        };
        assemble(
            self.rows,
            self.unchanged,
            self.created,
            sweep,
            self.rules,
            self.source,
        )
    }
}
