//! Checking a connection's form (create and update).

use super::NewForm;
use crate::sync::{self, Kind};
use crate::web::AppState;

/// Checked settings of a connection form.
pub(super) struct Checked {
    pub(super) name: String,
    pub(super) base_url: Option<String>,
    pub(super) token_url: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) interval_minutes: i32,
}

pub(super) fn check(
    kind: Kind,
    f: &NewForm,
    secret_required: bool,
) -> Result<Checked, Vec<String>> {
    let mut errors = Vec::new();
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push("Name is required (at most 200 characters).".to_string());
    }
    let interval_minutes = match f.interval_hours.trim() {
        "" => 360,
        h => match h.parse::<f64>() {
            Ok(h) if (0.25..=168.0).contains(&h) => (h * 60.0).round() as i32,
            _ => {
                errors.push("Sync every: a number of hours from 0.25 to 168.".to_string());
                360
            }
        },
    };
    let mut base_url = None;
    let mut token_url = None;
    let mut client_id = None;
    if kind != Kind::OneRosterCsv {
        let raw = match f.base_url.trim() {
            "" if kind == Kind::Clever => sync::DEFAULT_CLEVER_URL,
            b => b,
        };
        match sync::client::parse_base(raw) {
            Ok(u) => base_url = Some(u.as_str().trim_end_matches('/').to_string()),
            Err(e) => errors.push(format!("Base URL: {e}.")),
        }
        if secret_required && f.secret.trim().is_empty() {
            errors.push(match kind {
                Kind::Clever => "The district token is required.".to_string(),
                _ => "The client secret is required.".to_string(),
            });
        }
    }
    if kind == Kind::OneRosterRest {
        if f.client_id.trim().is_empty() {
            errors.push("The client id is required.".to_string());
        }
        client_id = Some(f.client_id.trim().to_string());
        if !f.token_url.trim().is_empty() {
            match sync::client::parse_base(&f.token_url) {
                Ok(u) => token_url = Some(u.to_string()),
                Err(e) => errors.push(format!("Token URL: {e}.")),
            }
        }
    }
    if errors.is_empty() {
        Ok(Checked {
            name: name.to_string(),
            base_url,
            token_url,
            client_id,
            interval_minutes,
        })
    } else {
        Err(errors)
    }
}

/// The form's URLs whose destination syncs may not reach (issue 20: public addresses only,
/// unless `ROLLCALL_SYNC_ALLOW_PRIVATE`), as form errors.
pub(super) async fn refused_destinations(state: &AppState, c: &Checked) -> Vec<String> {
    let mut errors = Vec::new();
    for (label, url) in [("Base URL", &c.base_url), ("Token URL", &c.token_url)] {
        if let Some(url) = url
            && let Err(e) = sync::check_destination(&state.config, url).await
        {
            errors.push(format!("{label}: {e}."));
        }
    }
    errors
}

pub(super) fn name_taken(e: &sqlx::Error) -> bool {
    crate::db::violated(e) == Some(crate::db::Constraint::SyncConnectionName)
}
