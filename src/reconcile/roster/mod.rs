//! The roster planner (SPEC §4 and §6a): the district's classes, terms and enrollments plus
//! one feed's [`RosterFeed`] in, the terms, classes and enrollments to write out. Pure: no SQL,
//! no HTTP, no clock; new ids come through [`Secrets::new_guid`].
//!
//! # Rules
//! 1. **Terms** are keyed by `external_id` in the district: a new one is created, a changed
//!    one (title, start, end) updated; terms are never removed.
//! 2. **Classes** are keyed by `external_id`. A class needs a known school (the district's,
//!    by `school_external_id`) and, when it names one, a known term (the feed's or the
//!    district's); otherwise its record is an error naming file, line and column. A class
//!    listed twice must say the same thing both times (a roster CSV repeats it on every row).
//! 3. **Ownership** as users (SPEC §4): a class of this source is updated; a file takes over a
//!    class of another file source or a manual one (`moved`); a class owned by a roster sync in
//!    a file (or by another sync in a sync) is an error `provisioned by roster sync "X"`
//!    unless the record changes nothing (`skipped`). A sync adopts file and manual classes.
//!    **Editing in place** (like the users' master CSV): a record that names its class by
//!    `class_guid` ([`RosterFeed::class_guids`]; the classes and enrollments downloads carry
//!    it) edits a file or manual class of another source without moving it (its source is
//!    kept); a sync's class so named that changes nothing is skipped, and so are its
//!    enrollments that change nothing (not errors: the download sent back). A GUID that
//!    names no class of the district, or another class than `class_external_id`, is an
//!    error on `class_guid`. The enrollments of a class edited in place are added and
//!    changed as listed; missing ones end only with [`RosterFeed::district_scope`] (an
//!    enrollments download sent back with scope `district` and rows removed ends those
//!    rows' enrollments, and they count in the guard's total); with scope `source` a file
//!    ends only enrollments of its own source's classes, so a download sent back as it is
//!    changes nothing.
//! 4. **Archive and restore**: an archived class listed again is restored (same id,
//!    enrollments kept). With [`RosterFeed::classes_complete`], a non-archived class of this
//!    source the feed does not list is archived; a `to_be_deleted` class of this source (or
//!    one this feed could take over) is archived. A class that is archived keeps its
//!    enrollments (they come back with it) and they are not counted as ended.
//! 5. **Enrollments** are keyed by (class, user). The class must be in the feed or the
//!    district; the user ([`UserRef::Key`]: user_guid, else custom_id, else email,
//!    case-insensitive; [`UserRef::Provider`]: `source_key` of a user of this source) must be
//!    known — the district's users as this same run leaves them, created and restored users
//!    included; an archived user is an error, unless the record repeats their enrollment
//!    unchanged (the enrollments download lists it). A user with schools must be at the class's
//!    school (a user with no school at all, a district-level account, may be enrolled
//!    anywhere). A Student enrolled as teacher, or anyone else enrolled as student, is an
//!    error (`teacher enrolled as student`). The same class and user twice is an error on
//!    the later line. An enrollment of a class this feed may not change (an error class, or
//!    another owner's that it could not take over) is an error. Otherwise it is added,
//!    changed (role, primary, begin, end) or unchanged; `to_be_deleted` ends it. A feed
//!    without enrollment dates ([`RosterFeed::keeps_enrollment_dates`], the roster CSV)
//!    leaves an enrollment's begin and end as they are.
//! 6. **Ended**: with [`RosterFeed::enrollments_complete`], an enrollment of a class of this
//!    source (after this run's take-overs) that the feed does not list ends, unless the class
//!    is archived by this run or stays archived (rule 4: the next run of the same file does
//!    not end what the last one kept).
//! 7. **Errors protect what they name**: a failed class record keeps its class from being
//!    archived and its enrollments from ending; a failed enrollment record keeps its class
//!    from being archived and its enrollment (or, when its user is unknown to the reader,
//!    every enrollment of its class) from ending.
//! 8. **Guard** (unless approved): ending more than `archive_pct`% of this source's current
//!    enrollments (and at least `archive_min`), or archiving more than that share of its
//!    non-archived classes, stops the whole run (users too) in Needs Review with a reason
//!    naming what would end or be archived.

#[cfg(test)]
mod tests;
mod users;
pub mod writes;

// hashbrown's maps (foldhash): the planner looks up millions of enrollment keys, and std's
// SipHash on a pair of GUIDs cost more than the lookups themselves.
use compact_str::CompactString;
use hashbrown::{DefaultHashBuilder, HashMap, HashSet, HashTable};
use std::hash::BuildHasher;

use serde::Serialize;
use time::Date;
use uuid::Uuid;

use super::plan::Plan as UserPlan;
use super::plan::Secrets;
use crate::domain::chunked::Chunked;
use crate::domain::roster::{
    At, CLASS_GUID_COLUMN, EnrollmentRole, Id, IncomingClass, IncomingEnrollment, IncomingTerm,
    RosterFeed, UserRef,
};
pub use crate::domain::roster::{
    CurrentClass, CurrentEnrollment, CurrentEnrollments, CurrentTerm, RosterCounts,
    RosterCurrent as Current,
};
use crate::domain::{CurrentUsers, Role, Source};
use users::{FeedUsers, RosterUser};

/// Thresholds and names for one run.
#[derive(Debug, Clone)]
pub struct RosterRules {
    pub archive_pct: f64,
    pub archive_min: usize,
    pub approved: bool,
    /// Sync connection id → its name.
    pub syncs: std::collections::HashMap<Uuid, String>,
}

impl Default for RosterRules {
    fn default() -> Self {
        RosterRules {
            archive_pct: 10.0,
            archive_min: 10,
            approved: false,
            syncs: std::collections::HashMap::new(),
        }
    }
}

/// A class's columns to write (insert or update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassWrite {
    pub id: Uuid,
    pub external_id: String,
    pub school_id: Uuid,
    pub title: String,
    pub course_code: String,
    pub subject: String,
    pub period: String,
    pub grades: Vec<String>,
    pub term_id: Option<Uuid>,
    pub source: Source,
}

/// What happens to a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassChange {
    Create,
    Update,
    Restore,
}

/// A class to write, with the values it replaces (for the audit entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassPlan {
    pub change: ClassChange,
    pub write: ClassWrite,
    /// The class before (`None` for a new one).
    pub before: Option<CurrentClass>,
    /// Changed column names (`title`, `school`, …; `source` when it moved).
    pub changed: Vec<&'static str>,
}

/// A term to insert or update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermWrite {
    pub id: Uuid,
    pub external_id: String,
    pub title: String,
    pub start: Option<Date>,
    pub end: Option<Date>,
    pub created: bool,
}

/// An enrollment to insert or update (same key), with where its record's result goes.
///
/// An enrollment written is its record's result too (added, or changed with the fields that
/// changed): the plan keeps no [`RecordResult`] beside it, only the record's place in the
/// results (`seq`), its file, line and key (a number in the plan's table of keys: a file's
/// millions of enrollments name thousands of classes). Its class and user are numbers in the
/// plan's tables of them ([`RosterPlan::write_now`] gives the enrollment back), and the
/// enrollment before a change is kept beside the writes ([`RosterPlan::write_before`]): a
/// first sync adds millions and changes none. 32 bytes a write, where a 56-byte write and a
/// 64-byte result were 120 (issue 19, memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentWrite {
    /// A number in [`RosterPlan`]'s `class_ids`.
    class: u32,
    /// A number in [`RosterPlan`]'s `user_ids`.
    user: u32,
    begin: Option<Date>,
    end: Option<Date>,
    /// The record's position in the run's results ([`RosterPlan::result`]).
    pub seq: u32,
    /// As [`RecordResult::line`].
    pub line: u32,
    /// [`RecordResult::key`]'s number in [`RosterPlan::keys`].
    key: u32,
    /// As [`RecordResult::file`].
    pub file: u16,
    /// `TEACHER`, `PRIMARY`, `CHANGED`.
    flags: u8,
}

const TEACHER: u8 = 1;
const PRIMARY: u8 = 2;
/// A change: the enrollment before is in [`RosterPlan`]'s `befores`.
const CHANGED: u8 = 4;

impl EnrollmentWrite {
    /// Does it change an enrollment (not add one)?
    pub fn changed(&self) -> bool {
        self.flags & CHANGED != 0
    }
}

/// One record's result (per class record and per enrollment record).
///
/// Kept small (a first sync has one for each of millions of enrollments added): what only
/// some results say — the fields changed, the error — is boxed in [`ResultDetail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResult {
    pub kind: RecordKind,
    pub outcome: RecordOutcome,
    /// The record's file: its position in [`RosterPlan::files`] (a run reads a handful of
    /// files, and a first sync keeps millions of results: 2 bytes, not a 24-byte name).
    pub file: u16,
    /// The record's line (or position in a list); a file has fewer than 2^32 lines.
    pub line: u32,
    pub class_id: OptId,
    pub user_id: OptId,
    /// The class's or enrollment's external key as the feed gave it (an enrollment's shares
    /// its record's class id: no copy for each of millions).
    pub key: Id,
    pub detail: Option<Box<ResultDetail>>,
}

/// An optional id in 16 bytes, not 17 (8 bytes a result once aligned, 24 MiB of a first
/// sync's 3,000,000): the nil UUID stands for none, and no class or user has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptId(Uuid);

impl OptId {
    pub fn get(self) -> Option<Uuid> {
        (!self.0.is_nil()).then_some(self.0)
    }
}

impl From<Option<Uuid>> for OptId {
    fn from(id: Option<Uuid>) -> OptId {
        OptId(id.unwrap_or_default())
    }
}

/// The part of a [`RecordResult`] most results do not have.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResultDetail {
    pub changed: Vec<&'static str>,
    /// The error, naming file, line and column.
    pub error: Option<String>,
    /// The column at fault, when one is.
    pub column: Option<CompactString>,
}

impl RecordResult {
    /// The fields a change touched (none for most outcomes).
    pub fn changed(&self) -> &[&'static str] {
        self.detail.as_deref().map_or(&[], |d| d.changed.as_slice())
    }

    /// The error, naming file, line and column, for an outcome `error`.
    pub fn error(&self) -> Option<&str> {
        self.detail.as_deref().and_then(|d| d.error.as_deref())
    }

    /// The column at fault, when one is.
    pub fn column(&self) -> Option<&str> {
        self.detail.as_deref().and_then(|d| d.column.as_deref())
    }
}

/// A record's line as results keep it (saturating: a file has fewer than 2^32 lines).
pub(crate) fn result_line(line: u64) -> u32 {
    u32::try_from(line).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Term,
    Class,
    Enrollment,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Term => "term",
            RecordKind::Class => "class",
            RecordKind::Enrollment => "enrollment",
        }
    }
}

/// A record's outcome. Classes: created, updated, unchanged, restored, archived, skipped,
/// error. Enrollments: added, changed, unchanged, ended, error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordOutcome {
    Created,
    Updated,
    Unchanged,
    Restored,
    Archived,
    Skipped,
    Added,
    Changed,
    Ended,
    Error,
}

impl RecordOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordOutcome::Created => "created",
            RecordOutcome::Updated => "updated",
            RecordOutcome::Unchanged => "unchanged",
            RecordOutcome::Restored => "restored",
            RecordOutcome::Archived => "archived",
            RecordOutcome::Skipped => "skipped",
            RecordOutcome::Added => "added",
            RecordOutcome::Changed => "changed",
            RecordOutcome::Ended => "ended",
            RecordOutcome::Error => "error",
        }
    }
}

/// Why the rosters stop a run for review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterReview {
    pub reason: String,
    pub would_end: usize,
    pub would_archive: usize,
}

/// The whole roster plan of one run.
#[derive(Debug, Clone, Default)]
pub struct RosterPlan {
    pub terms: Vec<TermWrite>,
    /// Classes created, updated or restored.
    pub classes: Vec<ClassPlan>,
    /// Classes archived (current state before).
    pub archive: Vec<CurrentClass>,
    /// Enrollments added or changed, each with its record's result. In chunks, like the
    /// feed's records they are made from: each chunk can take the memory a chunk of those
    /// just gave back (issue 15). Added with [`RosterPlan::push_enrollment`].
    pub enrollments: Chunked<EnrollmentWrite>,
    /// Enrollments ended (as they were).
    pub ended: Vec<CurrentEnrollment>,
    /// The results of the records that wrote no enrollment, in order; with those of
    /// `enrollments` (each at its `seq`) they are the run's results ([`RosterPlan::results`]).
    listed: Chunked<RecordResult>,
    /// The names of the files the results came from ([`RecordResult::file`]).
    pub files: Vec<CompactString>,
    /// The keys of the enrollments written ([`EnrollmentWrite`]'s), each once.
    keys: Vec<Id>,
    key_numbers: HashMap<Id, u32>,
    /// The classes of the enrollments written, each once.
    class_ids: Vec<Uuid>,
    class_numbers: HashMap<Uuid, u32>,
    /// Their users: the planner's numbers of the users its feed names (each once), or, for
    /// a write pushed without one, numbered here.
    user_ids: Vec<Uuid>,
    user_numbers: HashMap<Uuid, u32>,
    /// The enrollments before of the writes that change one, by the write's position.
    befores: Vec<(u32, CurrentEnrollment)>,
    pub counts: RosterCounts,
    pub review: Option<RosterReview>,
    /// The run stores no result for an enrollment written ([`RosterPlan::stored_len`]): a
    /// sync's feed (not [`RosterFeed::every_result`]), or an undo. Its writes are in the run's
    /// changes already (for undo: one row per enrollment changed or ended, one per class for
    /// those added, migration 0035), and nothing reads
    /// a sync's record results but its errors: a first sync of 3,000,000 enrollments wrote
    /// 3,000,000 result rows that repeated them (~16 s).
    pub writes_unlisted: bool,
    /// How many records the plan read, when it lists only some of them (an undo: one record
    /// per class or enrollment the undone run changed); otherwise they are its results' lines.
    pub records: Option<usize>,
}

impl RosterPlan {
    /// How many results the run stores: every result, or with
    /// [`RosterPlan::writes_unlisted`] those of the records that wrote no enrollment
    /// (classes written, errors, skipped records).
    pub fn stored_len(&self) -> usize {
        if self.writes_unlisted {
            self.listed.len()
        } else {
            self.results_len()
        }
    }

    /// The stored results from `i` on (`i` counts stored results), in order.
    pub fn stored_from(&self, i: usize) -> Box<dyn Iterator<Item = RecordResult> + '_> {
        if self.writes_unlisted {
            Box::new((i..self.listed.len()).map(|j| self.listed[j].clone()))
        } else {
            Box::new(self.results_from(i))
        }
    }

    /// How many results the run has (one per record).
    pub fn results_len(&self) -> usize {
        self.listed.len() + self.enrollments.len()
    }

    /// A record's result that wrote no enrollment.
    pub(crate) fn push_result(&mut self, r: RecordResult) {
        self.listed.push(r);
    }

    /// An enrollment to add (`before` `None`) or change, and its record's result (added or
    /// changed) at the record's `file`, `line` and `key`. `user`: the user's number in the
    /// plan's users ([`RosterPlan::number_users`]), if the caller has it.
    pub(crate) fn push_enrollment(
        &mut self,
        now: CurrentEnrollment,
        before: Option<CurrentEnrollment>,
        at: (u16, u32, Id),
        user: Option<u32>,
    ) {
        let (file, line, key) = at;
        let seq = u32::try_from(self.results_len()).expect("fewer than 2^32 records");
        let key = number(&mut self.keys, &mut self.key_numbers, key);
        let class = number(&mut self.class_ids, &mut self.class_numbers, now.class_id);
        let user = match user {
            Some(n) => {
                debug_assert_eq!(self.user_ids[n as usize], now.user_id);
                n
            }
            None => number(&mut self.user_ids, &mut self.user_numbers, now.user_id),
        };
        if let Some(b) = before {
            let at = u32::try_from(self.enrollments.len()).expect("fewer than 2^32 writes");
            self.befores.push((at, b));
        }
        let flag = |on: bool, f: u8| if on { f } else { 0 };
        self.enrollments.push(EnrollmentWrite {
            class,
            user,
            begin: now.begin,
            end: now.end,
            seq,
            line,
            key,
            file,
            flags: flag(now.role == EnrollmentRole::Teacher, TEACHER)
                | flag(now.primary, PRIMARY)
                | flag(before.is_some(), CHANGED),
        });
    }

    /// The users a planner names by number in [`RosterPlan::push_enrollment`]: number `n`
    /// is `ids[n]`. Set before any write is pushed.
    pub(crate) fn number_users(&mut self, ids: Vec<Uuid>) {
        debug_assert!(self.enrollments.is_empty());
        self.user_ids = ids;
        self.user_numbers = HashMap::new();
    }

    /// Write `i`'s class and user.
    pub fn write_key(&self, i: usize) -> (Uuid, Uuid) {
        let w = &self.enrollments[i];
        (
            self.class_ids[w.class as usize],
            self.user_ids[w.user as usize],
        )
    }

    /// The enrollment write `i` leaves.
    pub fn write_now(&self, i: usize) -> CurrentEnrollment {
        let w = &self.enrollments[i];
        let (class_id, user_id) = self.write_key(i);
        CurrentEnrollment {
            class_id,
            user_id,
            role: EnrollmentRole::teacher_if(w.flags & TEACHER != 0),
            primary: w.flags & PRIMARY != 0,
            begin: w.begin,
            end: w.end,
        }
    }

    /// The enrollment before of write `i` (`None` when it adds one).
    pub fn write_before(&self, i: usize) -> Option<&CurrentEnrollment> {
        if !self.enrollments.get(i)?.changed() {
            return None;
        }
        let at = self
            .befores
            .binary_search_by_key(&i, |(at, _)| *at as usize)
            .expect("a write that changes an enrollment has its before");
        Some(&self.befores[at].1)
    }

    /// Write `i`'s record result: added, or changed with the fields that changed.
    pub fn write_result(&self, i: usize) -> RecordResult {
        let w = &self.enrollments[i];
        let now = self.write_now(i);
        let (outcome, changed) = match self.write_before(i) {
            None => (RecordOutcome::Added, Vec::new()),
            Some(b) => (RecordOutcome::Changed, enrollment_changes(b, &now)),
        };
        RecordResult {
            kind: RecordKind::Enrollment,
            outcome,
            file: w.file,
            line: w.line,
            class_id: Some(now.class_id).into(),
            user_id: Some(now.user_id).into(),
            key: self.keys[w.key as usize].clone(),
            detail: (!changed.is_empty()).then(|| {
                Box::new(ResultDetail {
                    changed,
                    ..Default::default()
                })
            }),
        }
    }

    /// The result at `seq` (`< results_len()`).
    pub fn result(&self, seq: usize) -> RecordResult {
        let written = self.written_before(seq);
        match self.enrollments.get(written) {
            Some(w) if w.seq as usize == seq => self.write_result(written),
            _ => self.listed[seq - written].clone(),
        }
    }

    /// How many written enrollments have their result before `seq` (they are in `seq` order).
    fn written_before(&self, seq: usize) -> usize {
        let (mut lo, mut hi) = (0, self.enrollments.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if (self.enrollments[mid].seq as usize) < seq {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The results from `seq` on, in order.
    pub fn results_from(&self, seq: usize) -> impl Iterator<Item = RecordResult> + '_ {
        let mut written = self.written_before(seq);
        let mut listed = seq.min(self.results_len()) - written;
        (seq..self.results_len()).map(move |at| match self.enrollments.get(written) {
            Some(w) if w.seq as usize == at => {
                written += 1;
                self.write_result(written - 1)
            }
            _ => {
                listed += 1;
                self.listed[listed - 1].clone()
            }
        })
    }

    /// Every result, in order.
    pub fn results(&self) -> impl Iterator<Item = RecordResult> + '_ {
        self.results_from(0)
    }

    /// The name of the file a result came from.
    pub fn file_of(&self, r: &RecordResult) -> &str {
        self.files
            .get(usize::from(r.file))
            .map_or("", |f| f.as_str())
    }

    /// `name`'s position in [`RosterPlan::files`], added when new.
    pub fn file_ix(&mut self, name: &str) -> u16 {
        // The last file is nearly always the one asked for.
        if let Some(i) = self.files.iter().rposition(|f| f == name) {
            return u16::try_from(i).unwrap_or(u16::MAX);
        }
        self.files.push(name.into());
        u16::try_from(self.files.len() - 1).unwrap_or(u16::MAX)
    }
}

/// `value`'s number in `values`, added when new.
fn number<T: Clone + Eq + std::hash::Hash>(
    values: &mut Vec<T>,
    numbers: &mut HashMap<T, u32>,
    value: T,
) -> u32 {
    *numbers.entry(value).or_insert_with_key(|v| {
        values.push(v.clone());
        u32::try_from(values.len() - 1).expect("fewer than 2^32 values")
    })
}

fn user_ref_text(user: &UserRef) -> &str {
    match user {
        UserRef::Key(k) | UserRef::Provider(k) => k,
    }
}

/// A class's record resolved against the district.
struct Resolved {
    write: ClassWrite,
    at: At,
    to_be_deleted: bool,
}

struct Planner<'a> {
    source: &'a Source,
    rules: &'a RosterRules,
    plan: RosterPlan,
    /// [`RosterFeed::every_result`].
    every_result: bool,
    /// [`RosterFeed::keeps_enrollment_dates`].
    keep_dates: bool,
}

impl Planner<'_> {
    #[allow(clippy::too_many_arguments)]
    fn error(
        &mut self,
        kind: RecordKind,
        at: &At,
        key: impl Into<Id>,
        column: Option<&str>,
        message: String,
        class_id: Option<Uuid>,
        user_id: Option<Uuid>,
    ) {
        let mut text = format!("{} line {}", at.file, at.line);
        if let Some(c) = column {
            text.push_str(&format!(", column {c}"));
        }
        text.push_str(&format!(": {message}"));
        self.plan.counts.roster_errors += 1;
        let file = self.plan.file_ix(&at.file);
        self.plan.push_result(RecordResult {
            kind,
            outcome: RecordOutcome::Error,
            file,
            line: result_line(at.line),
            class_id: class_id.into(),
            user_id: user_id.into(),
            key: key.into(),
            detail: Some(Box::new(ResultDetail {
                changed: Vec::new(),
                error: Some(text),
                column: column.map(CompactString::from),
            })),
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn result(
        &mut self,
        kind: RecordKind,
        at: &At,
        key: impl Into<Id>,
        outcome: RecordOutcome,
        class_id: Option<Uuid>,
        user_id: Option<Uuid>,
        changed: Vec<&'static str>,
    ) {
        // An unchanged record of a feed that keeps changes only is counted, not listed: at
        // 3,000,000 enrollments its results would hold gigabytes for nothing.
        if outcome == RecordOutcome::Unchanged && !self.every_result {
            return;
        }
        let file = self.plan.file_ix(&at.file);
        self.plan.push_result(RecordResult {
            kind,
            outcome,
            file,
            line: result_line(at.line),
            class_id: class_id.into(),
            user_id: user_id.into(),
            key: key.into(),
            detail: (!changed.is_empty()).then(|| {
                Box::new(ResultDetail {
                    changed,
                    ..Default::default()
                })
            }),
        });
    }

    /// Whether a record says what an existing enrollment already is (it changes nothing).
    fn repeats(&self, before: Option<&CurrentEnrollment>, e: &IncomingEnrollment) -> bool {
        before.is_some_and(|b| {
            !e.to_be_deleted
                && b.role == e.role
                && b.primary == (e.primary && e.role == EnrollmentRole::Teacher)
                && (self.keep_dates || (b.begin == e.begin && b.end == e.end))
        })
    }

    /// Who owns a class this feed may not change, in words; `None` when it may.
    fn refused_owner(&self, owner: &Source) -> Option<String> {
        if owner == self.source {
            return None;
        }
        match owner {
            Source::Sync(id) => Some(match self.rules.syncs.get(id) {
                Some(name) => format!("provisioned by roster sync \"{name}\""),
                None => format!("provisioned by roster sync {id}"),
            }),
            Source::File(_) | Source::Manual => None,
        }
    }
}

fn class_changes(before: &CurrentClass, after: &ClassWrite) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if before.title != after.title {
        changed.push("title");
    }
    if before.school_id != after.school_id {
        changed.push("school");
    }
    if before.course_code != after.course_code {
        changed.push("course_code");
    }
    if before.subject != after.subject {
        changed.push("subject");
    }
    if before.period != after.period {
        changed.push("period");
    }
    if before.grades != after.grades {
        changed.push("grades");
    }
    if before.term_id != after.term_id {
        changed.push("term");
    }
    changed
}

fn enrollment_changes(before: &CurrentEnrollment, after: &CurrentEnrollment) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if before.role != after.role {
        changed.push("role");
    }
    if before.primary != after.primary {
        changed.push("primary");
    }
    if before.begin != after.begin {
        changed.push("begin");
    }
    if before.end != after.end {
        changed.push("end");
    }
    changed
}

fn same_class(a: &IncomingClass, b: &IncomingClass) -> bool {
    a.title == b.title
        && a.school_external_id == b.school_external_id
        && a.course_code == b.course_code
        && a.subject == b.subject
        && a.period == b.period
        && a.grades == b.grades
        && a.term_external_id == b.term_external_id
        && a.to_be_deleted == b.to_be_deleted
}

/// The users a feed's enrollments name, each found once as the run leaves them
/// ([`users::FeedUsers`]): made before the district's rosters are read, so that the district's
/// users (~125 MB at a million) are let go before its enrollments (~155 MB at three million)
/// are held (issue 19, memory).
pub struct FeedPeople {
    people: FeedUsers,
    ids: Vec<Uuid>,
}

impl FeedPeople {
    /// `users`: the district's users before the run; `written`: the run's user plan, if it
    /// has one.
    pub fn of(
        feed: &RosterFeed,
        users: &CurrentUsers,
        written: Option<&UserPlan>,
        source: &Source,
    ) -> FeedPeople {
        let (people, ids) = FeedUsers::of(&feed.enrollments, users, written, source);
        FeedPeople { people, ids }
    }
}

/// Plan one roster feed against the district (see the module's rules).
///
/// `users`: the district's users before the run; `written`: the run's user plan, if it has
/// one. An enrollment's user is found as the run leaves them ([`FeedPeople`]); the
/// district's users are let go then.
pub fn plan(
    current: &Current,
    users: CurrentUsers,
    written: Option<&UserPlan>,
    feed: RosterFeed,
    source: &Source,
    rules: &RosterRules,
    secrets: &mut dyn Secrets,
) -> RosterPlan {
    let people = FeedPeople::of(&feed, &users, written, source);
    drop(users);
    plan_for(current, people, feed, source, rules, secrets)
}

/// [`plan`] with the feed's users already found ([`FeedPeople::of`]).
pub fn plan_for(
    current: &Current,
    people: FeedPeople,
    feed: RosterFeed,
    source: &Source,
    rules: &RosterRules,
    secrets: &mut dyn Secrets,
) -> RosterPlan {
    let mut p = Planner {
        source,
        rules,
        plan: RosterPlan {
            writes_unlisted: !feed.every_result,
            ..RosterPlan::default()
        },
        every_result: feed.every_result,
        keep_dates: feed.keeps_enrollment_dates,
    };

    // 1. Terms.
    let mut terms: HashMap<String, Uuid> = current
        .terms
        .iter()
        .map(|t| (t.external_id.clone(), t.id))
        .collect();
    let by_ext: HashMap<&str, &CurrentTerm> = current
        .terms
        .iter()
        .map(|t| (t.external_id.as_str(), t))
        .collect();
    let mut seen_terms: HashMap<String, IncomingTerm> = HashMap::new();
    for term in feed.terms {
        let t = match term {
            Ok(t) => t,
            Err(fail) => {
                p.error(
                    RecordKind::Term,
                    &fail.at,
                    "",
                    fail.column.as_deref(),
                    fail.message,
                    None,
                    None,
                );
                continue;
            }
        };
        if let Some(first) = seen_terms.get(&t.external_id) {
            if first.title != t.title || first.start != t.start || first.end != t.end {
                let msg = format!(
                    "term {} is given differently on line {}",
                    t.external_id, first.at.line
                );
                p.error(
                    RecordKind::Term,
                    &t.at,
                    &t.external_id,
                    Some("term"),
                    msg,
                    None,
                    None,
                );
            }
            continue;
        }
        match by_ext.get(t.external_id.as_str()) {
            Some(cur) => {
                // A term the feed names without a title or dates leaves them.
                let title = if t.title.is_empty() {
                    cur.title.clone()
                } else {
                    t.title.clone()
                };
                let start = t.start.or(cur.start);
                let end = t.end.or(cur.end);
                if title != cur.title || start != cur.start || end != cur.end {
                    p.plan.terms.push(TermWrite {
                        id: cur.id,
                        external_id: t.external_id.clone(),
                        title,
                        start,
                        end,
                        created: false,
                    });
                }
            }
            None => {
                let id = secrets.new_guid();
                terms.insert(t.external_id.clone(), id);
                p.plan.terms.push(TermWrite {
                    id,
                    external_id: t.external_id.clone(),
                    title: if t.title.is_empty() {
                        t.external_id.clone()
                    } else {
                        t.title.clone()
                    },
                    start: t.start,
                    end: t.end,
                    created: true,
                });
            }
        }
        seen_terms.insert(t.external_id.clone(), t);
    }

    // 2–4. Classes.
    let by_class: HashMap<&str, &CurrentClass> = current
        .classes
        .iter()
        .map(|c| (c.external_id.as_str(), c))
        .collect();
    // Classes the feed lists (also failed ones it names): never swept.
    let mut listed: HashSet<String> = HashSet::new();
    // Classes the feed may enroll users in: external id → (class id, school external id).
    let mut usable: HashMap<String, (Uuid, String)> = HashMap::new();
    // Classes whose records failed: enrollments to them are errors too.
    let mut refused: HashMap<String, String> = HashMap::new();
    let mut first_seen: HashMap<String, IncomingClass> = HashMap::new();
    let mut archive_ids: HashSet<Uuid> = HashSet::new();
    // Rule 3: classes edited in place (their enrollments end only in district scope), and
    // sync classes named by GUID and skipped (their unchanged enrollments are skipped).
    let mut edited: HashSet<Uuid> = HashSet::new();
    let mut skipped_in_place: HashSet<String> = HashSet::new();
    // Classes this source owns after the run (for the enrollment sweep).
    let mut owned: HashSet<Uuid> = current
        .classes
        .iter()
        .filter(|c| &c.source == source)
        .map(|c| c.id)
        .collect();
    let school_ext: HashMap<Uuid, &str> = current
        .schools
        .iter()
        .map(|(e, id)| (*id, e.as_str()))
        .collect();
    for class in feed.classes {
        let c = match class {
            Ok(c) => c,
            Err(fail) => {
                let key = fail.class_external_id.clone().unwrap_or_default();
                if let Some(k) = &fail.class_external_id {
                    listed.insert(k.clone());
                    refused.insert(k.clone(), format!("its class has an error ({})", fail));
                }
                let class_id = fail
                    .class_external_id
                    .as_deref()
                    .and_then(|k| by_class.get(k))
                    .map(|c| c.id);
                p.error(
                    RecordKind::Class,
                    &fail.at,
                    &key,
                    fail.column.as_deref(),
                    fail.message,
                    class_id,
                    None,
                );
                continue;
            }
        };
        listed.insert(c.external_id.clone());
        if let Some(first) = first_seen.get(&c.external_id) {
            if !same_class(first, &c) {
                let msg = format!(
                    "class {} is given differently on line {}",
                    c.external_id, first.at.line
                );
                let id = usable.get(&c.external_id).map(|u| u.0);
                p.error(
                    RecordKind::Class,
                    &c.at,
                    &c.external_id,
                    Some("class_external_id"),
                    msg,
                    id,
                    None,
                );
            } else if let Some((id, _)) = usable.get(&c.external_id).cloned() {
                p.result(
                    RecordKind::Class,
                    &c.at,
                    &c.external_id,
                    RecordOutcome::Unchanged,
                    Some(id),
                    None,
                    Vec::new(),
                );
            } else {
                let why = refused
                    .get(&c.external_id)
                    .cloned()
                    .unwrap_or_else(|| "class refused".into());
                p.error(
                    RecordKind::Class,
                    &c.at,
                    &c.external_id,
                    Some("class_external_id"),
                    why,
                    None,
                    None,
                );
            }
            continue;
        }
        first_seen.insert(c.external_id.clone(), c.clone());
        let existing = by_class.get(c.external_id.as_str()).copied();
        // Rule 3, editing in place: the class named by `class_guid` must be this one.
        let named_by_guid = match feed.class_guids.get(&c.external_id) {
            None => false,
            Some(g) if existing.is_some_and(|e| e.id == *g) => true,
            Some(g) => {
                let msg = match current.classes.iter().find(|k| k.id == *g) {
                    Some(k) => format!(
                        "{CLASS_GUID_COLUMN} {g} is class {}, not {}",
                        k.external_id, c.external_id
                    ),
                    None => format!("{CLASS_GUID_COLUMN} {g} names no class of this district"),
                };
                refused.insert(c.external_id.clone(), msg.clone());
                p.error(
                    RecordKind::Class,
                    &c.at,
                    &c.external_id,
                    Some(CLASS_GUID_COLUMN),
                    msg,
                    existing.map(|e| e.id),
                    None,
                );
                continue;
            }
        };
        let Some(&school_id) = current.schools.get(c.school_external_id.trim()) else {
            let msg = format!("unknown school {:?}", c.school_external_id);
            refused.insert(c.external_id.clone(), msg.clone());
            p.error(
                RecordKind::Class,
                &c.at,
                &c.external_id,
                Some("school_external_id"),
                msg,
                existing.map(|e| e.id),
                None,
            );
            continue;
        };
        let term_id = match c.term_external_id.as_deref().filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => match terms.get(t) {
                Some(&id) => Some(id),
                None => {
                    let msg = format!("unknown term {t:?}");
                    refused.insert(c.external_id.clone(), msg.clone());
                    p.error(
                        RecordKind::Class,
                        &c.at,
                        &c.external_id,
                        Some("term"),
                        msg,
                        existing.map(|e| e.id),
                        None,
                    );
                    continue;
                }
            },
        };
        let mut grades = c.grades.clone();
        grades.retain(|g| !g.trim().is_empty());
        let resolved = Resolved {
            write: ClassWrite {
                id: existing.map_or(Uuid::nil(), |e| e.id),
                external_id: c.external_id.clone(),
                school_id,
                title: c.title.clone(),
                course_code: c.course_code.clone(),
                subject: c.subject.clone(),
                period: c.period.clone(),
                grades,
                term_id,
                source: source.clone(),
            },
            at: c.at.clone(),
            to_be_deleted: c.to_be_deleted,
        };
        let Some(cur) = existing else {
            if resolved.to_be_deleted {
                // Nothing to archive: a class the district never had.
                p.result(
                    RecordKind::Class,
                    &resolved.at,
                    &c.external_id,
                    RecordOutcome::Unchanged,
                    None,
                    None,
                    Vec::new(),
                );
                continue;
            }
            if resolved.write.title.trim().is_empty() {
                let msg = "a new class needs a title".to_string();
                refused.insert(c.external_id.clone(), msg.clone());
                p.error(
                    RecordKind::Class,
                    &c.at,
                    &c.external_id,
                    Some("class_title"),
                    msg,
                    None,
                    None,
                );
                continue;
            }
            let mut write = resolved.write;
            write.id = secrets.new_guid();
            owned.insert(write.id);
            usable.insert(
                c.external_id.clone(),
                (write.id, c.school_external_id.trim().to_string()),
            );
            p.result(
                RecordKind::Class,
                &resolved.at,
                &c.external_id,
                RecordOutcome::Created,
                Some(write.id),
                None,
                Vec::new(),
            );
            p.plan.counts.classes_created += 1;
            p.plan.classes.push(ClassPlan {
                change: ClassChange::Create,
                write,
                before: None,
                changed: Vec::new(),
            });
            continue;
        };
        let mut write = resolved.write;
        // A record without a title keeps the class's.
        if write.title.trim().is_empty() {
            write.title = cur.title.clone();
        }
        let mut changed = class_changes(cur, &write);
        // Edited in place: the class keeps its owner (rule 3).
        let in_place = named_by_guid && cur.source != *source;
        if in_place {
            write.source = cur.source.clone();
        }
        let moved = cur.source != *source && !in_place;
        if let Some(owner) = p.refused_owner(&cur.source) {
            if changed.is_empty() && !cur.archived && !resolved.to_be_deleted {
                // Enrollments of another owner's class are that owner's.
                if named_by_guid {
                    skipped_in_place.insert(c.external_id.clone());
                }
                refused.insert(c.external_id.clone(), owner);
                p.result(
                    RecordKind::Class,
                    &resolved.at,
                    &c.external_id,
                    RecordOutcome::Skipped,
                    Some(cur.id),
                    None,
                    Vec::new(),
                );
            } else {
                refused.insert(c.external_id.clone(), owner.clone());
                p.error(
                    RecordKind::Class,
                    &c.at,
                    &c.external_id,
                    Some("class_external_id"),
                    owner,
                    Some(cur.id),
                    None,
                );
            }
            continue;
        }
        if resolved.to_be_deleted {
            if !cur.archived {
                archive_ids.insert(cur.id);
                p.plan.archive.push(cur.clone());
                p.plan.counts.classes_archived += 1;
                p.result(
                    RecordKind::Class,
                    &resolved.at,
                    &c.external_id,
                    RecordOutcome::Archived,
                    Some(cur.id),
                    None,
                    Vec::new(),
                );
            } else {
                p.result(
                    RecordKind::Class,
                    &resolved.at,
                    &c.external_id,
                    RecordOutcome::Unchanged,
                    Some(cur.id),
                    None,
                    Vec::new(),
                );
            }
            continue;
        }
        if in_place {
            edited.insert(cur.id);
        } else {
            owned.insert(cur.id);
        }
        usable.insert(
            c.external_id.clone(),
            (cur.id, c.school_external_id.trim().to_string()),
        );
        if moved {
            changed.push("source");
        }
        let (change, outcome) = if cur.archived {
            p.plan.counts.classes_restored += 1;
            (Some(ClassChange::Restore), RecordOutcome::Restored)
        } else if changed.is_empty() {
            p.plan.counts.classes_unchanged += 1;
            (None, RecordOutcome::Unchanged)
        } else if changed == ["source"] {
            // Only the owner changes: written, but counted unchanged (like a moved user).
            p.plan.counts.classes_unchanged += 1;
            (Some(ClassChange::Update), RecordOutcome::Unchanged)
        } else {
            p.plan.counts.classes_updated += 1;
            (Some(ClassChange::Update), RecordOutcome::Updated)
        };
        p.result(
            RecordKind::Class,
            &resolved.at,
            &c.external_id,
            outcome,
            Some(cur.id),
            None,
            changed.clone(),
        );
        if let Some(change) = change {
            p.plan.classes.push(ClassPlan {
                change,
                write,
                before: Some(cur.clone()),
                changed,
            });
        }
    }

    // 5. Enrollments.
    // Each enrollment record the district does not hold yet is added (or an error): the table
    // of added enrollments is sized once for at least this many. The writes and results grow
    // in chunks (never by doubling, which held the old and the new buffer at once).
    let new_at_least = feed
        .enrollments
        .len()
        .saturating_sub(current.enrollments.len());
    let FeedPeople {
        people,
        ids: user_ids,
    } = people;
    p.plan.number_users(user_ids);
    let mut enrolled = Enrolled::new(&current.enrollments, new_at_least);
    // Classes none of whose enrollments may end (an enrollment record failed unread).
    let mut kept_classes: HashSet<Uuid> = HashSet::new();
    let class_of = |ext: &str| by_class.get(ext).map(|c| c.id);
    for class_ext in refused.keys() {
        if let Some(id) = class_of(class_ext) {
            kept_classes.insert(id);
        }
    }
    // The feed's millions of enrollments give their memory back, a chunk at a time, while
    // the plan's writes and results grow.
    for (slot, enr) in feed.enrollments.into_slotted() {
        let e = match enr {
            Ok(e) => e,
            Err(fail) => {
                let class_id = fail
                    .class_external_id
                    .as_deref()
                    .and_then(|k| usable.get(k).map(|u| u.0).or_else(|| class_of(k)));
                if let Some(k) = &fail.class_external_id {
                    listed.insert(k.clone());
                }
                if let Some(id) = class_id {
                    kept_classes.insert(id);
                }
                p.error(
                    RecordKind::Enrollment,
                    &fail.at,
                    fail.class_external_id.as_deref().unwrap_or(""),
                    fail.column.as_deref(),
                    fail.message,
                    class_id,
                    None,
                );
                continue;
            }
        };
        let user = people.get(slot, &p.plan.user_ids);
        enrollment(
            &mut p,
            &e,
            user,
            &usable,
            &refused,
            &by_class,
            &school_ext,
            &skipped_in_place,
            &mut enrolled,
            &mut listed,
        );
    }

    // 4. Classes the feed no longer lists.
    if feed.classes_complete {
        for c in &current.classes {
            if &c.source == source
                && !c.archived
                && !listed.contains(&c.external_id)
                && !archive_ids.contains(&c.id)
            {
                archive_ids.insert(c.id);
                p.plan.archive.push(c.clone());
                p.plan.counts.classes_archived += 1;
            }
        }
    }
    // 6. Enrollments the feed no longer lists. A class archived before this run and not
    // restored by it keeps its enrollments too (rule 4), so the same file again is a no-op.
    if feed.enrollments_complete {
        let restored: HashSet<Uuid> = p
            .plan
            .classes
            .iter()
            .filter(|c| c.change == ClassChange::Restore)
            .map(|c| c.write.id)
            .collect();
        let still_archived: HashSet<Uuid> = current
            .classes
            .iter()
            .filter(|c| c.archived && !restored.contains(&c.id))
            .map(|c| c.id)
            .collect();
        for (i, e) in current.enrollments.iter().enumerate() {
            let ends_here = owned.contains(&e.class_id)
                || (feed.district_scope && edited.contains(&e.class_id));
            if ends_here
                && !archive_ids.contains(&e.class_id)
                && !still_archived.contains(&e.class_id)
                && !kept_classes.contains(&e.class_id)
                && !enrolled.kept[i]
            {
                p.plan.ended.push(e);
                p.plan.counts.enrollments_ended += 1;
            }
        }
    }
    // Ended by `to_be_deleted` records are already in `ended`; sorted for stable writes.
    p.plan.ended.sort_by_key(|e| (e.class_id, e.user_id));
    p.plan.ended.dedup_by_key(|e| (e.class_id, e.user_id));
    p.plan.counts.enrollments_ended = p.plan.ended.len();

    // 8. Guard.
    if !rules.approved {
        let source_classes: HashSet<Uuid> = current
            .classes
            .iter()
            .filter(|c| &c.source == source && !c.archived)
            .map(|c| c.id)
            .collect();
        // In district scope the classes edited in place are covered too (rule 3).
        let covered =
            |id: &Uuid| source_classes.contains(id) || (feed.district_scope && edited.contains(id));
        let source_enrollments = current
            .enrollments
            .iter()
            .filter(|e| covered(&e.class_id))
            .count();
        p.plan.review = guard(
            rules,
            source,
            source_classes.len(),
            source_enrollments,
            p.plan.counts.classes_archived,
            p.plan.counts.enrollments_ended,
        );
    }
    p.plan
}

/// An enrollment's class id without surrounding spaces, shared with the record when it has
/// none.
fn trimmed_id(id: &Id) -> Id {
    match id.trim() {
        t if t.len() == id.len() => id.clone(),
        t => Id::from(t),
    }
}

/// `Enrolled::seen_at` of an enrollment no accepted record listed yet.
const UNSEEN: u32 = u32::MAX;

/// The district's enrollments as the planner looks them up, compact: a table of positions in
/// the loaded rows keyed by their class and user (4 bytes a row, not a second copy of the
/// keys), and per row whether the feed lists or protects it (`kept`) and the line that first
/// listed it (`seen_at`, `UNSEEN` for none). An enrollment the district does not have yet is
/// found by its position in the plan's writes (a first sync adds millions: 4 bytes each, not
/// a map entry of both keys and a line — issue 15, memory).
struct Enrolled<'a> {
    rows: &'a CurrentEnrollments,
    hasher: DefaultHashBuilder,
    at: HashTable<u32>,
    kept: Vec<bool>,
    seen_at: Vec<u32>,
    /// Positions in the plan's writes of enrollments this run adds.
    added: HashTable<u32>,
    /// New enrollments a record ended before they existed (no result kept for them).
    seen_other: HashMap<(Uuid, Uuid), u32>,
}

impl<'a> Enrolled<'a> {
    /// `adds`: how many enrollments the run adds at least (the table of them is sized once).
    fn new(rows: &'a CurrentEnrollments, adds: usize) -> Self {
        let hasher = DefaultHashBuilder::default();
        let mut at = HashTable::with_capacity(rows.len());
        let key_of = |i: u32| rows.key(i as usize);
        for i in 0..rows.len() {
            let key = rows.key(i);
            let hash = hasher.hash_one(key);
            // The last row of a key wins, as a map's insert would have it.
            match at.find_mut(hash, |&j| key_of(j) == key) {
                Some(j) => *j = i as u32,
                None => {
                    at.insert_unique(hash, i as u32, |&j| hasher.hash_one(key_of(j)));
                }
            }
        }
        Enrolled {
            rows,
            hasher,
            at,
            kept: vec![false; rows.len()],
            seen_at: vec![UNSEEN; rows.len()],
            added: HashTable::with_capacity(adds),
            seen_other: HashMap::new(),
        }
    }

    fn position(&self, key: (Uuid, Uuid)) -> Option<usize> {
        let rows = self.rows;
        self.at
            .find(self.hasher.hash_one(key), |&j| rows.key(j as usize) == key)
            .map(|&i| i as usize)
    }

    fn get(&self, key: (Uuid, Uuid)) -> Option<CurrentEnrollment> {
        self.position(key).map(|i| self.rows.get(i))
    }

    /// The feed lists or protects this enrollment: it does not end.
    fn keep(&mut self, key: (Uuid, Uuid)) {
        if let Some(i) = self.position(key) {
            self.kept[i] = true;
        }
    }

    /// The line of the accepted record that first listed this class and user.
    fn seen(&self, key: (Uuid, Uuid), writes: &RosterPlan) -> Option<u32> {
        if let Some(i) = self.position(key) {
            return Some(self.seen_at[i]).filter(|&l| l != UNSEEN);
        }
        let added = self.added.find(self.hasher.hash_one(key), |&j| {
            writes.write_key(j as usize) == key
        });
        match added {
            Some(&j) => Some(writes.enrollments[j as usize].line),
            None => self.seen_other.get(&key).copied(),
        }
    }

    /// An accepted record lists an enrollment the district has.
    fn mark_seen(&mut self, at: usize, line: u32) {
        self.seen_at[at] = line;
    }

    /// An accepted record adds an enrollment: `writes[write]`.
    fn mark_added(&mut self, key: (Uuid, Uuid), write: usize, writes: &RosterPlan) {
        let hasher = &self.hasher;
        self.added
            .insert_unique(hasher.hash_one(key), write as u32, |&j| {
                hasher.hash_one(writes.write_key(j as usize))
            });
    }

    /// An accepted record ends an enrollment the district does not have.
    fn mark_other(&mut self, key: (Uuid, Uuid), line: u32) {
        self.seen_other.insert(key, line);
    }
}

#[allow(clippy::too_many_arguments)]
fn enrollment(
    p: &mut Planner<'_>,
    e: &IncomingEnrollment,
    user: Option<RosterUser<'_>>,
    usable: &HashMap<String, (Uuid, String)>,
    refused: &HashMap<String, String>,
    by_class: &HashMap<&str, &CurrentClass>,
    school_ext: &HashMap<Uuid, &str>,
    skipped_in_place: &HashSet<String>,
    enr: &mut Enrolled<'_>,
    listed: &mut HashSet<String>,
) {
    let kind = RecordKind::Enrollment;
    let ext = e.class_external_id.trim();
    let id = trimmed_id(&e.class_external_id);
    if !listed.contains(ext) {
        listed.insert(ext.to_string());
    }
    let user_id = user.map(|u| u.id);
    let known_class = usable
        .get(ext)
        .map(|u| u.0)
        .or_else(|| by_class.get(ext).map(|c| c.id));
    if let (Some(c), Some(u)) = (known_class, user_id) {
        enr.keep((c, u));
    }
    // A sync's class named by GUID and skipped: its enrollments that change nothing are
    // skipped too (rule 3, the download sent back).
    if skipped_in_place.contains(ext)
        && let (Some(c), Some(u)) = (known_class, user_id)
        && p.repeats(enr.get((c, u)).as_ref(), e)
    {
        p.result(
            kind,
            &e.at,
            &id,
            RecordOutcome::Skipped,
            Some(c),
            Some(u),
            Vec::new(),
        );
        return;
    }
    let (class_id, class_school) = match usable.get(ext) {
        Some((id, school)) => (*id, school.as_str()),
        None => {
            let msg = match refused.get(ext) {
                Some(why) => format!("class {ext} cannot be changed: {why}"),
                None => match by_class.get(ext) {
                    // A class of the district this feed did not list: usable when it is this
                    // source's or the feed could take it over.
                    Some(cur) => match p.refused_owner(&cur.source) {
                        Some(owner) => format!("class {ext} is {owner}"),
                        None if cur.archived => format!("class {ext} is archived"),
                        None => {
                            let school = school_ext.get(&cur.school_id).copied().unwrap_or("");
                            return enroll_in(p, e, user, cur.id, school, enr);
                        }
                    },
                    None => format!("unknown class {ext:?}"),
                },
            };
            p.error(
                kind,
                &e.at,
                &id,
                Some("class_external_id"),
                msg,
                known_class,
                user_id,
            );
            return;
        }
    };
    enroll_in(p, e, user, class_id, class_school, enr)
}

fn enroll_in(
    p: &mut Planner<'_>,
    e: &IncomingEnrollment,
    user: Option<RosterUser<'_>>,
    class_id: Uuid,
    school: &str,
    enr: &mut Enrolled<'_>,
) {
    let kind = RecordKind::Enrollment;
    let id = trimmed_id(&e.class_external_id);
    let Some(user) = user else {
        p.error(
            kind,
            &e.at,
            &id,
            Some("user"),
            format!("unknown user {:?}", user_ref_text(&e.user)),
            Some(class_id),
            None,
        );
        return;
    };
    let key = (class_id, user.id);
    if let Some(first) = enr.seen(key, &p.plan) {
        let msg = format!("duplicate enrollment: the same class and user as line {first}");
        p.error(
            kind,
            &e.at,
            &id,
            Some("user"),
            msg,
            Some(class_id),
            Some(user.id),
        );
        return;
    }
    if user.archived && !e.to_be_deleted && !p.repeats(enr.get(key).as_ref(), e) {
        let msg = format!("user {} is archived", user_ref_text(&e.user));
        p.error(
            kind,
            &e.at,
            &id,
            Some("user"),
            msg,
            Some(class_id),
            Some(user.id),
        );
        return;
    }
    if !e.to_be_deleted {
        if !user.may_join(school) {
            let msg = format!(
                "user {} is not at the class's school",
                user_ref_text(&e.user)
            );
            p.error(
                kind,
                &e.at,
                &id,
                Some("user"),
                msg,
                Some(class_id),
                Some(user.id),
            );
            return;
        }
        let wrong = match e.role {
            EnrollmentRole::Teacher => {
                (user.role == Role::Student).then_some("student enrolled as teacher")
            }
            EnrollmentRole::Student => {
                (user.role != Role::Student).then_some("teacher enrolled as student")
            }
        };
        if let Some(wrong) = wrong {
            let msg = format!(
                "{wrong} ({} is {})",
                user_ref_text(&e.user),
                user.role.as_str()
            );
            p.error(
                kind,
                &e.at,
                &id,
                Some("role"),
                msg,
                Some(class_id),
                Some(user.id),
            );
            return;
        }
    }
    // Only accepted records count as the first of a pair.
    let line = result_line(e.at.line);
    let position = enr.position(key);
    if let Some(i) = position {
        enr.mark_seen(i, line);
    }
    let before = position.map(|i| enr.rows.get(i));
    if e.to_be_deleted {
        if before.is_none() {
            enr.mark_other(key, line);
        }
        match before {
            Some(b) => {
                p.plan.ended.push(b);
                p.result(
                    kind,
                    &e.at,
                    &id,
                    RecordOutcome::Ended,
                    Some(class_id),
                    Some(user.id),
                    Vec::new(),
                );
            }
            None => p.result(
                kind,
                &e.at,
                &id,
                RecordOutcome::Unchanged,
                Some(class_id),
                Some(user.id),
                Vec::new(),
            ),
        }
        return;
    }
    let now = CurrentEnrollment {
        class_id,
        user_id: user.id,
        role: e.role,
        primary: e.primary && e.role == EnrollmentRole::Teacher,
        begin: if p.keep_dates {
            before.and_then(|b| b.begin)
        } else {
            e.begin
        },
        end: if p.keep_dates {
            before.and_then(|b| b.end)
        } else {
            e.end
        },
    };
    match before {
        None => {
            p.plan.counts.enrollments_added += 1;
            let file = p.plan.file_ix(&e.at.file);
            p.plan
                .push_enrollment(now, None, (file, line, id), Some(user.number));
            // The pair is found by its write from now on.
            enr.mark_added(key, p.plan.enrollments.len() - 1, &p.plan);
        }
        Some(b) => {
            let changed = enrollment_changes(&b, &now);
            if changed.is_empty() {
                p.plan.counts.enrollments_unchanged += 1;
                p.result(
                    kind,
                    &e.at,
                    &id,
                    RecordOutcome::Unchanged,
                    Some(class_id),
                    Some(user.id),
                    changed,
                );
            } else {
                p.plan.counts.enrollments_changed += 1;
                let file = p.plan.file_ix(&e.at.file);
                p.plan
                    .push_enrollment(now, Some(b), (file, line, id), Some(user.number));
            }
        }
    }
}

/// The roster guard (rule 8): `None` when nothing trips it (also an undo's).
pub(crate) fn guard(
    rules: &RosterRules,
    source: &Source,
    classes_total: usize,
    enrollments_total: usize,
    would_archive: usize,
    would_end: usize,
) -> Option<RosterReview> {
    let label = match source {
        Source::File(name) => name.to_string(),
        other => other.to_string(),
    };
    let trips = |n: usize, total: usize| {
        total > 0 && n >= rules.archive_min && n as f64 * 100.0 / total as f64 > rules.archive_pct
    };
    let pct = |n: usize, total: usize| (n as f64 * 100.0 / total as f64).round();
    let mut reasons = Vec::new();
    if trips(would_end, enrollments_total) {
        reasons.push(format!(
            "would end {would_end} of {enrollments_total} enrollments of {label} ({}%)",
            pct(would_end, enrollments_total)
        ));
    }
    if trips(would_archive, classes_total) {
        reasons.push(format!(
            "would archive {would_archive} of {classes_total} classes of {label} ({}%)",
            pct(would_archive, classes_total)
        ));
    }
    (!reasons.is_empty()).then(|| RosterReview {
        reason: reasons.join("; "),
        would_end,
        would_archive,
    })
}
