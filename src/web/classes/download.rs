//! `GET /classes.csv` and `GET /enrollments.csv`: the classes (one row each) and their
//! enrollments (one row each) in the roster CSV format (`domain::roster::ROSTER_CSV_HEADER`,
//! then `class_guid`), streamed, with the list's filters.
//!
//! **Round trip.** Uploaded again as a roster CSV (under its own name, a file source of
//! its own), either file changes nothing: every row names its class by `class_guid`, so the
//! engine edits the class in place instead of moving it to the upload's source
//! (`reconcile::roster`, rule 3), and a sync's class that comes back unchanged is skipped.
//! Edited and sent back, it changes what was edited: a changed title updates the class (its
//! owner kept); a removed enrollment row ends that enrollment only when the file is sent
//! with scope `district` (with scope `source` a file ends only its own source's
//! enrollments, and these classes are not its own).

use super::{ListQuery, Params};
use crate::db;
use crate::db::classes::ExportRow;
use crate::domain::roster::{CLASS_GUID_COLUMN, ROSTER_CSV_HEADER};
use crate::reconcile::report::{UTF8_BOM, neutralise};
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::session::DistrictScope;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

/// Grades in one cell, as the roster CSV reads them.
pub const GRADES_SEPARATOR: &str = ";";

/// The downloads' columns: the roster CSV's, then the class's GUID.
pub const WIDTH: usize = ROSTER_CSV_HEADER.len() + 1;

/// The downloads' header: [`ROSTER_CSV_HEADER`], then [`CLASS_GUID_COLUMN`].
pub fn header() -> [String; WIDTH] {
    std::array::from_fn(|i| {
        ROSTER_CSV_HEADER
            .get(i)
            .copied()
            .unwrap_or(CLASS_GUID_COLUMN)
            .to_string()
    })
}

/// One roster CSV record, in [`header`]'s order, formulas neutralised. Dates are ISO
/// (`2025-08-20`); `primary` is `true`/`false` on an enrollment's row, blank on a class's
/// own row.
pub fn roster_record(r: &ExportRow) -> [String; WIDTH] {
    let day = |d: Option<time::Date>| d.map(|d| d.to_string()).unwrap_or_default();
    let cells = [
        r.class_external_id.clone(),
        r.class_title.clone(),
        r.school_external_id.clone(),
        r.role.clone().unwrap_or_default(),
        r.user.clone().unwrap_or_default(),
        r.primary.map(|p| p.to_string()).unwrap_or_default(),
        r.course_code.clone(),
        r.subject.clone(),
        r.period.clone(),
        r.grades.join(GRADES_SEPARATOR),
        r.term.clone().unwrap_or_default(),
        day(r.term_start),
        day(r.term_end),
        r.class_guid.to_string(),
    ];
    cells.map(|c| neutralise(&c).into_owned())
}

fn csv_bytes(records: impl Iterator<Item = [String; WIDTH]>) -> std::io::Result<Bytes> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(8192));
    for r in records {
        w.write_record(&r).map_err(std::io::Error::other)?;
    }
    w.into_inner()
        .map(Bytes::from)
        .map_err(|e| std::io::Error::other(e.into_error()))
}

/// The download's stable name: `<district>-classes.csv` / `<district>-enrollments.csv`. A
/// filtered download is not the whole roster (uploaded again under the stable name it would
/// end what it leaves out), and is named so.
pub fn file_name(district_slug: &str, enrollments: bool, filtered: bool) -> String {
    let what = if enrollments {
        "enrollments"
    } else {
        "classes"
    };
    let filtered = if filtered { "-filtered" } else { "" };
    format!("{district_slug}-{what}{filtered}.csv")
}

pub async fn classes_csv(
    state: State<AppState>,
    scope: DistrictScope,
    query: Query<ListQuery>,
) -> AppResult<Response> {
    download(state, scope, query, false).await
}

pub async fn enrollments_csv(
    state: State<AppState>,
    scope: DistrictScope,
    query: Query<ListQuery>,
) -> AppResult<Response> {
    download(state, scope, query, true).await
}

async fn download(
    State(state): State<AppState>,
    scope: DistrictScope,
    Query(query): Query<ListQuery>,
    enrollments: bool,
) -> AppResult<Response> {
    let params = Params::parse(&ListQuery {
        after: None,
        before: None,
        ..query
    })?;
    let filtered = !params.filter_pairs().is_empty();
    // UTF-8 with a BOM, so Excel opens it with accents intact (our reader strips it again).
    let mut header_line = UTF8_BOM.to_vec();
    header_line.extend_from_slice(
        &csv_bytes(std::iter::once(header())).map_err(|e| AppError::Internal(e.into()))?,
    );
    let header_line = Bytes::from(header_line);
    let rows = db::classes::export_rows(
        state.pool.clone(),
        scope.district_id,
        params.filter,
        scope.schools.clone(),
        enrollments,
    );
    let district = scope.district_id;
    let body = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(header_line) })
        .chain(rows.ready_chunks(512).map(move |chunk| {
            let mut records = Vec::with_capacity(chunk.len());
            for row in chunk {
                match row {
                    Ok(r) => records.push(roster_record(&r)),
                    Err(e) => {
                        // The download ends short and the client sees a broken transfer,
                        // never a file that looks complete.
                        tracing::error!(district = %district, error = %e, "roster CSV stopped");
                        return Err(std::io::Error::other("database error"));
                    }
                }
            }
            csv_bytes(records.into_iter())
        }));
    let name = file_name(&scope.district_slug, enrollments, filtered);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ExportRow {
        ExportRow {
            class_external_id: "C-1".into(),
            class_title: "=Algebra".into(),
            school_external_id: "HS".into(),
            role: Some("teacher".into()),
            user: Some("T-1".into()),
            primary: Some(true),
            course_code: "MATH1".into(),
            subject: "Math".into(),
            period: "2".into(),
            grades: vec!["9".into(), "10".into()],
            term: Some("FALL25".into()),
            term_start: Some(time::macros::date!(2025 - 08 - 20)),
            term_end: None,
            class_guid: uuid::Uuid::from_u128(7),
        }
    }

    #[test]
    fn a_record_follows_the_roster_header_with_formulas_neutralised() {
        let r = roster_record(&row());
        assert_eq!(
            r,
            [
                "C-1",
                "'=Algebra",
                "HS",
                "teacher",
                "T-1",
                "true",
                "MATH1",
                "Math",
                "2",
                "9;10",
                "FALL25",
                "2025-08-20",
                "",
                "00000000-0000-0000-0000-000000000007"
            ]
            .map(str::to_string)
        );
        let class_only = ExportRow {
            role: None,
            user: None,
            primary: None,
            ..row()
        };
        let r = roster_record(&class_only);
        assert_eq!((&r[3][..], &r[4][..], &r[5][..]), ("", "", ""));
    }

    #[test]
    fn names_are_stable_and_filtered_ones_say_so() {
        assert_eq!(
            file_name("springfield", false, false),
            "springfield-classes.csv"
        );
        assert_eq!(
            file_name("springfield", true, false),
            "springfield-enrollments.csv"
        );
        assert_eq!(
            file_name("springfield", true, true),
            "springfield-enrollments-filtered.csv"
        );
    }
}
