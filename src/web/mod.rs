//! The web layer: router, state, middleware, and one module per screen. A handler reads the
//! request, checks the caller's scope and renders the answer; SQL stays in `db`, but some
//! handlers still hold their screen's own steps (a user action's transaction and audit entry,
//! for example), so not every handler is thin.

pub mod account;
pub mod alerts;
pub mod api;
pub mod audit;
pub mod badge;
pub mod classes;
pub mod client;
pub mod districts;
pub mod edge;
pub mod error;
pub mod home;
pub mod intake_form;
pub mod keyset;
pub mod login;
pub mod mfa;
pub mod multipart_token;
pub mod page;
pub mod password_reset;
pub mod schools;
pub mod session;
pub mod sessions;
pub mod settings;
pub mod sso;
pub mod syncs;
pub mod teaching;
pub mod undo;
pub mod unlock;
pub mod uploads;
pub mod users;
pub mod when;

use crate::clock::Clock;
use crate::config::Config;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{HeaderName, HeaderValue, Request, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{CachingSessionStore, Expiry, SessionManagerLayer};
use tower_sessions_moka_store::MokaStore;
use tower_sessions_sqlx_store::PostgresStore;

/// One app state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub queue: crate::jobs::Queue,
    pub search: crate::search::Registry,
    /// Slots for password hashing and verification (sign-in storms wait here or get 503).
    pub passwords: crate::auth::PasswordGate,
    /// Password reset mail being sent after its answer.
    pub outbox: password_reset::Outbox,
}

impl AppState {
    pub fn new(pool: PgPool, config: Arc<Config>, clock: Clock) -> AppState {
        let queue = crate::jobs::Queue::new(pool.clone(), config.clone(), clock.clone());
        let search =
            crate::search::Registry::new(config.search_index_min_users, config.search_index_max_mb);
        let slots = crate::auth::password_slots(
            config.password_hashing_slots,
            std::thread::available_parallelism().map_or(2, |n| n.get()),
            pool.options().get_max_connections() as usize,
        );
        let passwords = crate::auth::PasswordGate::new(slots, config.password_hashing_queue);
        AppState {
            pool,
            config,
            clock,
            queue,
            search,
            passwords,
            outbox: password_reset::Outbox::default(),
        }
    }
}

pub const SESSION_COOKIE: &str = "rollcall_session";

/// Sessions kept in memory in front of the `sessions` table; beyond this, the least used
/// are read from the table again.
const SESSIONS_IN_MEMORY: u64 = 10_000;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Who may call a route; it decides the layers a route sits behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Browser pages: sessions and the CSRF guard.
    Page,
    /// The JSON API under `/api/v1`: bearer tokens, no session.
    Api,
    /// Open to anyone, no session (`/healthz`).
    Open,
}

/// The HTTP methods the router uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        }
    }
}

/// One entry of the route table: method, path pattern (axum syntax) and area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    pub area: Area,
    pub verb: Verb,
    pub path: &'static str,
}

type Entry = (RouteInfo, MethodRouter<AppState>);

fn at<H, T>(area: Area, verb: Verb, path: &'static str, handler: H) -> Entry
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let method_router = match verb {
        Verb::Get => get(handler),
        Verb::Post => post(handler),
    };
    (RouteInfo { area, verb, path }, method_router)
}

/// The route table the router is built from (and nothing else: a route exists only here).
fn table() -> Vec<Entry> {
    use Area::{Api, Open, Page};
    use Verb::{Get, Post};
    vec![
        at(Page, Get, "/", home::show),
        at(Page, Get, "/login", login::form),
        at(Page, Post, "/login", login::submit),
        at(Page, Post, "/logout", login::logout),
        at(Page, Get, "/login/sso/callback", sso::callback),
        at(Page, Get, "/login/{slug}", sso::login_page),
        at(Page, Post, "/login/{slug}/sso/{id}", sso::begin),
        at(Page, Get, "/password/forgot", password_reset::forgot_form),
        at(
            Page,
            Post,
            "/password/forgot",
            password_reset::forgot_submit,
        ),
        at(Page, Get, "/password/reset", password_reset::reset_form),
        at(Page, Post, "/password/reset", password_reset::reset_submit),
        at(Page, Get, "/login/code", mfa::code_form),
        at(Page, Post, "/login/code", mfa::code_submit),
        at(Page, Get, "/account/sessions", sessions::list),
        at(
            Page,
            Post,
            "/account/sessions/end-others",
            sessions::end_others,
        ),
        at(Page, Get, "/account/mfa", mfa::show),
        at(Page, Post, "/account/mfa", mfa::confirm),
        at(Page, Post, "/account/mfa/recovery", mfa::new_recovery_codes),
        at(Page, Post, "/account/mfa/disable", mfa::disable),
        at(Page, Get, "/settings/mfa", mfa::settings_show),
        at(Page, Post, "/settings/mfa", mfa::settings_save),
        at(Page, Get, "/account", account::show),
        at(Page, Get, "/account/password", account::password_form),
        at(Page, Post, "/account/password", account::password_submit),
        at(Page, Get, "/teaching", teaching::classes),
        at(Page, Get, "/teaching/{id}", teaching::class),
        at(
            Page,
            Post,
            "/teaching/{id}/students/{guid}/password",
            teaching::reset_password,
        ),
        at(Page, Get, "/districts", districts::list),
        at(Page, Post, "/districts", districts::create),
        at(Page, Get, "/schools", schools::list),
        at(Page, Post, "/schools", schools::create),
        at(Page, Post, "/schools/import", schools::import),
        at(Page, Get, "/schools/{id}", schools::edit),
        at(Page, Post, "/schools/{id}", schools::update),
        at(Page, Get, "/uploads", uploads::list),
        at(Page, Post, "/uploads", uploads::create),
        at(Page, Get, "/uploads/template.csv", uploads::template),
        at(Page, Get, "/uploads/fields", uploads::fields),
        at(Page, Get, "/uploads/mappings", uploads::mappings),
        at(Page, Get, "/uploads/mappings/{id}", uploads::mapping),
        at(
            Page,
            Post,
            "/uploads/mappings/{id}",
            uploads::mapping_update,
        ),
        at(
            Page,
            Post,
            "/uploads/mappings/{id}/delete",
            uploads::mapping_delete,
        ),
        at(Page, Get, "/uploads/{id}", uploads::show),
        at(Page, Get, "/uploads/{id}/status.json", uploads::status_json),
        at(Page, Get, "/uploads/{id}/files/{kind}", uploads::file),
        at(Page, Get, "/uploads/{id}/map", uploads::map_form),
        at(Page, Post, "/uploads/{id}/map", uploads::map_save),
        at(Page, Post, "/uploads/{id}/approve", uploads::approve),
        at(Page, Post, "/uploads/{id}/cancel", uploads::cancel),
        at(Page, Post, "/uploads/{id}/dismiss", uploads::dismiss),
        at(Page, Post, "/uploads/{id}/undo", undo::undo),
        at(Page, Get, "/uploads/{id}/changes.csv", undo::changes_csv),
        at(Page, Get, "/users", users::list::list),
        at(Page, Post, "/users", users::form::create),
        at(Page, Get, "/users.csv", users::list::csv),
        at(Page, Post, "/users/bulk", users::bulk::confirm),
        at(Page, Post, "/users/bulk/apply", users::bulk::apply),
        at(Page, Get, "/users/new", users::form::new_form),
        at(Page, Get, "/users/{guid}", users::form::show),
        at(Page, Post, "/users/{guid}", users::form::update),
        at(Page, Post, "/users/{guid}/status", users::actions::status),
        at(Page, Post, "/users/{guid}/archive", users::actions::archive),
        at(Page, Post, "/users/{guid}/restore", users::actions::restore),
        at(Page, Post, "/users/{guid}/owner", users::owner::hand),
        at(
            Page,
            Post,
            "/users/{guid}/kept/release",
            users::kept::release,
        ),
        at(
            Page,
            Post,
            "/users/{guid}/password",
            users::actions::reset_password,
        ),
        at(Page, Post, "/users/{guid}/unlock", unlock::unlock),
        at(Page, Post, "/users/{guid}/mfa/reset", unlock::reset_mfa),
        at(Page, Get, "/classes", classes::list::list),
        at(Page, Get, "/classes.csv", classes::download::classes_csv),
        at(Page, Get, "/classes/{id}", classes::show::show),
        at(
            Page,
            Post,
            "/classes/{id}/state",
            classes::lifecycle::set_state,
        ),
        at(
            Page,
            Get,
            "/enrollments.csv",
            classes::download::enrollments_csv,
        ),
        at(Page, Get, "/syncs", syncs::list),
        at(Page, Post, "/syncs", syncs::create),
        at(Page, Get, "/syncs/{id}", syncs::show),
        at(Page, Post, "/syncs/{id}", syncs::update),
        at(Page, Post, "/syncs/{id}/test", syncs::test),
        at(Page, Post, "/syncs/{id}/run", syncs::run_now),
        at(Page, Post, "/syncs/{id}/pause", syncs::pause),
        at(Page, Post, "/syncs/{id}/delete", syncs::delete),
        at(Page, Post, "/syncs/{id}/upload", syncs::upload),
        at(Page, Get, "/audit", audit::list),
        at(Page, Get, "/audit.csv", audit::csv),
        at(Page, Post, "/sources/pause", home::pause),
        at(Page, Post, "/sources/resume", home::resume),
        at(Page, Get, "/settings", settings::show),
        at(Page, Post, "/settings/guard", settings::guard),
        at(Page, Post, "/settings/district", settings::identity),
        at(Page, Post, "/settings/tokens", settings::create_token),
        at(
            Page,
            Post,
            "/settings/tokens/{id}/revoke",
            settings::revoke_token,
        ),
        at(Page, Get, "/settings/sso", sso::settings),
        at(Page, Post, "/settings/sso", sso::create),
        at(Page, Post, "/settings/sso/policy", sso::save_policy),
        at(Page, Get, "/settings/sso/{id}", sso::edit),
        at(Page, Post, "/settings/sso/{id}", sso::update),
        at(Page, Post, "/settings/sso/{id}/delete", sso::delete),
        at(Page, Get, "/settings/alerts", alerts::show),
        at(Page, Post, "/settings/alerts/rules", alerts::save_rules),
        at(
            Page,
            Post,
            "/settings/alerts/recipients",
            alerts::add_recipient,
        ),
        at(
            Page,
            Post,
            "/settings/alerts/recipients/remove",
            alerts::remove_recipient,
        ),
        at(Page, Post, "/settings/alerts/webhook", alerts::save_webhook),
        at(
            Page,
            Post,
            "/settings/alerts/webhook/secret",
            alerts::new_secret,
        ),
        at(
            Page,
            Post,
            "/settings/alerts/test-email",
            alerts::test_email,
        ),
        at(
            Page,
            Post,
            "/settings/alerts/test-webhook",
            alerts::test_webhook,
        ),
        at(Open, Get, "/healthz", healthz),
        at(Api, Post, "/api/v1/uploads", api::create_upload),
        at(Api, Get, "/api/v1/uploads/{id}", api::get_upload),
        at(
            Api,
            Get,
            "/api/v1/uploads/{id}/files/{kind}",
            api::get_upload_file,
        ),
        at(Api, Get, "/api/v1/users", api::list_users),
        at(Api, Get, "/api/v1/classes", api::list_classes),
        at(
            Api,
            Get,
            "/api/v1/classes/{id}/enrollments",
            api::list_enrollments,
        ),
        at(Api, Get, "/api/v1/{*rest}", api::not_found),
        at(Api, Post, "/api/v1/{*rest}", api::not_found),
    ]
}

/// Every route the router serves (besides `/static/*` files and the 404 fallback), in
/// table order. Tests walk this list, so a new route cannot miss the security checks.
pub fn routes() -> Vec<RouteInfo> {
    table().into_iter().map(|(info, _)| info).collect()
}

pub fn router(state: AppState) -> Router {
    let store = PostgresStore::new(state.pool.clone())
        .with_schema_name("public")
        .and_then(|s| s.with_table_name("sessions"))
        .expect("valid session table name");
    // Sessions are read from memory and written through to PostgreSQL, so a page view
    // costs no session query. The table stays the record (a restart keeps everyone signed
    // in); a signed-out session leaves both at once. This holds for one server process per
    // database, which is how Rollcall runs. Whether the person may still act (deactivated,
    // archived) is read from the database on every request (`session::Person`), not from
    // the session.
    let store = CachingSessionStore::new(MokaStore::new(Some(SESSIONS_IN_MEMORY)), store);
    let sessions = SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.secure_cookies())
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(8)));

    let mut pages = Router::new();
    let mut rest = Router::new();
    for (info, mut method_router) in table() {
        if info.path.ends_with("{*rest}") && info.verb == Verb::Get {
            // Any other method on an unknown API path is a 404 too, not a 405 (one of the
            // path's method routers may carry the fallback).
            method_router = method_router.fallback(api::not_found);
        }
        match info.area {
            Area::Page => pages = pages.route(info.path, method_router),
            Area::Api | Area::Open => rest = rest.route(info.path, method_router),
        }
    }
    let pages = pages
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::csrf_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            page::error_in_layout,
        ))
        // Each page request reads times in its district's zone (`when`).
        .layer(axum::middleware::from_fn(when::request_zone))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            edge::session_store_errors,
        ));

    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(pages)
        .merge(rest)
        .nest_service("/static", ServeDir::new(static_dir()))
        .fallback(|| async { error::AppError::NotFound })
        .layer(axum::middleware::from_fn(edge::api_json_errors))
        .layer(axum::middleware::from_fn(edge::no_store))
        .layer(axum::middleware::from_fn_with_state(state.clone(), edge::content_length))
        .layer(DefaultBodyLimit::max(edge::body_limit(&state.config) as usize))
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

async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match crate::db::health::ping(&state.pool).await {
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
///
/// Our own accept loop over hyper (axum::serve cannot set these): at most
/// `max_connections` connections at once (further ones wait in the kernel's backlog,
/// unaccepted, holding no descriptor of ours); `header_timeout_secs` to send a request's
/// headers, counted from the connection's opening or the end of the previous answer, so
/// half-sent requests and idle keep-alive connections are closed; `body_timeout_secs` at
/// most between two pieces of a request body. On shutdown no connection is accepted any
/// more, idle ones close, and answers under way finish.
pub async fn start(
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Server> {
    let listener = tokio::net::TcpListener::bind(&state.config.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", state.config.bind))?;
    let addr = listener.local_addr()?;
    let config = state.config.clone();
    let app = router(state);
    let handle = tokio::spawn(serve(listener, app, config, shutdown));
    Ok(Server { addr, handle })
}

/// Descriptors the process needs besides its connections: the database pool, uploads
/// being written, files being read, logs.
const DESCRIPTORS_BESIDES_CONNECTIONS: u64 = 128;

/// The connection cap only protects the server if the process may open that many
/// descriptors and more; say so at start when it may not.
fn warn_if_descriptors_run_short(max_connections: usize) {
    use nix::sys::resource::{Resource, getrlimit};
    if let Ok((soft, _hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let needed = max_connections as u64 + DESCRIPTORS_BESIDES_CONNECTIONS;
        if soft < needed {
            tracing::warn!(
                open_files_limit = soft,
                max_connections,
                "the open-files limit is below ROLLCALL_MAX_CONNECTIONS + {DESCRIPTORS_BESIDES_CONNECTIONS}: \
                 raise it (ulimit -n, LimitNOFILE=) or lower ROLLCALL_MAX_CONNECTIONS"
            );
        }
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    config: Arc<Config>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    warn_if_descriptors_run_short(config.max_connections);
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1)));
    let header_timeout = std::time::Duration::from_secs(config.header_timeout_secs.max(1));
    let body_timeout = std::time::Duration::from_secs(config.body_timeout_secs.max(1));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        // A free slot first, then a connection: beyond the cap, clients wait unaccepted.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of descriptors or the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let mut req = req.map(|body| {
                axum::body::Body::new(tower_http::timeout::TimeoutBody::new(body_timeout, body))
            });
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            tower::ServiceExt::oneshot(app.clone(), req)
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
