//! The web layer: router, state, middleware. Handlers are thin; one module per screen.

pub mod account;
pub mod api;
pub mod districts;
pub mod error;
pub mod login;
pub mod page;
pub mod schools;
pub mod session;
pub mod settings;
pub mod syncs;
pub mod uploads;
pub mod users;

use crate::clock::Clock;
use crate::config::Config;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use session::Person;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

/// One app state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub queue: crate::jobs::Queue,
}

impl AppState {
    pub fn new(pool: PgPool, config: Arc<Config>, clock: Clock) -> AppState {
        let queue = crate::jobs::Queue::new(pool.clone(), config.clone(), clock.clone());
        AppState {
            pool,
            config,
            clock,
            queue,
        }
    }
}

pub const SESSION_COOKIE: &str = "rollcall_session";

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

pub fn router(state: AppState) -> Router {
    let store = PostgresStore::new(state.pool.clone())
        .with_schema_name("public")
        .and_then(|s| s.with_table_name("sessions"))
        .expect("valid session table name");
    let sessions = SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.secure_cookies())
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(8)));

    let pages = Router::new()
        .route("/", get(home))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/account", get(account::show))
        .route(
            "/account/password",
            get(account::password_form).post(account::password_submit),
        )
        .route("/districts", get(districts::list).post(districts::create))
        .route("/schools", get(schools::list).post(schools::create))
        .route("/schools/import", post(schools::import))
        .route("/schools/{id}", get(schools::edit).post(schools::update))
        .route("/uploads", get(uploads::list).post(uploads::create))
        .route("/uploads/{id}", get(uploads::show))
        .route("/uploads/{id}/status.json", get(uploads::status_json))
        .route("/uploads/{id}/files/{kind}", get(uploads::file))
        .route(
            "/uploads/{id}/map",
            get(uploads::map_form).post(uploads::map_save),
        )
        .route("/uploads/{id}/approve", post(uploads::approve))
        .route("/uploads/{id}/cancel", post(uploads::cancel))
        .route("/users", get(users::list::list).post(users::form::create))
        .route("/users.csv", get(users::list::csv))
        .route("/users/new", get(users::form::new_form))
        .route(
            "/users/{guid}",
            get(users::form::show).post(users::form::update),
        )
        .route("/users/{guid}/status", post(users::actions::status))
        .route("/users/{guid}/archive", post(users::actions::archive))
        .route("/users/{guid}/restore", post(users::actions::restore))
        .route(
            "/users/{guid}/password",
            post(users::actions::reset_password),
        )
        .route("/syncs", get(syncs::list).post(syncs::create))
        .route("/syncs/{id}", get(syncs::show).post(syncs::update))
        .route("/syncs/{id}/test", post(syncs::test))
        .route("/syncs/{id}/run", post(syncs::run_now))
        .route("/syncs/{id}/pause", post(syncs::pause))
        .route("/syncs/{id}/delete", post(syncs::delete))
        .route("/syncs/{id}/upload", post(syncs::upload))
        .route("/settings", get(settings::show))
        .route("/settings/guard", post(settings::guard))
        .route("/settings/tokens", post(settings::create_token))
        .route("/settings/tokens/{id}/revoke", post(settings::revoke_token))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::csrf_guard,
        ))
        .layer(sessions);

    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(pages)
        .route("/healthz", get(healthz))
        .route("/api/v1/uploads", post(api::create_upload))
        .route("/api/v1/uploads/{id}", get(api::get_upload))
        .route("/api/v1/uploads/{id}/files/{kind}", get(api::get_upload_file))
        .route("/api/v1/users", get(api::list_users))
        .route("/api/v1/{*rest}", get(api::not_found).post(api::not_found))
        .nest_service("/static", ServeDir::new(static_dir()))
        .fallback(|| async { error::AppError::NotFound })
        .layer(DefaultBodyLimit::max((state.config.max_upload_bytes() + 1024 * 1024) as usize))
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            // The path only: query strings may carry search terms or tokens.
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// `static/` next to the binary's crate, or in the working directory.
fn static_dir() -> std::path::PathBuf {
    let here = std::path::PathBuf::from("static");
    if here.is_dir() {
        here
    } else {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static")
    }
}

async fn home(person: Person) -> Response {
    match person {
        Person::Operator { .. } => Redirect::to("/districts").into_response(),
        p => match p.portal_role() {
            Some(crate::domain::PortalRole::DistrictAdmin)
            | Some(crate::domain::PortalRole::SchoolAdmin) => {
                Redirect::to("/users").into_response()
            }
            _ => Redirect::to("/account").into_response(),
        },
    }
}

async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&state.pool)
        .await
    {
        Ok(_) => (axum::http::StatusCode::OK, "ok").into_response(),
        Err(_) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable",
        )
            .into_response(),
    }
}

/// A bound, running server.
pub struct Server {
    pub addr: SocketAddr,
    pub handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Bind `state.config.bind` (port 0 picks a free one) and serve until `shutdown` resolves.
pub async fn start(
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Server> {
    let listener = tokio::net::TcpListener::bind(&state.config.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", state.config.bind))?;
    let addr = listener.local_addr()?;
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let handle = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok(Server { addr, handle })
}
