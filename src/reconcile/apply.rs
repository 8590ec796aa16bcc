//! Turn a plan into staged CSV for `COPY` and write it in the run's transaction. The SQL
//! itself lives in `db::reconcile`; this module only shapes rows.

use super::plan::{NewUser, Outcome, Plan, RowPlan};
use crate::auth;
use crate::domain::CurrentUser;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// The staged rows of a plan, ready for `db::reconcile::write_plan`.
pub struct Staged {
    pub users_csv: Vec<u8>,
    pub schools_csv: Vec<u8>,
    /// `line,outcome,user_id,username,temp_password,changed,error` for `db::runs::store_results`.
    pub rows_csv: Vec<u8>,
}

fn field_value(u: &NewUser, name: &str) -> Value {
    match name {
        "user_guid" => json!(u.user_guid),
        "custom_id" => json!(u.custom_id),
        "email" => json!(u.email),
        "username" => json!(u.username),
        "first_name" => json!(u.first_name),
        "middle_name" => json!(u.middle_name),
        "last_name" => json!(u.last_name),
        "role" => json!(u.role.as_str()),
        "school_external_id" => json!(u.schools),
        "grade" => json!(u.grade.as_str()),
        "position" => json!(u.position),
        "status" => json!(u.status.as_str()),
        "source" => json!(u.source.to_db()),
        "source_key" => json!(u.source_key),
        _ => Value::Null,
    }
}

fn current_value(u: &CurrentUser, name: &str) -> Value {
    match name {
        "custom_id" => json!(u.custom_id),
        "email" => json!(u.email),
        "username" => json!(u.username),
        "first_name" => json!(u.first_name),
        "middle_name" => json!(u.middle_name),
        "last_name" => json!(u.last_name),
        "role" => json!(u.role.as_str()),
        "school_external_id" => json!(u.schools),
        "grade" => json!(u.grade.as_str()),
        "position" => json!(u.position),
        "status" => json!(u.status.as_str()),
        "source" => json!(u.source.to_db()),
        "source_key" => json!(u.source_key),
        _ => Value::Null,
    }
}

const CREATE_FIELDS: [&str; 14] = [
    "custom_id",
    "email",
    "username",
    "first_name",
    "middle_name",
    "last_name",
    "role",
    "school_external_id",
    "grade",
    "position",
    "status",
    "source",
    "source_key",
    "user_guid",
];

/// Password hashes for created users: a fast salted hash for generated temporary passwords,
/// argon2id for passwords the feed gave (spread over the machine's cores).
fn hash_passwords(rows: &[RowPlan]) -> HashMap<u64, (String, bool)> {
    let given: Vec<(u64, &str)> = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Created))
        .filter_map(|r| r.password.as_deref().map(|p| (r.line, p)))
        .collect();
    let mut out: HashMap<u64, (String, bool)> = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Created))
        .filter_map(|r| {
            r.temp_password
                .as_deref()
                .map(|p| (r.line, (auth::hash_temporary(p), true)))
        })
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(1);
    let chunk = given.len().div_ceil(threads).max(1);
    let hashed: Vec<(u64, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = given
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(l, p)| (*l, auth::hash_password(p)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    out.extend(hashed.into_iter().map(|(l, h)| (l, (h, false))));
    out
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new())
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// Shape the plan's writes and row results. `applied` false (dry run, needs review) stages
/// only the row results, without temporary passwords (no account exists for them).
pub fn stage(plan: &Plan, current: &[CurrentUser], applied: bool) -> csv::Result<Staged> {
    let by_id: HashMap<Uuid, &CurrentUser> = current.iter().map(|u| (u.user_guid, u)).collect();
    let hashes = if applied {
        hash_passwords(&plan.rows)
    } else {
        HashMap::new()
    };
    let mut users = csv_writer();
    let mut schools = csv_writer();
    let mut results = csv_writer();
    for row in &plan.rows {
        let (changed, error): (&[&str], Option<&str>) = match &row.outcome {
            Outcome::Updated { changed } | Outcome::Restored { changed } => (changed, None),
            Outcome::Error { message } => (&[], Some(message.as_str())),
            _ => (&[], None),
        };
        let changed_literal = format!("{{{}}}", changed.join(","));
        let guid = row.user_guid.map(|g| g.to_string()).unwrap_or_default();
        let temp = if applied {
            row.temp_password.as_deref().unwrap_or("")
        } else {
            ""
        };
        results.write_record([
            row.line.to_string().as_str(),
            row.outcome.as_str(),
            &guid,
            opt(&row.username),
            temp,
            &changed_literal,
            error.unwrap_or(""),
        ])?;
        if !applied {
            continue;
        }
        let Some(new) = row.write.as_deref() else {
            continue;
        };
        let (kind, action, before, after) = match &row.outcome {
            Outcome::Created => {
                let after: Map<String, Value> = CREATE_FIELDS
                    .iter()
                    .map(|f| (f.to_string(), field_value(new, f)))
                    .collect();
                ("create", "user.create", Value::Null, Value::Object(after))
            }
            Outcome::Updated { changed } | Outcome::Restored { changed } => {
                let old = by_id.get(&new.user_guid);
                let mut before: Map<String, Value> = changed
                    .iter()
                    .map(|f| {
                        (
                            f.to_string(),
                            old.map_or(Value::Null, |o| current_value(o, f)),
                        )
                    })
                    .collect();
                let mut after: Map<String, Value> = changed
                    .iter()
                    .map(|f| (f.to_string(), field_value(new, f)))
                    .collect();
                let restored = matches!(row.outcome, Outcome::Restored { .. });
                if restored {
                    before.insert("archived".into(), json!(true));
                    after.insert("archived".into(), json!(false));
                }
                (
                    if restored { "restore" } else { "update" },
                    if restored {
                        "user.restore"
                    } else {
                        "user.update"
                    },
                    Value::Object(before),
                    Value::Object(after),
                )
            }
            _ => continue,
        };
        let (hash, temporary) = hashes.get(&row.line).cloned().unwrap_or_default();
        let id = new.user_guid.to_string();
        let before_text = if before.is_null() {
            String::new()
        } else {
            before.to_string()
        };
        users.write_record([
            kind,
            &id,
            opt(&new.custom_id),
            opt(&new.email),
            &new.username,
            &new.first_name,
            &new.middle_name,
            &new.last_name,
            new.role.as_str(),
            new.grade.as_str(),
            &new.position,
            new.status.to_db(),
            &new.source.to_db(),
            opt(&new.source_key),
            if new.prevent_archiving {
                "true"
            } else {
                "false"
            },
            &hash,
            if temporary { "true" } else { "false" },
            action,
            &before_text,
            &after.to_string(),
        ])?;
        for school in &new.schools {
            schools.write_record([id.as_str(), school.as_str()])?;
        }
    }
    let finish =
        |w: csv::Writer<Vec<u8>>| w.into_inner().map_err(|e| csv::Error::from(e.into_error()));
    Ok(Staged {
        users_csv: finish(users)?,
        schools_csv: finish(schools)?,
        rows_csv: finish(results)?,
    })
}
