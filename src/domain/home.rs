//! The district home page, composed (SPEC §5, "the district's health"): one card per sync
//! connection and per file source ("Manual" last), with its last run, next sync, pause and
//! staleness; the runs that need attention first; users per school and role. Plain Rust:
//! the facts come in from `db::home`, the page renders what comes out.

use super::RunStatus;
use super::health::{self, Stale};
use std::collections::{BTreeMap, HashMap};
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

/// How far back a failed run still asks for attention (when nothing of its source has
/// succeeded since).
pub const FAILED_WITHIN: Duration = Duration::days(14);

/// A source's latest real run (not a dry run, not an undo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    pub id: Uuid,
    pub source: String,
    pub status: RunStatus,
    pub received_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    pub created: i32,
    pub updated: i32,
    pub archived: i32,
    pub errors: i32,
}

/// A sync connection, as the home page needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionFacts {
    pub id: Uuid,
    pub name: String,
    /// "Clever", "OneRoster 1.1 REST", …
    pub kind_label: String,
    /// Runs on a schedule (not a CSV connection fed by uploads).
    pub scheduled: bool,
    pub paused: bool,
    pub paused_until: Option<Date>,
    pub next_run_at: Option<OffsetDateTime>,
}

/// Whether a source is paused, and until when (`None`: until resumed by hand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paused {
    pub until: Option<Date>,
}

/// What kind of source a card is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardKind {
    Connection,
    File,
    Manual,
}

/// One card of the home page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// The source key (`sync:<id>`, `file:<name>`, `manual`).
    pub source: String,
    pub name: String,
    pub kind: CardKind,
    /// "Clever", "File source", "Manual".
    pub kind_label: String,
    pub connection_id: Option<Uuid>,
    pub last: Option<LastRun>,
    pub next_sync: Option<OffsetDateTime>,
    pub paused: Option<Paused>,
    pub stale: Option<Stale>,
}

impl Card {
    /// "No file for 3 days — usually every 1 day" (a sync: "No sync for …").
    pub fn stale_text(&self) -> Option<String> {
        let s = self.stale?;
        let what = match self.kind {
            CardKind::Connection => "sync",
            CardKind::File | CardKind::Manual => "file",
        };
        Some(format!(
            "No {what} for {} — usually every {}",
            health::humanize(s.quiet_for),
            health::humanize(s.usual_gap)
        ))
    }

    /// "Paused until 2026-09-01", "Paused", or nothing.
    pub fn pause_text(&self) -> Option<String> {
        self.paused.map(|p| match p.until {
            Some(d) => format!("Paused until {d}"),
            None => "Paused".to_string(),
        })
    }
}

/// Everything the cards are made of.
pub struct Facts<'a> {
    pub connections: &'a [ConnectionFacts],
    pub last_runs: &'a [LastRun],
    /// Recent run times per source (`db::health::source_runs`).
    pub recent: &'a HashMap<String, Vec<OffsetDateTime>>,
    /// Paused file sources (`source_pauses`), by source key.
    pub file_pauses: &'a HashMap<String, Option<Date>>,
    pub stale_after: Duration,
    pub now: OffsetDateTime,
}

/// The cards: connections by name (even those that never ran), then file sources by name,
/// then "Manual". A paused source is never stale.
pub fn cards(f: &Facts<'_>) -> Vec<Card> {
    let last: HashMap<&str, &LastRun> =
        f.last_runs.iter().map(|r| (r.source.as_str(), r)).collect();
    let stale_of = |source: &str, paused: bool| -> Option<Stale> {
        if paused {
            return None;
        }
        f.recent
            .get(source)
            .and_then(|runs| health::stale(runs, f.now, f.stale_after))
    };
    let mut connections: Vec<&ConnectionFacts> = f.connections.iter().collect();
    connections.sort_by_key(|c| c.name.to_lowercase());
    let mut out: Vec<Card> = connections
        .into_iter()
        .map(|c| {
            let source = format!("sync:{}", c.id);
            let paused = c.paused.then_some(Paused {
                until: c.paused_until,
            });
            Card {
                stale: stale_of(&source, c.paused),
                last: last.get(source.as_str()).map(|r| (*r).clone()),
                name: c.name.clone(),
                kind: CardKind::Connection,
                kind_label: c.kind_label.clone(),
                connection_id: Some(c.id),
                next_sync: (c.scheduled && !c.paused)
                    .then_some(c.next_run_at)
                    .flatten(),
                paused,
                source,
            }
        })
        .collect();
    // File sources: those that ran, and those paused before they ever ran.
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut manual = false;
    let sources = f
        .last_runs
        .iter()
        .map(|r| r.source.as_str())
        .chain(f.file_pauses.keys().map(String::as_str));
    for source in sources {
        match super::Source::from_db(source) {
            super::Source::File(name) => {
                files.insert(
                    name.to_lowercase().to_string() + "\u{0}" + source,
                    source.to_string(),
                );
            }
            super::Source::Manual => manual = true,
            super::Source::Sync(_) => {}
        }
    }
    let file_card = |source: &str, kind: CardKind, name: String, label: &str| {
        let paused = f
            .file_pauses
            .get(source)
            .map(|until| Paused { until: *until });
        Card {
            source: source.to_string(),
            name,
            kind,
            kind_label: label.to_string(),
            connection_id: None,
            last: last.get(source).map(|r| (*r).clone()),
            next_sync: None,
            stale: stale_of(source, paused.is_some()),
            paused,
        }
    };
    for source in files.values() {
        let name = match super::Source::from_db(source) {
            super::Source::File(name) => name.into(),
            _ => source.clone(),
        };
        out.push(file_card(source, CardKind::File, name, "File source"));
    }
    if manual {
        out.push(file_card(
            "manual",
            CardKind::Manual,
            "Manual".into(),
            "Uploads without a source",
        ));
    }
    out
}

/// A run that needs the admin: held in Needs Review, or failed with nothing of its source
/// succeeding since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attention {
    pub id: Uuid,
    pub source: String,
    pub status: RunStatus,
    pub file_name: Option<String>,
    pub received_at: OffsetDateTime,
    pub message: Option<String>,
}

/// Needs Review first (oldest first: they have waited longest), then failures, newest first.
pub fn order_attention(mut runs: Vec<Attention>) -> Vec<Attention> {
    runs.sort_by(|a, b| {
        let held = |r: &Attention| r.status != RunStatus::NeedsReview;
        held(a).cmp(&held(b)).then_with(|| {
            if a.status == RunStatus::NeedsReview {
                a.received_at.cmp(&b.received_at)
            } else {
                b.received_at.cmp(&a.received_at)
            }
        })
    });
    runs
}

/// Users per school and role: one row per school, one count per role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolCounts {
    /// `None`: users with no school.
    pub school: Option<String>,
    /// In `roles` order.
    pub counts: Vec<i64>,
    pub total: i64,
}

/// Pivot `(school, role, count)` rows into a table with a column per role in `roles`
/// (other roles are counted in the total only). Schools by name; "no school" last.
pub fn pivot(rows: &[(Option<String>, String, i64)], roles: &[&str]) -> Vec<SchoolCounts> {
    let mut by_school: BTreeMap<(bool, String), SchoolCounts> = BTreeMap::new();
    for (school, role, n) in rows {
        let key = (
            school.is_none(),
            school.clone().unwrap_or_default().to_lowercase(),
        );
        let entry = by_school.entry(key).or_insert_with(|| SchoolCounts {
            school: school.clone(),
            counts: vec![0; roles.len()],
            total: 0,
        });
        if let Some(i) = roles.iter().position(|r| r.eq_ignore_ascii_case(role)) {
            entry.counts[i] += n;
        }
        entry.total += n;
    }
    by_school.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-06-10 12:00 UTC)
    }

    fn run(source: &str, status: &str, hours_ago: i64) -> LastRun {
        LastRun {
            id: Uuid::new_v4(),
            source: source.into(),
            status: status.parse().unwrap(),
            received_at: now() - Duration::hours(hours_ago),
            finished_at: Some(now() - Duration::hours(hours_ago)),
            created: 1,
            updated: 2,
            archived: 0,
            errors: 0,
        }
    }

    fn nightly(days_ago_last: i64) -> Vec<OffsetDateTime> {
        (0..5)
            .map(|i| now() - Duration::days(days_ago_last + i))
            .collect()
    }

    #[test]
    fn connections_first_files_next_and_manual_last_with_a_card_for_a_connection_that_never_ran() {
        let id = Uuid::new_v4();
        let conns = [ConnectionFacts {
            id,
            name: "Clever".into(),
            kind_label: "Clever".into(),
            scheduled: true,
            paused: false,
            paused_until: None,
            next_run_at: Some(now() + Duration::hours(3)),
        }];
        let last = [
            run("manual", "completed", 5),
            run("file:staff.csv", "completed", 2),
            run("file:Students.csv", "failed", 1),
        ];
        let recent = HashMap::new();
        let pauses = HashMap::new();
        let cards = cards(&Facts {
            connections: &conns,
            last_runs: &last,
            recent: &recent,
            file_pauses: &pauses,
            stale_after: Duration::hours(36),
            now: now(),
        });
        let names: Vec<&str> = cards.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Clever", "staff.csv", "Students.csv", "Manual"]);
        assert!(cards[0].last.is_none());
        assert_eq!(cards[0].next_sync, Some(now() + Duration::hours(3)));
        assert_eq!(cards[2].last.as_ref().unwrap().status.as_str(), "failed");
        assert_eq!(cards[3].kind, CardKind::Manual);
    }

    #[test]
    fn a_quiet_regular_source_is_stale_unless_paused() {
        let last = [run("file:students.csv", "completed", 72)];
        let mut recent = HashMap::new();
        recent.insert("file:students.csv".to_string(), nightly(3));
        let no_pauses = HashMap::new();
        let cards_now = cards(&Facts {
            connections: &[],
            last_runs: &last,
            recent: &recent,
            file_pauses: &no_pauses,
            stale_after: Duration::hours(36),
            now: now(),
        });
        assert_eq!(
            cards_now[0].stale_text().as_deref(),
            Some("No file for 3 days — usually every 1 day")
        );
        assert_eq!(cards_now[0].pause_text(), None);

        let mut pauses = HashMap::new();
        let until = time::macros::date!(2026 - 09 - 01);
        pauses.insert("file:students.csv".to_string(), Some(until));
        let paused = cards(&Facts {
            connections: &[],
            last_runs: &last,
            recent: &recent,
            file_pauses: &pauses,
            stale_after: Duration::hours(36),
            now: now(),
        });
        assert_eq!(paused[0].stale, None, "a paused source is never stale");
        assert_eq!(
            paused[0].pause_text().as_deref(),
            Some("Paused until 2026-09-01")
        );
    }

    #[test]
    fn a_paused_connection_has_no_next_sync_and_is_never_stale() {
        let id = Uuid::new_v4();
        let conns = [ConnectionFacts {
            id,
            name: "ClassLink".into(),
            kind_label: "OneRoster 1.1 REST".into(),
            scheduled: true,
            paused: true,
            paused_until: None,
            next_run_at: Some(now()),
        }];
        let mut recent = HashMap::new();
        recent.insert(format!("sync:{id}"), nightly(4));
        let pauses = HashMap::new();
        let c = cards(&Facts {
            connections: &conns,
            last_runs: &[],
            recent: &recent,
            file_pauses: &pauses,
            stale_after: Duration::hours(36),
            now: now(),
        });
        assert_eq!(c[0].next_sync, None);
        assert_eq!(c[0].stale, None);
        assert_eq!(c[0].pause_text().as_deref(), Some("Paused"));
    }

    #[test]
    fn held_runs_come_first_then_failures_newest_first() {
        let a = |status: &str, hours_ago: i64| Attention {
            id: Uuid::new_v4(),
            source: "file:x.csv".into(),
            status: status.parse().unwrap(),
            file_name: None,
            received_at: now() - Duration::hours(hours_ago),
            message: None,
        };
        let ordered = order_attention(vec![
            a("failed", 5),
            a("needs_review", 1),
            a("failed", 2),
            a("needs_review", 9),
        ]);
        let got: Vec<(&str, i64)> = ordered
            .iter()
            .map(|r| (r.status.as_str(), (now() - r.received_at).whole_hours()))
            .collect();
        assert_eq!(
            got,
            [
                ("needs_review", 9),
                ("needs_review", 1),
                ("failed", 2),
                ("failed", 5)
            ]
        );
    }

    #[test]
    fn users_per_school_and_role_pivot_with_no_school_last() {
        let rows = vec![
            (Some("Lincoln".to_string()), "Student".to_string(), 30),
            (Some("Lincoln".to_string()), "Teacher".to_string(), 3),
            (None, "Staff".to_string(), 2),
            (Some("Adams".to_string()), "Student".to_string(), 10),
            (Some("Adams".to_string()), "Guest".to_string(), 1),
        ];
        let t = pivot(&rows, &["Student", "Teacher", "Staff"]);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].school.as_deref(), Some("Adams"));
        assert_eq!(t[0].counts, [10, 0, 0]);
        assert_eq!(t[0].total, 11);
        assert_eq!(t[1].counts, [30, 3, 0]);
        assert_eq!(t[2].school, None);
        assert_eq!(t[2].counts, [0, 0, 2]);
    }
}
