//! The district's health (SPEC §5): what an alert can be about, when a source that usually
//! runs counts as stale, and durations in words. Plain Rust: no SQL, no HTTP.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// What a district can be told about. Stored in `alert_events.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An upload, drop, API or command-line run failed.
    RunFailed,
    /// A sync connection's run failed.
    SyncFailed,
    /// A run stopped in Needs Review.
    NeedsReview,
    /// A run completed with error rows (the district's rule sets how many are worth telling).
    RunErrors,
    /// A source that usually runs has been quiet for longer than the district allows.
    SourceStale,
    /// A paused connection or source reached its resume date and runs again.
    SyncResumed,
    /// "Send test email" / "Send test webhook" from the Settings page.
    Test,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::RunFailed,
        EventKind::SyncFailed,
        EventKind::NeedsReview,
        EventKind::RunErrors,
        EventKind::SourceStale,
        EventKind::SyncResumed,
        EventKind::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RunFailed => "run_failed",
            EventKind::SyncFailed => "sync_failed",
            EventKind::NeedsReview => "needs_review",
            EventKind::RunErrors => "run_errors",
            EventKind::SourceStale => "source_stale",
            EventKind::SyncResumed => "sync_resumed",
            EventKind::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A short heading, as an admin reads it ("Run failed").
    pub fn title(self) -> &'static str {
        match self {
            EventKind::RunFailed => "Run failed",
            EventKind::SyncFailed => "Sync failed",
            EventKind::NeedsReview => "Run held for review",
            EventKind::RunErrors => "Run completed with errors",
            EventKind::SourceStale => "Source stopped arriving",
            EventKind::SyncResumed => "Paused source resumed",
            EventKind::Test => "Test alert",
        }
    }
}

/// How many of a source's latest runs the staleness rule looks at.
pub const RECENT_RUNS: usize = 10;
/// A source "runs regularly" once it has at least this many runs among the recent ones.
pub const REGULAR_AFTER: usize = 3;

/// A source that usually runs and has been quiet for too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stale {
    /// Since its last run.
    pub quiet_for: Duration,
    /// Its usual gap between runs (the median of the recent gaps).
    pub usual_gap: Duration,
    pub last_run: OffsetDateTime,
}

/// Whether a source is stale at `now`: it ran regularly (at least `REGULAR_AFTER` runs among
/// `runs`, its recent run times in any order) and nothing came for longer than
/// `stale_after`. A paused source is never stale; the caller leaves paused sources out.
pub fn stale(runs: &[OffsetDateTime], now: OffsetDateTime, stale_after: Duration) -> Option<Stale> {
    if runs.len() < REGULAR_AFTER {
        return None;
    }
    let mut times: Vec<OffsetDateTime> = runs.to_vec();
    times.sort_unstable_by(|a, b| b.cmp(a));
    times.truncate(RECENT_RUNS);
    let last_run = times[0];
    let quiet_for = now - last_run;
    if quiet_for <= stale_after {
        return None;
    }
    let mut gaps: Vec<Duration> = times.windows(2).map(|w| w[0] - w[1]).collect();
    gaps.sort_unstable();
    let usual_gap = gaps[gaps.len() / 2];
    Some(Stale {
        quiet_for,
        usual_gap,
        last_run,
    })
}

/// A duration in words, rounded down to its largest unit: "3 days", "1 hour", "12 minutes",
/// "less than a minute".
pub fn humanize(d: Duration) -> String {
    let secs = d.whole_seconds().max(0);
    let (n, unit) = if secs >= 86_400 {
        (secs / 86_400, "day")
    } else if secs >= 3_600 {
        (secs / 3_600, "hour")
    } else if secs >= 60 {
        (secs / 60, "minute")
    } else {
        return "less than a minute".into();
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours_ago: i64, now: OffsetDateTime) -> OffsetDateTime {
        now - Duration::hours(hours_ago)
    }

    #[test]
    fn event_kinds_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("nope"), None);
    }

    #[test]
    fn a_nightly_file_quiet_for_three_days_is_stale() {
        let now = OffsetDateTime::now_utc();
        let runs: Vec<_> = (3..9).map(|d| at(24 * d, now)).collect();
        let s = stale(&runs, now, Duration::hours(36)).expect("stale");
        assert_eq!(s.quiet_for, Duration::hours(72));
        assert_eq!(s.usual_gap, Duration::hours(24));
        assert_eq!(humanize(s.quiet_for), "3 days");
        assert_eq!(humanize(s.usual_gap), "1 day");
    }

    #[test]
    fn not_stale_within_the_window_or_without_a_habit() {
        let now = OffsetDateTime::now_utc();
        let nightly: Vec<_> = (1..8).map(|d| at(24 * d, now)).collect();
        assert_eq!(stale(&nightly, now, Duration::hours(36)), None);
        // Two runs long ago are not a habit.
        let rare = [at(500, now), at(900, now)];
        assert_eq!(stale(&rare, now, Duration::hours(36)), None);
        assert_eq!(stale(&[], now, Duration::hours(36)), None);
    }

    #[test]
    fn only_the_recent_runs_set_the_usual_gap() {
        let now = OffsetDateTime::now_utc();
        // Ten hourly runs 40 hours ago, then older daily ones: the usual gap is an hour.
        let mut runs: Vec<_> = (40..50).map(|h| at(h, now)).collect();
        runs.extend((3..20).map(|d| at(24 * d + 50, now)));
        let s = stale(&runs, now, Duration::hours(36)).expect("stale");
        assert_eq!(s.usual_gap, Duration::hours(1));
        assert_eq!(s.last_run, at(40, now));
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(humanize(Duration::seconds(30)), "less than a minute");
        assert_eq!(humanize(Duration::minutes(1)), "1 minute");
        assert_eq!(humanize(Duration::minutes(125)), "2 hours");
        assert_eq!(humanize(Duration::hours(49)), "2 days");
        assert_eq!(humanize(Duration::seconds(-5)), "less than a minute");
    }
}
