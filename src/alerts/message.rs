//! What an alert email says: what happened, in which district, from which source, the
//! counts, and a link to the run. Plain text, built from the event's facts.

use crate::domain::alerts::Facts;
use crate::domain::health::{EventKind, humanize};
use serde_json::Value;
use std::fmt::Write;
use time::format_description::well_known::Rfc3339;

/// "[Rollcall] Springfield: Run failed — students.csv"
pub fn subject(f: &Facts<'_>) -> String {
    let mut s = format!("[Rollcall] {}: {}", f.district_name, f.kind.title());
    if let Some((_, name)) = f.source {
        let _ = write!(s, " — {name}");
    }
    s
}

fn num(detail: &Value, key: &str) -> Option<i64> {
    detail.get(key).and_then(Value::as_i64)
}

fn text_of<'a>(detail: &'a Value, key: &str) -> Option<&'a str> {
    detail
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The body of the email.
pub fn text(f: &Facts<'_>) -> String {
    let d = f.detail;
    let mut out = String::new();
    let _ = writeln!(out, "{} in {}.", f.kind.title(), f.district_name);
    let _ = writeln!(out);
    if let Some((_, name)) = f.source {
        let _ = writeln!(out, "Source: {name}");
    }
    if let Some(file) = text_of(d, "file_name") {
        let _ = writeln!(out, "File: {file}");
    }
    let _ = writeln!(out, "When: {}", f.at.format(&Rfc3339).unwrap_or_default());
    match f.kind {
        EventKind::RunFailed
        | EventKind::SyncFailed
        | EventKind::NeedsReview
        | EventKind::RunErrors => {
            if let Some(status) = text_of(d, "status") {
                let _ = writeln!(out, "Status: {}", status.replace('_', " "));
            }
            if let Some(total) = num(d, "total_rows") {
                let _ = writeln!(out, "Rows: {total}");
            }
            let counts: Vec<String> = ["created", "updated", "archived", "restored"]
                .iter()
                .filter_map(|k| num(d, k).map(|n| format!("{n} {k}")))
                .collect();
            if !counts.is_empty() {
                let _ = writeln!(out, "Changes: {}", counts.join(", "));
            }
            if let Some(errors) = num(d, "errors") {
                let _ = writeln!(out, "Error rows: {errors}");
            }
            if let Some(message) = text_of(d, "message") {
                let _ = writeln!(out, "Message: {message}");
            }
        }
        EventKind::SourceStale => {
            let quiet = num(d, "quiet_for_secs").map(time::Duration::seconds);
            let usual = num(d, "usual_gap_secs").map(time::Duration::seconds);
            if let (Some(q), Some(u)) = (quiet, usual) {
                let _ = writeln!(
                    out,
                    "Nothing has arrived for {} (it usually runs every {}).",
                    humanize(q),
                    humanize(u)
                );
            }
            if let Some(last) = text_of(d, "last_run") {
                let _ = writeln!(out, "Last run: {last}");
            }
        }
        EventKind::SyncResumed => {
            if let Some(until) = text_of(d, "paused_until") {
                let _ = writeln!(out, "Paused until: {until}");
            }
        }
        EventKind::Test => {
            let who = text_of(d, "by").unwrap_or("an administrator");
            let _ = writeln!(
                out,
                "This is a test alert, sent from Settings → Alerts by {who}. Alerts reach you."
            );
        }
    }
    if let Some(link) = &f.link {
        let _ = writeln!(out);
        let _ = writeln!(out, "See the run: {link}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn facts<'a>(kind: EventKind, detail: &'a Value) -> Facts<'a> {
        Facts {
            event_id: 1,
            kind,
            at: time::macros::datetime!(2026-05-01 06:00 UTC),
            district_id: Uuid::from_u128(1),
            district_name: "Springfield",
            district_slug: "springfield",
            source: Some(("file:students.csv", "students.csv")),
            run_id: Some(Uuid::from_u128(9)),
            link: Some("https://rc.example/uploads/9".into()),
            detail,
        }
    }

    #[test]
    fn a_failed_run_says_what_where_counts_and_links() {
        let d = json!({ "status": "completed_with_errors", "total_rows": 10, "created": 7,
                        "updated": 1, "errors": 2, "file_name": "students.csv" });
        let f = facts(EventKind::RunErrors, &d);
        assert_eq!(
            subject(&f),
            "[Rollcall] Springfield: Run completed with errors — students.csv"
        );
        let t = text(&f);
        for want in [
            "Run completed with errors in Springfield.",
            "Source: students.csv",
            "Status: completed with errors",
            "Rows: 10",
            "Changes: 7 created, 1 updated",
            "Error rows: 2",
            "See the run: https://rc.example/uploads/9",
        ] {
            assert!(t.contains(want), "{want:?} missing from:\n{t}");
        }
    }

    #[test]
    fn a_stale_source_says_how_long_it_has_been_quiet() {
        let d = json!({ "quiet_for_secs": 3 * 86_400, "usual_gap_secs": 86_400,
                        "last_run": "2026-04-28T06:00:00Z" });
        let mut f = facts(EventKind::SourceStale, &d);
        f.link = None;
        let t = text(&f);
        assert!(t.contains("Nothing has arrived for 3 days (it usually runs every 1 day)."));
        assert!(t.contains("Last run: 2026-04-28T06:00:00Z"));
        assert!(!t.contains("See the run"));
    }
}
