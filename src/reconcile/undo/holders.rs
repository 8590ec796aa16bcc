//! Who holds the identifiers an undo wants to take back (rule 5 of `reconcile::undo`).

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use uuid::Uuid;

use super::Group;
use crate::domain::CurrentUsers;

/// Who holds the identifiers an undo wants back (only those: a district of a million users
/// is scanned once, not indexed).
pub(super) struct Holders {
    by_value: HashMap<(&'static str, String), (Uuid, String)>,
}

const KEYS: [&str; 3] = ["custom_id", "email", "username"];

impl Holders {
    pub(super) fn find(current: &CurrentUsers, groups: &[Group]) -> Holders {
        // custom_id as is; email and username lower-cased.
        let mut wanted: [HashSet<String>; 3] = Default::default();
        for g in groups.iter().filter(|g| !g.created && !g.changed_since) {
            for (i, field) in KEYS.iter().enumerate() {
                if let Some(Value::String(v)) = g.before.get(*field)
                    && !v.is_empty()
                {
                    wanted[i].insert(if i == 0 { v.clone() } else { v.to_lowercase() });
                }
            }
        }
        let mut by_value = HashMap::new();
        if wanted.iter().any(|w| !w.is_empty()) {
            for i in 0..current.len() {
                let email = current.email(i).map(str::to_lowercase);
                let username = (!wanted[2].is_empty()).then(|| current.username(i).to_lowercase());
                let values = [current.custom_id(i), email.as_deref(), username.as_deref()];
                for (k, value) in values.into_iter().enumerate() {
                    if let Some(v) = value
                        && wanted[k].contains(v)
                    {
                        by_value.insert(
                            (KEYS[k], v.to_string()),
                            (current.guid(i), current.username(i).to_string()),
                        );
                    }
                }
            }
        }
        Holders { by_value }
    }

    pub(super) fn get(&self, key: &(&'static str, String)) -> Option<&(Uuid, String)> {
        self.by_value.get(key)
    }
}
