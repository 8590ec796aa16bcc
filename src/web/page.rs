//! What every page shares: navigation, the CSRF token, the flash message.

use super::error::{AppError, AppResult};
use super::session::{Flash, Person, csrf_token, take_flash};
use crate::domain::PortalRole;
use askama::Template;
use axum::response::Html;
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

pub async fn chrome(session: &Session, person: Option<&Person>, active: &str) -> Chrome {
    let items: &[(&'static str, &'static str)] = match person {
        None => &[],
        Some(Person::Operator { .. }) => &[("/districts", "Districts")],
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
