//! Summer pause by date (issue 14): a connection or a file source paused until a date runs
//! again on that date (UTC, on the injectable clock). Ending the pause, its `sync_resumed`
//! event and its audit entry are one transaction, so a pause ends once and is told once.

use crate::db;
use crate::db::alerts::NewEvent;
use crate::db::audit::{Actor, Entry};
use crate::domain::health::EventKind;
use crate::domain::{ActorKind, Source};
use anyhow::Result;
use sqlx::PgPool;
use time::{Date, OffsetDateTime};

/// The key that makes a resume's event unique: `sync_resumed:<source>:<date>`.
pub fn dedupe_key(source: &str, until: Date) -> String {
    format!("sync_resumed:{source}:{until}")
}

/// The schedule, resuming a pause whose day has come.
fn actor() -> Actor {
    Actor {
        kind: ActorKind::System,
        id: None,
        label: "schedule".into(),
    }
}

/// End every pause whose date has come (today or before, UTC; `now` from the injectable
/// clock), in every district. Returns how many it ended. Called from the schedule's tick and
/// the queue's housekeeping.
pub async fn resume_due(pool: &PgPool, now: OffsetDateTime) -> Result<usize> {
    let today = now.to_offset(time::UtcOffset::UTC).date();
    let mut ended = 0;
    for due in db::home::due_pauses(pool, today).await? {
        let mut tx = pool.begin().await?;
        let done = match Source::from_db(&due.source) {
            Source::Sync(id) => {
                db::home::end_connection_pause(&mut *tx, due.district_id, id, due.until, now)
                    .await?
            }
            _ => {
                db::home::end_source_pause(&mut *tx, due.district_id, &due.source, due.until)
                    .await?
            }
        };
        if !done {
            // Another pass ended it, or an admin changed it meanwhile.
            tx.rollback().await?;
            continue;
        }
        let key = dedupe_key(&due.source, due.until);
        db::alerts::raise(
            &mut *tx,
            due.district_id,
            &NewEvent {
                kind: EventKind::SyncResumed,
                dedupe_key: &key,
                run_id: None,
                source: Some(&due.source),
                at: now,
                detail: serde_json::json!({ "paused_until": due.until.to_string() }),
            },
        )
        .await?;
        let (entity_kind, entity_id, action) = match Source::from_db(&due.source) {
            Source::Sync(id) => ("sync_connection", Some(id), "sync.resume"),
            _ => ("source", None, "source.resume"),
        };
        db::audit::record(
            &mut *tx,
            due.district_id,
            &actor(),
            Entry {
                action,
                entity_kind,
                entity_id,
                run_id: None,
                before: Some(serde_json::json!({ "paused_until": due.until.to_string() })),
                after: Some(serde_json::json!({ "source": due.source, "paused": false })),
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(district = %due.district_id, source = %due.source, until = %due.until, "pause ended on its date");
        ended += 1;
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_per_source_and_date() {
        let d = time::macros::date!(2026 - 09 - 01);
        assert_eq!(
            dedupe_key("file:students.csv", d),
            "sync_resumed:file:students.csv:2026-09-01"
        );
        assert_ne!(
            dedupe_key("file:a.csv", d),
            dedupe_key("file:a.csv", d.next_day().unwrap())
        );
    }
}
