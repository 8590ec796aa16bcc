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
    /// `district_id,run_id,line,outcome,user_id,username,temp_password,changed,error` rows
    /// for `db::runs::store_results` (`COPY` straight into `run_rows`).
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
pub fn stage(
    plan: &Plan,
    current: &[CurrentUser],
    applied: bool,
    district_id: Uuid,
    run_id: Uuid,
) -> csv::Result<Staged> {
    let (district, run) = (district_id.to_string(), run_id.to_string());
    let by_id: HashMap<Uuid, &CurrentUser> = current.iter().map(|u| (u.user_guid, u)).collect();
    let hashes = if applied {
        hash_passwords(&plan.rows)
    } else {
        HashMap::new()
    };
    let mut users = csv_writer();
    let mut schools_cell = String::new();
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
            district.as_str(),
            run.as_str(),
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
        let (kind, before, after) = match &row.outcome {
            // The audit entry of a created user is built from the staged row, in SQL.
            Outcome::Created => ("create", String::new(), String::new()),
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
                    Value::Object(before).to_string(),
                    Value::Object(after).to_string(),
                )
            }
            _ => continue,
        };
        let (hash, temporary) = hashes.get(&row.line).cloned().unwrap_or_default();
        let id = new.user_guid.to_string();
        schools_cell.clear();
        for (i, school) in new.schools.iter().enumerate() {
            if i > 0 {
                schools_cell.push(crate::db::reconcile::SCHOOL_SEP);
            }
            schools_cell.push_str(school);
        }
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
            &schools_cell,
            &before,
            &after,
        ])?;
    }

    let finish =
        |w: csv::Writer<Vec<u8>>| w.into_inner().map_err(|e| csv::Error::from(e.into_error()));
    Ok(Staged {
        users_csv: finish(users)?,
        rows_csv: finish(results)?,
    })
}
