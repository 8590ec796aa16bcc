//! One error type for the web layer. Client errors say what to fix; database and internal
//! errors are logged once, here, and shown as a plain 500 with the request id.

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
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            AppError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Db(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message shown to the person; internal details never leave the server.
    pub fn public_message(&self) -> String {
        match self {
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

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: String,
    message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let page = ErrorPage {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            message: self.public_message(),
        };
        let mut response = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, self.public_message()).into_response(),
        };
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
        (
            status,
            Json(
                serde_json::json!({ "error": self.0.public_message(), "status": status.as_u16() }),
            ),
        )
            .into_response()
    }
}

pub type AppResult<T> = Result<T, AppError>;
