//! What every request passes on its way in and out, around the handlers: a declared body
//! over the limit refused before it is read, `Cache-Control: no-store` on everything but
//! static files, errors under `/api` always the documented JSON, and the session store's
//! bare 500 turned into a page that says what happened.

use super::AppState;
use super::error::{ApiError, AppError};
use crate::config::Config;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Room for a multipart request's framing and small fields next to a file of the largest
/// accepted size.
const MULTIPART_ALLOWANCE: u64 = 1024 * 1024;

/// The largest request body accepted, in bytes.
pub fn body_limit(config: &Config) -> u64 {
    config.max_upload_bytes() + MULTIPART_ALLOWANCE
}

/// `/api` and everything under it answers JSON.
pub fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The error as the area of `path` shows it: JSON under `/api`, a page elsewhere.
pub fn error_response(path: &str, e: AppError) -> Response {
    if is_api(path) {
        ApiError(e).into_response()
    } else {
        e.into_response()
    }
}

/// A `Content-Length` over the limit is refused with 413 before a byte of the body is read
/// (and before sessions, tokens or the database are consulted).
pub async fn content_length(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > body_limit(&state.config)) {
        tracing::info!(path = %req.uri().path(), declared, "request body over the limit refused");
        let mut res = error_response(
            req.uri().path(),
            AppError::TooLarge(state.config.max_upload_mb),
        );
        // The body was not read: the connection cannot carry another request.
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return res;
    }
    next.run(req).await
}

/// Pages, downloads and API answers hold student data: no browser or proxy may keep them.
/// Static assets (`/static/…`) may be cached.
pub async fn no_store(req: Request, next: Next) -> Response {
    let cacheable = req.uri().path().starts_with("/static/");
    let mut res = next.run(req).await;
    if !cacheable {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Every error answer under `/api` is `{"error": "...", "status": N}`: axum's own
/// rejections (a query string or id that does not parse, a wrong content type, a method
/// the route does not take) answer plain text or nothing, and are rewritten here.
pub async fn api_json_errors(req: Request, next: Next) -> Response {
    if !is_api(req.uri().path()) {
        return next.run(req).await;
    }
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let is_text = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    let (mut parts, body) = res.into_parts();
    let text = if is_text {
        axum::body::to_bytes(body, 16 * 1024)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    let json = serde_json::json!({ "error": message, "status": status.as_u16() });
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json.to_string()))
}

/// The session layer answers a bare, empty 500 when its store (PostgreSQL) fails. Put
/// around it, this shows the error page instead: 503 with a clear message when the
/// database cannot be reached, the usual 500 page otherwise.
pub async fn session_store_errors(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_string();
    let res = next.run(req).await;
    let bare = res.status() == axum::http::StatusCode::INTERNAL_SERVER_ERROR
        && axum::body::HttpBody::size_hint(res.body()).exact() == Some(0);
    if !bare {
        return res;
    }
    if database_reachable(&state).await {
        error_response(
            &path,
            AppError::Internal(anyhow::anyhow!("the session could not be saved")),
        )
    } else {
        error_response(&path, AppError::Unavailable)
    }
}

async fn database_reachable(state: &AppState) -> bool {
    if state.pool.is_closed() {
        return false;
    }
    let ping = crate::db::health::ping(&state.pool);
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ping).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_api_and_nothing_else() {
        for p in ["/api", "/api/", "/api/v1/users", "/api/v2/x"] {
            assert!(is_api(p), "{p}");
        }
        for p in ["/", "/apis", "/api-docs", "/users", "/static/api/x"] {
            assert!(!is_api(p), "{p}");
        }
    }

    #[test]
    fn the_body_limit_is_the_upload_limit_and_room_for_multipart_framing() {
        let mut config = Config::for_tests("/tmp".into());
        config.max_upload_mb = 2;
        assert_eq!(body_limit(&config), 3 * 1024 * 1024);
    }
}
