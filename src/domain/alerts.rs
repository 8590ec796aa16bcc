//! Alerts (SPEC §5): which of a district's channels an event goes to under its rules, how
//! often a failed delivery is retried, and what a webhook receives. Plain Rust: no SQL, no
//! HTTP.

use super::health::EventKind;
use serde_json::{Value, json};
use time::Duration;

/// A district's rules: which events it is told about. A district that never saved its
/// rules has [`Rules::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub run_failed: bool,
    pub needs_review: bool,
    /// Off by default: a run with errors is told only when this is on and it has more than
    /// `errors_above` error rows.
    pub run_errors: bool,
    pub errors_above: i64,
    pub sync_failed: bool,
    pub source_stale: bool,
    pub sync_resumed: bool,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            run_failed: true,
            needs_review: true,
            run_errors: false,
            errors_above: 0,
            sync_failed: true,
            source_stale: true,
            sync_resumed: true,
        }
    }
}

impl Rules {
    /// Whether an event of this kind (with its detail) is worth telling. A test event always
    /// is.
    pub fn wants(&self, kind: EventKind, detail: &Value) -> bool {
        match kind {
            EventKind::RunFailed => self.run_failed,
            EventKind::SyncFailed => self.sync_failed,
            EventKind::NeedsReview => self.needs_review,
            EventKind::RunErrors => {
                self.run_errors
                    && detail.get("errors").and_then(Value::as_i64).unwrap_or(0) > self.errors_above
            }
            EventKind::SourceStale => self.source_stale,
            EventKind::SyncResumed => self.sync_resumed,
            EventKind::Test => true,
        }
    }
}

/// How an alert travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        [Channel::Email, Channel::Webhook]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// Where a district's alerts can go.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    /// Email recipients.
    pub recipients: Vec<String>,
    /// The webhook URL, when the webhook is on and has a secret to sign with.
    pub webhook: Option<String>,
}

/// One delivery to make: a channel and its target (an email address or a URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub channel: Channel,
    pub target: String,
}

/// The deliveries an event becomes under the district's rules and destinations. A test
/// event names its channel in `detail.channel` ("email" or "webhook") and goes there only.
pub fn targets(rules: &Rules, to: &Destinations, kind: EventKind, detail: &Value) -> Vec<Target> {
    if !rules.wants(kind, detail) {
        return Vec::new();
    }
    let only = (kind == EventKind::Test)
        .then(|| {
            detail
                .get("channel")
                .and_then(Value::as_str)
                .and_then(Channel::parse)
        })
        .flatten();
    let mut out = Vec::new();
    if only.is_none_or(|c| c == Channel::Email) {
        let mut emails: Vec<String> = to.recipients.iter().map(|e| e.to_lowercase()).collect();
        emails.sort();
        emails.dedup();
        out.extend(emails.into_iter().map(|e| Target {
            channel: Channel::Email,
            target: e,
        }));
    }
    if only.is_none_or(|c| c == Channel::Webhook)
        && let Some(url) = &to.webhook
    {
        out.push(Target {
            channel: Channel::Webhook,
            target: url.clone(),
        });
    }
    out
}

/// A delivery is given up (Failed) after this many attempts.
pub const MAX_ATTEMPTS: i32 = 12;
/// The first retry waits this long; each next one twice as long, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::minutes(1);
pub const MAX_BACKOFF: Duration = Duration::hours(1);

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again after this long.
    Retry(Duration),
    /// Out of attempts: the delivery is Failed.
    GiveUp,
}

/// After the `attempts`-th failed attempt (1 for the first): 1 min, 2, 4, … up to 1 h; after
/// [`MAX_ATTEMPTS`] attempts, give up.
pub fn after_failure(attempts: i32) -> AfterFailure {
    if attempts >= MAX_ATTEMPTS {
        return AfterFailure::GiveUp;
    }
    let doublings = (attempts.max(1) - 1).min(10) as u32;
    let wait = FIRST_BACKOFF * 2i32.pow(doublings);
    AfterFailure::Retry(wait.min(MAX_BACKOFF))
}

/// What an alert says, whatever carries it: the facts of the event, named for people.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub event_id: i64,
    pub kind: EventKind,
    pub at: time::OffsetDateTime,
    pub district_id: uuid::Uuid,
    pub district_name: &'a str,
    pub district_slug: &'a str,
    /// The source key (`file:students.csv`) and its name ("students.csv").
    pub source: Option<(&'a str, &'a str)>,
    pub run_id: Option<uuid::Uuid>,
    /// `<public url>/uploads/<run id>`.
    pub link: Option<String>,
    pub detail: &'a Value,
}

/// The webhook's JSON body (signed as sent).
pub fn webhook_body(f: &Facts<'_>) -> Value {
    json!({
        "event_id": f.event_id,
        "kind": f.kind.as_str(),
        "title": f.kind.title(),
        "at": f.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "district": { "id": f.district_id, "name": f.district_name, "slug": f.district_slug },
        "source": f.source.map(|(key, name)| json!({ "key": key, "name": name })),
        "run_id": f.run_id,
        "link": f.link,
        "detail": f.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to() -> Destinations {
        Destinations {
            recipients: vec!["b@d.org".into(), "A@d.org".into(), "a@d.org".into()],
            webhook: Some("https://hooks.example/x".into()),
        }
    }

    #[test]
    fn defaults_tell_everything_but_errors() {
        let r = Rules::default();
        let none = json!({});
        for k in EventKind::ALL {
            let want = k != EventKind::RunErrors;
            assert_eq!(r.wants(k, &none), want, "{k:?}");
        }
        assert!(!r.wants(EventKind::RunErrors, &json!({ "errors": 1000 })));
    }

    #[test]
    fn errors_above_n_respects_n() {
        let r = Rules {
            run_errors: true,
            errors_above: 5,
            ..Rules::default()
        };
        assert!(!r.wants(EventKind::RunErrors, &json!({ "errors": 5 })));
        assert!(r.wants(EventKind::RunErrors, &json!({ "errors": 6 })));
        assert!(!r.wants(EventKind::RunErrors, &json!({})));
        let zero = Rules {
            errors_above: 0,
            ..r
        };
        assert!(zero.wants(EventKind::RunErrors, &json!({ "errors": 1 })));
    }

    #[test]
    fn a_rule_turned_off_sends_nothing() {
        let r = Rules {
            needs_review: false,
            ..Rules::default()
        };
        assert!(targets(&r, &to(), EventKind::NeedsReview, &json!({})).is_empty());
        assert_eq!(
            targets(&r, &to(), EventKind::RunFailed, &json!({})).len(),
            3
        );
    }

    #[test]
    fn every_recipient_once_and_the_webhook() {
        let t = targets(&Rules::default(), &to(), EventKind::RunFailed, &json!({}));
        let got: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.channel.as_str(), t.target.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("email", "a@d.org"),
                ("email", "b@d.org"),
                ("webhook", "https://hooks.example/x")
            ]
        );
        let no_hook = Destinations {
            webhook: None,
            ..to()
        };
        assert_eq!(
            targets(
                &Rules::default(),
                &no_hook,
                EventKind::SourceStale,
                &json!({})
            )
            .len(),
            2
        );
    }

    #[test]
    fn a_test_event_goes_to_its_channel_only() {
        let r = Rules {
            run_failed: false,
            ..Rules::default()
        };
        let email = targets(&r, &to(), EventKind::Test, &json!({ "channel": "email" }));
        assert!(email.iter().all(|t| t.channel == Channel::Email) && email.len() == 2);
        let hook = targets(&r, &to(), EventKind::Test, &json!({ "channel": "webhook" }));
        assert_eq!(hook.len(), 1);
        assert_eq!(hook[0].channel, Channel::Webhook);
    }

    #[test]
    fn backoff_doubles_from_a_minute_to_an_hour_then_gives_up() {
        let waits: Vec<AfterFailure> = (1..=12).map(after_failure).collect();
        assert_eq!(waits[0], AfterFailure::Retry(Duration::minutes(1)));
        assert_eq!(waits[1], AfterFailure::Retry(Duration::minutes(2)));
        assert_eq!(waits[5], AfterFailure::Retry(Duration::minutes(32)));
        assert_eq!(waits[6], AfterFailure::Retry(Duration::hours(1)));
        assert_eq!(waits[10], AfterFailure::Retry(Duration::hours(1)));
        assert_eq!(waits[11], AfterFailure::GiveUp);
        assert_eq!(after_failure(40), AfterFailure::GiveUp);
    }

    #[test]
    fn the_webhook_body_names_the_district_source_and_run() {
        let detail = json!({ "errors": 3, "file_name": "students.csv" });
        let run = uuid::Uuid::from_u128(7);
        let f = Facts {
            event_id: 42,
            kind: EventKind::RunFailed,
            at: time::macros::datetime!(2026-05-01 06:00 UTC),
            district_id: uuid::Uuid::from_u128(1),
            district_name: "Springfield",
            district_slug: "springfield",
            source: Some(("file:students.csv", "students.csv")),
            run_id: Some(run),
            link: Some(format!("https://rc.example/uploads/{run}")),
            detail: &detail,
        };
        let b = webhook_body(&f);
        assert_eq!(b["kind"], "run_failed");
        assert_eq!(b["title"], "Run failed");
        assert_eq!(b["at"], "2026-05-01T06:00:00Z");
        assert_eq!(b["district"]["name"], "Springfield");
        assert_eq!(b["source"]["name"], "students.csv");
        assert_eq!(b["link"], format!("https://rc.example/uploads/{run}"));
        assert_eq!(b["detail"]["errors"], 3);
    }
}
