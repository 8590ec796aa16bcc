//! A feed planned window by window (issue 19, target 3): a run of a large file holds one
//! window of its rows and the users those rows name, never every user of the district.
//!
//! The planner is the same; what it knew about every user it now learns per window:
//! - **the users a window's rows name** (by user_guid, custom_id, email and explicit
//!   username: [`WindowKeys`]) are loaded for it, each with its [`Mark`] from earlier
//!   windows (rule 2, "matches the same user as line N", holds across windows);
//! - **the holders of the usernames it may generate** ([`Windows::probes`]) are loaded
//!   beside them, so a generated name is never one a user holds;
//! - **the sweep** (rule 7) is asked of the database once every window is planned: the
//!   users in scope no row matched or protected ([`SweepFound`]); the queue's other files
//!   ([`Rules::elsewhere`]) and the per-school guard are applied here, as
//!   `Planner::finish` applies them.
//!
//! What goes from one window to the next is small: the usernames updated rows change to,
//! the generator's next suffix per base, the feed's explicit usernames' keys, and the users
//! `to_be_deleted` rows archive. A plan made in one window holding every user is the same
//! plan (the planner tests check both).

use std::collections::HashMap;
use std::ops::Range;

use uuid::Uuid;

use super::index::{Index, fold_case, nonblank};
use super::merge::explicit_username;
use super::planner::{Carry, Mark, Planner, SchoolSweep, Sweep};
use super::{
    CreatedUsers, Plan, QuietRow, RowFail, RowPlan, Rules, Scope, Secrets, assemble, hold, username,
};
pub use crate::domain::windows::{Candidate, MarkChange, SweepFound, WindowKeys};
use crate::domain::{CurrentUsers, IncomingUser, Source};

impl WindowKeys {
    /// Every identifier the rows carry (failed rows too: they protect their users).
    pub fn of(rows: &[Result<IncomingUser, RowFail>]) -> WindowKeys {
        let mut keys = WindowKeys::default();
        for row in rows {
            let (guid, custom_id, email) = match row {
                Ok(inc) => {
                    if let Some(name) = explicit_username(inc) {
                        keys.usernames.push(fold_case(name).into_owned());
                    }
                    (
                        inc.user_guid,
                        nonblank(&inc.custom_id),
                        nonblank(&inc.email),
                    )
                }
                Err(fail) => (
                    fail.user_guid,
                    nonblank(&fail.custom_id),
                    nonblank(&fail.email),
                ),
            };
            keys.guids.extend(guid);
            keys.custom_ids.extend(custom_id.map(str::to_string));
            keys.emails.extend(email.map(|e| fold_case(e).into_owned()));
        }
        keys
    }
}

/// A feed's plan made window by window (see the module's text).
pub struct Windows<'r> {
    source: &'r Source,
    rules: &'r Rules,
    carry: Option<Carry>,
    rows: Vec<RowPlan>,
    unchanged: Vec<QuietRow>,
    created: CreatedUsers,
    deleted: Vec<Uuid>,
}

impl<'r> Windows<'r> {
    /// For a feed its reader checked ([`super::Mode::FEED`]), whose rows give the usernames
    /// with the keys `given` ([`super::GivenNames::Keys`]).
    pub fn new(given: Vec<u64>, source: &'r Source, rules: &'r Rules) -> Windows<'r> {
        Windows {
            source,
            rules,
            carry: Some(Carry::feed(given)),
            rows: Vec::new(),
            unchanged: Vec::new(),
            created: CreatedUsers::default(),
            deleted: Vec::new(),
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

    /// Plan one window: `users` are those its rows name and the holders of its probes
    /// ([`Windows::probes`]), `marks` what earlier windows did to them (one per user). Gives
    /// the window's rows among [`Windows::rows`] and the marks it changed.
    pub fn plan(
        &mut self,
        users: &CurrentUsers,
        marks: Vec<Mark>,
        rows: Vec<Result<IncomingUser, RowFail>>,
        secrets: &mut dyn Secrets,
    ) -> (Range<usize>, Vec<MarkChange>) {
        let before = marks.clone();
        let carry = self
            .carry
            .take()
            .expect("a window is planned once at a time");
        let mut planner = Planner::resume(users, self.source, self.rules, carry, marks);
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
        let mut deleted_here = vec![false; users.len()];
        for &i in &deleted {
            deleted_here[i] = true;
            self.deleted.push(users.guid(i));
        }
        let changes = marks
            .iter()
            .zip(&before)
            .enumerate()
            .filter(|(i, (now, was))| now != was || deleted_here[*i])
            .map(|(i, (now, _))| MarkChange {
                user: users.guid(i),
                mark: *now,
                deleted: deleted_here[i],
            })
            .collect();
        (start..self.rows.len(), changes)
    }

    /// The rows kept one by one so far (see [`Plan::rows`]).
    pub fn rows(&self) -> &[RowPlan] {
        &self.rows
    }

    /// The plan, once every window is planned, with what the database found for the sweep.
    pub fn finish(self, found: SweepFound) -> Plan {
        let scope = self.rules.scope;
        let mut archive = self.deleted;
        let mut archived_in: HashMap<String, usize> = HashMap::new();
        for c in found.candidates {
            let elsewhere = scope == Scope::Source
                && self.rules.elsewhere.lists(
                    c.user_guid,
                    c.custom_id.as_deref(),
                    c.email.as_deref(),
                );
            if !c.deleted && (elsewhere || scope == Scope::Patch) {
                continue;
            }
            if !c.deleted {
                archive.push(c.user_guid);
            }
            for school in c.schools {
                *archived_in.entry(school).or_default() += 1;
            }
        }
        let mut schools: Vec<SchoolSweep> = archived_in
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
