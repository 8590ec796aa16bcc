//! A user's history as the user page shows it: who, when, through what, and which fields
//! went from what to what (from `audit_log`).

use crate::db::audit::AuditRow;
use crate::domain::ActorKind;
use serde_json::Value;
use std::collections::BTreeSet;
use uuid::Uuid;

pub struct Change {
    pub field: String,
    pub old: String,
    pub new: String,
}

pub struct Item {
    pub at: String,
    pub who: String,
    pub what: String,
    /// "Manual edit", "Command line"…, or empty when `run` links to the run instead.
    pub via: String,
    pub run: Option<Uuid>,
    /// The run's id, shortened for display.
    pub run_short: String,
    pub changes: Vec<Change>,
}

pub(super) fn field_label(key: &str) -> String {
    match key {
        "custom_id" => "Custom ID",
        "email" => "Email",
        "username" => "Username",
        "first_name" => "First name",
        "middle_name" => "Middle name",
        "last_name" => "Last name",
        "role" => "Role",
        "school_external_id" => "Schools",
        "grade" => "Grade",
        "position" => "Position",
        "status" => "Status",
        "source" => "Source",
        "source_key" => "Source key",
        "user_guid" => "User GUID",
        "prevent_archiving" => "Prevent from archiving",
        "portal_role" => "Portal role",
        "archived" => "Archived",
        "password" => "Password",
        "kept" => "Kept against feeds",
        other => other,
    }
    .to_string()
}

fn action_label(action: &str) -> String {
    match action {
        "user.create" => "Created",
        "user.update" => "Updated",
        "user.activate" => "Made active",
        "user.deactivate" => "Made inactive",
        "user.archive" => "Archived",
        "user.restore" => "Restored",
        "user.password_reset" => "Password reset",
        "user.password_change" => "Password changed",
        "user.keep_fields" => "Fields kept against feeds",
        "user.release_fields" => "Kept fields released",
        other => other,
    }
    .to_string()
}

fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "—".to_string(),
        Some(Value::String(s)) if s.is_empty() => "—".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(true)) => "Yes".to_string(),
        Some(Value::Bool(false)) => "No".to_string(),
        Some(Value::Array(items)) if items.is_empty() => "—".to_string(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Some(other) => other.to_string(),
    }
}

/// A value as shown; a `source` names its owner as every screen does (never `sync:<id>`).
fn show_field(
    key: &str,
    v: Option<&Value>,
    sync_names: &std::collections::HashMap<uuid::Uuid, String>,
) -> String {
    match (key, v) {
        ("source", Some(Value::String(s))) if !s.is_empty() => {
            crate::reconcile::report::source_name(s, sync_names)
        }
        _ => show(v),
    }
}

/// The history items of audit rows; `sync_names` (`db::syncs::names`) names sources.
pub fn items(
    rows: Vec<AuditRow>,
    sync_names: &std::collections::HashMap<uuid::Uuid, String>,
) -> Vec<Item> {
    rows.into_iter()
        .map(|r| {
            let empty = serde_json::Map::new();
            let before = r
                .before
                .as_ref()
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let after = r
                .after
                .as_ref()
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            let changes = keys
                .into_iter()
                .filter(|k| k.as_str() != "user_guid")
                .map(|k| Change {
                    field: field_label(k),
                    old: if r.before.is_some() {
                        show_field(k, before.get(k.as_str()), sync_names)
                    } else {
                        String::new()
                    },
                    new: show_field(k, after.get(k.as_str()), sync_names),
                })
                .collect();
            let via = match (r.run_id, r.actor_kind) {
                (Some(_), _) => String::new(),
                (None, ActorKind::User | ActorKind::Operator) => "Manual edit".to_string(),
                (None, ActorKind::Cli) => ActorKind::Cli.label().to_string(),
                (None, ActorKind::Token) => "API".to_string(),
                (None, other) => other.as_str().to_string(),
            };
            Item {
                at: crate::web::when::minute(r.at),
                who: r.actor_label,
                what: action_label(&r.action),
                via,
                run: r.run_id,
                run_short: r
                    .run_id
                    .map(|id| id.simple().to_string()[..8].to_string())
                    .unwrap_or_default(),
                changes,
            }
        })
        .collect()
}
