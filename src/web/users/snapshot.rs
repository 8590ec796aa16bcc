//! A user's fields as the audit log records them, before and after an edit in the form.

use crate::db::schools::SchoolOption;
use crate::db::user_edit::{UserFields, UserRecord};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// A user's fields as the audit log records them (the same keys as a run's entries).
pub(super) fn snapshot(
    f: &UserFields,
    schools: &[Uuid],
    all: &[SchoolOption],
) -> Map<String, Value> {
    let mut ext: Vec<&str> = all
        .iter()
        .filter(|s| schools.contains(&s.id))
        .map(|s| s.external_id.as_str())
        .collect();
    ext.sort_unstable();
    let mut m = Map::new();
    m.insert("custom_id".into(), json!(f.custom_id));
    m.insert("email".into(), json!(f.email));
    m.insert("username".into(), json!(f.username));
    m.insert("first_name".into(), json!(f.first_name));
    m.insert("middle_name".into(), json!(f.middle_name));
    m.insert("last_name".into(), json!(f.last_name));
    m.insert("role".into(), json!(f.role));
    m.insert("school_external_id".into(), json!(ext));
    m.insert("grade".into(), json!(f.grade));
    m.insert("position".into(), json!(f.position));
    m.insert("status".into(), json!(f.status.label()));
    m.insert("portal_role".into(), json!(f.portal_role));
    m.insert("prevent_archiving".into(), json!(f.prevent_archiving));
    m
}

pub(super) fn record_fields(u: &UserRecord) -> UserFields {
    UserFields {
        custom_id: u.custom_id.clone(),
        email: u.email.clone(),
        username: u.username.clone(),
        first_name: u.first_name.clone(),
        middle_name: u.middle_name.clone(),
        last_name: u.last_name.clone(),
        role: u.role.clone(),
        grade: u.grade.clone(),
        position: u.position.clone(),
        status: u.status,
        portal_role: u.portal_role,
        prevent_archiving: u.prevent_archiving,
    }
}
