//! The undo of a run's roster changes (SPEC §4 "Undo", §6a), planned. Pure: the changes the
//! undone run recorded (`run_roster_changes`: each class and enrollment it changed, with the
//! earlier values), whether each changed again since, and the district's rosters in; an
//! ordinary [`RosterPlan`] out, which `db::rosters::write_plan` writes like any run's (in the
//! users' transaction, recording its own changes — so undoing an undo redoes).
//!
//! # Rules, per class and per enrollment the undone run changed
//! 1. **Changed since**: one a later run (or an admin) changed again is left as it is,
//!    [`RecordOutcome::Skipped`] (as users).
//! 2. **Classes** are never deleted: a class the run **created** is archived; one it
//!    **archived** is restored; one it **restored** is archived again; the fields it
//!    **updated** (title, school, course code, subject, period, grades, term, and the owner
//!    `source`) get their earlier values back. Only the owner back is written but counted
//!    unchanged, as the engine counts a class that only moves.
//! 3. **Enrollments**: one the run **added** is removed (ended, as the engine ends them); one
//!    it **ended** is put back with its earlier role, primary, begin and end; one it
//!    **changed** gets those values back.
//! 4. **Nothing to do** (already in the earlier state): unchanged, writes nothing.
//! 5. **Cannot be put back** (an earlier value that cannot be read, a school or term that no
//!    longer exists): an error naming the class, left as it is.
//! 6. **Guard** (unless approved): the roster guard of the undone run's source — archiving or
//!    ending more than the threshold of its classes or enrollments stops the undo (users
//!    too) in Needs Review.
//!
//! Terms are left as they are (terms are never removed). Records are numbered 1, 2, … in the
//! order the undone run changed them; `file` is empty.

use std::collections::HashMap;

use serde_json::{Map, Value};
use time::Date;
use uuid::Uuid;

use crate::domain::Source;
use crate::domain::roster::{EnrollmentRole, RosterCurrent};
use crate::reconcile::roster::{
    ClassChange, ClassPlan, ClassWrite, CurrentClass, CurrentEnrollment, RecordKind, RecordOutcome,
    RecordResult, ResultDetail, RosterPlan, RosterRules,
};

/// What a run changed of one class or enrollment (`run_roster_changes.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    ClassCreated,
    ClassUpdated,
    ClassRestored,
    ClassArchived,
    EnrollmentAdded,
    EnrollmentChanged,
    EnrollmentEnded,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::ClassCreated => "class_created",
            ChangeKind::ClassUpdated => "class_updated",
            ChangeKind::ClassRestored => "class_restored",
            ChangeKind::ClassArchived => "class_archived",
            ChangeKind::EnrollmentAdded => "enrollment_added",
            ChangeKind::EnrollmentChanged => "enrollment_changed",
            ChangeKind::EnrollmentEnded => "enrollment_ended",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeKind> {
        Some(match s {
            "class_created" => ChangeKind::ClassCreated,
            "class_updated" => ChangeKind::ClassUpdated,
            "class_restored" => ChangeKind::ClassRestored,
            "class_archived" => ChangeKind::ClassArchived,
            "enrollment_added" => ChangeKind::EnrollmentAdded,
            "enrollment_changed" => ChangeKind::EnrollmentChanged,
            "enrollment_ended" => ChangeKind::EnrollmentEnded,
            _ => return None,
        })
    }

    fn is_class(self) -> bool {
        matches!(
            self,
            ChangeKind::ClassCreated
                | ChangeKind::ClassUpdated
                | ChangeKind::ClassRestored
                | ChangeKind::ClassArchived
        )
    }
}

/// One change the undone run recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RosterWritten {
    pub kind: ChangeKind,
    pub class_id: Uuid,
    /// The enrollment's user (`None` for a class).
    pub user_id: Option<Uuid>,
    /// The earlier values (`None` for a created class or an added enrollment).
    pub before: Option<Value>,
    /// A later run (or an admin) changed it again.
    pub changed_since: bool,
}

/// One class's or enrollment's changes, folded (the first change's earlier values win).
struct Group {
    class_id: Uuid,
    user_id: Option<Uuid>,
    /// A class the run created / an enrollment it added: there was nothing before.
    absent_before: bool,
    changed_since: bool,
    before: Map<String, Value>,
    unreadable: bool,
}

/// Plan the undo of a run's roster changes (`written`, in the order recorded) against the
/// district's rosters. `source` and `rules` are the undone run's (for the guard).
pub fn plan(
    current: &RosterCurrent,
    mut written: Vec<RosterWritten>,
    source: &Source,
    rules: &RosterRules,
) -> RosterPlan {
    // Each class or enrollment once, at its first change, its changes folded in the order
    // recorded. The changes' numbers sorted by key (then number) put a key's changes side by
    // side: no map over the millions of changes an undone first sync recorded (issue 15, an
    // undo at 3,000,000 enrollments held 1.5 GiB).
    let key_of = |w: &RosterWritten| (w.class_id, if w.kind.is_class() { None } else { w.user_id });
    let number = |i: usize| u32::try_from(i).expect("fewer than 2^32 changes");
    let mut order: Vec<u32> = (0..number(written.len())).collect();
    order.sort_unstable_by_key(|&i| (key_of(&written[i as usize]), i));
    // `starts[i]`: where change `i`'s key starts in `order`, for the first change of each key.
    let mut starts = vec![u32::MAX; written.len()];
    let mut at = 0;
    while at < order.len() {
        let k = key_of(&written[order[at] as usize]);
        starts[order[at] as usize] = number(at);
        at += 1;
        while at < order.len() && key_of(&written[order[at] as usize]) == k {
            at += 1;
        }
    }

    let classes: HashMap<Uuid, &CurrentClass> = current.classes.iter().map(|c| (c.id, c)).collect();
    // The district's enrollments by key: their numbers sorted, searched (a map over millions
    // of them took ~200 MB).
    let enrollment_key = |i: u32| current.enrollments.key(i as usize);
    let mut by_key: Vec<u32> = (0..number(current.enrollments.len())).collect();
    by_key.sort_unstable_by_key(|&i| enrollment_key(i));
    let enrollment = |class_id: Uuid, user_id: Uuid| {
        by_key
            .binary_search_by_key(&(class_id, user_id), |&i| enrollment_key(i))
            .ok()
            .map(|k| current.enrollments.get(by_key[k] as usize))
    };
    let schools: std::collections::HashSet<Uuid> = current.schools.values().copied().collect();
    let terms: std::collections::HashSet<Uuid> = current.terms.iter().map(|t| t.id).collect();

    let mut p = RosterPlan::default();
    let mut n = 0u64;
    for first in 0..written.len() {
        let start = starts[first] as usize;
        if start == u32::MAX as usize {
            continue;
        }
        let k = key_of(&written[first]);
        let (class_id, user_id) = k;
        let mut g = Group {
            class_id,
            user_id,
            absent_before: matches!(
                written[first].kind,
                ChangeKind::ClassCreated | ChangeKind::EnrollmentAdded
            ),
            changed_since: false,
            before: Map::new(),
            unreadable: false,
        };
        let end = order[start..]
            .iter()
            .position(|&i| key_of(&written[i as usize]) != k)
            .map_or(order.len(), |len| start + len);
        for &i in &order[start..end] {
            let w = &mut written[i as usize];
            g.changed_since |= w.changed_since;
            match w.before.take() {
                Some(Value::Object(before)) => {
                    for (k, v) in before {
                        g.before.entry(k).or_insert(v);
                    }
                }
                Some(Value::Null) | None => {}
                Some(_) => g.unreadable = true,
            }
        }
        let g = &g;
        n += 1;
        let line = crate::reconcile::roster::result_line(n);
        let key = classes
            .get(&g.class_id)
            .map_or_else(|| g.class_id.to_string(), |c| c.external_id.clone());
        let mut out = Out {
            plan: &mut p,
            line,
            key: &key,
            class_id: g.class_id,
            user_id: g.user_id,
        };
        match g.user_id {
            None => {
                let Some(cur) = classes.get(&g.class_id).copied() else {
                    out.result(RecordKind::Class, RecordOutcome::Skipped, Vec::new());
                    continue;
                };
                undo_class(&mut out, g, cur, &schools, &terms);
            }
            Some(user_id) => {
                let cur = enrollment(g.class_id, user_id);
                undo_enrollment(&mut out, g, user_id, cur.as_ref());
            }
        }
    }
    drop((written, order, starts, by_key));
    // The enrollments it puts back are the run's changes, like those it ends (see
    // `Out::result`): stored as neither.
    p.writes_unlisted = true;
    p.records = Some(usize::try_from(n).expect("fewer records than memory"));

    if !rules.approved {
        let source_classes: std::collections::HashSet<Uuid> = current
            .classes
            .iter()
            .filter(|c| &c.source == source && !c.archived)
            .map(|c| c.id)
            .collect();
        let source_enrollments = current
            .enrollments
            .iter()
            .filter(|e| source_classes.contains(&e.class_id))
            .count();
        p.review = crate::reconcile::roster::guard(
            rules,
            source,
            source_classes.len(),
            source_enrollments,
            p.counts.classes_archived,
            p.counts.enrollments_ended,
        );
    }
    p
}

/// Where one group's results go.
struct Out<'a> {
    plan: &'a mut RosterPlan,
    line: u32,
    key: &'a str,
    class_id: Uuid,
    user_id: Option<Uuid>,
}

impl Out<'_> {
    /// A record's result. An enrollment's is listed only when it is left as it is (skipped,
    /// which the undo's page lists) or in error: the rest are counted, and what the undo
    /// writes is in its run's changes (an undo of a first sync ends millions).
    fn result(&mut self, kind: RecordKind, outcome: RecordOutcome, changed: Vec<&'static str>) {
        if kind == RecordKind::Enrollment && outcome != RecordOutcome::Skipped {
            return;
        }
        self.plan.push_result(RecordResult {
            kind,
            outcome,
            file: 0,
            line: self.line,
            class_id: Some(self.class_id).into(),
            user_id: self.user_id.into(),
            key: self.key.into(),
            detail: (!changed.is_empty()).then(|| {
                Box::new(ResultDetail {
                    changed,
                    ..Default::default()
                })
            }),
        });
    }

    /// An enrollment to add or change back, with its result (added or changed).
    fn enrollment(&mut self, now: CurrentEnrollment, before: Option<CurrentEnrollment>) {
        self.plan
            .push_enrollment(now, before, (0, self.line, self.key.into()), None);
    }

    fn error(&mut self, kind: RecordKind, message: String) {
        self.plan.counts.roster_errors += 1;
        self.plan.push_result(RecordResult {
            kind,
            outcome: RecordOutcome::Error,
            file: 0,
            line: self.line,
            class_id: Some(self.class_id).into(),
            user_id: self.user_id.into(),
            key: self.key.into(),
            detail: Some(Box::new(ResultDetail {
                error: Some(message),
                ..Default::default()
            })),
        });
    }
}

fn write_of(c: &CurrentClass) -> ClassWrite {
    ClassWrite {
        id: c.id,
        external_id: c.external_id.clone(),
        school_id: c.school_id,
        title: c.title.clone(),
        course_code: c.course_code.clone(),
        subject: c.subject.clone(),
        period: c.period.clone(),
        grades: c.grades.clone(),
        term_id: c.term_id,
        source: c.source.clone(),
    }
}

/// Set one field of `w` to its earlier value (as `roster::writes` records them).
fn put_back_class(w: &mut ClassWrite, field: &str, value: &Value) -> Result<(), &'static str> {
    let text = || value.as_str().map(str::to_string).ok_or("not text");
    let id = || match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Uuid::parse_str(s).map(Some).map_err(|_| "not an id"),
        _ => Err("not an id"),
    };
    match field {
        "title" => w.title = text()?,
        "course_code" => w.course_code = text()?,
        "subject" => w.subject = text()?,
        "period" => w.period = text()?,
        "source" => w.source = Source::from_db(&text()?),
        "school_id" => w.school_id = id()?.ok_or("no school")?,
        "term_id" => w.term_id = id()?,
        "grades" => {
            w.grades = value
                .as_array()
                .ok_or("not a list")?
                .iter()
                .map(|g| g.as_str().map(str::to_string).ok_or("not text"))
                .collect::<Result<_, _>>()?;
        }
        // `external_id` (the key, never changed by a run) and `archived` are not fields.
        _ => {}
    }
    Ok(())
}

fn class_changes(cur: &CurrentClass, w: &ClassWrite) -> Vec<&'static str> {
    let mut changed = Vec::new();
    for (name, differs) in [
        ("title", cur.title != w.title),
        ("school", cur.school_id != w.school_id),
        ("course_code", cur.course_code != w.course_code),
        ("subject", cur.subject != w.subject),
        ("period", cur.period != w.period),
        ("grades", cur.grades != w.grades),
        ("term", cur.term_id != w.term_id),
        ("source", cur.source != w.source),
    ] {
        if differs {
            changed.push(name);
        }
    }
    changed
}

/// Rules 1, 2, 4 and 5 for one class.
fn undo_class(
    out: &mut Out<'_>,
    g: &Group,
    cur: &CurrentClass,
    schools: &std::collections::HashSet<Uuid>,
    terms: &std::collections::HashSet<Uuid>,
) {
    let kind = RecordKind::Class;
    if g.changed_since {
        out.result(kind, RecordOutcome::Skipped, Vec::new());
        return;
    }
    if g.absent_before {
        if cur.archived {
            out.plan.counts.classes_unchanged += 1;
            out.result(kind, RecordOutcome::Unchanged, Vec::new());
        } else {
            out.plan.archive.push(cur.clone());
            out.plan.counts.classes_archived += 1;
            out.result(kind, RecordOutcome::Archived, Vec::new());
        }
        return;
    }
    let mut write = write_of(cur);
    let mut archived = None;
    for (field, value) in &g.before {
        if field == "archived" {
            archived = value.as_bool();
        } else if let Err(e) = put_back_class(&mut write, field, value) {
            let msg = format!(
                "the earlier {field} of class {} cannot be read ({e}): left as it is",
                cur.external_id
            );
            out.error(kind, msg);
            return;
        }
    }
    if g.unreadable {
        let msg = format!(
            "the earlier values of class {} cannot be read: left as it is",
            cur.external_id
        );
        out.error(kind, msg);
        return;
    }
    if !schools.contains(&write.school_id) {
        let msg = format!(
            "the earlier school of class {} no longer exists: left as it is",
            cur.external_id
        );
        out.error(kind, msg);
        return;
    }
    if let Some(t) = write.term_id.filter(|t| !terms.contains(t)) {
        let msg = format!(
            "the earlier term ({t}) of class {} no longer exists: left as it is",
            cur.external_id
        );
        out.error(kind, msg);
        return;
    }
    let changed = class_changes(cur, &write);
    let restore_it = archived == Some(false) && cur.archived;
    let archive_it = archived == Some(true) && !cur.archived;
    let counts = &mut out.plan.counts;
    let outcome = if restore_it {
        counts.classes_restored += 1;
        RecordOutcome::Restored
    } else if archive_it {
        counts.classes_archived += 1;
        RecordOutcome::Archived
    } else if changed.is_empty() || changed == ["source"] {
        counts.classes_unchanged += 1;
        RecordOutcome::Unchanged
    } else {
        counts.classes_updated += 1;
        RecordOutcome::Updated
    };
    if restore_it || !changed.is_empty() {
        out.plan.classes.push(ClassPlan {
            change: if restore_it {
                ClassChange::Restore
            } else {
                ClassChange::Update
            },
            write,
            before: Some(cur.clone()),
            changed: changed.clone(),
        });
    }
    if archive_it {
        out.plan.archive.push(cur.clone());
    }
    out.result(kind, outcome, changed);
}

/// An enrollment's earlier row, as `db::rosters` records it.
fn enrollment_before(
    class_id: Uuid,
    user_id: Uuid,
    before: &Map<String, Value>,
) -> Result<CurrentEnrollment, String> {
    let date = |field: &str| -> Result<Option<Date>, String> {
        match before.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                    .map(Some)
                    .map_err(|_| format!("{field} {s:?} is not a date"))
            }
            Some(_) => Err(format!("{field} is not a date")),
        }
    };
    let role = before
        .get("role")
        .and_then(Value::as_str)
        .and_then(EnrollmentRole::from_text)
        .ok_or("no role")?;
    Ok(CurrentEnrollment {
        class_id,
        user_id,
        role,
        primary: before
            .get("primary")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        begin: date("begin")?,
        end: date("end")?,
    })
}

fn enrollment_changes(cur: &CurrentEnrollment, want: &CurrentEnrollment) -> Vec<&'static str> {
    let mut changed = Vec::new();
    for (name, differs) in [
        ("role", cur.role != want.role),
        ("primary", cur.primary != want.primary),
        ("begin", cur.begin != want.begin),
        ("end", cur.end != want.end),
    ] {
        if differs {
            changed.push(name);
        }
    }
    changed
}

/// Rules 1, 3, 4 and 5 for one enrollment.
fn undo_enrollment(out: &mut Out<'_>, g: &Group, user_id: Uuid, cur: Option<&CurrentEnrollment>) {
    let kind = RecordKind::Enrollment;
    if g.changed_since {
        out.result(kind, RecordOutcome::Skipped, Vec::new());
        return;
    }
    if g.absent_before {
        match cur {
            Some(e) => {
                out.plan.ended.push(*e);
                out.plan.counts.enrollments_ended += 1;
                out.result(kind, RecordOutcome::Ended, Vec::new());
            }
            None => {
                out.plan.counts.enrollments_unchanged += 1;
                out.result(kind, RecordOutcome::Unchanged, Vec::new());
            }
        }
        return;
    }
    let want = if g.unreadable {
        Err("not an object".to_string())
    } else {
        enrollment_before(g.class_id, user_id, &g.before)
    };
    let want = match want {
        Ok(w) => w,
        Err(e) => {
            let msg = format!(
                "the earlier enrollment in class {} cannot be read ({e}): left as it is",
                out.key
            );
            out.error(kind, msg);
            return;
        }
    };
    match cur {
        None => {
            out.plan.counts.enrollments_added += 1;
            out.enrollment(want, None);
        }
        Some(e) => {
            let changed = enrollment_changes(e, &want);
            if changed.is_empty() {
                out.plan.counts.enrollments_unchanged += 1;
                out.result(kind, RecordOutcome::Unchanged, changed);
            } else {
                out.plan.counts.enrollments_changed += 1;
                out.enrollment(want, Some(*e));
            }
        }
    }
}

#[cfg(test)]
mod tests;
