//! Who is asking, for which district: session contents, the CSRF check, and extractors
//! that prove a request's rights before a handler runs.

use super::AppState;
use super::error::AppError;
use super::multipart_token;
use crate::db;
use crate::db::audit::Actor;
use crate::domain::{ActorKind, PortalRole, UserStatus};
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use uuid::Uuid;

const WHO: &str = "who";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";
const SEEN: &str = "seen";
/// This session's row in "My sessions" (made at its first signed-in request).
const SID: &str = "sid";
/// The account's `session_epoch` when this session signed in (see `db::users::Member`).
const EPOCH: &str = "epoch";
/// Set at sign-in when the account must enrol a second factor before anything else.
const MFA_ENROL: &str = "mfa_enrol";
/// Paths open to a session that must first choose a password or enrol MFA.
/// Signed in through the district's single sign-on: an unused temporary password (meant for
/// a first password sign-in) does not send this session to choose a password.
const VIA_SSO: &str = "via_sso";
const ALWAYS_OPEN: &[&str] = &["/account/password", "/account/mfa", "/logout"];
pub const CSRF_FIELD: &str = "_csrf";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Who {
    Operator(Uuid),
    Member { district_id: Uuid, user_id: Uuid },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub kind: String,
    pub text: String,
}

pub async fn set_flash(session: &Session, kind: &str, text: impl Into<String>) {
    let _ = session
        .insert(
            FLASH,
            Flash {
                kind: kind.into(),
                text: text.into(),
            },
        )
        .await;
}

/// The flash message, if any, removed from the session. Removing marks the session for
/// saving, so it is done only when there is a message: a page view then writes nothing.
pub async fn take_flash(session: &Session) -> Option<Flash> {
    let flash: Option<Flash> = session.get(FLASH).await.ok().flatten();
    if flash.is_some() {
        let _ = session.remove::<Flash>(FLASH).await;
    }
    flash
}

/// Sessions expire after 8 hours of inactivity; the store learns of activity through a
/// save, which is done at most this often rather than on every request.
const TOUCH_EVERY_SECS: i64 = 300;

/// Note the session's activity (at most every `TOUCH_EVERY_SECS`): true when it was noted.
async fn touch(session: &Session) -> bool {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let seen: Option<i64> = session.get(SEEN).await.ok().flatten();
    if seen.is_none_or(|s| now - s >= TOUCH_EVERY_SECS) {
        let _ = session.insert(SEEN, now).await;
        return true;
    }
    false
}

/// This signed-in session's row in "My sessions" (`db::account_sessions`).
pub async fn tracked_id(session: &Session) -> Option<Uuid> {
    session.get(SID).await.ok().flatten()
}

/// Keep "My sessions" up to date: a signed-in session without a row gets one (its device
/// and address), and its last-seen time moves on whenever the session's activity is noted.
/// A failure here is logged, never in the way of the page.
async fn track(
    state: &AppState,
    session: &Session,
    parts: &mut Parts,
    person: &Person,
    epoch: i64,
    noted: bool,
) {
    let ip = super::client::ClientIp::from_request_parts(parts, state)
        .await
        .map_or_else(|never| match never {}, |c| c.0.to_string());
    let now = state.clock.now();
    let result = match tracked_id(session).await {
        Some(id) if noted => db::account_sessions::seen(&state.pool, id, &ip, now).await,
        Some(_) => Ok(()),
        None => {
            let id = Uuid::new_v4();
            let device = super::client::device_label(
                parts
                    .headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default(),
            );
            let (district_id, account) = match person {
                Person::Operator { id, .. } => (None, db::throttle::operator_key(*id)),
                Person::Member(m) => (
                    Some(m.district_id),
                    db::throttle::user_key(m.district_id, m.id),
                ),
            };
            let row = db::account_sessions::NewSession {
                id,
                district_id,
                account: &account,
                epoch,
                device: &device,
                ip: &ip,
            };
            let inserted = db::account_sessions::insert(&state.pool, &row, now).await;
            if inserted.is_ok() {
                let _ = session.insert(SID, id).await;
            }
            inserted
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "the session list could not be updated");
    }
}

/// The session's CSRF token, made on first use.
pub async fn csrf_token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(CSRF).await {
        return t;
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let _ = session.insert(CSRF, &token).await;
    token
}

/// Sign in: a new session id (against fixation), a new CSRF token, who it is, and the
/// account's session epoch (a later reset, password change or deactivation ends it).
pub async fn sign_in(session: &Session, who: Who, epoch: i64) -> Result<(), AppError> {
    session
        .cycle_id()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))?;
    let _ = session.remove::<String>(CSRF).await;
    let _ = session.remove::<Uuid>(SID).await;
    mfa_enrolment_done(session).await;
    session
        .insert(WHO, who)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))?;
    restamp(session, epoch).await
}

/// Keep this session signed in across a change that ended the account's other sessions
/// (one's own password change): the account's new epoch.
pub async fn restamp(session: &Session, epoch: i64) -> Result<(), AppError> {
    session
        .insert(EPOCH, epoch)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))
}

/// The signed-in account must enrol MFA before it may do anything else (`Reject::EnrolMfa`).
pub async fn require_mfa_enrolment(session: &Session) -> Result<(), AppError> {
    session
        .insert(MFA_ENROL, true)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))
}

/// Mark a session signed in through single sign-on (after [`sign_in`]).
pub async fn mark_single_sign_on(session: &Session) -> Result<(), AppError> {
    session
        .insert(VIA_SSO, true)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))
}

/// The account enrolled: the session may go anywhere again.
pub async fn mfa_enrolment_done(session: &Session) {
    if session
        .get::<bool>(MFA_ENROL)
        .await
        .ok()
        .flatten()
        .is_some()
    {
        let _ = session.remove::<bool>(MFA_ENROL).await;
    }
}

pub async fn sign_out(session: &Session) {
    let _ = session.flush().await;
}

/// Every state-changing request outside `/api` must carry the session's CSRF token (in the
/// `_csrf` form field — for a multipart form, its first field — the `_csrf` query parameter
/// (what scripts send with a file), or an `X-CSRF-Token` header) and, when the browser sends one, an Origin of this site.
pub async fn csrf_guard(
    State(state): State<AppState>,
    session: Session,
    req: Request,
    next: Next,
) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    if !origin_ok(&req, state.config.public_url.as_deref()) {
        tracing::warn!(path = %req.uri().path(), "cross-origin form post refused");
        return AppError::Csrf.into_response();
    }
    let expected: Option<String> = session.get(CSRF).await.ok().flatten();
    let Some(expected) = expected else {
        return AppError::Csrf.into_response();
    };
    let from_query = req
        .uri()
        .query()
        .and_then(|q| form_urlencoded_get(q, CSRF_FIELD));
    let from_header = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (token, req) = match from_query.or(from_header) {
        Some(t) => (Some(t), req),
        None => {
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let is_form = content_type.starts_with("application/x-www-form-urlencoded");
            if let Some(boundary) = multipart_token::boundary(content_type) {
                match multipart_head_token(req, &boundary).await {
                    Ok(found) => found,
                    Err(e) => return e.into_response(),
                }
            } else if !is_form {
                (None, req)
            } else {
                let (parts, body) = req.into_parts();
                let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
                    return AppError::BadRequest("the form is too large".into()).into_response();
                };
                let token = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| form_urlencoded_get(s, CSRF_FIELD));
                (token, Request::from_parts(parts, Body::from(bytes)))
            }
        }
    };
    match token {
        Some(t) if bool::from(t.as_bytes().ct_eq(expected.as_bytes())) => next.run(req).await,
        _ => {
            tracing::warn!(path = %req.uri().path(), "request without a valid CSRF token refused");
            AppError::Csrf.into_response()
        }
    }
}

/// The token a multipart form sends as its first field: reads only the body's head, then
/// hands the whole body (head included) on to the handler as a stream.
async fn multipart_head_token(
    req: Request,
    boundary: &str,
) -> Result<(Option<String>, Request), AppError> {
    use futures::StreamExt;
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut head = bytes::BytesMut::new();
    let token = loop {
        match multipart_token::first_field(&head, boundary) {
            multipart_token::Peek::Field { name, value } => {
                break (name == CSRF_FIELD).then_some(value);
            }
            multipart_token::Peek::Malformed => break None,
            multipart_token::Peek::More => match stream.next().await {
                Some(Ok(chunk)) => head.extend_from_slice(&chunk),
                Some(Err(e)) if super::error::stalled(&e) => return Err(AppError::BodyTimeout),
                Some(Err(_)) => {
                    return Err(AppError::BadRequest(
                        "the upload could not be read; nothing was stored — send it again".into(),
                    ));
                }
                None => break None,
            },
        }
    };
    let head = futures::stream::once(std::future::ready(Ok::<_, axum::Error>(head.freeze())));
    let body = Body::from_stream(head.chain(stream));
    Ok((token, Request::from_parts(parts, body)))
}

fn form_urlencoded_get(s: &str, key: &str) -> Option<String> {
    serde_urlencoded_pairs(s)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn serde_urlencoded_pairs(s: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(s).unwrap_or_default()
}

/// Whether a request's `Origin`, when the browser sends one, is this site: scheme, host and
/// port all equal to those of `ROLLCALL_PUBLIC_URL` when it is set; else to what a reverse
/// proxy says the browser asked for (`X-Forwarded-Proto` / `X-Forwarded-Host`); else to
/// `Host` over plain http (the server itself speaks no TLS). A browser cannot set those
/// headers on a cross-site form, so trusting them does not open a hole.
fn origin_ok(req: &Request, public_url: Option<&str>) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true; // older browsers and non-browser clients; the token still applies
    };
    let Some(origin) = site_of(origin) else {
        return false; // "null" (sandboxed frames, some redirects) or garbage
    };
    let expected = match public_url {
        Some(url) => site_of(url),
        None => {
            let forwarded = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    // A chain of proxies lists the first (the browser's) one first.
                    .and_then(|v| v.split(',').next())
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
            };
            let scheme = forwarded("x-forwarded-proto").unwrap_or("http");
            let host = forwarded("x-forwarded-host").or_else(|| {
                req.headers()
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
            });
            host.and_then(|h| site_of(&format!("{scheme}://{h}")))
        }
    };
    expected.is_some_and(|site| site == origin)
}

/// The scheme, host and port of a URL or origin (the port filled in for http and https).
fn site_of(url: &str) -> Option<(String, String, u16)> {
    let url = reqwest::Url::parse(url).ok()?;
    let scheme = url.scheme().to_string();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    Some((scheme, host, url.port_or_known_default()?))
}

/// A signed-in person.
// One per request, mostly a Member: boxing that variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Person {
    Operator { id: Uuid, email: String },
    Member(db::users::Member),
}

impl Person {
    pub fn actor(&self) -> Actor {
        match self {
            Person::Operator { id, email } => Actor {
                kind: ActorKind::Operator,
                id: Some(*id),
                label: email.clone(),
            },
            Person::Member(m) => Actor {
                kind: ActorKind::User,
                id: Some(m.id),
                label: m.email.clone().unwrap_or_else(|| m.username.clone()),
            },
        }
    }

    pub fn display_name(&self) -> String {
        match self {
            Person::Operator { email, .. } => email.clone(),
            Person::Member(m) => {
                crate::domain::person::display_name(&m.first_name, &m.last_name, &m.username)
            }
        }
    }

    pub fn portal_role(&self) -> Option<PortalRole> {
        match self {
            Person::Operator { .. } => None,
            Person::Member(m) => Some(m.portal_role),
        }
    }
}

/// Rejections of the extractors: pages redirect to sign-in; rights errors render.
pub enum Reject {
    SignIn,
    ChangePassword,
    EnrolMfa,
    Error(AppError),
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        match self {
            Reject::SignIn => Redirect::to("/login").into_response(),
            Reject::ChangePassword => Redirect::to("/account/password").into_response(),
            Reject::EnrolMfa => Redirect::to("/account/mfa").into_response(),
            Reject::Error(e) => e.into_response(),
        }
    }
}

impl From<AppError> for Reject {
    fn from(e: AppError) -> Self {
        Reject::Error(e)
    }
}

impl FromRequestParts<AppState> for Person {
    type Rejection = Reject;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                Reject::Error(AppError::Internal(anyhow::anyhow!("session layer missing")))
            })?;
        let who: Option<Who> = session.get(WHO).await.ok().flatten();
        let noted = who.is_some() && touch(&session).await;
        let epoch: Option<i64> = session.get(EPOCH).await.ok().flatten();
        let person = match who {
            None => return Err(Reject::SignIn),
            Some(Who::Operator(id)) => match db::accounts::operator_by_id(&state.pool, id)
                .await
                .map_err(AppError::from)?
            {
                Some(op) if Some(op.session_epoch) != epoch => {
                    return Err(ended(&session).await);
                }
                Some(op) if op.password_temporary && !ALWAYS_OPEN.contains(&parts.uri.path()) => {
                    return Err(Reject::ChangePassword);
                }
                Some(op) => Person::Operator {
                    id: op.id,
                    email: op.email,
                },
                None => {
                    sign_out(&session).await;
                    return Err(Reject::SignIn);
                }
            },
            Some(Who::Member {
                district_id,
                user_id,
            }) => {
                let member = db::users::member(&state.pool, district_id, user_id)
                    .await
                    .map_err(AppError::from)?;
                match member {
                    Some(m)
                        if m.status == UserStatus::Active
                            && m.archived_at.is_none()
                            && Some(m.session_epoch) != epoch =>
                    {
                        // The password was reset or changed, or the account deactivated and
                        // reactivated, since this session signed in.
                        return Err(ended(&session).await);
                    }
                    Some(m) if m.status == UserStatus::Active && m.archived_at.is_none() => {
                        let path = parts.uri.path();
                        if m.password_temporary
                            && !ALWAYS_OPEN.contains(&path)
                            && !session
                                .get::<bool>(VIA_SSO)
                                .await
                                .ok()
                                .flatten()
                                .unwrap_or(false)
                        {
                            return Err(Reject::ChangePassword);
                        }
                        // The district's time zone for every time this request shows.
                        crate::web::when::use_zone(&m.district_time_zone);
                        Person::Member(m)
                    }
                    Some(_) => {
                        // Deactivated or archived since signing in: the session ends now.
                        sign_out(&session).await;
                        set_flash(
                            &session,
                            "error",
                            "Your account is not active. Ask your district administrator.",
                        )
                        .await;
                        return Err(Reject::SignIn);
                    }
                    None => {
                        sign_out(&session).await;
                        return Err(Reject::SignIn);
                    }
                }
            }
        };
        if let Some(epoch) = epoch {
            track(state, &session, parts, &person, epoch, noted).await;
        }
        let path = parts.uri.path();
        if !ALWAYS_OPEN.contains(&path)
            && !path.starts_with("/account/mfa/")
            && session.get::<bool>(MFA_ENROL).await.ok().flatten() == Some(true)
        {
            return Err(Reject::EnrolMfa);
        }
        Ok(person)
    }
}

/// Sign a session out whose account's sessions were ended since it signed in.
async fn ended(session: &Session) -> Reject {
    sign_out(session).await;
    set_flash(
        session,
        "info",
        "You were signed out: your password was changed or reset, or an administrator changed your account. Sign in again.",
    )
    .await;
    Reject::SignIn
}

/// Proof that the request comes from an admin of one district, and which schools they may
/// touch (`None` = the whole district).
#[derive(Debug, Clone)]
pub struct DistrictScope {
    pub district_id: Uuid,
    pub district_slug: String,
    pub district_name: String,
    pub role: PortalRole,
    /// A school admin's schools; `None` for a district admin.
    pub schools: Option<Vec<Uuid>>,
    pub person: Person,
}

impl DistrictScope {
    pub fn actor(&self) -> Actor {
        self.person.actor()
    }
    pub fn is_district_admin(&self) -> bool {
        self.role == PortalRole::DistrictAdmin
    }
}

impl FromRequestParts<AppState> for DistrictScope {
    type Rejection = Reject;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let person = Person::from_request_parts(parts, state).await?;
        let Person::Member(m) = &person else {
            return Err(Reject::Error(AppError::Forbidden));
        };
        let role = m.portal_role;
        let schools = match role {
            PortalRole::DistrictAdmin => None,
            PortalRole::SchoolAdmin => Some(m.school_ids.clone()),
            PortalRole::User => return Err(Reject::Error(AppError::Forbidden)),
        };
        Ok(DistrictScope {
            district_id: m.district_id,
            district_slug: m.district_slug.clone(),
            district_name: m.district_name.clone(),
            role,
            schools,
            person: person.clone(),
        })
    }
}

/// A district admin (district settings, tokens, guard thresholds).
pub struct DistrictAdmin(pub DistrictScope);

impl FromRequestParts<AppState> for DistrictAdmin {
    type Rejection = Reject;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let scope = DistrictScope::from_request_parts(parts, state).await?;
        if !scope.is_district_admin() {
            return Err(Reject::Error(AppError::Forbidden));
        }
        Ok(DistrictAdmin(scope))
    }
}

/// The installation's operator.
pub struct OperatorUser {
    pub id: Uuid,
    pub person: Person,
}

impl FromRequestParts<AppState> for OperatorUser {
    type Rejection = Reject;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let person = Person::from_request_parts(parts, state).await?;
        match &person {
            Person::Operator { id, .. } => Ok(OperatorUser {
                id: *id,
                person: person.clone(),
            }),
            _ => Err(Reject::Error(AppError::Forbidden)),
        }
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for Person {
    type Rejection = Reject;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Person as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(p) => Ok(Some(p)),
            Err(Reject::SignIn) | Err(Reject::ChangePassword) | Err(Reject::EnrolMfa) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
