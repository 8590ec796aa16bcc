//! A roster plan encoded for `db::rosters`: CSV for each staging table and for the run's
//! record results.
//!
//! The two that grow with the district (enrollments added or changed, record results: a
//! first sync has millions of each) are encoded a chunk at a time while they are sent, from
//! a shared plan, never as one buffer (issue 15: those two buffers took ~1 GB at 3,000,000
//! enrollments).

use std::sync::Arc;

use serde_json::json;
use time::Date;
use uuid::Uuid;

use super::{ClassChange, CurrentClass, CurrentEnrollment, RosterPlan};
use crate::db::reconcile::Chunks;
use crate::db::rosters::RosterWrites;

/// Separates grades in a staged row.
const SEP: char = '\u{1f}';

fn date(d: Option<Date>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn opt_id(id: Option<Uuid>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

fn class_json(c: &CurrentClass) -> serde_json::Value {
    json!({
        "external_id": c.external_id,
        "title": c.title,
        "school_id": c.school_id,
        "course_code": c.course_code,
        "subject": c.subject,
        "period": c.period,
        "grades": c.grades,
        "term_id": c.term_id,
        "source": c.source.to_db(),
    })
}

fn finish(w: csv::Writer<Vec<u8>>, any: bool) -> csv::Result<Option<Vec<u8>>> {
    if !any {
        return Ok(None);
    }
    w.into_inner()
        .map(Some)
        .map_err(|e| csv::Error::from(e.into_error()))
}

/// The plan's writes (terms, classes with their audit before/after, archives, enrollments
/// added or changed, enrollments ended).
pub fn encode(plan: &Arc<RosterPlan>) -> csv::Result<RosterWrites> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for t in &plan.terms {
        w.write_record([
            t.id.to_string(),
            t.external_id.clone(),
            t.title.clone(),
            date(t.start),
            date(t.end),
        ])?;
    }
    let terms = finish(w, !plan.terms.is_empty())?;

    let mut w = csv::Writer::from_writer(Vec::new());
    for c in &plan.classes {
        let kind = match c.change {
            ClassChange::Create => "create",
            ClassChange::Update => "update",
            ClassChange::Restore => "restore",
        };
        let after = CurrentClass {
            id: c.write.id,
            external_id: c.write.external_id.clone(),
            school_id: c.write.school_id,
            title: c.write.title.clone(),
            course_code: c.write.course_code.clone(),
            subject: c.write.subject.clone(),
            period: c.write.period.clone(),
            grades: c.write.grades.clone(),
            term_id: c.write.term_id,
            source: c.write.source.clone(),
            archived: false,
        };
        // The audit entry carries the fields that changed (all of them for a new class) and
        // the class's external id.
        let (before, after) = match &c.before {
            None => (String::new(), class_json(&after).to_string()),
            Some(b) => {
                let (mut bj, mut aj) = (class_json(b), class_json(&after));
                if let (Some(bo), Some(ao)) = (bj.as_object_mut(), aj.as_object_mut()) {
                    let same: Vec<String> = bo
                        .iter()
                        .filter(|(k, v)| *k != "external_id" && ao.get(*k) == Some(*v))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in same {
                        bo.remove(&k);
                        ao.remove(&k);
                    }
                    if c.change == ClassChange::Restore {
                        bo.insert("archived".into(), json!(true));
                        ao.insert("archived".into(), json!(false));
                    }
                }
                (bj.to_string(), aj.to_string())
            }
        };
        let grades: Vec<&str> = c.write.grades.iter().map(String::as_str).collect();
        w.write_record([
            kind.to_string(),
            c.write.id.to_string(),
            c.write.external_id.clone(),
            c.write.school_id.to_string(),
            c.write.title.clone(),
            c.write.course_code.clone(),
            c.write.subject.clone(),
            c.write.period.clone(),
            grades.join(&SEP.to_string()),
            opt_id(c.write.term_id),
            c.write.source.to_db(),
            before,
            after,
        ])?;
    }
    let classes = finish(w, !plan.classes.is_empty())?;

    let enrollments = (!plan.enrollments.is_empty()).then(|| {
        chunks(plan.clone(), plan.enrollments.len(), |p, mut rows, w| {
            rows.try_for_each(|i| enrollment_row(p.write_now(i), p.write_before(i), w))
        })
    });

    let mut w = csv::Writer::from_writer(Vec::new());
    for e in &plan.ended {
        w.write_record([e.class_id.to_string(), e.user_id.to_string()])?;
    }
    let ended = finish(w, !plan.ended.is_empty())?;
    Ok(RosterWrites {
        terms,
        classes,
        archive: plan.archive.iter().map(|c| c.id).collect(),
        enrollments,
        ended,
    })
}

/// The run's record results (see `db::rosters::store_results`): the plan's, as listed. The
/// planner lists unchanged records only for a feed that keeps every result (the roster CSV,
/// whose completed file lists every row; `RosterFeed::every_result`) — never one row per
/// unchanged enrollment of a 3,000,000-enrollment sync — and a sync's plan stores no result
/// for the enrollments it writes either ([`RosterPlan::writes_unlisted`]).
pub fn results(plan: &Arc<RosterPlan>, district_id: Uuid, run_id: Uuid) -> Option<Chunks> {
    let (district, run) = (district_id.to_string(), run_id.to_string());
    (plan.stored_len() > 0).then(|| {
        chunks(plan.clone(), plan.stored_len(), move |p, rows, w| {
            let from = rows.start;
            rows.zip(p.stored_from(from)).try_for_each(|(seq, r)| {
                w.write_record([
                    district.as_str(),
                    run.as_str(),
                    &seq.to_string(),
                    r.kind.as_str(),
                    p.file_of(&r),
                    &r.line.to_string(),
                    r.outcome.as_str(),
                    &opt_id(r.class_id.get()),
                    &opt_id(r.user_id.get()),
                    &r.key,
                    &format!("{{{}}}", r.changed().join(",")),
                    r.error().unwrap_or_default(),
                ])
            })
        })
    })
}

/// Rows per chunk.
const CHUNK_ROWS: usize = 4096;

/// `len` rows of `plan`, written by `rows` a range at a time, as CSV chunks of
/// [`CHUNK_ROWS`] rows.
fn chunks(
    plan: Arc<RosterPlan>,
    len: usize,
    rows: impl Fn(&RosterPlan, std::ops::Range<usize>, &mut csv::Writer<Vec<u8>>) -> csv::Result<()>
    + Send
    + 'static,
) -> Chunks {
    Box::new((0..len).step_by(CHUNK_ROWS).map(move |from| {
        let mut w = csv::Writer::from_writer(Vec::with_capacity(CHUNK_ROWS * 128));
        rows(&plan, from..(from + CHUNK_ROWS).min(len), &mut w)?;
        w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
    }))
}

/// An enrollment added or changed: `class_id,user_id,role,is_primary,begin_date,end_date,
/// before`.
fn enrollment_row(
    e: CurrentEnrollment,
    before: Option<&CurrentEnrollment>,
    w: &mut csv::Writer<Vec<u8>>,
) -> csv::Result<()> {
    // The earlier row, for the run's undo, as the planner read it (no join back to
    // `enrollments` for it); empty for an enrollment added.
    let before = before.map_or_else(String::new, |b| {
        json!({
            "role": b.role.as_str(),
            "primary": b.primary,
            "begin": b.begin.map(|d| d.to_string()),
            "end": b.end.map(|d| d.to_string()),
        })
        .to_string()
    });
    w.write_record([
        e.class_id.to_string(),
        e.user_id.to_string(),
        e.role.as_str().to_string(),
        e.primary.to_string(),
        date(e.begin),
        date(e.end),
        before,
    ])
}
