//! `GET /uploads/{id}/files/{kind}`: a run's downloads (uploaded, completed, errors).

use crate::db;
use crate::domain::RunStatus;
use crate::intake;
use crate::reconcile::report::FileKind;
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::session::DistrictScope;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

pub async fn file(
    State(state): State<AppState>,
    scope: DistrictScope,
    Path((id, kind)): Path<(Uuid, String)>,
) -> AppResult<Response> {
    let run = super::load_for(&state, &scope, id).await?;
    file_response(&state, &run, &kind).await
}

/// A run's download as an attachment (shared with the API).
pub async fn file_response(
    state: &AppState,
    run: &db::runs::Run,
    kind: &str,
) -> AppResult<Response> {
    let kind = FileKind::parse(kind).ok_or(AppError::NotFound)?;
    if matches!(
        run.status,
        RunStatus::Queued | RunStatus::InProgress | RunStatus::NeedsMapping
    ) && kind != FileKind::Uploaded
    {
        return Err(AppError::Conflict("the run has not finished yet".into()));
    }
    let download = intake::download(
        state.pool.clone(),
        run,
        kind,
        state.config.max_upload_bytes(),
    )
    .await?
    .ok_or_else(|| {
        AppError::Conflict("this run's files were removed after the retention period".into())
    })?;
    let base = run
        .file_name
        .as_deref()
        .unwrap_or("upload.csv")
        .trim_end_matches(".csv")
        .trim_end_matches(".CSV");
    let safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    // A set that carried classes and enrollments downloads as a zip of its users' file and
    // its classes (or roster errors); any other run as one CSV.
    let (extension, content_type) = if download.zip {
        ("zip", "application/zip")
    } else {
        ("csv", "text/csv; charset=utf-8")
    };
    let disposition = format!(
        "attachment; filename=\"{safe}-{}.{extension}\"",
        kind.as_str()
    );
    let mut resp = Body::from_stream(download.body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
