//! What every page shares: navigation, the CSRF token, the flash message.

use super::AppState;
use super::error::{AppError, AppResult, ErrorShown};
use super::session::{Flash, Person, csrf_token, take_flash};
use crate::domain::PortalRole;
use askama::Template;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Html;
use axum::response::Response;
use tower_sessions::Session;

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub active: bool,
}

pub struct Chrome {
    pub csrf: String,
    pub flash: Option<Flash>,
    pub nav: Vec<NavItem>,
    pub person: Option<String>,
    pub district: Option<String>,
}

/// An error page inside the layout (navigation, the person's name, Sign out).
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: String,
    message: String,
    chrome: Chrome,
}

/// Renders an error answer of a page route (403, 404, …) again inside the layout of whoever
/// is signed in — navigation, their name and Sign out — so an error never strands them.
/// Signed out (or when the person cannot be read), the page keeps the bare header.
pub async fn error_in_layout(
    State(state): State<AppState>,
    session: Session,
    req: Request,
    next: Next,
) -> Response {
    let uri = req.uri().clone();
    let response = next.run(req).await;
    let Some(shown) = response.extensions().get::<ErrorShown>().cloned() else {
        return response;
    };
    let (mut parts, ()) = Request::builder()
        .uri(uri)
        .body(())
        .expect("a request from a valid URI")
        .into_parts();
    parts.extensions.insert(session.clone());
    let Ok(person) = Person::from_request_parts(&mut parts, &state).await else {
        return response;
    };
    let page = ErrorPage {
        status: shown.status,
        title: shown.title,
        message: shown.message,
        chrome: chrome(&session, Some(&person), "").await,
    };
    match page.render() {
        Ok(html) => {
            let (mut head, _) = response.into_parts();
            head.headers.remove(axum::http::header::CONTENT_LENGTH);
            Response::from_parts(head, axum::body::Body::from(html))
        }
        Err(_) => response,
    }
}

pub async fn chrome(session: &Session, person: Option<&Person>, active: &str) -> Chrome {
    let items: &[(&'static str, &'static str)] = match person {
        None => &[],
        Some(Person::Operator { .. }) => &[("/districts", "Districts"), ("/account", "My account")],
        Some(p) => match p.portal_role() {
            Some(PortalRole::DistrictAdmin) => &[
                ("/", "Home"),
                ("/users", "Users"),
                ("/classes", "Classes"),
                ("/schools", "Schools"),
                ("/uploads", "Uploads"),
                ("/syncs", "Syncs"),
                ("/audit", "Audit log"),
                ("/settings", "Settings"),
                ("/account", "My account"),
            ],
            Some(PortalRole::SchoolAdmin) => &[
                ("/", "Home"),
                ("/users", "Users"),
                ("/classes", "Classes"),
                ("/schools", "Schools"),
                ("/uploads", "Uploads"),
                ("/audit", "Audit log"),
                ("/account", "My account"),
            ],
            _ => &[("/account", "My account")],
        },
    };
    // A member who teaches also has their classes, whatever their portal role.
    let teaching: &[(&'static str, &'static str)] = match person {
        Some(Person::Member(m)) if m.teaches => &[("/teaching", "My classes")],
        _ => &[],
    };
    let (last, first) = items
        .split_last()
        .map_or((None, items), |(l, f)| (Some(l), f));
    Chrome {
        csrf: csrf_token(session).await,
        flash: take_flash(session).await,
        nav: first
            .iter()
            .chain(teaching)
            .chain(last)
            .map(|(href, label)| NavItem {
                href,
                label,
                active: *href == active,
            })
            .collect(),
        person: person.map(Person::display_name),
        district: match person {
            Some(Person::Member(m)) => Some(m.district_name.clone()),
            _ => None,
        },
    }
}

pub fn render<T: Template>(t: &T) -> AppResult<Html<String>> {
    t.render()
        .map(Html)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("template: {e}")))
}
