//! The district audit log in words (SPEC §5): what an action code means ("Archived user"),
//! which kind of entry it is (for the filter), and a before → after summary. Plain Rust.

use serde_json::Value;

/// The kinds an admin can filter the log by: the action code's first part, and its label.
pub const KINDS: [(&str, &str); 9] = [
    ("run", "Runs and reviews"),
    ("user", "Users"),
    ("class", "Classes"),
    ("school", "Schools"),
    ("signin", "Sign-ins"),
    ("district", "Settings"),
    ("token", "API tokens"),
    ("sync", "Sync connections"),
    ("mapping", "Column mappings"),
];

/// A known kind code (the filter's value), or `None`.
pub fn parse_kind(kind: &str) -> Option<&'static str> {
    KINDS.iter().find(|(k, _)| *k == kind).map(|(k, _)| *k)
}

/// Action codes and their words. Runs read from `runs` have the action `run.<status>`.
const WORDS: &[(&str, &str)] = &[
    ("user.create", "Created user"),
    ("user.update", "Edited user"),
    ("user.activate", "Activated user"),
    ("user.deactivate", "Deactivated user"),
    ("user.archive", "Archived user"),
    ("user.restore", "Restored user"),
    ("user.password_reset", "Reset password"),
    ("user.password_change", "Changed own password"),
    ("user.keep_fields", "Kept fields from the source"),
    ("user.release_fields", "Released kept fields"),
    ("user.owner", "Handed user to another source"),
    ("user.bulk", "Bulk action on users"),
    ("class.create", "Created class"),
    ("class.update", "Edited class"),
    ("class.archive", "Archived class"),
    ("class.restore", "Restored class"),
    ("school.create", "Created school"),
    ("school.update", "Edited school"),
    ("school.import", "Imported schools"),
    ("district.create", "Created district"),
    ("district.guard", "Changed the review thresholds"),
    (
        "district.identity",
        "Changed the district external ID or time zone",
    ),
    ("token.create", "Created API token"),
    ("token.revoke", "Revoked API token"),
    ("sync.create", "Added sync connection"),
    ("sync.update", "Edited sync connection"),
    ("sync.run", "Started a sync"),
    ("sync.pause", "Paused sync connection"),
    ("sync.resume", "Resumed sync connection"),
    ("sync.delete", "Deleted sync connection"),
    ("sync.upload", "Uploaded a OneRoster set"),
    ("mapping.save", "Saved a column mapping"),
    ("mapping.update", "Edited a saved column mapping"),
    ("mapping.delete", "Deleted a saved column mapping"),
    ("run.approve", "Approved a run"),
    ("run.cancel", "Cancelled a run"),
    ("run.dismiss", "Dismissed a run"),
    ("run.undo", "Undid a run"),
    ("run.undo_preview", "Previewed an undo"),
    ("run.completed", "Run completed"),
    ("run.completed_with_errors", "Run completed with errors"),
    ("run.needs_review", "Run held for review"),
    ("run.failed", "Run failed"),
    ("run.cancelled", "Run cancelled"),
    ("signin.success", "Signed in"),
    ("signin.failure", "Failed sign-in (wrong password)"),
    ("signin.sso", "Signed in with single sign-on"),
    ("signin.sso_refused", "Refused a single sign-on"),
    (
        "signin.sso_required",
        "Refused a password sign-in (single sign-on required)",
    ),
    ("district.sso_add", "Added a sign-in provider"),
    ("district.sso_update", "Edited a sign-in provider"),
    ("district.sso_delete", "Removed a sign-in provider"),
    (
        "district.sso_policy",
        "Changed the single sign-on requirement",
    ),
];

/// An action code in words; an unknown code is shown as it is.
pub fn action_words(action: &str) -> String {
    WORDS
        .iter()
        .find(|(code, _)| *code == action)
        .map(|(_, words)| (*words).to_string())
        .unwrap_or_else(|| action.to_string())
}

/// The kind of an action code (its first part: `user.archive` → `user`).
pub fn kind_of(action: &str) -> &str {
    action.split('.').next().unwrap_or(action)
}

/// The counts a run entry carries, in the order they are told.
const RUN_COUNTS: [&str; 8] = [
    "created",
    "updated",
    "unchanged",
    "restored",
    "archived",
    "moved",
    "skipped",
    "errors",
];

/// A one-line summary of a change: `field: before → after` for each field that differs
/// (sorted by name), a run's non-zero counts, or the fields of a creation.
pub fn summary(action: &str, before: Option<&Value>, after: Option<&Value>) -> String {
    if kind_of(action) == "run" && before.is_none() && is_run_entry(after) {
        return run_summary(after.expect("checked"));
    }
    let empty = serde_json::Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut parts = Vec::new();
    for key in keys {
        let (old, new) = (b.get(key), a.get(key));
        if old == new {
            continue;
        }
        parts.push(match (old, new) {
            (Some(o), Some(n)) => format!("{key}: {} → {}", words(o), words(n)),
            (None, Some(n)) if b.is_empty() => format!("{key}: {}", words(n)),
            (None, Some(n)) => format!("{key}: — → {}", words(n)),
            (Some(o), None) => format!("{key}: {} → —", words(o)),
            (None, None) => continue,
        });
    }
    // Scalar payloads (not objects) are told as they are.
    if parts.is_empty() {
        match (before, after) {
            (Some(o), Some(n)) if !o.is_object() || !n.is_object() => {
                parts.push(format!("{} → {}", words(o), words(n)))
            }
            (None, Some(n)) if !n.is_object() => parts.push(words(n)),
            _ => {}
        }
    }
    parts.join("; ")
}

fn is_run_entry(after: Option<&Value>) -> bool {
    after
        .and_then(Value::as_object)
        .is_some_and(|o| o.contains_key("created") && o.contains_key("errors"))
}

fn run_summary(after: &Value) -> String {
    let mut parts: Vec<String> = RUN_COUNTS
        .iter()
        .filter_map(|k| {
            let n = after.get(*k).and_then(Value::as_i64).unwrap_or(0);
            (n != 0).then(|| format!("{n} {k}"))
        })
        .collect();
    if parts.is_empty() {
        parts.push("no changes".into());
    }
    if let Some(m) = after.get("message").and_then(Value::as_str) {
        parts.push(m.to_string());
    }
    parts.join(", ")
}

/// A JSON value for people: strings without quotes, lists joined, nothing as "—".
fn words(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) if s.is_empty() => "—".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "—".into(),
        Value::Array(items) => items.iter().map(words).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Where a page of the log ends: the last entry's time, origin (`a` = `audit_log`, `r` = a
/// run) and id within its origin. The log is ordered by (at, origin, id), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Microseconds since the Unix epoch (PostgreSQL's precision).
    pub at_micros: i64,
    pub run: bool,
    pub seq: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!(
            "{}_{}_{}",
            self.at_micros,
            if self.run { 'r' } else { 'a' },
            self.seq
        )
    }

    /// `None` for anything that is not a cursor this module wrote.
    pub fn parse(s: &str) -> Option<Cursor> {
        let mut parts = s.split('_');
        let at_micros = parts.next()?.parse().ok()?;
        let run = match parts.next()? {
            "r" => true,
            "a" => false,
            _ => return None,
        };
        let seq = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Cursor {
            at_micros,
            run,
            seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_actions_read_as_words_and_unknown_ones_as_codes() {
        assert_eq!(action_words("user.archive"), "Archived user");
        assert_eq!(action_words("run.failed"), "Run failed");
        assert_eq!(
            action_words("signin.failure"),
            "Failed sign-in (wrong password)"
        );
        assert_eq!(action_words("odd.thing"), "odd.thing");
    }

    #[test]
    fn every_kind_has_words_for_its_actions() {
        for (code, _) in WORDS {
            assert!(
                parse_kind(kind_of(code)).is_some(),
                "{code} has no filter kind"
            );
        }
        assert_eq!(parse_kind("user"), Some("user"));
        assert_eq!(parse_kind("users"), None);
    }

    #[test]
    fn an_edit_lists_changed_fields_only_sorted() {
        let s = summary(
            "user.update",
            Some(&json!({"status": "active", "first_name": "Ana", "grade": "5"})),
            Some(&json!({"status": "inactive", "first_name": "Anna", "grade": "5"})),
        );
        assert_eq!(s, "first_name: Ana → Anna; status: active → inactive");
    }

    #[test]
    fn a_creation_lists_its_fields_and_empty_values_read_as_a_dash() {
        let s = summary(
            "user.create",
            None,
            Some(&json!({"last_name": "Li", "schools": ["N", "S"], "email": ""})),
        );
        assert_eq!(s, "email: —; last_name: Li; schools: N, S");
    }

    #[test]
    fn removed_and_added_fields_show_a_dash_on_the_missing_side() {
        let s = summary(
            "user.update",
            Some(&json!({"email": "a@x.org"})),
            Some(&json!({"source": "manual"})),
        );
        assert_eq!(s, "email: a@x.org → —; source: — → manual");
    }

    #[test]
    fn a_run_tells_its_non_zero_counts_and_its_message() {
        let after = json!({"created": 3, "updated": 0, "errors": 2, "archived": 1, "message": "bad header"});
        assert_eq!(
            summary("run.completed_with_errors", None, Some(&after)),
            "3 created, 1 archived, 2 errors, bad header"
        );
        let quiet = json!({"created": 0, "errors": 0});
        assert_eq!(summary("run.completed", None, Some(&quiet)), "no changes");
    }

    #[test]
    fn a_review_action_is_a_status_change_not_counts() {
        let s = summary(
            "run.cancel",
            Some(&json!({"status": "needs_review"})),
            Some(&json!({"status": "cancelled"})),
        );
        assert_eq!(s, "status: needs_review → cancelled");
    }

    #[test]
    fn nothing_known_is_an_empty_summary() {
        assert_eq!(summary("user.archive", None, None), "");
        assert_eq!(
            summary("x.y", Some(&json!("a")), Some(&json!("b"))),
            "a → b"
        );
    }

    #[test]
    fn a_cursor_reads_back_and_garbage_is_refused() {
        let c = Cursor {
            at_micros: -12,
            run: true,
            seq: 7,
        };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        let a = Cursor {
            at_micros: 1_700_000_000_000_000,
            run: false,
            seq: 0,
        };
        assert_eq!(Cursor::parse(&a.encode()), Some(a));
        for bad in ["", "1_x_2", "1_a", "1_a_2_3", "a_a_1", "1_a_z"] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }
}
