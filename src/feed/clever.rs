//! Clever Data API v3: list pages (`{"data": [{"data": {...}, "uri": …}], "links": […]}`),
//! schools and users turned into [`Org`]s and [`ProviderUser`]s. Pure: no SQL, no HTTP.

use crate::feed::oneroster::Org;
use crate::feed::provider::ProviderUser;
use serde_json::Value;

/// The roles a sync asks Clever for, in order: a user with several keeps the first.
pub const ROLES: [&str; 3] = ["student", "teacher", "staff"];

/// One page of a list: its records (the inner `data` objects) and the `next` link.
pub fn page(body: &Value) -> Result<(Vec<Value>, Option<String>), String> {
    let items = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or("the response has no \"data\" list")?;
    let records = items
        .iter()
        .map(|item| item.get("data").cloned().unwrap_or(Value::Null))
        .collect();
    let next = body
        .get("links")
        .and_then(Value::as_array)
        .and_then(|links| {
            links
                .iter()
                .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"))
        })
        .and_then(|l| l.get("uri").and_then(Value::as_str))
        .map(str::to_string);
    Ok((records, next))
}

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for key in path {
        match cur.get(key) {
            Some(next) => cur = next,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("").trim()
}

pub fn school(v: &Value) -> Option<Org> {
    let id = text(v, &["id"]);
    (!id.is_empty()).then(|| Org {
        sourced_id: id.to_string(),
        name: text(v, &["name"]).to_string(),
        org_type: "school".into(),
        to_be_deleted: false,
    })
}

/// A user record as listed for `role` (`student`, `teacher` or `staff`); `n` is its position.
pub fn user(v: &Value, role: &str, n: usize) -> ProviderUser {
    let id = text(v, &["id"]);
    let origin = format!("{role} {id} (record {n})");
    let Some(r) = v.get("roles").and_then(|roles| roles.get(role)) else {
        return ProviderUser {
            origin,
            key: id.to_string(),
            problem: Some(format!("the record has no {role} role")),
            ..Default::default()
        };
    };
    let custom_id = match role {
        "student" => text(r, &["sis_id"]),
        "teacher" => match text(r, &["teacher_number"]) {
            "" => text(r, &["sis_id"]),
            n => n,
        },
        _ => text(r, &["staff_id"]),
    };
    let mut schools: Vec<String> = r
        .get("schools")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    let primary = text(r, &["school"]);
    if !primary.is_empty() && !schools.iter().any(|s| s == primary) {
        schools.push(primary.to_string());
    }
    ProviderUser {
        origin,
        key: id.to_string(),
        to_be_deleted: false,
        enabled: true,
        role: role.to_string(),
        custom_id: custom_id.to_string(),
        username: text(r, &["credentials", "district_username"]).to_string(),
        first_name: text(v, &["name", "first"]).to_string(),
        middle_name: text(v, &["name", "middle"]).to_string(),
        last_name: text(v, &["name", "last"]).to_string(),
        email: text(v, &["email"]).to_string(),
        orgs: schools,
        grade: if role == "student" {
            text(r, &["grade"]).to_string()
        } else {
            String::new()
        },
        problem: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_and_links() {
        let body = json!({
            "data": [{"data": {"id": "s1", "name": "High"}, "uri": "/v3.0/schools/s1"}],
            "links": [{"rel": "self", "uri": "/v3.0/schools"}, {"rel": "next", "uri": "/v3.0/schools?starting_after=s1"}]
        });
        let (records, next) = page(&body).unwrap();
        assert_eq!(school(&records[0]).unwrap().sourced_id, "s1");
        assert_eq!(next.as_deref(), Some("/v3.0/schools?starting_after=s1"));
        let last = json!({"data": [], "links": [{"rel": "self", "uri": "/v3.0/schools"}]});
        assert_eq!(page(&last).unwrap().1, None);
        assert!(page(&json!({"error": "x"})).is_err());
    }

    #[test]
    fn users_by_role() {
        let v = json!({
            "id": "u1", "district": "d1", "email": "ann@x.org",
            "name": {"first": "Ann", "middle": "B", "last": "Lee"},
            "roles": {"student": {"sis_id": "1001", "grade": "Kindergarten", "school": "s1", "schools": ["s2"]}}
        });
        let u = user(&v, "student", 1);
        assert_eq!((u.key.as_str(), u.custom_id.as_str()), ("u1", "1001"));
        assert_eq!(u.orgs, vec!["s2", "s1"]);
        assert_eq!(u.grade, "Kindergarten");
        let t = json!({"id": "t1", "name": {"first": "Bo", "last": "Ray"},
                        "roles": {"teacher": {"teacher_number": "T-9", "sis_id": "x", "schools": ["s1"]}}});
        assert_eq!(user(&t, "teacher", 2).custom_id, "T-9");
        let s = json!({"id": "f1", "name": {"first": "Cy", "last": "Ray"},
                        "roles": {"staff": {"staff_id": "E-3", "schools": ["s1"]}}});
        assert_eq!(user(&s, "staff", 3).custom_id, "E-3");
        assert!(user(&s, "teacher", 4).problem.is_some());
    }
}
