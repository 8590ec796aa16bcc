//! One error type for the web layer. Client errors say what to fix; database and internal
//! errors are logged once, here (inside the request's log span, so the log line carries the
//! request id, which the answer's `x-request-id` header also carries), and shown without
//! details: a plain 500, or a 503 when the database cannot be reached.

use askama::Template;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("you do not have access to this page")]
    Forbidden,
    #[error("sign in first")]
    Unauthorized,
    /// The API's 401: what was wrong with the bearer token (missing, or unknown/revoked).
    #[error("{0}")]
    ApiToken(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("the file is larger than the limit of {0} MiB")]
    TooLarge(u64),
    #[error("too many failed sign-ins; try again in 15 minutes")]
    TooManyRequests,
    #[error("the server is busy; try again in a few seconds")]
    Busy,
    #[error("the form expired or did not come from this site; reload the page and try again")]
    Csrf,
    #[error("the request body stalled and was stopped; send it again")]
    BodyTimeout,
    #[error("{DATABASE_DOWN}")]
    Unavailable,
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::Unauthorized | AppError::ApiToken(_) => StatusCode::UNAUTHORIZED,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            AppError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            AppError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Db(e) if database_down(e) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Db(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message shown to the person; internal details never leave the server.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Db(e) if database_down(e) => DATABASE_DOWN.into(),
            AppError::Db(e) => crate::db::constraint_message(e)
                .map(str::to_string)
                .unwrap_or_else(|| "Something went wrong on our side. It has been logged.".into()),
            AppError::Internal(_) => "Something went wrong on our side. It has been logged.".into(),
            other => other.to_string(),
        }
    }

    fn log(&self) {
        match self {
            AppError::Db(e) if crate::db::constraint_message(e).is_none() => {
                tracing::error!(error = %e, "database error")
            }
            AppError::Internal(e) => tracing::error!(error = format!("{e:#}"), "internal error"),
            _ => {}
        }
    }

    /// A unique violation becomes a Conflict with its message.
    pub fn from_constraint(e: sqlx::Error) -> AppError {
        match crate::db::constraint_message(&e) {
            Some(msg) => AppError::Conflict(msg.to_string()),
            None => AppError::Db(e),
        }
    }
}

/// What a 503 `Busy` asks the client to wait, in seconds.
const BUSY_RETRY_AFTER_SECS: &str = "5";

impl From<crate::auth::Busy> for AppError {
    fn from(_: crate::auth::Busy) -> Self {
        AppError::Busy
    }
}

/// The error page without a session: the bare header. On page routes,
/// `page::error_in_layout` renders it again inside the signed-in person's layout.
#[derive(Template)]
#[template(path = "error_bare.html")]
struct ErrorPage {
    status: u16,
    title: String,
    message: String,
}

/// Set on an HTML error answer so that, on page routes, `page::error_in_layout` can render
/// it again inside the signed-in person's layout.
#[derive(Debug, Clone)]
pub struct ErrorShown {
    pub status: u16,
    pub title: String,
    pub message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let shown = ErrorShown {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            message: self.public_message(),
        };
        let page = ErrorPage {
            status: shown.status,
            title: shown.title.clone(),
            message: shown.message.clone(),
        };
        let mut response = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, self.public_message()).into_response(),
        };
        response.extensions_mut().insert(shown);
        if matches!(self, AppError::Busy) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(BUSY_RETRY_AFTER_SECS),
            );
        }
        response
    }
}

/// The same errors, as JSON for `/api`.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.log();
        let status = self.0.status();
        let mut response = (
            status,
            Json(
                serde_json::json!({ "error": self.0.public_message(), "status": status.as_u16() }),
            ),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: a bearer-token API names its scheme on a 401.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

const DATABASE_DOWN: &str = "The database cannot be reached right now. Try again in a minute; if it lasts, tell the operator.";

/// PostgreSQL is unreachable, not answering in time, or shutting down: the request was
/// fine and may be tried again (503), unlike an error in what was asked (500).
fn database_down(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // connection_exception (08…), admin/crash shutdown, cannot connect now (57P01-03)
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// A multipart body that could not be read is the sender's to fix, never a 500: stalled
/// past the body timeout (408), over the size limit (413), or cut short or malformed (400).
pub fn multipart_error(e: &axum::extract::multipart::MultipartError, limit_mb: u64) -> AppError {
    if stalled(e) {
        return AppError::BodyTimeout;
    }
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::TooLarge(limit_mb),
        _ => AppError::BadRequest(format!(
            "the upload could not be read ({}); nothing was stored — send it again",
            e.body_text()
        )),
    }
}

/// Whether the body timeout (`tower_http::timeout::TimeoutBody`) is behind this error.
pub(crate) fn stalled(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

pub type AppResult<T> = Result<T, AppError>;
