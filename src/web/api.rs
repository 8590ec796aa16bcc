//! The JSON API under `/api/v1`, for scripts: `Authorization: Bearer <token>` with a
//! district's API token (stored hashed; revocable). Errors are JSON with a message.

use super::AppState;
use super::error::{ApiError, AppError};
use super::intake_form::receive;
use crate::auth;
use crate::db;
use crate::domain::{ActorKind, RunStatus};
use crate::intake::{self, Sender};
use axum::Json;
use axum::extract::{FromRequestParts, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

/// A request proven to come from a live API token of one district.
pub struct ApiDistrict {
    pub district_id: Uuid,
    pub token_id: Uuid,
}

/// The API's answer to a request without a bearer token.
pub const NO_TOKEN: &str =
    "send a district API token: Authorization: Bearer TOKEN (Settings → API tokens)";
/// The API's answer to a token it does not know (mistyped, revoked, or another
/// installation's).
pub const BAD_TOKEN: &str = "the API token is not valid: it is unknown or has been revoked";

impl FromRequestParts<AppState> for ApiDistrict {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError(AppError::ApiToken(NO_TOKEN)))?;
        let (district_id, token_id) =
            db::tokens::authenticate(&state.pool, &auth::hash_token(token))
                .await
                .map_err(AppError::from)?
                .ok_or(ApiError(AppError::ApiToken(BAD_TOKEN)))?;
        Ok(ApiDistrict {
            district_id,
            token_id,
        })
    }
}

/// A multipart field with a value that is none of the allowed ones: 422, like a missing
/// field.
fn field_error(e: intake::BadOption) -> ApiError {
    ApiError(AppError::Unprocessable(e.to_string()))
}

/// `POST /api/v1/uploads`: multipart `file`, optional `source`, `scope`
/// (`source|district|patch`) and `dry_run` (`true|1|on|yes`, `false|0|off|no`), read by
/// the intake as on every way in.
pub async fn create_upload(
    State(state): State<AppState>,
    who: ApiDistrict,
    mut multipart: Multipart,
) -> Result<Response, ApiError> {
    let label = format!("API token {}", &who.token_id.to_string()[..8]);
    let inbox = &state.queue.inbox;
    let received = receive(inbox, who.district_id, &mut multipart, Some("upload.csv"))
        .await
        .map_err(super::uploads::accept_error)?;
    if let Some(e) = received.bad {
        return Err(field_error(e));
    }
    let stored = received.stored.ok_or(ApiError(AppError::Unprocessable(
        "the multipart field `file` is missing".into(),
    )))?;
    let sender = Sender {
        kind: ActorKind::Token,
        label: &label,
    };
    let accepted = intake::queue_run(inbox, who.district_id, stored, &received.asked, &sender)
        .await
        .map_err(super::uploads::accept_error)?;
    let run = db::runs::get(&state.pool, who.district_id, accepted.run_id)
        .await
        .map_err(AppError::from)?
        .ok_or(AppError::NotFound)?;
    if accepted.status == RunStatus::NeedsMapping {
        // Scripts cannot use the mapper: say what is missing.
        let max = state.config.max_upload_bytes();
        let path = run.file_path.clone().unwrap_or_default();
        let headers = tokio::task::spawn_blocking(move || {
            intake::file_headers(std::path::Path::new(&path), max).unwrap_or_default()
        })
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
        let msg = crate::feed::headers::resolve(&headers, None, &[], &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "the columns need mapping".into());
        db::runs::set_status(
            &state.pool,
            who.district_id,
            run.id,
            RunStatus::NeedsMapping,
            RunStatus::Cancelled,
        )
        .await
        .map_err(AppError::from)?;
        return Err(ApiError(AppError::Unprocessable(format!(
            "{msg}. Map these columns once in the portal (Uploads) or rename them; the upload was not queued."
        ))));
    }
    let body = serde_json::json!({
        "id": run.id,
        "status": run.status,
        "status_url": format!("/api/v1/uploads/{}", run.id),
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

pub async fn get_upload(
    State(state): State<AppState>,
    who: ApiDistrict,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let run = db::runs::get(&state.pool, who.district_id, id)
        .await
        .map_err(AppError::from)?
        .ok_or(AppError::NotFound)?;
    Ok(Json(super::uploads::status_body(&run)).into_response())
}

pub async fn get_upload_file(
    State(state): State<AppState>,
    who: ApiDistrict,
    Path((id, kind)): Path<(Uuid, String)>,
) -> Result<Response, ApiError> {
    let run = db::runs::get(&state.pool, who.district_id, id)
        .await
        .map_err(AppError::from)?
        .ok_or(AppError::NotFound)?;
    super::uploads::file_response(&state, &run, &kind)
        .await
        .map_err(ApiError)
}

/// A list endpoint's page: `after` = the last id of the previous page, `limit`, `status`
/// (users and classes alike).
#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    after: Option<Uuid>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    status: Option<String>,
}

/// `GET /api/v1/users`: every non-archived user (or `status=archived|inactive|active`),
/// `limit` per page (default 500, at most 5,000), `after` = the last id of the previous page.
pub async fn list_users(
    State(state): State<AppState>,
    who: ApiDistrict,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let filter = db::user_filter::UserFilter {
        status: db::user_filter::StatusFilter::parse(q.status.as_deref().unwrap_or("")),
        ..Default::default()
    };
    let rows = db::export::api_page(&state.pool, who.district_id, &filter, q.after, limit)
        .await
        .map_err(AppError::from)?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let users: Vec<serde_json::Value> = rows
        .iter()
        .map(|u| {
            serde_json::json!({
                "user_guid": u.id, "custom_id": u.custom_id, "email": u.email, "username": u.username,
                "first_name": u.first_name, "middle_name": u.middle_name, "last_name": u.last_name, "role": u.role,
                "school_external_ids": u.schools, "grade": if u.role == "Student" { Some(&u.grade) } else { None },
                "position": u.position, "status": u.status.label(),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "users": users,
        "next": next.map(|id| format!("/api/v1/users?after={id}&limit={limit}")),
    }))
    .into_response())
}

/// `GET /api/v1/classes`: the district's active classes (or `status=archived`), `limit` per
/// page (default 500, at most 5,000), `after` = the last id of the previous page.
pub async fn list_classes(
    State(state): State<AppState>,
    who: ApiDistrict,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    use db::classes::ClassStatus;
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let status = q
        .status
        .as_deref()
        .and_then(ClassStatus::parse)
        .unwrap_or_default();
    let rows = db::classes::api_page(&state.pool, who.district_id, status, q.after, limit)
        .await
        .map_err(AppError::from)?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let classes: Vec<serde_json::Value> = rows
        .iter()
        .map(|c| {
            let term = c.term_external_id.as_ref().map(|id| {
                serde_json::json!({
                    "external_id": id, "title": c.term_title,
                    "start": c.term_start.map(|d| d.to_string()), "end": c.term_end.map(|d| d.to_string()),
                })
            });
            let status = if c.archived_at.is_some() {
                ClassStatus::Archived
            } else {
                ClassStatus::Active
            };
            serde_json::json!({
                "class_guid": c.id, "external_id": c.external_id, "title": c.title,
                "school_external_id": c.school_external_id, "course_code": c.course_code,
                "subject": c.subject, "period": c.period, "grades": c.grades, "term": term,
                "status": status.as_str(),
                "enrollments": format!("/api/v1/classes/{}/enrollments", c.id),
            })
        })
        .collect();
    let status_pair = if status == ClassStatus::default() {
        String::new()
    } else {
        format!("&status={}", status.as_str())
    };
    Ok(Json(serde_json::json!({
        "classes": classes,
        "next": next.map(|id| format!("/api/v1/classes?after={id}&limit={limit}{status_pair}")),
    }))
    .into_response())
}

#[derive(Deserialize)]
pub struct EnrollmentsQuery {
    #[serde(default)]
    after: Option<Uuid>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /api/v1/classes/{id}/enrollments`: the class's enrollments of users not archived,
/// `limit` per page (default 500, at most 5,000), `after` = the last `user_guid` of the
/// previous page. 404 for a class that is not the token's district's.
pub async fn list_enrollments(
    State(state): State<AppState>,
    who: ApiDistrict,
    Path(id): Path<String>,
    Query(q): Query<EnrollmentsQuery>,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError(AppError::NotFound))?;
    if !db::classes::exists(&state.pool, who.district_id, id)
        .await
        .map_err(AppError::from)?
    {
        return Err(ApiError(AppError::NotFound));
    }
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let rows = db::classes::api_enrollments(&state.pool, who.district_id, id, q.after, limit)
        .await
        .map_err(AppError::from)?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.user_id))
        .flatten();
    let enrollments: Vec<serde_json::Value> = rows
        .iter()
        .map(|e| {
            serde_json::json!({
                "user_guid": e.user_id, "custom_id": e.custom_id, "email": e.email,
                "username": e.username, "role": e.role, "primary": e.is_primary,
                "begin_date": e.begin_date.map(|d| d.to_string()),
                "end_date": e.end_date.map(|d| d.to_string()),
                "status": e.status.label(),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "class_guid": id,
        "enrollments": enrollments,
        "next": next.map(|u| format!("/api/v1/classes/{id}/enrollments?after={u}&limit={limit}")),
    }))
    .into_response())
}

pub async fn not_found() -> ApiError {
    ApiError(AppError::NotFound)
}
