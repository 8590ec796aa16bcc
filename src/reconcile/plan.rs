//! The reconcile planner (SPEC §4): the district's current users plus one feed's rows in,
//! one outcome per row plus the users to archive out. Pure: no SQL, no HTTP, no clock; the
//! only randomness (new GUIDs, temporary passwords) comes through [`Secrets`].
//!
//! # Rules, in the order they are applied to a row
//! 1. **Match**: `user_guid` when given (unknown in this district → error); else `custom_id`
//!    when given (exact; no fall-back to email); else `email` (case-insensitive). A row with
//!    none of the three is an error: it could never be matched again. Every row that found or
//!    created a user says how ([`RowPlan::matched_by`]: guid, custom_id, email, new).
//! 2. **Same user twice**: a user already matched by an earlier accepted row of this feed →
//!    error `matches the same user as line N`.
//! 3. **`to_be_deleted`** (sync records): the matched user is archived when this feed owns
//!    them, they are not archived yet and not `prevent_archiving` ([`Outcome::Archived`]);
//!    otherwise, or when nobody matches, nothing happens ([`Outcome::Unchanged`]).
//! 4. **Ownership** (every user has one owner: manual, a file source, or a sync connection).
//!    A user of this source is updated. **Files share their users**: a file row that matches
//!    a user of another file source, or a manual user, takes them over — their source becomes
//!    this feed's and the row is marked **moved** ([`RowPlan::previous_source`], counted in
//!    [`Counts::moved`]); the outcome stays what the other fields make it (`updated`,
//!    `restored`, or `unchanged` when only the owner changes — such a row still writes the new
//!    owner; a truly unchanged row writes nothing). A manual user keeps `prevent_archiving`.
//!    A **sync-owned** user in a file row: when the row changes nothing it is
//!    [`Outcome::Skipped`] (no write, not an error — the master CSV sent back); otherwise it is
//!    an error naming the sync (`provisioned by roster sync "Clever"`, by [`Names::syncs`], or
//!    by connection id). A sync adopts file and manual users (moved too), and refuses users
//!    of another live sync connection (an archived one's users it adopts and restores).
//!    **Editing in place**: a file row that names a live user of another source by
//!    `user_guid` (the master CSV, edited and sent back), and every row of a file of
//!    [`Scope::District`], updates that user but never moves them (their source is kept). So
//!    the master CSV sent back as it is, under any name, is a no-op.
//!    **Moves in either order**: a student moving into the adults file is moved by whichever
//!    upload lists them first. Adults file first: moved, and the students file without them no
//!    longer covers them. Students file first with the adults file waiting in the queue behind
//!    it (sent together: a script, the drop folder, two uploads in a row): the students file
//!    leaves them to it ([`Rules::elsewhere`], rule 7) and the adults file moves them. Nobody
//!    is archived on the way. Only when the students file has been applied before the adults
//!    file even arrives can it not know: the student is archived as missing from their owner,
//!    and the adults file restores them (same GUID, memberships and history), marked moved.
//!    Going from two files to one and back never archives anyone: the new file takes every
//!    user over before the old ones could miss them.
//!    **Portal admins** (school and district admins; rule 4a) are managed in the portal, and
//!    come first: a row that matches one and changes nothing is Unchanged (they are not
//!    adopted, whatever their source); a row that would change their `status`, `role`,
//!    `email` or `username`, restore them from the archive, archive them (`to_be_deleted`)
//!    or take them over from another source is an error naming the line and the column. A
//!    feed that already owns an admin (or a master CSV row editing them in place) may still
//!    change their other fields.
//! 5. **Identifiers stay unique**: a new or changed `custom_id`, `email` or `username` held
//!    by another user (any source, archived included; email and username case-insensitive)
//!    or already taken by another row of this run → error. The current holder counts even if
//!    another row of the same run moves them off that value (no swaps within one run).
//! 6. **Fields**: only fields in `present` are compared and written; an absent field keeps
//!    its value, a carried blank optional field clears it, a blank username keeps the current
//!    one. `grade` applies to students only, `position` to adults only (changing role clears
//!    the one that no longer applies). Schools compare as sets.
//!    **Kept fields** (SPEC §4, "Fields an admin edited"): a field in [`CurrentUser::kept`]
//!    (an admin changed it by hand on a feed-owned user) keeps its current value whatever the
//!    row says, and is not checked for uniqueness (rule 5) since it is not written;
//!    [`RowPlan::kept`] lists the kept fields the row would otherwise have changed. A row that
//!    differs only in kept fields is Unchanged (it writes nothing). A role change the feed
//!    makes still clears a kept `grade`/`position` that no longer applies.
//!    **Passwords** (rule 6a; SPEC §4, "Passwords in files"): a blank or absent `password`
//!    leaves the user's password. A non-blank one is fingerprinted with
//!    [`Secrets::password_fingerprint`] (user GUID + password); equal to
//!    [`CurrentUser::feed_password_mac`] (the feed gave this password last time) it changes
//!    nothing, so the same file again is a no-op. Otherwise it is an error naming the
//!    `password` column (never echoing the value) when the user is a portal admin
//!    ("administrators are managed in the portal", as rule 4a), when a roster sync owns the
//!    user and this is a file edit in place, or when it is shorter than
//!    [`MIN_PASSWORD_CHARS`]; else the row is Updated (or Restored) with `password` among
//!    its changed fields, and carries the password and its fingerprint
//!    ([`RowPlan::password`], [`RowPlan::password_mac`]) for the apply layer to hash. An
//!    admin's reset or the user's own change keeps the fingerprint, so the file's password is
//!    applied again only when the file's value changes.
//! 7. **Missing users**, by [`Rules::scope`]: with [`Scope::Source`] every non-archived user
//!    of this source, with [`Scope::District`] every non-archived user not owned by a roster
//!    sync (file and manual users), with [`Scope::Patch`] nobody — that no accepted row
//!    matched, that no failed row identifies, and that is not `prevent_archiving` and not a
//!    portal admin, is archived. Users outside the scope are never touched. With
//!    [`Scope::Source`], a user that a file of another source waiting in the district's queue
//!    lists ([`Rules::elsewhere`]: by user_guid, custom_id or email) is left for that file to
//!    move, not archived.
//! 8. **New users**: GUID from [`Secrets`], username given or generated (`first.last`,
//!    `first.last2`… unique against every current username and every username of this run),
//!    a temporary password when the row has none, `prevent_archiving` false. A password the
//!    row gives must follow the sign-in rule (at least [`MIN_PASSWORD_CHARS`] characters),
//!    else the row is an error naming the password column (the password is never echoed);
//!    its fingerprint is stored with it (rule 6a).
//! 9. **Guard** (unless [`Rules::approved`]): with `N` the source's non-archived users before
//!    the run, stop for review when archives > `archive_pct`% of `N` and ≥ `archive_min`, or
//!    when updates (restores not counted) > `update_pct`% of `N` and ≥ `archive_min` (the
//!    minimum also applies to updates, so a tiny district can fix all its users at once).
//!    `N = 0` never trips. **Per school**: a school that had at least `school_min` users in
//!    scope and would lose more than `school_pct`% of them trips it too, named by
//!    [`Names::schools`] (a user in several schools counts in each); when the whole-source
//!    rule trips already its reason stands alone, the schools listed in [`Review::schools`].
//!    A move is not an update: a row that only changes its owner never trips the guard. The
//!    plan still carries the full preview.
//!
//! # Failed rows protect their user
//! A row that fails (in validation, as a [`RowFail`], or here) never lets its user be
//! archived as missing: every current user its `user_guid`, `custom_id` or `email` resolves
//! to is protected. A validation failure that could not read any identifier protects no one.

mod guard;
mod index;
pub(crate) use index::Index;
mod merge;
mod planner;
mod school;
mod username;
mod window;

pub use school::SchoolOnly;
pub use window::{SweepFound, WindowKeys, Windows};

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(doc)]
use crate::domain::CurrentUser;
pub use crate::domain::RowFail;
use crate::domain::encoded::{At, Encoded};
use crate::domain::{CurrentUsers, Grade, IncomingUser, Role, Scope, Source, Status};
use index::fold_case;

#[cfg(doc)]
use crate::auth::MIN_PASSWORD_CHARS;

use planner::Planner;

/// Thresholds and switches for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Guard: trip when more than this percentage of the source's users would be archived…
    pub archive_pct: f64,
    /// …and at least this many. Also the minimum for the update guard.
    pub archive_min: usize,
    /// Guard: trip when more than this percentage of the source's users would be updated.
    pub update_pct: f64,
    /// Which users missing from the feed are archived: those of its source, every file and
    /// manual user of the district, or nobody ([`Scope::Patch`]: delta feeds, which list only
    /// what changed, and fixed error files).
    pub scope: Scope,
    /// An admin approved this run past the guard.
    pub approved: bool,
    /// Per-school guard: trip when more than this percentage of one school's users in scope
    /// would be archived…
    pub school_pct: f64,
    /// …and that school had at least this many users in scope.
    pub school_min: usize,
    /// Names for messages (the planner is pure: it is told them).
    pub names: Names,
    /// Users that runs of other file sources, queued behind this one, list: a
    /// [`Scope::Source`] sweep leaves them for those runs to move (rule 7).
    pub elsewhere: Elsewhere,
    /// A file for one school ([`SchoolOnly`], issue 16 item 6): rows of other schools and
    /// matches of other schools' users are errors, and only that school's users are swept.
    pub school: Option<SchoolOnly>,
}

/// Identifiers listed by the files of other sources waiting in the district's queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Elsewhere {
    pub guids: HashSet<Uuid>,
    pub custom_ids: HashSet<String>,
    /// Lower-cased.
    pub emails: HashSet<String>,
}

impl Elsewhere {
    /// Does a waiting file list `user` (by any of their identifiers)?
    pub fn lists(&self, guid: Uuid, custom_id: Option<&str>, email: Option<&str>) -> bool {
        self.guids.contains(&guid)
            || custom_id.is_some_and(|c| self.custom_ids.contains(c))
            || email.is_some_and(|e| self.emails.contains(fold_case(e).as_ref()))
    }

    pub fn is_empty(&self) -> bool {
        self.guids.is_empty() && self.custom_ids.is_empty() && self.emails.is_empty()
    }
}

/// What the planner calls things an admin knows by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    /// Sync connection id → its name (`provisioned by roster sync "Clever"`).
    pub syncs: HashMap<Uuid, String>,
    /// School external ID → the school's name (the per-school guard names the school).
    pub schools: HashMap<String, String>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            archive_pct: 10.0,
            archive_min: 10,
            update_pct: 75.0,
            scope: Scope::Source,
            approved: false,
            school_pct: 50.0,
            school_min: 20,
            names: Names::default(),
            elsewhere: Elsewhere::default(),
            school: None,
        }
    }
}

/// The planner's only source of randomness and of keyed secrets.
pub trait Secrets {
    fn temp_password(&mut self) -> String;
    fn new_guid(&mut self) -> Uuid;
    /// The fingerprint stored for a password a feed gives `user_guid` (in production an
    /// HMAC-SHA256 keyed with the installation's secret: `crypto::FeedPasswordKey`).
    /// Comparing it with [`CurrentUser::feed_password_mac`] tells whether the feed's password
    /// changed since it was last applied, without an argon2 verification per row.
    fn password_fingerprint(&self, user_guid: Uuid, password: &str) -> [u8; 32];
}

/// Every column of a user row the apply layer writes (insert for created, update otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub user_guid: Uuid,
    pub custom_id: Option<CompactString>,
    pub email: Option<CompactString>,
    pub username: CompactString,
    pub first_name: CompactString,
    pub middle_name: CompactString,
    pub last_name: CompactString,
    pub role: Role,
    /// School external IDs, sorted and de-duplicated.
    pub schools: Vec<CompactString>,
    pub grade: Grade,
    pub position: CompactString,
    pub status: Status,
    pub source: Source,
    pub source_key: Option<CompactString>,
    pub prevent_archiving: bool,
}

/// What happens to one row. `changed` lists canonical column names (`email`, `grade`,
/// `school_external_id`, …) in column order, then `source` and `source_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated {
        changed: Vec<&'static str>,
    },
    Unchanged,
    /// The user was archived and comes back (same GUID and history); `changed` may be empty.
    Restored {
        changed: Vec<&'static str>,
    },
    /// A `to_be_deleted` sync record archived its user (the user is in [`Plan::archive`]).
    Archived,
    /// Not this feed's to change, and unchanged (a sync-owned user in the master CSV sent
    /// back): neither an error nor a write.
    Skipped,
    Error {
        message: String,
    },
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated { .. } => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Restored { .. } => "restored",
            Outcome::Archived => "archived",
            Outcome::Skipped => "skipped",
            Outcome::Error { .. } => "error",
        }
    }
}

/// How a row found its user (SPEC §4, "Matching"); the completed file's `matched_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    Guid,
    CustomId,
    Email,
    /// Nobody matched: a new user.
    New,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Guid => "guid",
            MatchedBy::CustomId => "custom_id",
            MatchedBy::Email => "email",
            MatchedBy::New => "new",
        }
    }
}

/// One incoming row's result.
///
/// Kept small (a first import has one for each of a million rows): what only some rows
/// say — a move, kept fields, a feed password — is boxed in [`RowExtra`] (184 → 128 bytes).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct RowPlan {
    pub line: u64,
    pub outcome: Outcome,
    /// How the row found its user; `None` when it found nobody and created nobody (errors,
    /// `to_be_deleted` records for unknown users).
    pub matched_by: Option<MatchedBy>,
    /// The user the row is about: created, matched, or (for errors) identified when possible.
    pub user_guid: Option<Uuid>,
    /// The user's username after the run; `None` for errors and rows that match nobody.
    pub username: Option<CompactString>,
    /// For a user created without a password: shown once in the completed file.
    pub temp_password: Option<CompactString>,
    /// What to write; `None` for unchanged, archived and error rows. Boxed: most rows of a
    /// re-upload write nothing, and an inline `NewUser` would cost 264 bytes per row anyway.
    pub write: Option<Box<NewUser>>,
    /// What few rows say; `None` when none of it applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<Box<RowExtra>>,
}

/// What only some rows say (see [`RowPlan`]).
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct RowExtra {
    /// The user's owner before this run when the row moves them to another owner (`moved`).
    pub previous_source: Option<Source>,
    /// Fields of the matched user this row would have changed but an admin keeps.
    pub kept: Vec<&'static str>,
    /// The feed's password for a user created here, or for an existing user when it differs
    /// from the one the feed gave last time, for the apply layer to hash. Never serialised.
    #[serde(skip)]
    pub password: Option<String>,
    /// The fingerprint to store with [`RowExtra::password`] ([`Secrets::password_fingerprint`]).
    #[serde(skip)]
    pub password_mac: Option<[u8; 32]>,
}

impl RowExtra {
    /// The box for a row, or `None` when it would say nothing.
    pub fn boxed(self) -> Option<Box<RowExtra>> {
        (self != RowExtra::default()).then(|| Box::new(self))
    }
}

/// Passwords stay out of logs.
impl fmt::Debug for RowExtra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowExtra")
            .field("previous_source", &self.previous_source)
            .field("kept", &self.kept)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "password_mac",
                &self.password_mac.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Passwords stay out of logs.
impl fmt::Debug for RowPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |p: Option<&str>| p.map(|_| "<redacted>");
        f.debug_struct("RowPlan")
            .field("line", &self.line)
            .field("outcome", &self.outcome)
            .field("matched_by", &self.matched_by)
            .field("user_guid", &self.user_guid)
            .field("username", &self.username)
            .field("temp_password", &redact(self.temp_password.as_deref()))
            .field("write", &self.write)
            .field("extra", &self.extra)
            .finish()
    }
}

impl RowPlan {
    /// The user's owner before this run when the row moves them (`moved`).
    pub fn previous_source(&self) -> Option<&Source> {
        self.extra.as_ref().and_then(|e| e.previous_source.as_ref())
    }

    /// Fields of the matched user this row would have changed but an admin keeps.
    pub fn kept(&self) -> &[&'static str] {
        self.extra.as_ref().map_or(&[], |e| e.kept.as_slice())
    }

    /// The feed's password to hash for this row (see [`RowExtra::password`]).
    pub fn password(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.password.as_deref())
    }

    /// The fingerprint to store with [`RowPlan::password`].
    pub fn password_mac(&self) -> Option<&[u8; 32]> {
        self.extra.as_ref().and_then(|e| e.password_mac.as_ref())
    }
}

impl RowPlan {
    /// A row that found its user and changed nothing, with nothing else to say (not moved, no
    /// kept field, no temporary password): all its result is (line, user, how matched).
    pub fn is_plainly_unchanged(&self) -> bool {
        matches!(self.outcome, Outcome::Unchanged)
            && self.previous_source().is_none()
            && self.kept().is_empty()
            && self.temp_password.is_none()
            && self.user_guid.is_some()
            && self.matched_by.is_some()
    }

    /// The row as a [`QuietRow`] when it is plainly unchanged (and its line fits).
    fn quiet_row(&self) -> Option<QuietRow> {
        if !self.is_plainly_unchanged() {
            return None;
        }
        Some(QuietRow {
            line: u32::try_from(self.line).ok()?,
            user_guid: self.user_guid?,
            matched_by: self.matched_by?,
        })
    }
}

/// A plainly unchanged row ([`RowPlan::is_plainly_unchanged`]) kept in 24 bytes instead of a
/// [`RowPlan`]'s 176: a re-import of a million unchanged users holds a million of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuietRow {
    pub line: u32,
    pub user_guid: Uuid,
    pub matched_by: MatchedBy,
}

/// The rows of a compact plan that create a user ([`plan_rows`] with `compact`): each user
/// and its temporary password encoded with `postcard` in blocks ([`Encoded`], which grow
/// without being copied), found by position or by the line that creates it. ~120 bytes a
/// created row, where a [`RowPlan`] (128 bytes) with a boxed [`NewUser`] and its schools took
/// ~430 (a first import of a million users holds a million of them until they are written).
/// What few created rows say besides (a feed's password and its fingerprint) is kept beside,
/// by position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatedUsers {
    users: Encoded<(NewUser, Option<CompactString>)>,
    /// The creating rows' lines, ascending, and where each row is kept.
    lines: Vec<u64>,
    at: Vec<At>,
    /// (position, what the row says besides), ascending by position.
    extras: Vec<(u32, Box<RowExtra>)>,
}

impl CreatedUsers {
    /// Keep `row` here when it is a created row that [`CreatedUsers::row`] gives back as it
    /// is; otherwise give it back.
    fn keep(&mut self, row: RowPlan) -> Option<RowPlan> {
        let fits = matches!(row.outcome, Outcome::Created)
            && row.matched_by == Some(MatchedBy::New)
            && self.lines.last().is_none_or(|&l| l < row.line)
            && u32::try_from(self.lines.len()).is_ok()
            && row.write.as_ref().is_some_and(|w| {
                row.user_guid == Some(w.user_guid) && row.username.as_ref() == Some(&w.username)
            });
        if !fits {
            return Some(row);
        }
        let RowPlan {
            line,
            temp_password,
            write,
            extra,
            ..
        } = row;
        let user = write.expect("a created row that fits has its write");
        if let Some(extra) = extra {
            self.extras.push((self.lines.len() as u32, extra));
        }
        self.at.push(self.users.push(&(*user, temp_password)));
        self.lines.push(line);
        None
    }

    fn decode(&self, i: usize) -> (NewUser, Option<CompactString>) {
        self.users.get(self.at[i])
    }

    fn extra(&self, i: usize) -> Option<&RowExtra> {
        let at = self
            .extras
            .binary_search_by_key(&(i as u32), |(p, _)| *p)
            .ok()?;
        Some(&self.extras[at].1)
    }

    /// The `i`th created row (in line order), as the planner made it.
    pub fn row(&self, i: usize) -> RowPlan {
        let (user, temp_password) = self.decode(i);
        RowPlan {
            line: self.lines[i],
            outcome: Outcome::Created,
            matched_by: Some(MatchedBy::New),
            user_guid: Some(user.user_guid),
            username: Some(user.username.clone()),
            temp_password,
            write: Some(Box::new(user)),
            extra: self.extra(i).map(|e| Box::new(e.clone())),
        }
    }

    /// The user the row at `line` creates.
    pub fn get(&self, line: u64) -> Option<NewUser> {
        let i = self.lines.binary_search(&line).ok()?;
        Some(self.decode(i).0)
    }

    /// Every user created, with the line creating them, in line order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, NewUser)> + '_ {
        (0..self.lines.len()).map(|i| (self.lines[i], self.decode(i).0))
    }

    /// The feed's passwords to hash for the users created here, by line.
    pub fn passwords(&self) -> impl Iterator<Item = (u64, &str)> + '_ {
        self.extras
            .iter()
            .filter_map(|(i, e)| e.password.as_deref().map(|p| (self.lines[*i as usize], p)))
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn shrink_to_fit(&mut self) {
        self.lines.shrink_to_fit();
        self.at.shrink_to_fit();
        self.extras.shrink_to_fit();
    }
}

/// Row outcomes counted; `archived` is the length of [`Plan::archive`] (missing users and
/// `to_be_deleted` rows alike), so the row counts add up to the row total minus the
/// [`Outcome::Archived`] rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub restored: usize,
    pub archived: usize,
    pub errors: usize,
    /// Rows whose user changed owner (also counted as updated, unchanged or restored).
    pub moved: usize,
    pub skipped: usize,
}

impl Counts {
    /// The outcomes of `rows` counted, with `archived` users archived (missing users and
    /// `to_be_deleted` rows alike: [`Outcome::Archived`] rows are not counted again).
    pub fn of(rows: &[RowPlan], archived: usize) -> Counts {
        let mut counts = Counts {
            archived,
            ..Counts::default()
        };
        for row in rows {
            match row.outcome {
                Outcome::Created => counts.created += 1,
                Outcome::Updated { .. } => counts.updated += 1,
                Outcome::Unchanged => counts.unchanged += 1,
                Outcome::Restored { .. } => counts.restored += 1,
                Outcome::Archived => {}
                Outcome::Skipped => counts.skipped += 1,
                Outcome::Error { .. } => counts.errors += 1,
            }
            if row.previous_source().is_some() {
                counts.moved += 1;
            }
        }
        counts
    }
}

/// Why a run stops in Needs Review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    /// E.g. `would archive 4,210 of 5,000 users of students.csv (84%)`.
    pub reason: String,
    pub would_archive: usize,
    pub would_update: usize,
    pub source_total: usize,
    /// Names of the schools the per-school guard stops for (empty when it did not trip).
    pub schools: Vec<String>,
}

/// The full preview of a run. When `review` is `Some`, the apply layer applies nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// One per incoming row, in file order — except, in a compact plan ([`plan_rows`] with
    /// `compact`), the plainly unchanged rows, which are in [`Plan::unchanged`] instead, and
    /// the rows that create a user, in [`Plan::created`].
    pub rows: Vec<RowPlan>,
    /// A compact plan's plainly unchanged rows, in file order (empty otherwise).
    pub unchanged: Vec<QuietRow>,
    /// A compact plan's rows that create a user, in file order (empty otherwise).
    #[serde(skip)]
    pub created: CreatedUsers,
    /// Users to archive, sorted.
    pub archive: Vec<Uuid>,
    pub counts: Counts,
    pub review: Option<Review>,
    /// Current non-archived users in the run's scope (before the run): the source's users, or
    /// for [`Scope::District`] every user not owned by a roster sync.
    pub source_total: usize,
}

impl Plan {
    /// The rows kept one by one: [`Plan::rows`], then a compact plan's created rows (every
    /// row but the plainly unchanged ones of a compact plan).
    pub fn row_count(&self) -> usize {
        self.rows.len() + self.created.len()
    }

    /// Row `i` of the [`Plan::row_count`] rows (a created row decoded).
    pub fn row(&self, i: usize) -> std::borrow::Cow<'_, RowPlan> {
        match self.rows.get(i) {
            Some(row) => std::borrow::Cow::Borrowed(row),
            None => std::borrow::Cow::Owned(self.created.row(i - self.rows.len())),
        }
    }
}

#[cfg(test)]
impl Plan {
    /// A compact plan's created rows put back among its rows, in line order (tests compare
    /// plans).
    pub fn with_writes(mut self) -> Plan {
        let created = std::mem::take(&mut self.created);
        self.rows.extend((0..created.len()).map(|i| created.row(i)));
        self.rows.sort_by_key(|r| r.line);
        self
    }
}

/// Plan one feed against every user of the district (all sources, archived included).
/// Linear in `current.len() + incoming.len()`.
pub fn plan(
    current: &CurrentUsers,
    incoming: Vec<Result<IncomingUser, RowFail>>,
    source: &Source,
    rules: &Rules,
    secrets: &mut dyn Secrets,
) -> Plan {
    let reserved = reserved_usernames(&incoming);
    let n = incoming.len();
    plan_rows(
        current,
        GivenNames::Lines(reserved),
        incoming,
        n,
        source,
        rules,
        secrets,
        Mode {
            compact: false,
            distinct: false,
        },
    )
}

/// How [`plan_rows`] holds a plan, and what it may assume of the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Plainly unchanged rows go to [`Plan::unchanged`] (24 bytes each) rather than
    /// [`Plan::rows`], and created users to [`Plan::created`] (encoded) rather than each row's
    /// `write`: what a run applies and reports is the same either way.
    pub compact: bool,
    /// No two accepted rows carry the same custom_id, email or explicit username (the file
    /// and set readers refuse every duplicate: `feed::validate::KeyColumns`): the
    /// run then does not remember which line took which custom_id or email (a first import
    /// of a million users held ~70 MB of them; issue 19). Rule 5 is the same either way.
    pub distinct: bool,
}

impl Mode {
    /// How a run plans a feed its readers checked.
    pub const FEED: Mode = Mode {
        compact: true,
        distinct: true,
    };
}

/// The usernames rows give explicitly (line, name): generated usernames must avoid them.
pub fn reserved_usernames(incoming: &[Result<IncomingUser, RowFail>]) -> Vec<(u64, CompactString)> {
    incoming
        .iter()
        .flatten()
        .filter_map(|inc| merge::explicit_username(inc).map(|n| (inc.line, n.into())))
        .collect()
}

/// The usernames a feed's rows give explicitly: generated usernames must avoid them, and
/// they are known before the first row is planned (`john.smith` generated on line 2 cannot
/// take the `john.smith` line 90 asks for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GivenNames {
    /// Each with its line: rows may give the same name twice (rule 5 then names the line
    /// that gave it first).
    Lines(Vec<(u64, CompactString)>),
    /// Only their keys ([`crate::domain::fold::username_key`]), sorted: for rows that never
    /// give a name twice ([`Mode::distinct`]). 8 bytes a name, where a name and its line took
    /// ~40 (a sync or a master CSV of a million users gives a million). A generated candidate
    /// whose key is among them is passed over: a taken name is never given, and a free one is
    /// passed over once in 2^64.
    Keys(Vec<u64>),
}

/// [`plan`] over rows that arrive one at a time (a file read a second time, so a million
/// rows never sit in memory at once). `given` are the usernames the feed's rows give; `len`
/// is a capacity hint; `mode` says how the plan is held and what the rows are known to be.
#[allow(clippy::too_many_arguments)]
pub fn plan_rows(
    current: &CurrentUsers,
    given: GivenNames,
    incoming: impl IntoIterator<Item = Result<IncomingUser, RowFail>>,
    len: usize,
    source: &Source,
    rules: &Rules,
    secrets: &mut dyn Secrets,
    mode: Mode,
) -> Plan {
    let Mode { compact, distinct } = mode;
    let mut planner = Planner::new(current, source, rules, distinct);
    planner.reserve_usernames(given);

    // A compact plan does not know how many rows will be quiet: its lists grow as needed.
    let mut rows = Vec::with_capacity(if compact { len.min(4096) } else { len });
    let mut unchanged = Vec::with_capacity(if compact { len } else { 0 });
    let mut created = CreatedUsers::default();
    for item in incoming {
        let row = match item {
            Ok(inc) => planner.row(inc, secrets),
            Err(fail) => planner.failed(fail),
        };
        hold(compact, row, &mut rows, &mut unchanged, &mut created);
    }
    assemble(rows, unchanged, created, planner.finish(), rules, source)
}

/// Keep one planned row as the plan holds it ([`Mode::compact`]).
fn hold(
    compact: bool,
    row: RowPlan,
    rows: &mut Vec<RowPlan>,
    unchanged: &mut Vec<QuietRow>,
    created: &mut CreatedUsers,
) {
    if !compact {
        rows.push(row);
    } else if let Some(quiet) = row.quiet_row() {
        unchanged.push(quiet);
    } else if let Some(row) = created.keep(row) {
        rows.push(row);
    }
}

/// The plan from its rows and its sweep: counted, and the guard asked.
fn assemble(
    rows: Vec<RowPlan>,
    mut unchanged: Vec<QuietRow>,
    mut created: CreatedUsers,
    sweep: planner::Sweep,
    rules: &Rules,
    source: &Source,
) -> Plan {
    unchanged.shrink_to_fit();
    created.shrink_to_fit();
    let (mut archive, source_total) = (sweep.archive, sweep.scope_total);
    archive.sort_unstable();
    archive.dedup();

    let mut counts = Counts::of(&rows, archive.len());
    // Created rows never move a user: all they count is themselves.
    counts.created += created.len();
    counts.unchanged += unchanged.len();
    let review = guard::review(
        rules,
        source,
        source_total,
        counts.archived,
        counts.updated,
        &sweep.schools,
    );
    Plan {
        rows,
        unchanged,
        created,
        archive,
        counts,
        review,
        source_total,
    }
}

/// [`plan_rows`] for a feed a run's reader checked ([`Mode::FEED`]): `given` are the keys of
/// the usernames its rows give ([`GivenNames::Keys`]).
pub fn plan_feed(
    current: &CurrentUsers,
    given: Vec<u64>,
    incoming: impl IntoIterator<Item = Result<IncomingUser, RowFail>>,
    len: usize,
    source: &Source,
    rules: &Rules,
    secrets: &mut dyn Secrets,
) -> Plan {
    let given = GivenNames::Keys(given);
    plan_rows(
        current,
        given,
        incoming,
        len,
        source,
        rules,
        secrets,
        Mode::FEED,
    )
}

/// The mass-change guard for a plan made elsewhere (an undo, `reconcile::undo`): the same
/// thresholds and wording as a feed's.
pub fn guard_review(
    rules: &Rules,
    source: &Source,
    source_total: usize,
    would_archive: usize,
    would_update: usize,
) -> Option<Review> {
    guard::review(
        rules,
        source,
        source_total,
        would_archive,
        would_update,
        &[],
    )
}
